"""Reads for recalls: find lots by what a coordinator types or scans, and the lookback over them:
every vial still on a shelf (by location) and every patient who was given one.

Each read is a fixed handful of queries (lots, vials, dispenses, recall links), whatever the size of
the lots, so a look-up over a lot of 40 000 vials costs what one over 2 vials does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.base import ModelState
from django.db.models.functions import Left
from django.utils import timezone
from rapidfuzz import fuzz, process

from core.errors import InvalidInput
from inventory.models import ExcursionVial, Lot, Presentation, StorageLocation, Vial
from labels.gs1 import looks_like_scan, parse_scan
from traceability.models import Administration, Dispense, HomeInfusion, HomeInfusionVial, InfusionSession, Patient, VialFate
from recalls.exceptions import LotNotFound
from recalls.models import NotificationTask, Recall, RecallLot
from traceability.selectors import GIVEN_STATUSES

# A vial still physically in the pharmacy: on a shelf, or set aside in quarantine.
ON_HAND = (Vial.Status.IN_STOCK, Vial.Status.QUARANTINED)
# Dispenses after which the patient received all or part of the vial.
RECEIVED = GIVEN_STATUSES

User = get_user_model()

LOOKUP_MAX_LOTS = 50
SUGGESTION_LIMIT = 8


class MatchMode:
    EXACT = "exact"
    PREFIX = "prefix"
    CHOICES = (EXACT, PREFIX)


@dataclass
class LocationStock:
    location: StorageLocation | None
    vials: list[Vial]

    @property
    def count(self) -> int:
        return len(self.vials)


@dataclass
class PatientExposure:
    """One patient and every dispense of a vial of the lots in question, oldest first."""

    patient: Patient
    dispenses: list[Dispense] = field(default_factory=list)

    @property
    def vials(self) -> list[Vial]:
        seen: dict[int, Vial] = {}
        for dispense in self.dispenses:
            seen.setdefault(dispense.vial_id, dispense.vial)
        return list(seen.values())

    @property
    def vial_count(self) -> int:
        return len({d.vial_id for d in self.dispenses})

    @property
    def received(self) -> bool:
        """False when every vial went back to stock unopened: listed, but likely not exposed."""
        return any(d.status in RECEIVED for d in self.dispenses)


def patients_from(dispenses: Iterable[Dispense]) -> list[PatientExposure]:
    """Group dispenses by patient: each patient once, with all their vials, ordered by name.

    Note: a dispense later returned to stock unopened still lists its patient. The vial reached the
    bedside; the coordinator decides whether to call, and the line says how it ended."""
    by_patient: dict[int, PatientExposure] = {}
    for dispense in dispenses:
        patient = dispense.session.patient
        by_patient.setdefault(patient.pk, PatientExposure(patient=patient)).dispenses.append(dispense)
    return sorted(by_patient.values(), key=lambda e: (e.patient.name, e.patient.mrn, e.patient.pk))


def _by_location(vials: Iterable[Vial]) -> list[LocationStock]:
    groups: dict[int | None, LocationStock] = {}
    for vial in vials:
        groups.setdefault(vial.location_id, LocationStock(location=vial.location, vials=[])).vials.append(vial)
    return sorted(groups.values(), key=lambda g: (g.location is None, g.location.name if g.location else ""))


@dataclass
class LotLookback:
    lot: Lot
    vials: list[Vial]  # every vial of the lot not out on a dispense (those are in `dispenses`)
    dispenses: list[Dispense]
    recalls: list[Recall]
    status_counts: dict[str, int] = field(default_factory=dict)  # vials of the lot by status
    # The lot's vials that cold-chain excursions reached, and what became of each (held, released, wasted).
    excursions: list[ExcursionVial] = field(default_factory=list)
    # When `dispenses` holds a page of the patients only: the lot's dispenses and patients in all.
    totals: tuple[int, int] | None = None

    @property
    def on_hand(self) -> list[Vial]:
        return [v for v in self.vials if v.status in ON_HAND]

    @property
    def on_hand_by_location(self) -> list[LocationStock]:
        return _by_location(self.on_hand)

    @property
    def wasted(self) -> list[Vial]:
        return [v for v in self.vials if v.status == Vial.Status.WASTED]

    @property
    def returned(self) -> list[Vial]:
        return [v for v in self.vials if v.status == Vial.Status.RETURNED]

    @property
    def patients(self) -> list[PatientExposure]:
        return patients_from(self.dispenses)

    @property
    def counts(self) -> dict[str, int]:
        by_status = {status: self.status_counts.get(status, 0) for status in Vial.Status.values}
        return {
            "vials": sum(by_status.values()),
            "on_hand": sum(by_status[s] for s in ON_HAND),
            **by_status,
            "dispenses": len(self.dispenses) if self.totals is None else self.totals[0],
            "patients": len({d.session.patient_id for d in self.dispenses}) if self.totals is None else self.totals[1],
        }


@dataclass
class Lookback:
    """The lookback over several lots (a recall): patients are merged across lots."""

    lots: list[LotLookback]

    @property
    def on_hand(self) -> list[Vial]:
        return [v for lot in self.lots for v in lot.on_hand]

    @property
    def dispenses(self) -> list[Dispense]:
        return sorted(
            (d for lot in self.lots for d in lot.dispenses), key=lambda d: (d.dispensed_at, d.pk)
        )

    @property
    def patients(self) -> list[PatientExposure]:
        return patients_from(self.dispenses)


# The columns a lookback shows (the API, the page, the Excel workbook), and no others: a lot given
# to thousands of patients builds thousands of rows of each model, and each column costs.
# One row per vial not dispensed, with its presentation and location.
LOOKBACK_VIAL_COLUMNS = (
    "id", "serial", "status", "beyond_use_date", "lot_id", "presentation_id", "location_id",
    "presentation__gtin", "presentation__grams",
    "location__name", "location__code", "location__kind", "location__active", "location__min_c", "location__max_c",
    "location__excursion_grace_minutes",
)
# One row per dispense, with its vial, presentation, session, patient and dispenser.
LOOKBACK_DISPENSE_COLUMNS = (
    "id", "status", "grams", "dispensed_at", "closed_at", "closed_reason", "vial_id", "session_id", "product_id",
    "dispensed_by_id",
    "vial__serial", "vial__status", "vial__beyond_use_date", "vial__lot_id", "vial__presentation_id",
    "vial__presentation__gtin", "vial__presentation__grams",
    "session__scheduled_date", "session__status", "session__site", "session__patient_id",
    "session__patient__mrn", "session__patient__name",
    "dispensed_by__username",
    # What became of the vial: the infusion it ran in, its fate at the bedside, its day at home.
    "session__setting", "session__administration__id", "session__administration__status",
    "session__administration__started_at", "session__administration__ended_at",
    "fate__id", "fate__fate", "fate__volume_left_ml",
    "home_use__id", "home_use__home_infusion__id", "home_use__home_infusion__infused_on",
)


def _loaded(model, db: str, **values):
    """A model instance holding `values`, as the ORM would have loaded it with only() these fields.

    Note: Model.from_db for six models a row is most of a lookback's time at thousands of rows; the
    values come from values_list (the ORM's own conversions), and the instance is a real one:
    methods work, and a field not loaded is fetched on access as with only()."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    obj._state = ModelState()
    obj._state.adding = False
    obj._state.db = db
    return obj


def _lookback_dispenses(lot_ids, patient_ids: Sequence[int] | None = None) -> list[Dispense]:
    """Every dispense of a vial of these lots (to these patients, when given), oldest first, with
    vial → presentation, session → patient and dispensed_by loaded (one query). Rows share their
    session, patient, presentation and user instances."""
    query = Dispense.objects.filter(vial__lot_id__in=lot_ids)
    if patient_ids is not None:
        query = query.filter(session__patient_id__in=list(patient_ids))
    query = query.order_by("dispensed_at", "pk").values_list(*LOOKBACK_DISPENSE_COLUMNS)
    db = query.db
    presentations: dict[int, Presentation] = {}
    sessions: dict[int, InfusionSession] = {}
    patients: dict[int, Patient] = {}
    users: dict[int, object] = {}
    dispenses = []
    for (pk, status, grams, dispensed_at, closed_at, closed_reason, vial_id, session_id, product_id, dispensed_by_id,
         serial, vial_status, beyond_use_date, lot_id, presentation_id, gtin, presentation_grams,
         scheduled_date, session_status, site, patient_id, mrn, name, username,
         setting, administration_id, administration_status, started_at, ended_at,
         fate_id, fate, volume_left_ml, use_id, home_infusion_id, infused_on) in query:
        presentation = presentations.get(presentation_id)
        if presentation is None:
            presentation = presentations[presentation_id] = _loaded(
                Presentation, db, id=presentation_id, gtin=gtin, grams=presentation_grams)
        session = sessions.get(session_id)
        if session is None:
            patient = patients.get(patient_id)
            if patient is None:
                patient = patients[patient_id] = _loaded(Patient, db, id=patient_id, mrn=mrn, name=name)
            session = sessions[session_id] = _loaded(
                InfusionSession, db, id=session_id, scheduled_date=scheduled_date, status=session_status, site=site,
                patient_id=patient_id, setting=setting)
            session._state.fields_cache["patient"] = patient
            # A reverse one-to-one cached as None reads as "there is none" (RelatedObjectDoesNotExist).
            session._state.fields_cache["administration"] = None if administration_id is None else _loaded(
                Administration, db, id=administration_id, session_id=session_id, status=administration_status,
                started_at=started_at, ended_at=ended_at)
        user = users.get(dispensed_by_id)
        if user is None:
            user = users[dispensed_by_id] = _loaded(User, db, id=dispensed_by_id, username=username)
        vial = _loaded(Vial, db, id=vial_id, serial=serial, status=vial_status, beyond_use_date=beyond_use_date,
                       lot_id=lot_id, presentation_id=presentation_id)
        vial._state.fields_cache["presentation"] = presentation
        dispense = _loaded(
            Dispense, db, id=pk, status=status, grams=grams, dispensed_at=dispensed_at, closed_at=closed_at,
            closed_reason=closed_reason, vial_id=vial_id, session_id=session_id, product_id=product_id,
            dispensed_by_id=dispensed_by_id)
        cache = dispense._state.fields_cache
        cache["vial"], cache["session"], cache["dispensed_by"] = vial, session, user
        cache["fate"] = None if fate_id is None else _loaded(
            VialFate, db, id=fate_id, dispense_id=pk, fate=fate, volume_left_ml=volume_left_ml)
        if use_id is None:
            cache["home_use"] = None
        else:
            use = cache["home_use"] = _loaded(HomeInfusionVial, db, id=use_id, dispense_id=pk,
                                              home_infusion_id=home_infusion_id)
            use._state.fields_cache["home_infusion"] = _loaded(
                HomeInfusion, db, id=home_infusion_id, infused_on=infused_on)
        dispenses.append(dispense)
    return dispenses


def _lookback_vials(lot_ids) -> list[Vial]:
    """Every vial of these lots that was not dispensed, by lot, serial and id, with its presentation
    and location loaded (one query); rows share their presentation and location instances."""
    query = (
        Vial.objects.filter(lot_id__in=lot_ids).exclude(status=Vial.Status.DISPENSED)
        .order_by("lot_id", "serial", "pk").values_list(*LOOKBACK_VIAL_COLUMNS)
    )
    db = query.db
    presentations: dict[int, Presentation] = {}
    locations: dict[int, StorageLocation] = {}
    vials = []
    for (pk, serial, status, beyond_use_date, lot_id, presentation_id, location_id, gtin, grams,
         name, code, kind, active, min_c, max_c, grace) in query:
        presentation = presentations.get(presentation_id)
        if presentation is None:
            presentation = presentations[presentation_id] = _loaded(Presentation, db, id=presentation_id, gtin=gtin,
                                                                    grams=grams)
        location = None
        if location_id is not None:
            location = locations.get(location_id)
            if location is None:
                location = locations[location_id] = _loaded(
                    StorageLocation, db, id=location_id, name=name, code=code, kind=kind, active=active, min_c=min_c,
                    max_c=max_c, excursion_grace_minutes=grace)
        vial = _loaded(Vial, db, id=pk, serial=serial, status=status, beyond_use_date=beyond_use_date, lot_id=lot_id,
                       presentation_id=presentation_id, location_id=location_id)
        vial._state.fields_cache["presentation"] = presentation
        vial._state.fields_cache["location"] = location
        vials.append(vial)
    return vials


# Chooses the patients to show from all those exposed, in the lookback's order (a page of them).
PatientChoice = Callable[[list[int]], Sequence[int]]


def _exposure(lot_ids) -> tuple[list[int], dict[int, tuple[int, int]]]:
    """Every patient given a vial of these lots, in the lookback's order (name, MRN, id, as
    patients_from), and each lot's dispenses and patients in all: one query of (lot, patient)
    pairs, four narrow columns, however many lines the lots hold."""
    pairs = (
        Dispense.objects.filter(vial__lot_id__in=lot_ids).order_by()
        .values_list("vial__lot_id", "session__patient_id", "session__patient__name", "session__patient__mrn")
        .annotate(n=Count("pk"))
    )
    patients: dict[int, tuple] = {}
    totals: dict[int, list[int]] = {pk: [0, 0] for pk in lot_ids}
    for lot_id, patient_id, name, mrn, n in pairs:
        patients[patient_id] = (name, mrn, patient_id)
        totals[lot_id][0] += n
        totals[lot_id][1] += 1
    order = [key[2] for key in sorted(patients.values())]
    return order, {pk: (d, p) for pk, (d, p) in totals.items()}


def lots_lookback(lots: Sequence[Lot], *, patients: PatientChoice | None = None) -> list[LotLookback]:
    """The lookback for each lot, in the order given. Five queries, whatever the lots hold (six
    when `patients` chooses whom to show).

    A dispensed vial is read once, with its dispense: the vials query leaves dispensed vials out
    (they are counted by status in a query of their own), so a lot given to 5,000 patients is
    5,000 rows read once, not twice.

    `patients`, given every patient exposed to the lots in the lookback's order, returns those
    whose dispenses to read (a page of them): a lot given to thousands is shown a page of
    patients at a time, its counts still those of the whole lot. Without it, every dispense."""
    lots = list(lots)
    if not lots:
        return []
    by_id = {lot.pk: lot for lot in lots}
    shown, totals = None, {}
    if patients is not None:
        everyone, totals = _exposure(list(by_id))
        shown = list(patients(everyone))
    vials = _lookback_vials(list(by_id))
    status_counts = (
        Vial.objects.filter(lot_id__in=by_id).order_by().values_list("lot_id", "status").annotate(n=Count("pk"))
    )
    dispenses = _lookback_dispenses(list(by_id), shown)
    links = list(
        RecallLot.objects.filter(lot_id__in=by_id).select_related("recall").order_by("recall__recall_date", "recall_id")
    )
    vials_of: dict[int, list[Vial]] = {pk: [] for pk in by_id}
    for vial in vials:
        vial._state.fields_cache["lot"] = by_id[vial.lot_id]
        vials_of[vial.lot_id].append(vial)
    counts_of: dict[int, dict[str, int]] = {pk: {} for pk in by_id}
    for lot_id, status, n in status_counts:
        counts_of[lot_id][status] = n
    dispenses_of: dict[int, list[Dispense]] = {pk: [] for pk in by_id}
    for dispense in dispenses:
        dispense.vial.lot = by_id[dispense.vial.lot_id]
        dispenses_of[dispense.vial.lot_id].append(dispense)
    recalls_of: dict[int, list[Recall]] = {pk: [] for pk in by_id}
    for link in links:
        recalls_of[link.lot_id].append(link.recall)
    excursions_of: dict[int, list[ExcursionVial]] = {pk: [] for pk in by_id}
    for entry in (
        ExcursionVial.objects.filter(vial__lot_id__in=by_id)
        .select_related("excursion__location", "vial")
        .only("excursion__id", "excursion__started_at", "excursion__ended_at", "excursion__highest_c",
              "excursion__lowest_c", "excursion__status", "excursion__location__code", "vial__id", "vial__serial",
              "vial__lot_id", "vial__status", "outcome", "exposed_from", "exposed_until")
        .order_by("excursion__started_at", "vial__serial")
    ):
        excursions_of[entry.vial.lot_id].append(entry)
    return [
        LotLookback(lot=lot, vials=vials_of[lot.pk], dispenses=dispenses_of[lot.pk], recalls=recalls_of[lot.pk],
                    status_counts=counts_of[lot.pk], excursions=excursions_of[lot.pk], totals=totals.get(lot.pk))
        for lot in lots
    ]


def latest_recall_reference(lot: Lot) -> str | None:
    """The reference of the newest recall naming this lot, for refusals that tell what to do."""
    return (
        Recall.objects.filter(recall_lots__lot=lot)
        .order_by("-recall_date", "-id")
        .values_list("reference", flat=True)
        .first()
    )


def recall_lots(recall: Recall) -> list[Lot]:
    return list(
        Lot.objects.filter(pk__in=RecallLot.objects.filter(recall=recall).values("lot_id"))
        .select_related("product__manufacturer")
        .order_by("product__brand", "lot_number", "pk")
    )


def recall_lookback(recall: Recall, *, patients: PatientChoice | None = None) -> Lookback:
    """The lookback over a recall's lots (`patients`: as lots_lookback, over the lots together)."""
    return Lookback(lots=lots_lookback(recall_lots(recall), patients=patients))


def affected_dispenses(lot_ids: Iterable[int]) -> list[Dispense]:
    """Every dispense of a vial of these lots, for notification tasks (see patients_from)."""
    return list(
        Dispense.objects.filter(vial__lot_id__in=list(lot_ids))
        .select_related("session__patient", "vial")
        .order_by("dispensed_at", "pk")
    )


# Look-up ----------------------------------------------------------------------------------------


@dataclass
class LotLookup:
    lot_number: str
    match: str
    gtin: str | None
    brand: str | None
    results: list[LotLookback]
    truncated: bool


def _narrowed(lots: QuerySet[Lot], *, gtin: str | None, brand: str | None) -> QuerySet[Lot]:
    if gtin:
        lots = lots.filter(product__in=Presentation.objects.filter(gtin=gtin).values("product_id"))
    if brand:
        lots = lots.filter(product__brand__iexact=brand)
    return lots


@dataclass
class LotMatch:
    """What a typed or scanned lot number matched, before any lookback."""

    lot_number: str
    match: str
    gtin: str | None
    brand: str | None
    lots: list[Lot]


def lots_matching(
    *,
    query: str | None = None,
    lot: str | None = None,
    barcode: str | None = None,
    gtin: str | None = None,
    brand: str | None = None,
    match: str = MatchMode.EXACT,
    limit: int | None = None,
) -> LotMatch:
    """The lots a lot number (typed) or a carton (scanned) names: the one rule for every look-up
    by lot, the recall page's and the history filter's alike.

    `query` is one field for both, as the recall page sends it; `lot` and `barcode` say which it
    is. Lot numbers are case sensitive on the carton, so the match is exact (after trimming spaces)
    unless `match="prefix"`; a scan brings its own lot and GTIN. When nothing matches, LotNotFound
    carries close lot numbers as `suggestions`."""
    if match not in MatchMode.CHOICES:
        raise InvalidInput(f"match must be one of: {', '.join(MatchMode.CHOICES)}.", code="invalid_match")
    if query is not None:
        # One field for both: a scan is read as a barcode, anything else as a lot number.
        if looks_like_scan(query):
            barcode = query
        else:
            lot = query
    gtin = (gtin or "").strip() or None
    brand = (brand or "").strip() or None
    readings: list[str] = []
    if barcode:
        scan = parse_scan(barcode)
        # A wedge scanner that dropped a separator leaves several readings: look up each one's lot.
        readings = [r.lot for r in (scan, *scan.alternatives) if r.lot]
        if not readings:
            raise InvalidInput("The scanned barcode carries no lot number (AI 10).", code="barcode_without_lot")
        lot = readings[0]
        gtin = gtin or scan.gtin
        match = MatchMode.EXACT
    lot_number = (lot or "").strip()
    if not lot_number:
        raise InvalidInput("Type or scan a lot number.", code="lot_required")

    candidates = _narrowed(Lot.objects.select_related("product__manufacturer"), gtin=gtin, brand=brand)
    if readings:
        candidates = candidates.filter(lot_number__in=readings)
    elif match == MatchMode.PREFIX:
        # Left() rather than __startswith: LIKE is case-insensitive on SQLite, and lot numbers are not.
        candidates = candidates.annotate(_prefix=Left("lot_number", len(lot_number))).filter(_prefix=lot_number)
    else:
        candidates = candidates.filter(lot_number=lot_number)
    candidates = candidates.order_by("lot_number", "product__brand", "pk")
    found = list(candidates[:limit] if limit is not None else candidates)
    if not found:
        narrowing = "".join(
            [f" for GTIN {gtin}" if gtin else "", f" of brand {brand}" if brand else ""]
        )
        raise LotNotFound(
            f"No lot {lot_number}{narrowing}.",
            extra={"lot": lot_number, "suggestions": lot_number_suggestions(lot_number)},
        )
    return LotMatch(lot_number=lot_number, match=match, gtin=gtin, brand=brand, lots=found)


def lot_lookup(
    *,
    query: str | None = None,
    lot: str | None = None,
    barcode: str | None = None,
    gtin: str | None = None,
    brand: str | None = None,
    match: str = MatchMode.EXACT,
    patients: PatientChoice | None = None,
) -> LotLookup:
    """Every lot matching what was typed or scanned (see lots_matching), with its lookback
    (`patients`: as lots_lookback, over the matching lots together)."""
    found = lots_matching(
        query=query, lot=lot, barcode=barcode, gtin=gtin, brand=brand, match=match, limit=LOOKUP_MAX_LOTS + 1
    )
    lots = found.lots
    return LotLookup(
        lot_number=found.lot_number,
        match=found.match,
        gtin=found.gtin,
        brand=found.brand,
        results=lots_lookback(lots[:LOOKUP_MAX_LOTS], patients=patients),
        truncated=len(lots) > LOOKUP_MAX_LOTS,
    )


def lot_number_suggestions(lot_number: str, *, limit: int = SUGGESTION_LIMIT) -> list[str]:
    """Known lot numbers close to one that matched nothing: the same in another case, lots that
    start with it, then near misses (a digit dropped or swapped, O for 0)."""
    return lot_number_suggestions_for([lot_number], limit=limit)[lot_number]


def lot_number_suggestions_for(lot_numbers: list[str], *, limit: int = SUGGESTION_LIMIT) -> dict[str, list[str]]:
    """lot_number_suggestions for many lot numbers at once: the known lot numbers are read once."""
    max_length = 3 * Lot._meta.get_field("lot_number").max_length
    wanted = [n for n in lot_numbers if n.strip() and len(n.strip()) <= max_length]
    # Far longer than any lot number, it is no typo but something else pasted: no suggestion.
    known = sorted(set(Lot.objects.values_list("lot_number", flat=True))) if wanted else []
    by_upper: dict[str, list[str]] = {}
    for number in known:
        by_upper.setdefault(number.upper(), []).append(number)
    uppers = list(by_upper)
    result: dict[str, list[str]] = {}
    for original in lot_numbers:
        lot_number = original.strip()
        if original not in wanted:
            result[original] = []
            continue
        upper = lot_number.upper()
        near = [n for n in known if n.upper().startswith(upper)][:limit]
        # rapidfuzz's ratio is difflib's (2·matches / total length), computed in C: a pasted notice
        # of a thousand unknown numbers against every lot we hold stays well within a second.
        close = [match for match, _, _ in process.extract(upper, uppers, scorer=fuzz.ratio, score_cutoff=60,
                                                          limit=limit)]
        suggestions: list[str] = []
        for number in near + [n for match in close for n in by_upper[match]]:
            if number != lot_number and number not in suggestions:
                suggestions.append(number)
        result[original] = suggestions[:limit]
    return result


# Recall lists ------------------------------------------------------------------------------------


def notification_overdue(task: NotificationTask, now: datetime | None = None) -> bool:
    """A patient still to notify after the recall's action deadline has passed."""
    due = task.recall.action_due
    return task.status == NotificationTask.Status.PENDING and due is not None and due < (now or timezone.now())


def recall_list(now: datetime | None = None) -> QuerySet[Recall]:
    """Recalls with their lots and notification progress (overdue: pending past the action
    deadline at `now`), in a constant number of queries."""
    S = NotificationTask.Status
    now = now or timezone.now()
    return (
        Recall.objects.select_related("created_by", "closed_by")
        .annotate(
            patients_total=Count("notifications", distinct=True),
            patients_pending=Count("notifications", filter=Q(notifications__status=S.PENDING), distinct=True),
            patients_overdue=Count(
                "notifications", filter=Q(notifications__status=S.PENDING, action_due__lt=now), distinct=True
            ),
            patients_contacted=Count("notifications", filter=Q(notifications__status=S.CONTACTED), distinct=True),
            patients_unreachable=Count(
                "notifications", filter=Q(notifications__status=S.UNREACHABLE), distinct=True
            ),
            patients_not_required=Count(
                "notifications", filter=Q(notifications__status=S.NOT_REQUIRED), distinct=True
            ),
        )
        .prefetch_related(
            Prefetch(
                "recall_lots",
                queryset=RecallLot.objects.select_related("lot__product").order_by(
                    "lot__product__brand", "lot__lot_number"
                ),
            )
        )
        .order_by("-recall_date", "-id")
    )


def recall_progress(recall: Recall, now: datetime | None = None) -> dict[str, int]:
    """Notification progress; from the annotations of recall_list() when present."""
    if hasattr(recall, "patients_total"):
        counts = {
            "total": recall.patients_total,
            "pending": recall.patients_pending,
            "overdue": recall.patients_overdue,
            "contacted": recall.patients_contacted,
            "unreachable": recall.patients_unreachable,
            "not_required": recall.patients_not_required,
        }
    else:
        rows = dict(recall.notifications.order_by().values_list("status").annotate(n=Count("id")))
        counts = {
            "total": sum(rows.values()),
            "pending": rows.get(NotificationTask.Status.PENDING, 0),
            "contacted": rows.get(NotificationTask.Status.CONTACTED, 0),
            "unreachable": rows.get(NotificationTask.Status.UNREACHABLE, 0),
            "not_required": rows.get(NotificationTask.Status.NOT_REQUIRED, 0),
        }
        past_due = recall.action_due is not None and recall.action_due < (now or timezone.now())
        counts["overdue"] = counts["pending"] if past_due else 0
    # Notified: every patient whose task is settled, whether reached, unreachable or not needed.
    counts["notified"] = counts["total"] - counts["pending"]
    return counts


def notification_list(*, recall: Recall | None = None, vials: bool = True) -> QuerySet[NotificationTask]:
    """Notification tasks with their recall, patient and who updated them, and (unless `vials` is
    False: a page then reads them with with_vial_lines) the vials each patient was given."""
    tasks = (
        NotificationTask.objects.filter(**({"recall": recall} if recall is not None else {}))
        .select_related("recall", "patient", "updated_by")
        .order_by("patient__name", "patient__mrn", "pk")
    )
    if not vials:
        return tasks
    return (
        tasks
        .prefetch_related(
            Prefetch(
                "vials",
                # What a notification shows of a vial (serial, GTIN, brand, lot), and no more: a
                # recall of a big lot prefetches thousands.
                queryset=Vial.objects.select_related("presentation", "lot__product")
                .only("id", "serial", "presentation__id", "presentation__gtin", "lot__id", "lot__lot_number",
                      "lot__product__id", "lot__product__brand")
                .order_by("serial"),
            )
        )
    )


def with_vial_lines(tasks: list[NotificationTask]) -> list[NotificationTask]:
    """Each task's vials as the lines a notification shows (id, serial, GTIN, brand, lot number), in
    serial order, in `task.vial_lines`: one query of plain rows for a page of tasks, instead of a
    vial, its presentation, lot and product built for each of hundreds of vials."""
    lines: dict[int, list[dict]] = {task.pk: [] for task in tasks}
    rows = (
        NotificationTask.vials.through.objects.filter(notificationtask_id__in=list(lines))
        .order_by("vial__serial", "vial_id")
        .values_list("notificationtask_id", "vial_id", "vial__serial", "vial__presentation__gtin",
                     "vial__lot__product__brand", "vial__lot__lot_number")
    )
    for task_id, vial_id, serial, gtin, brand, lot_number in rows:
        lines[task_id].append({"id": vial_id, "serial": serial, "gtin": gtin, "brand": brand, "lot_number": lot_number})
    for task in tasks:
        task.vial_lines = lines[task.pk]
    return tasks


def recall_notifications(recall: Recall) -> list[NotificationTask]:
    """Every notification task of the recall with its vials as lines (`task.vial_lines`): for the
    workbook, which lists them all."""
    return with_vial_lines(list(notification_list(recall=recall, vials=False)))
