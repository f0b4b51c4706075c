"""Reads for recalls: find lots by what a coordinator types or scans, and the lookback over them:
every vial still on a shelf (by location) and every patient who was given one.

Each read is a fixed handful of queries (lots, vials, dispenses, recall links), whatever the size of
the lots, so a look-up over a lot of 40 000 vials costs what one over 2 vials does.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import Left
from django.utils import timezone

from core.errors import InvalidInput
from inventory.models import Lot, Presentation, StorageLocation, Vial
from labels.gs1 import looks_like_scan, parse_scan
from traceability.models import Dispense, Patient
from recalls.exceptions import LotNotFound
from recalls.models import NotificationTask, Recall, RecallLot
from traceability.selectors import GIVEN_STATUSES

# A vial still physically in the pharmacy: on a shelf, or set aside in quarantine.
ON_HAND = (Vial.Status.IN_STOCK, Vial.Status.QUARANTINED)
# Dispenses after which the patient received all or part of the vial.
RECEIVED = GIVEN_STATUSES

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
    vials: list[Vial]
    dispenses: list[Dispense]
    recalls: list[Recall]

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
        by_status = {status: 0 for status in Vial.Status.values}
        for vial in self.vials:
            by_status[vial.status] += 1
        return {
            "vials": len(self.vials),
            "on_hand": sum(by_status[s] for s in ON_HAND),
            **by_status,
            "dispenses": len(self.dispenses),
            "patients": len({d.session.patient_id for d in self.dispenses}),
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


def lots_lookback(lots: Sequence[Lot]) -> list[LotLookback]:
    """The lookback for each lot, in the order given. Three queries, whatever the lots hold."""
    lots = list(lots)
    if not lots:
        return []
    by_id = {lot.pk: lot for lot in lots}
    vials = list(
        Vial.objects.filter(lot_id__in=by_id)
        .select_related("presentation", "location")
        .order_by("lot_id", "serial", "pk")
    )
    # What became of each vial rides on the same query: the infusion it ran in (started, ended),
    # its fate at the bedside, or the day the patient reported using it at home.
    dispenses = list(
        Dispense.objects.filter(vial__lot_id__in=by_id)
        .select_related("vial__presentation", "session__patient", "dispensed_by", "closed_by",
                        "session__administration", "fate", "home_use__home_infusion")
        .order_by("dispensed_at", "pk")
    )
    links = list(
        RecallLot.objects.filter(lot_id__in=by_id).select_related("recall").order_by("recall__recall_date", "recall_id")
    )
    vials_of: dict[int, list[Vial]] = {pk: [] for pk in by_id}
    for vial in vials:
        vial.lot = by_id[vial.lot_id]
        vials_of[vial.lot_id].append(vial)
    dispenses_of: dict[int, list[Dispense]] = {pk: [] for pk in by_id}
    for dispense in dispenses:
        dispense.vial.lot = by_id[dispense.vial.lot_id]
        dispenses_of[dispense.vial.lot_id].append(dispense)
    recalls_of: dict[int, list[Recall]] = {pk: [] for pk in by_id}
    for link in links:
        recalls_of[link.lot_id].append(link.recall)
    return [
        LotLookback(lot=lot, vials=vials_of[lot.pk], dispenses=dispenses_of[lot.pk], recalls=recalls_of[lot.pk])
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


def recall_lookback(recall: Recall) -> Lookback:
    return Lookback(lots=lots_lookback(recall_lots(recall)))


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


def lot_lookup(
    *,
    query: str | None = None,
    lot: str | None = None,
    barcode: str | None = None,
    gtin: str | None = None,
    brand: str | None = None,
    match: str = MatchMode.EXACT,
) -> LotLookup:
    """Every lot matching what was typed or scanned, with its lookback. `query` is one field for
    both, as the recall page sends it; `lot` and `barcode` say which it is.

    Lot numbers are case sensitive on the carton, so the match is exact (after trimming spaces)
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
    found = list(candidates.order_by("lot_number", "product__brand", "pk")[: LOOKUP_MAX_LOTS + 1])
    if not found:
        narrowing = "".join(
            [f" for GTIN {gtin}" if gtin else "", f" of brand {brand}" if brand else ""]
        )
        raise LotNotFound(
            f"No lot {lot_number}{narrowing}.",
            extra={"lot": lot_number, "suggestions": lot_number_suggestions(lot_number)},
        )
    return LotLookup(
        lot_number=lot_number,
        match=match,
        gtin=gtin,
        brand=brand,
        results=lots_lookback(found[:LOOKUP_MAX_LOTS]),
        truncated=len(found) > LOOKUP_MAX_LOTS,
    )


def lot_number_suggestions(lot_number: str, *, limit: int = SUGGESTION_LIMIT) -> list[str]:
    """Known lot numbers close to one that matched nothing: the same in another case, lots that
    start with it, then near misses (a digit dropped or swapped, O for 0)."""
    lot_number = lot_number.strip()
    if not lot_number or len(lot_number) > 3 * Lot._meta.get_field("lot_number").max_length:
        # Far longer than any lot number, it is no typo but something else pasted: no known lot is
        # within difflib's cutoff of it, and SQLite refuses LIKE patterns past 50,000 bytes.
        return []
    near = list(
        Lot.objects.filter(Q(lot_number__iexact=lot_number) | Q(lot_number__istartswith=lot_number))
        .order_by("lot_number")
        .values_list("lot_number", flat=True)
        .distinct()[:limit]
    )
    known = set(Lot.objects.values_list("lot_number", flat=True).distinct())
    by_upper: dict[str, list[str]] = {}
    for number in sorted(known):
        by_upper.setdefault(number.upper(), []).append(number)
    close = difflib.get_close_matches(lot_number.upper(), list(by_upper), n=limit, cutoff=0.6)
    suggestions: list[str] = []
    for number in near + [n for upper in close for n in by_upper[upper]]:
        if number != lot_number and number not in suggestions:
            suggestions.append(number)
    return suggestions[:limit]


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


def notification_list(*, recall: Recall | None = None) -> QuerySet[NotificationTask]:
    return (
        NotificationTask.objects.filter(**({"recall": recall} if recall is not None else {}))
        .select_related("recall", "patient", "updated_by")
        .prefetch_related(
            Prefetch("vials", queryset=Vial.objects.select_related("presentation", "lot__product").order_by("serial"))
        )
        .order_by("patient__name", "patient__mrn", "pk")
    )
