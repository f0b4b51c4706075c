"""Reads of the change history: filters, scoping, diffs against the previous record, pages.

How a filter reaches each model. Every filter becomes, per audited model, a subquery of the object
ids it admits (read from the history tables themselves, so objects whose foreign keys changed or
that were deleted are still found); a model the filter does not reach is left out:

- lot number: the lots with that number, their vials, the dispenses of those vials, the sessions
  they were dispensed to (and those sessions' brand-switch flags and reactions), the recalls naming
  the lot (via RecallLot), those recall-lot links and the recalls' notification tasks;
- vial id: that vial, its dispenses, their sessions (with flags and reactions) and the notification
  tasks that list the vial;
- patient MRN: the patient, their sessions, the dispenses, flags and reactions of those sessions,
  and the patient's notification tasks;
- user, since, until: which history records match; model: which sheet.

Diffs. A change is reported as `field: old → new` against the previous history record of the
same object, whatever the filters. The export streams each historical model ordered by
(object id, history date, history id) and keeps only the previous row of the current object in
memory. The database serves that order from the index on the object id with a small per-object
sort, in SQLite and PostgreSQL alike, so rows start flowing at once and nothing is sorted as a
whole. The price is that a sheet is grouped by object (oldest change first within each object);
the workbook's autofilter sorts by "When" in one click. When `since` or `user` narrow the records,
the rows needed only as the "previous record" (the last one before `since`, and other users'
records in between) are read as context and not written.
"""

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from heapq import merge
from datetime import timezone as dt_timezone
from itertools import islice

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from core.text import grams_text
from audit.exceptions import ExportNotFound, InvalidCursor, InvalidHistoryFilter, NothingMatched, NotKnown
from audit.models import ExportJob, PatientAccess
from audit.registry import ACTIONS, AuditedModel, Labels, audited_models
from inventory.models import Vial
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient
from traceability.models import TreatmentAuthorisation
from recalls.models import NotificationTask, RecallLot
from recalls.selectors import MatchMode, lots_matching

User = get_user_model()

# Positions of the fixed columns in a history row (see registry.HISTORY_COLUMNS).
HID, WHEN, TYPE, REASON, USER, OBJECT, USERNAME = range(7)
SNAPSHOT_START = 7


def who_and_role(row: tuple, labels: Labels) -> tuple[str, str]:
    """Who made a history record, as people name them ("tina (Tina Tech)") with the role the account
    has now; when the account is gone, the username the row kept (it outlives the account)."""
    found = labels.get(User, row[USER]) if row[USER] is not None else None
    if found is not None:
        return found
    return row[USERNAME] or (f"user #{row[USER]}" if row[USER] is not None else ""), ""


# --- Filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    since: datetime | None = None
    until: datetime | None = None
    lot: str = ""
    lot_match: str = "exact"
    vial: int | None = None
    patient: str = ""
    user: str = ""
    model: str = ""
    # What the lot, patient and user filters name, resolved once (see parse_filters).
    lot_ids: tuple[int, ...] = ()
    patient_ids: tuple[int, ...] = ()
    user_ids: tuple[int, ...] = ()
    # The filters as given, for the summary sheet, the export record and a background job.
    given: dict = field(default_factory=dict, compare=False)
    # What the scopes build and read once for these filters (see _scopes, _lot_sessions).
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> list[tuple[str, str]]:
        names = {
            "since": "Since",
            "until": "Until",
            "lot": "Lot number",
            "lot_match": "Lot number match",
            "vial": "Vial id",
            "patient": "Patient MRN",
            "user": "User",
            "model": "Model",
        }
        return [(label, str(self.given[key])) for key, label in names.items() if key in self.given]


# The history holds nothing from before this system or from the far future; a date outside these
# bounds is a typing slip, and near the ends of the calendar the conversions to UTC overflow.
EARLIEST_MOMENT = datetime(1900, 1, 1, tzinfo=dt_timezone.utc)
LATEST_MOMENT = datetime(9001, 1, 2, tzinfo=dt_timezone.utc)


def _parse_moment(value: str, *, name: str, end_of_day: bool) -> datetime:
    value = value.strip()
    moment, in_range = None, False
    try:
        day = parse_date(value) if len(value) == 10 else None
        if day is not None:
            # A date means the whole local day: `since` from its first instant, `until` through its last.
            moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
        else:
            moment = parse_datetime(value)
        if moment is not None and timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_current_timezone())
        in_range = moment is not None and EARLIEST_MOMENT <= moment <= LATEST_MOMENT
    except ValueError:
        moment = None
    except OverflowError:
        moment = EARLIEST_MOMENT  # a real date at the very end of the calendar: out of range
    if moment is None:
        raise InvalidHistoryFilter(f"{name}: {value!r} is not a date (YYYY-MM-DD) or date-time (ISO 8601).")
    if not in_range:
        raise InvalidHistoryFilter(f"{name}: {value!r} is outside the years 1900 to 9000.", code="invalid_range")
    return moment


SUGGESTIONS = 8


def _close(value: str, known: list[str]) -> list[str]:
    """Known values close to one that matched nothing: other case, extensions, near misses."""
    lowered = value.lower()
    near = [k for k in known if k.lower() == lowered or k.lower().startswith(lowered)]
    by_lower: dict[str, list[str]] = {}
    for k in known:
        by_lower.setdefault(k.lower(), []).append(k)
    close = difflib.get_close_matches(lowered, list(by_lower), n=SUGGESTIONS, cutoff=0.6)
    out: list[str] = []
    for k in sorted(near) + [k for c in close for k in by_lower[c]]:
        if k != value and k not in out:
            out.append(k)
    return out[:SUGGESTIONS]


def _patients_named(mrn: str) -> tuple[int, ...]:
    ids = tuple(Patient.objects.filter(mrn=mrn).values_list("pk", flat=True))
    if not ids:
        known = list(Patient.objects.values_list("mrn", flat=True)) if len(mrn) <= 64 else []
        raise NotKnown(
            f"No patient with MRN {mrn}.", code="patient_not_found", extra={"patient": mrn, "suggestions": _close(mrn, known)}
        )
    return ids


def _users_named(username: str) -> tuple[int, ...]:
    ids = tuple(User.objects.filter(username=username).values_list("pk", flat=True))
    if not ids:
        known = list(User.objects.values_list("username", flat=True)) if len(username) <= 150 else []
        raise NotKnown(
            f"No user {username}.", code="user_not_found", extra={"user": username, "suggestions": _close(username, known)}
        )
    return ids


def parse_filters(
    *,
    since: str | None = None,
    until: str | None = None,
    lot: str | None = None,
    lot_match: str | None = None,
    vial: int | str | None = None,
    patient: str | None = None,
    user: str | None = None,
    model: str | None = None,
) -> HistoryFilters:
    """The history filters from user input (API query or command line), checked.

    `since` is inclusive, `until` exclusive for a date-time; a bare date covers that whole local day
    for both (so `--since 2025-01-01 --until 2025-01-31` is all of January). A lot number matches
    as the recall look-up matches it (recalls.selectors.lots_matching: spaces trimmed, exact unless
    `lot_match=prefix`, a scanned carton read for its lot). A lot, patient, user or vial that does
    not exist is a 404 with close `suggestions`, not an empty workbook.
    """
    given: dict = {}
    parsed: dict = {}
    if since not in (None, ""):
        parsed["since"] = _parse_moment(str(since), name="since", end_of_day=False)
        given["since"] = str(since).strip()
    if until not in (None, ""):
        parsed["until"] = _parse_moment(str(until), name="until", end_of_day=True)
        given["until"] = str(until).strip()
    if "since" in parsed and "until" in parsed and parsed["since"] >= parsed["until"]:
        raise InvalidHistoryFilter("since must be before until.", code="invalid_range")
    if vial not in (None, ""):
        try:
            parsed["vial"] = int(vial)
        except (TypeError, ValueError):
            raise InvalidHistoryFilter(f"vial: {vial!r} is not a vial id (a whole number).") from None
        given["vial"] = parsed["vial"]
    for name, value in (("lot", lot), ("patient", patient), ("user", user), ("model", model)):
        if value not in (None, "") and str(value).strip():
            parsed[name] = given[name] = str(value).strip()
    if "model" in parsed and parsed["model"] not in audited_models():
        choices = ", ".join(audited_models())
        raise InvalidHistoryFilter(f"model: {parsed['model']!r} is not one of {choices}.", code="unknown_model")
    if lot_match not in (None, "", MatchMode.EXACT):
        parsed["lot_match"] = given["lot_match"] = str(lot_match)
    if "lot" in parsed:
        found = lots_matching(lot=None, query=parsed["lot"], match=parsed.get("lot_match", MatchMode.EXACT))
        parsed["lot"] = found.lot_number
        parsed["lot_ids"] = tuple(sorted(lot.pk for lot in found.lots))
    elif "lot_match" in parsed:
        raise InvalidHistoryFilter("lot_match needs a lot.", code="invalid_match")
    if "patient" in parsed:
        parsed["patient_ids"] = _patients_named(parsed["patient"])
    if "user" in parsed:
        parsed["user_ids"] = _users_named(parsed["user"])
    if "vial" in parsed and not Vial.objects.filter(pk=parsed["vial"]).exists():
        raise NotKnown(f"No vial {parsed['vial']}.", code="vial_not_found", extra={"vial": parsed["vial"], "suggestions": []})
    return HistoryFilters(**parsed, given=given)


def filters_from_record(record: dict) -> HistoryFilters:
    """The filters a job or export event recorded (as given), parsed again."""
    keys = ("since", "until", "lot", "lot_match", "vial", "patient", "user", "model")
    return parse_filters(**{key: record.get(key) for key in keys})


# --- Scoping -----------------------------------------------------------------------------------


def _h(model) -> QuerySet:
    return model.history.model.objects.all()


def _vial_chain(vials: QuerySet, sessions: list[int] | None = None) -> dict[str, QuerySet | list[int]]:
    dispenses = _h(Dispense).filter(vial_id__in=vials)
    if sessions is None:
        sessions = dispenses.values("session_id")
    of_sessions = {"session_id__in_ids" if isinstance(sessions, list) else "session_id__in": sessions}
    return {
        "vials": vials,
        "dispenses": dispenses.values("id"),
        "sessions": sessions,
        "flags": _h(BrandSwitchFlag).filter(**of_sessions).values("id"),
        "reactions": _h(AdverseReaction).filter(**of_sessions).values("id"),
    }


def _lot_sessions(filters: HistoryFilters) -> list[int]:
    """The sessions a vial of the filter's lots was ever dispensed in, read once per filters: as a
    subquery, PostgreSQL plans the flags' and reactions' scope as a scan of every flag probing the
    dispenses (50 ms each at a million vials, for every sheet and count); by ids, an index probe."""
    memo = filters.memo
    if "lot_sessions" not in memo:
        vials = _h(Vial).filter(lot_id__in=list(filters.lot_ids)).values("id")
        memo["lot_sessions"] = sorted(
            set(_h(Dispense).filter(vial_id__in=vials).values_list("session_id", flat=True))
        )
    return memo["lot_sessions"]


def _lot_scope(filters: HistoryFilters) -> dict[str, QuerySet | list[int]]:
    lots = list(filters.lot_ids)
    recall_links = _h(RecallLot).filter(lot_id__in=lots)
    recalls = recall_links.values("recall_id")
    return {
        "lots": lots,
        **_vial_chain(_h(Vial).filter(lot_id__in=lots).values("id"), _lot_sessions(filters)),
        "recalls": recalls,
        "recall_lots": recall_links.values("id"),
        "notifications": _h(NotificationTask).filter(recall_id__in=recalls).values("id"),
    }


def _vial_scope(vial_id: int) -> dict[str, QuerySet]:
    listed_in = NotificationTask.vials.through.objects.filter(vial_id=vial_id).values("notificationtask_id")
    return {
        **_vial_chain(_h(Vial).filter(id=vial_id).values("id")),
        "notifications": _h(NotificationTask).filter(id__in=listed_in).values("id"),
    }


def _patient_scope(patient_ids: tuple[int, ...]) -> dict[str, QuerySet]:
    patients = list(patient_ids)
    sessions = _h(InfusionSession).filter(patient_id__in=patients).values("id")
    return {
        "patients": patients,
        "sessions": sessions,
        "dispenses": _h(Dispense).filter(session_id__in=sessions).values("id"),
        "flags": _h(BrandSwitchFlag).filter(session_id__in=sessions).values("id"),
        "reactions": _h(AdverseReaction).filter(session_id__in=sessions).values("id"),
        "notifications": _h(NotificationTask).filter(patient_id__in=patients).values("id"),
        "authorisations": _h(TreatmentAuthorisation).filter(patient_id__in=patients).values("id"),
    }


def selected_models(filters: HistoryFilters) -> list[AuditedModel]:
    registry = audited_models()
    return [registry[filters.model]] if filters.model else list(registry.values())


def _scopes(filters: HistoryFilters) -> list[dict[str, QuerySet | list[int]]]:
    """The lot, vial and patient filters' scopes, built once per filters: a scope is a dozen lazy
    querysets, and every model's count, Timeline and sheet reads through them."""
    memo = filters.memo
    if "scopes" not in memo:
        scopes = []
        if filters.lot:
            scopes.append(_lot_scope(filters))
        if filters.vial is not None:
            scopes.append(_vial_scope(filters.vial))
        if filters.patient:
            scopes.append(_patient_scope(filters.patient_ids))
        memo["scopes"] = scopes
    return memo["scopes"]


def scoped_history(spec: AuditedModel, filters: HistoryFilters) -> QuerySet | None:
    """All history records of the objects the lot, vial and patient filters admit (None: none can)."""
    qs = spec.history_model.objects.all()
    for scope in _scopes(filters):
        if spec.key not in scope:
            return None
        ids = scope[spec.key]
        # Ids read beforehand go as one parameter, however many (SQLite bounds a statement's).
        qs = qs.filter(id__in_ids=ids) if isinstance(ids, list) else qs.filter(id__in=ids)
    return qs


def _record_q(filters: HistoryFilters, *, with_until: bool = True) -> Q:
    """Which history records the date range and user filters select."""
    q = Q()
    if filters.since is not None:
        q &= Q(history_date__gte=filters.since)
    if with_until and filters.until is not None:
        q &= Q(history_date__lt=filters.until)
    if filters.user:
        q &= Q(history_user_id__in=filters.user_ids)
    return q


def matching_history(spec: AuditedModel, filters: HistoryFilters) -> QuerySet | None:
    qs = scoped_history(spec, filters)
    return None if qs is None else qs.filter(_record_q(filters))


def history_counts(filters: HistoryFilters) -> dict[str, int]:
    """Rows each sheet will hold: one COUNT per audited model."""
    counts = {}
    for spec in selected_models(filters):
        qs = matching_history(spec, filters)
        counts[spec.key] = 0 if qs is None else qs.count()
    return counts


def _stream_queryset(spec: AuditedModel, filters: HistoryFilters) -> tuple[QuerySet | None, bool]:
    """The rows to read for one model's sheet, in (object, date, id) order, and whether some are context."""
    base = scoped_history(spec, filters)
    if base is None:
        return None, False
    rows = base
    if filters.until is not None:
        rows = rows.filter(history_date__lt=filters.until)
    narrowing = _record_q(filters, with_until=False)
    with_context = bool(narrowing)
    if with_context:
        touched = base.filter(_record_q(filters)).values("id")
        window = Q(id__in=touched)
        if filters.since is not None:
            # The last record before `since` of each object: the "previous record" of its first change.
            predecessors = (
                base.filter(history_date__lt=filters.since, id__in=touched)
                .annotate(
                    newest=Window(
                        RowNumber(),
                        partition_by=[F("id")],
                        order_by=[F("history_date").desc(), F("history_id").desc()],
                    )
                )
                .filter(newest=1)
                .values("history_id")
            )
            window &= Q(history_date__gte=filters.since) | Q(history_id__in=predecessors)
        rows = rows.filter(window).annotate(hit=ExpressionWrapper(narrowing, output_field=BooleanField()))
    return rows.order_by("id", "history_date", "history_id"), with_context


def prefetch_labels(spec: AuditedModel, rows: list[tuple], labels: Labels) -> None:
    labels.prefetch(User, {row[USER] for row in rows})
    for index, model in spec.foreign_keys:
        labels.prefetch(model, {row[index] for row in rows})


def history_batches(
    spec: AuditedModel, filters: HistoryFilters, *, labels: Labels, chunk_size: int = 2000
) -> Iterator[list[tuple[tuple, tuple | None]]]:
    """Batches of (row, previous row of the same object or None) for one model, streamed.

    Memory holds one batch and one previous row, whatever the number of records.
    """
    qs, with_context = _stream_queryset(spec, filters)
    if qs is None:
        return
    columns = spec.columns + (("hit",) if with_context else ())
    rows = qs.values_list(*columns).iterator(chunk_size=chunk_size)
    previous = None
    while chunk := list(islice(rows, chunk_size)):
        prefetch_labels(spec, chunk, labels)
        batch = []
        for row in chunk:
            before = previous if previous is not None and previous[OBJECT] == row[OBJECT] else None
            previous = row
            if with_context and not row[-1]:
                continue
            batch.append((row, before))
        if batch:
            yield batch


def _previous_record(spec: AuditedModel) -> Subquery:
    """The history id of the record before this one, of the same object (whatever the filters)."""
    return Subquery(
        spec.history_model.objects.filter(id=OuterRef("id"))
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )


def _keyed(rows, rank: int, spec: AuditedModel) -> Iterator[tuple]:
    for row in rows:
        yield row[WHEN], rank, row[HID], spec, row


RECENT_OBJECTS = 20_000


def timeline_batches(
    filters: HistoryFilters, *, labels: Labels, models: list[AuditedModel] | None = None, chunk_size: int = 2000
) -> Iterator[list[tuple[AuditedModel, tuple, tuple | None]]]:
    """Every matching record of every selected model in time order (when, then sheet order, then
    id), as batches of (model, row, previous record of the same object or None).

    Each model is read in (history date, id) order from its own cursor and the cursors are merged,
    so memory holds one chunk per model; per batch, one query per model fetches the previous
    records the diffs need and one per kind of related label.
    """
    registry = list(audited_models())
    streams = []
    for spec in models if models is not None else selected_models(filters):
        qs = matching_history(spec, filters)
        if qs is None:
            continue
        rank = registry.index(spec.key)
        rows = (
            qs.annotate(previous_id=_previous_record(spec))
            .order_by("history_date", "history_id")
            .values_list(*spec.columns, "previous_id")
            .iterator(chunk_size=chunk_size)
        )
        streams.append(_keyed(rows, rank, spec))
    merged = merge(*streams, key=lambda item: item[:3])
    registry_map = audited_models()
    # The last record of each object met so far: most previous records are one of them, and need
    # no query. Bounded: past RECENT_OBJECTS objects it starts afresh and queries the rest.
    recent: dict[tuple[str, int], tuple] = {}
    while chunk := list(islice(merged, chunk_size)):
        if len(recent) > RECENT_OBJECTS:
            recent.clear()
        picked: list[tuple[AuditedModel, tuple, tuple | None]] = []
        wanted: dict[str, list[int]] = {}
        rows_of: dict[str, list[tuple]] = {}
        for *_, spec, row in chunk:
            key, previous_id = spec.key, row[-1]
            before = None
            if previous_id is not None:
                held = recent.get((key, row[OBJECT]))
                if held is not None and held[HID] == previous_id:
                    before = held
                else:
                    wanted.setdefault(key, []).append(previous_id)
            picked.append((spec, row, before))
            rows_of.setdefault(key, []).append(row)
            recent[(key, row[OBJECT])] = row
        befores: dict[tuple[str, int], tuple] = {}
        for key, rows in rows_of.items():
            spec = registry_map[key]
            earlier = []
            ids = wanted.get(key, [])
            for start in range(0, len(ids), 900):
                earlier += list(
                    spec.history_model.objects.filter(history_id__in=ids[start : start + 900]).values_list(*spec.columns)
                )
            for row in earlier:
                befores[(key, row[HID])] = row
            prefetch_labels(spec, rows + earlier, labels)
        yield [
            (spec, row, before if before is not None or row[-1] is None else befores.get((spec.key, row[-1])))
            for spec, row, before in picked
        ]


# --- Access log in the export -------------------------------------------------------------------


def access_rows(filters: HistoryFilters) -> QuerySet | None:
    """The access log under the history's filters (None with a model filter: one kind of record).

    since / until / user select log rows as they select history records; patient selects that
    patient; lot and vial select the patients who were given a vial of the lot, or that vial.
    """
    if filters.model:
        return None
    qs = PatientAccess.objects.all()
    if filters.since is not None:
        qs = qs.filter(at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(at__lt=filters.until)
    if filters.user:
        qs = qs.filter(user_id__in=filters.user_ids)
    if filters.patient:
        qs = qs.filter(patient_id__in=filters.patient_ids)
    if filters.lot:
        qs = qs.filter(
            patient_id__in=Dispense.objects.filter(vial__lot_id__in=filters.lot_ids).values("session__patient_id")
        )
    if filters.vial is not None:
        qs = qs.filter(patient_id__in=Dispense.objects.filter(vial_id=filters.vial).values("session__patient_id"))
    return qs.order_by("at", "id")


ACCESS_COLUMNS = ("at", "user_id", "patient_id", "via", "method", "path")


def access_batches(filters: HistoryFilters, *, labels: Labels, chunk_size: int = 2000) -> Iterator[list[tuple]]:
    qs = access_rows(filters)
    if qs is None:
        return
    rows = qs.values_list(*ACCESS_COLUMNS).iterator(chunk_size=chunk_size)
    while chunk := list(islice(rows, chunk_size)):
        labels.prefetch(User, {row[1] for row in chunk})
        labels.prefetch(Patient, {row[2] for row in chunk})
        yield chunk


def export_counts(filters: HistoryFilters) -> tuple[dict[str, int], int]:
    """Rows each history sheet will hold, and the access-log rows: one COUNT each."""
    access = access_rows(filters)
    return history_counts(filters), (0 if access is None else access.count())


def nothing_matched(filters: HistoryFilters) -> NothingMatched:
    described = ", ".join(f"{name.lower()} {value}" for name, value in filters.describe()) or "no filters"
    return NothingMatched(
        f"No history and no access to patient data match these filters ({described}).",
        extra={"filters": filters.given, "suggestions": _widen(filters)},
    )


def _widen(filters: HistoryFilters) -> list[str]:
    """What to try instead, as the recall look-up suggests lot numbers."""
    hints = []
    if filters.since is not None or filters.until is not None:
        hints.append("a wider date range (or none)")
    if filters.user:
        hints.append("without the user filter")
    if filters.model:
        hints.append("without the model filter (every kind of record)")
    if filters.lot and filters.patient:
        hints.append("the lot or the patient alone")
    return hints


# --- Presenting a record -----------------------------------------------------------------------


def changes(spec: AuditedModel, row: tuple, before: tuple | None) -> list[tuple[int, object, object]]:
    """(column index, old, new) for each snapshot field that differs from the previous record."""
    if before is None:
        return []
    return [
        (index, before[index], row[index])
        for index in range(SNAPSHOT_START, len(spec.columns))
        if before[index] != row[index]
    ]


def value_text(value, *, related=None, labels: Labels | None = None, choices: dict | None = None) -> str:
    """A stored value as people read it: related records by name, choices by label, "(none)"."""
    if value is None or value == "" and related is not None:
        return "(none)"
    if related is not None and labels is not None:
        return labels.text(related, value)
    if choices and value in choices:
        return choices[value]
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if timezone.is_aware(value) else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return grams_text(value)
    if isinstance(value, (dict, list)):
        return readable_json(value)
    if value == "":
        return "(blank)"
    return str(value)


def readable_json(value) -> str:
    """JSON as a line of words: [{"field": "excipient", "from": "proline", "to": "glycine"}] reads
    "excipient: proline → glycine"; other objects "key: value, …"; lists joined by "; "."""
    if isinstance(value, list):
        return "; ".join(readable_json(item) for item in value) if value else "(none)"
    if isinstance(value, dict):
        if {"from", "to"} <= value.keys():
            name = value.get("field", "")
            return f"{name}: {value_text(value['from'])} → {value_text(value['to'])}".lstrip(": ")
        return ", ".join(f"{key}: {readable_json(item)}" for key, item in value.items())
    return value_text(value)


def field_change(spec: AuditedModel, index: int, old, new, labels: Labels) -> tuple[str, str, str]:
    """(field as people name it, old, new) for one changed column."""
    related = dict(spec.foreign_keys).get(index)
    choices = spec.choices.get(index)
    return (
        spec.headers[index - SNAPSHOT_START],
        value_text(old, related=related, labels=labels, choices=choices),
        value_text(new, related=related, labels=labels, choices=choices),
    )


def changes_text(spec: AuditedModel, row: tuple, before: tuple | None, labels: Labels) -> str:
    """`field: old → new; …`, related records by name: "location: (none) → Main pharmacy fridge A"."""
    if before is None:
        return "(no earlier record)" if row[TYPE] == "~" else ""
    parts = []
    for index, old, new in changes(spec, row, before):
        name, old_text, new_text = field_change(spec, index, old, new, labels)
        parts.append(f"{name}: {old_text} → {new_text}")
    return "; ".join(parts)


def entry(spec: AuditedModel, row: tuple, before: tuple | None, labels: Labels) -> dict:
    """One history record as plain data (the JSON API's row; the workbook writes the same fields)."""
    who, role = who_and_role(row, labels)
    changed = []
    for index, old, new in changes(spec, row, before):
        name, old_text, new_text = field_change(spec, index, old, new, labels)
        changed.append(
            {"field": spec.fields[index - SNAPSHOT_START].name, "label": name, "old": old, "new": new, "text": f"{old_text} → {new_text}"}
        )
    return {
        "model": spec.key,
        "record": spec.noun,
        "history_id": row[HID],
        "when": row[WHEN],
        "who": who,
        "role": role,
        "action": ACTIONS.get(row[TYPE], row[TYPE]),
        "reason": row[REASON] or "",
        "object_id": row[OBJECT],
        "object": spec.label(spec.snapshot(row), labels),
        "changes": changed,
        "changes_text": changes_text(spec, row, before, labels),
        "snapshot": {spec.columns[i]: row[i] for i in range(SNAPSHOT_START, len(spec.columns))},
    }


# --- Pages for the JSON API --------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order (when, model rank, history id) and a direction."""

    when: datetime
    rank: int
    history_id: int
    reverse: bool = False

    # Signed: a cursor is the server's own note of where a page ended. A forged one is refused before
    # any of it reaches a query.
    SALT = "audit.history.cursor"

    def encode(self) -> str:
        data = {"w": self.when.isoformat(), "r": self.rank, "h": self.history_id, "b": int(self.reverse)}
        return signing.dumps(data, salt=self.SALT)

    @classmethod
    def decode(cls, raw: str) -> "Cursor":
        try:
            data = signing.loads(raw, salt=cls.SALT)
            when = datetime.fromisoformat(data["w"])
            if timezone.is_naive(when):
                raise ValueError("naive")
            return cls(when=when, rank=int(data["r"]), history_id=int(data["h"]), reverse=bool(data["b"]))
        except (signing.BadSignature, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise InvalidCursor("The cursor is not valid; start again from the first page.") from None


@dataclass
class HistoryPage:
    entries: list[dict]
    next: Cursor | None
    previous: Cursor | None


def _beyond(cursor: Cursor, rank: int) -> Q:
    """Records after the cursor in the reading direction, for the model of this rank."""
    when, hid = cursor.when, cursor.history_id
    if not cursor.reverse:  # older than the cursor
        if rank < cursor.rank:
            return Q(history_date__lte=when)
        if rank == cursor.rank:
            return Q(history_date__lt=when) | Q(history_date=when, history_id__lt=hid)
        return Q(history_date__lt=when)
    if rank > cursor.rank:  # newer than the cursor
        return Q(history_date__gte=when)
    if rank == cursor.rank:
        return Q(history_date__gt=when) | Q(history_date=when, history_id__gt=hid)
    return Q(history_date__gt=when)


def _as_datetime(value) -> datetime:
    """A history_date as a raw cursor returns it (SQLite: text, naive UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt_timezone.utc)
    return value


def _newest_keys(parts: list[tuple[int, QuerySet]], size: int) -> list[tuple[datetime, int, int]]:
    """(when, rank, history_id) of the first `size` records of each queryset, in one statement: a
    UNION ALL of each model's own ordered, limited read (on its history_date index), not one round
    trip per audited model."""
    if not parts:
        return []
    statements, params = [], []
    for rank, qs in parts:
        sql, part_params = qs.values_list("history_date", "history_id")[:size].query.sql_with_params()
        statements.append(f"SELECT history_date, history_id, {int(rank)} FROM ({sql}) AS h{int(rank)}")
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(statements), params)
        return [(_as_datetime(when), rank, hid) for when, hid, rank in cursor.fetchall()]


def history_page(filters: HistoryFilters, *, cursor: Cursor | None = None, page_size: int = 50) -> HistoryPage:
    """A page of history records, newest first, all selected models merged by time.

    Queries per page: one for the keys of every selected model's next records (a UNION ALL), then
    for the models on the page one for their records, one for their previous records and one per
    kind of related label, whatever the data size. Filtered by lot, vial, patient or user, one per
    selected model for its next records instead of the first two.
    """
    registry = list(audited_models())
    registry_map = audited_models()
    reverse = bool(cursor and cursor.reverse)
    order = ("history_date", "history_id") if reverse else ("-history_date", "-history_id")
    parts = []
    for spec in selected_models(filters):
        qs = matching_history(spec, filters)
        if qs is None:
            continue
        rank = registry.index(spec.key)
        if cursor is not None:
            qs = qs.filter(_beyond(cursor, rank))
        parts.append((rank, qs.order_by(*order)))
    rows_by_key = {}
    if filters.lot or filters.vial is not None or filters.patient or filters.user:
        # Each model's read is selective (a semi-join, or a user's few records), and may run in
        # parallel: reading whole rows at once, as few as the page needs, keeps the workers from
        # running ahead on narrow keys. One query per model, its rows and their previous records.
        keys = []
        for rank, qs in parts:
            spec = registry_map[registry[rank]]
            rows = qs.annotate(previous_id=_previous_record(spec)).values_list(*spec.columns, "previous_id")
            for row in rows[: page_size + 1]:
                keys.append((row[WHEN], rank, row[HID]))
                rows_by_key[(rank, row[HID])] = (spec, row)
        keys.sort(reverse=not reverse)
    else:
        keys = sorted(_newest_keys(parts, page_size + 1), reverse=not reverse)
    has_more = len(keys) > page_size
    keys = keys[:page_size]

    if not rows_by_key:
        hids_by_rank: dict[int, list[int]] = {}
        for _, rank, hid in keys:
            hids_by_rank.setdefault(rank, []).append(hid)
        for rank, hids in hids_by_rank.items():
            spec = registry_map[registry[rank]]
            rows = spec.history_model.objects.filter(history_id__in=hids).annotate(previous_id=_previous_record(spec))
            for row in rows.values_list(*spec.columns, "previous_id"):
                rows_by_key[(rank, row[HID])] = (spec, row)
    page = [((row[WHEN], rank, hid), spec, row) for _, rank, hid in keys if (rank, hid) in rows_by_key
            for spec, row in [rows_by_key[(rank, hid)]]]
    if reverse:
        page.reverse()

    labels = Labels()
    befores: dict[tuple[str, int], tuple] = {}
    by_model: dict[str, list] = {}
    for _, spec, row in page:
        by_model.setdefault(spec.key, []).append(row)
    for key, rows in by_model.items():
        spec = registry_map[key]
        wanted = [row[-1] for row in rows if row[-1] is not None]
        earlier = list(spec.history_model.objects.filter(history_id__in=wanted).values_list(*spec.columns))
        for row in earlier:
            befores[(key, row[HID])] = row
        prefetch_labels(spec, rows + earlier, labels)

    entries = [entry(spec, row, befores.get((spec.key, row[-1])), labels) for _, spec, row in page]

    def position(item, *, backwards: bool) -> Cursor:
        (when, rank, hid), _, _ = item
        return Cursor(when=when, rank=rank, history_id=hid, reverse=backwards)

    next_cursor = previous_cursor = None
    if page:
        if reverse:
            previous_cursor = position(page[0], backwards=True) if has_more else None
            next_cursor = position(page[-1], backwards=False)
        else:
            next_cursor = position(page[-1], backwards=False) if has_more else None
            previous_cursor = position(page[0], backwards=True) if cursor is not None else None
    return HistoryPage(entries=entries, next=next_cursor, previous=previous_cursor)


# --- Export jobs -------------------------------------------------------------------------------


def export_job_for(*, user, job_id: int) -> ExportJob:
    """A job its requester (or a superuser) may see; anyone else learns nothing, not even that it exists."""
    job = ExportJob.objects.select_related("requested_by").filter(pk=job_id).first()
    if job is None or not (user.is_superuser or job.requested_by_id == user.pk):
        raise ExportNotFound(f"No export {job_id} of yours.")
    return job


# --- Access log of patient data ----------------------------------------------------------------


def patient_access_list() -> QuerySet[PatientAccess]:
    """The access log with who and which patient, for a page of any length in one query."""
    return PatientAccess.objects.select_related("user", "patient")
