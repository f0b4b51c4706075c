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

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from itertools import islice

from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.exceptions import ExportNotFound, InvalidCursor, InvalidHistoryFilter
from audit.models import ExportJob, PatientAccess
from audit.registry import ACTIONS, AuditedModel, Labels, audited_models
from inventory.models import Lot, Vial
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient
from recalls.models import NotificationTask, RecallLot

User = get_user_model()

# Positions of the fixed columns in a history row (see registry.HISTORY_COLUMNS).
HID, WHEN, TYPE, REASON, USER, OBJECT, USERNAME = range(7)
SNAPSHOT_START = 7


def who_and_role(row: tuple, labels: Labels) -> tuple[str, str]:
    """Who made a history record: the username the row kept (it outlives the account), and the
    role the account has now."""
    name, role = labels.user(row[USER])
    return row[USERNAME] or name, role


# --- Filters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    since: datetime | None = None
    until: datetime | None = None
    lot: str = ""
    vial: int | None = None
    patient: str = ""
    user: str = ""
    model: str = ""
    # The filters as given, for the summary sheet, the export record and a background job.
    given: dict = field(default_factory=dict, compare=False)

    def describe(self) -> list[tuple[str, str]]:
        names = {
            "since": "Since",
            "until": "Until",
            "lot": "Lot number",
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


def parse_filters(
    *,
    since: str | None = None,
    until: str | None = None,
    lot: str | None = None,
    vial: int | str | None = None,
    patient: str | None = None,
    user: str | None = None,
    model: str | None = None,
) -> HistoryFilters:
    """The history filters from user input (API query or command line), checked.

    `since` is inclusive, `until` exclusive for a date-time; a bare date covers that whole local day
    for both (so `--since 2025-01-01 --until 2025-01-31` is all of January).
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
    return HistoryFilters(**parsed, given=given)


def filters_from_record(record: dict) -> HistoryFilters:
    """The filters a job or export event recorded (as given), parsed again."""
    return parse_filters(**{key: record.get(key) for key in ("since", "until", "lot", "vial", "patient", "user", "model")})


# --- Scoping -----------------------------------------------------------------------------------


def _h(model) -> QuerySet:
    return model.history.model.objects.all()


def _vial_chain(vials: QuerySet) -> dict[str, QuerySet]:
    dispenses = _h(Dispense).filter(vial_id__in=vials)
    sessions = dispenses.values("session_id")
    return {
        "vials": vials,
        "dispenses": dispenses.values("id"),
        "sessions": sessions,
        "flags": _h(BrandSwitchFlag).filter(session_id__in=sessions).values("id"),
        "reactions": _h(AdverseReaction).filter(session_id__in=sessions).values("id"),
    }


def _lot_scope(lot_number: str) -> dict[str, QuerySet]:
    lots = _h(Lot).filter(lot_number=lot_number).values("id")
    recall_links = _h(RecallLot).filter(lot_id__in=lots)
    recalls = recall_links.values("recall_id")
    return {
        "lots": lots,
        **_vial_chain(_h(Vial).filter(lot_id__in=lots).values("id")),
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


def _patient_scope(mrn: str) -> dict[str, QuerySet]:
    patients = _h(Patient).filter(mrn=mrn).values("id")
    sessions = _h(InfusionSession).filter(patient_id__in=patients).values("id")
    return {
        "patients": patients,
        "sessions": sessions,
        "dispenses": _h(Dispense).filter(session_id__in=sessions).values("id"),
        "flags": _h(BrandSwitchFlag).filter(session_id__in=sessions).values("id"),
        "reactions": _h(AdverseReaction).filter(session_id__in=sessions).values("id"),
        "notifications": _h(NotificationTask).filter(patient_id__in=patients).values("id"),
    }


def selected_models(filters: HistoryFilters) -> list[AuditedModel]:
    registry = audited_models()
    return [registry[filters.model]] if filters.model else list(registry.values())


def scoped_history(spec: AuditedModel, filters: HistoryFilters) -> QuerySet | None:
    """All history records of the objects the lot, vial and patient filters admit (None: none can)."""
    scopes = []
    if filters.lot:
        scopes.append(_lot_scope(filters.lot))
    if filters.vial is not None:
        scopes.append(_vial_scope(filters.vial))
    if filters.patient:
        scopes.append(_patient_scope(filters.patient))
    qs = spec.history_model.objects.all()
    for scope in scopes:
        if spec.key not in scope:
            return None
        qs = qs.filter(id__in=scope[spec.key])
    return qs


def _record_q(filters: HistoryFilters, *, with_until: bool = True) -> Q:
    """Which history records the date range and user filters select."""
    q = Q()
    if filters.since is not None:
        q &= Q(history_date__gte=filters.since)
    if with_until and filters.until is not None:
        q &= Q(history_date__lt=filters.until)
    if filters.user:
        q &= Q(history_user_id__in=User.objects.filter(username=filters.user).values("pk"))
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


def value_text(value, *, related=None, labels: Labels | None = None) -> str:
    if value is None:
        return "(none)"
    if related is not None and labels is not None:
        return labels.text(related, value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if timezone.is_aware(value) else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def changes_text(spec: AuditedModel, row: tuple, before: tuple | None, labels: Labels) -> str:
    if before is None:
        return "(no earlier record)" if row[TYPE] == "~" else ""
    related = dict(spec.foreign_keys)
    parts = []
    for index, old, new in changes(spec, row, before):
        model = related.get(index)
        name = spec.fields[index - SNAPSHOT_START].name
        parts.append(
            f"{name}: {value_text(old, related=model, labels=labels)} → {value_text(new, related=model, labels=labels)}"
        )
    return "; ".join(parts)


def entry(spec: AuditedModel, row: tuple, before: tuple | None, labels: Labels) -> dict:
    """One history record as plain data (the JSON API's row; the workbook writes the same fields)."""
    who, role = who_and_role(row, labels)
    related = dict(spec.foreign_keys)
    return {
        "model": spec.key,
        "history_id": row[HID],
        "when": row[WHEN],
        "who": who,
        "role": role,
        "action": ACTIONS.get(row[TYPE], row[TYPE]),
        "reason": row[REASON] or "",
        "object_id": row[OBJECT],
        "object": spec.label(spec.snapshot(row), labels),
        "changes": [
            {
                "field": spec.fields[index - SNAPSHOT_START].name,
                "old": old,
                "new": new,
                "text": f"{value_text(old, related=related.get(index), labels=labels)} → "
                f"{value_text(new, related=related.get(index), labels=labels)}",
            }
            for index, old, new in changes(spec, row, before)
        ],
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


def history_page(filters: HistoryFilters, *, cursor: Cursor | None = None, page_size: int = 50) -> HistoryPage:
    """A page of history records, newest first, all selected models merged by time.

    Queries per page: one per selected model for its next records, then for the models on the page
    one for their previous records and one per kind of related label, whatever the data size.
    """
    registry = list(audited_models())
    reverse = bool(cursor and cursor.reverse)
    candidates = []
    for spec in selected_models(filters):
        qs = matching_history(spec, filters)
        if qs is None:
            continue
        rank = registry.index(spec.key)
        if cursor is not None:
            qs = qs.filter(_beyond(cursor, rank))
        previous_record = (
            spec.history_model.objects.filter(id=OuterRef("id"))
            .filter(
                Q(history_date__lt=OuterRef("history_date"))
                | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
            )
            .order_by("-history_date", "-history_id")
            .values("history_id")[:1]
        )
        order = ("history_date", "history_id") if reverse else ("-history_date", "-history_id")
        rows = qs.annotate(previous_id=Subquery(previous_record)).order_by(*order)
        for row in rows.values_list(*spec.columns, "previous_id")[: page_size + 1]:
            candidates.append(((row[WHEN], rank, row[HID]), spec, row))
    candidates.sort(key=lambda item: item[0], reverse=not reverse)
    has_more = len(candidates) > page_size
    page = candidates[:page_size]
    if reverse:
        page.reverse()

    labels = Labels()
    befores: dict[tuple[str, int], tuple] = {}
    by_model: dict[str, list] = {}
    for _, spec, row in page:
        by_model.setdefault(spec.key, []).append(row)
    registry_map = audited_models()
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
