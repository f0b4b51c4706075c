"""Reads for lists, scans and reports, written once with their joins so query counts stay flat."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from core.compiled import CompiledQuery
from core.errors import ApplicationError
from inventory.exceptions import CaseBarcode, LotConflict, SuspectProduct, UnknownLot, UnknownProduct, UnknownVial
from inventory.models import (
    CasePackage, Excursion, ExcursionVial, Lot, Presentation, Product, StorageLocation, SuspectScan, TemperatureReading, Vial,
    local_today,
)
from inventory.rules import AMBER, RED, RecallReference, carton_cautions, dispense_refusal, lot_findings, vial_findings
from labels.gs1 import ScanData, parse_scan

# A product's storage and source notes are paragraphs of text that no list, card or rule shows:
# joined into every row of a list they would be read (and decoded) again for each row.
PRODUCT_NOTES = ("storage_notes", "source_notes")


def without_product_notes(queryset: QuerySet, *paths: str) -> QuerySet:
    """`queryset` with the notes of the products at these select_related paths left unread."""
    return queryset.defer(*[f"{path}__{note}" for path in paths for note in PRODUCT_NOTES])


def vial_queryset() -> QuerySet[Vial]:
    """Vials with everything a vial's card shows, in one query: presentation, product and maker,
    and the lot with its own product (serialisers and the stock rules read `vial.lot.product`)."""
    return without_product_notes(
        Vial.objects.select_related("presentation__product__manufacturer", "lot__product__manufacturer", "location"),
        "presentation__product", "lot__product",
    )


def _scan_vials() -> QuerySet[Vial]:
    """vial_queryset() for the scan station, joining the product once: a vial's lot is of its
    presentation's product, so the lot is given that product (see _one_product). Five tables
    instead of seven: the busiest query of the day plans and loads in half the time."""
    return without_product_notes(
        Vial.objects.select_related("presentation__product__manufacturer", "lot", "location"),
        "presentation__product",
    )


# The scan's own reads, compiled once (core.compiled): every scan and dispense makes one.
_vial_by_serial = CompiledQuery(
    lambda gtin, serial: _scan_vials().filter(presentation__gtin=gtin, serial=serial)[:1], str, str)
_vial_by_internal_serial = CompiledQuery(
    lambda gtin, serial: _scan_vials().filter(presentation__gtin=gtin, serial=serial, serial_is_internal=True)[:1],
    str, str,
)


def _first(found: list):
    return found[0] if found else None


def _one_product(vial: Vial | None) -> Vial | None:
    """The lot's product is the presentation's, already loaded (read lazily should they differ)."""
    if vial is not None and vial.lot.product_id == vial.presentation.product_id:
        vial.lot.product = vial.presentation.product
    return vial


def lot_queryset() -> QuerySet[Lot]:
    # A correlated subquery, not a JOIN + GROUP BY: the database counts the vials of the lots on
    # the page only, instead of grouping every vial of every lot before the first page is cut.
    on_shelf = (
        Vial.objects.filter(_on_shelf("status"), lot=OuterRef("pk"))
        .order_by()
        .values("lot")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Lot.objects.select_related("product__manufacturer").annotate(
        vials_in_stock=Coalesce(Subquery(on_shelf), 0)
    )


def _on_shelf(status_path: str) -> Q:
    return Q(**{f"{status_path}__in": [Vial.Status.IN_STOCK, Vial.Status.QUARANTINED]})


def lot_by_id(lot_id: int) -> Lot:
    try:
        return Lot.objects.get(pk=lot_id)
    except Lot.DoesNotExist:
        raise UnknownLot(f"No lot has id {lot_id}.") from None


# Most stock goes into a fridge; quarantine is chosen on purpose, never by default.
PLACING_ORDER = [StorageLocation.Kind.REFRIGERATOR, StorageLocation.Kind.ROOM_TEMPERATURE, StorageLocation.Kind.QUARANTINE]


def locations_for_placing() -> list[StorageLocation]:
    """Active locations as the scan station offers them: fridges first, quarantine last."""
    locations = StorageLocation.objects.filter(active=True)
    return sorted(locations, key=lambda location: (PLACING_ORDER.index(location.kind), location.name))


def location_for_scan(raw: str) -> StorageLocation | None:
    """The active location whose shelf label this scan is (the code, as printed in Code 128)."""
    code = (raw or "").strip()
    return StorageLocation.objects.filter(code=code, active=True).first() if code else None


def suspect_scan_queryset() -> QuerySet[SuspectScan]:
    return SuspectScan.objects.select_related(
        "vial__presentation__product__manufacturer", "vial__lot", "vial__location", "reported_by", "resolved_by"
    ).order_by("-reported_at", "-id")


def product_queryset() -> QuerySet[Product]:
    return Product.objects.select_related("manufacturer").prefetch_related("presentations")


def presentation_queryset() -> QuerySet[Presentation]:
    return Presentation.objects.select_related("product__manufacturer")


# --- scans -------------------------------------------------------------------------------------


def _candidates(scan: ScanData) -> tuple[ScanData, ...]:
    return (scan, *scan.alternatives)


def _find_vial(scan: ScanData) -> Vial | None:
    """The received vial a scan names: by GTIN + serial, by GTIN + the internal id (91) of a label
    we printed, or, for unserialised stock, by GTIN + lot when exactly one such vial is still on a shelf."""
    mismatched: tuple[ScanData, Vial] | None = None
    for candidate in _candidates(scan):
        if candidate.internal_serial and not candidate.serial:
            vial = _one_product(_first(_vial_by_internal_serial(candidate.gtin, candidate.internal_serial)))
            if vial is not None:
                return vial
        if candidate.serial:
            vial = _one_product(_first(_vial_by_serial(candidate.gtin, candidate.serial)))
            if vial is None:
                continue
            if _agrees(candidate, vial):
                return vial
            mismatched = mismatched or (candidate, vial)
    if mismatched is not None:
        candidate, vial = mismatched
        raise _suspect(candidate, vial)
    for candidate in _candidates(scan):
        if candidate.lot and not candidate.serial and not candidate.internal_serial:
            shelf = list(
                _scan_vials()
                .filter(presentation__gtin=candidate.gtin, lot__lot_number=candidate.lot, status=Vial.Status.IN_STOCK)
                .order_by("beyond_use_date", "pk")[:2]
            )
            if len(shelf) == 1:
                return _one_product(shelf[0])
            if len(shelf) > 1:
                raise ApplicationError(
                    f"Several unserialised vials of lot {candidate.lot} are on the shelf; scan the vial's own label "
                    "(it carries an internal serial).",
                    code="serial_needed",
                )
    return None


def _agrees(scan: ScanData, vial: Vial) -> bool:
    """Whether the carton's lot agrees with the vial on record (an expiry that differs on the same
    lot is a labelling error the scan card and vial_from_scan name on their own)."""
    return scan.lot in (None, vial.lot.lot_number)


def _suspect(scan: ScanData, vial: Vial) -> SuspectProduct:
    said = f"lot {scan.lot or '—'}" + (f", expiry {scan.expiry:%Y-%m-%d}" if scan.expiry else "")
    return SuspectProduct(
        f"GTIN {vial.presentation.gtin} serial {vial.serial} is on record as lot {vial.lot.lot_number} "
        f"(expiry {vial.lot.expiry_date:%Y-%m-%d}), but this carton says {said}. The same product identifier on "
        "two lots is a suspect product: set the carton aside; a pharmacist has been told.",
        extra={"vial": vial.pk, "gtin": vial.presentation.gtin, "serial": vial.serial,
               "lot_on_record": vial.lot.lot_number, "lot_scanned": scan.lot,
               "expiry_scanned": scan.expiry.isoformat() if scan.expiry else None},
    )


def ensure_not_a_case(gtin: str) -> None:
    """Refuse a case's or pack's barcode (packaging indicator 1-8) with what it holds, if known."""
    if gtin[:1] not in tuple("12345678"):
        return
    case = CasePackage.objects.select_related("presentation__product").filter(gtin=gtin).first()
    what = f"a case of {case.units} × {case.presentation}" if case else "a case or pack of vials (packaging indicator " + gtin[0] + ")"
    raise CaseBarcode(
        f"This is the barcode of {what}, not of a vial. Open the case and scan each carton inside.",
        extra={"gtin": gtin, "units": case.units if case else None,
               "unit_gtin": case.presentation.gtin if case else None},
    )


def vial_from_scan(raw: str) -> Vial:
    """Resolve a raw scan to a vial we received, or refuse with a clear error."""
    scan = parse_scan(raw)
    ensure_not_a_case(scan.gtin)
    vial = _find_vial(scan)
    if vial is not None and scan.expiry is not None and scan.expiry != vial.lot.expiry_date:
        raise LotConflict(
            f"The carton says expiry {scan.expiry:%Y-%m-%d}; lot {vial.lot.lot_number} is on record with "
            f"{vial.lot.expiry_date:%Y-%m-%d}. Set the vial aside and tell the pharmacist.",
            extra={"vial": vial.pk, "expiry_scanned": scan.expiry.isoformat(),
                   "expiry_on_record": vial.lot.expiry_date.isoformat()},
        )
    if vial is None:
        if not Presentation.objects.filter(gtin=scan.gtin).exists():
            raise UnknownProduct(f"GTIN {scan.gtin} is not in the product catalog.", extra={"gtin": scan.gtin})
        raise UnknownVial(
            f"No received vial matches this scan (GTIN {scan.gtin}, lot {scan.lot or '—'}, serial {scan.serial or '—'}). "
            "Receive it first.",
            code="not_received",
        )
    return vial


def vial_by_id(vial_id: int) -> Vial:
    try:
        return vial_queryset().get(pk=vial_id)
    except Vial.DoesNotExist:
        raise UnknownVial(f"No vial has id {vial_id}.") from None


@dataclass
class ScanResult:
    """What one scan names, and what is wrong with it: facts only. What a user may do about it
    depends on their role, which is the API's business (api.scan)."""

    scan: ScanData
    presentation: Presentation | None = None
    lot: Lot | None = None
    vial: Vial | None = None
    warnings: list[dict] = field(default_factory=list)
    # A carton naming a vial we hold on another lot: reported to a pharmacist by whoever scanned.
    suspect: SuspectProduct | None = None

    @property
    def stops(self) -> bool:
        return any(w["severity"] == RED for w in self.warnings)

    @property
    def receivable(self) -> bool:
        """A carton of a known product, not received yet, with nothing that forbids receiving it."""
        return self.presentation is not None and self.vial is None and not self.stops

    @property
    def dispensable(self) -> bool:
        return self.vial is not None and not self.stops and dispense_refusal(self.vial) is None

    @property
    def on_shelf(self) -> bool:
        return self.vial is not None and self.vial.status in (Vial.Status.IN_STOCK, Vial.Status.QUARANTINED)

    @property
    def dispensed(self) -> bool:
        return self.vial is not None and self.vial.status == Vial.Status.DISPENSED


WARNING_TEXT = {
    "not_received": "This vial has not been received.",
}


def _warn(result: ScanResult, code: str, severity: str, detail: str | None = None) -> None:
    result.warnings.append({"code": code, "severity": severity, "detail": detail or WARNING_TEXT[code]})


def scan_lookup(raw: str, *, today: date | None = None, recall_reference: RecallReference | None = None) -> ScanResult:
    """Everything the scan station shows for one scan: what it is and what is wrong with it."""
    today = today or local_today()
    scan = parse_scan(raw)
    result = ScanResult(scan=scan)
    undecided: ApplicationError | None = None
    try:
        # A received vial brings its presentation, product and lot along: one query in all.
        result.vial = _find_vial(scan)
    except SuspectProduct as suspect:
        result.suspect = suspect
        _warn(result, suspect.code, RED, suspect.message)
        return result
    except ApplicationError as error:
        # Several unserialised vials of the lot are on the shelf: the carton cannot say which one.
        undecided = error
    if result.vial is not None:
        result.presentation = result.vial.presentation
    else:
        result.presentation = presentation_queryset().filter(gtin=scan.gtin).first()
    if result.presentation is None:
        try:
            ensure_not_a_case(scan.gtin)
        except CaseBarcode as case:
            _warn(result, case.code, RED, case.message)
            return result
        _warn(result, "unknown_product", RED, f"GTIN {scan.gtin} is not in the product catalog.")
        return result

    if result.vial is not None:
        result.lot = result.vial.lot
    else:
        lot_numbers = [c.lot for c in _candidates(scan) if c.lot]
        result.lot = (
            Lot.objects.filter(product=result.presentation.product, lot_number__in=lot_numbers).first()
            if lot_numbers else None
        )

    if scan.alternatives and result.lot is not None:
        # A dropped separator gave several readings: report the one that names what we hold.
        for candidate in _candidates(scan):
            if candidate.lot == result.lot.lot_number and (
                result.vial is None or candidate.serial in (result.vial.serial, None)
            ):
                result.scan = candidate
                break

    lot, vial = result.lot, result.vial
    if vial is not None:
        result.warnings += [f.as_warning() for f in vial_findings(vial, today=today, recall_reference=recall_reference)]
    elif lot is not None:
        result.warnings += [f.as_warning() for f in lot_findings(lot, today=today, recall_reference=recall_reference)]
    elif scan.expiry and scan.expiry < today:
        _warn(result, "expired", RED, f"The carton expired on {scan.expiry:%Y-%m-%d}.")
    if lot is not None and scan.expiry and scan.expiry != lot.expiry_date:
        _warn(result, "lot_expiry_mismatch", RED,
              f"The carton says expiry {scan.expiry:%Y-%m-%d}; lot {lot.lot_number} is on record with {lot.expiry_date:%Y-%m-%d}.")
    if vial is None and result.scan.expiry_day_00:
        # Only before receipt: on a vial already received it is old news, and amber must mean "look".
        result.warnings += [f.as_warning() for f in carton_cautions(result.scan, expiry=None, today=today)]
    if vial is None:
        if undecided is not None:
            _warn(result, undecided.code, AMBER, undecided.message)
        else:
            _warn(result, "not_received", AMBER)
    return result


# --- stock reports -----------------------------------------------------------------------------


def expiring_stock(*, within_days: int, today: date | None = None) -> tuple[QuerySet[Vial], list[dict]]:
    """On-shelf vials whose beyond-use date falls within N days (first to expire first), and the
    on-hand grams of those vials by brand."""
    today = today or local_today()
    horizon = today + timedelta(days=within_days)
    vials = vial_queryset().filter(status=Vial.Status.IN_STOCK, beyond_use_date__lte=horizon).order_by(
        "beyond_use_date", "lot__lot_number", "pk"
    )
    by_brand = (
        vials.order_by()
        .values("presentation__product__brand")
        .annotate(grams=Sum("presentation__grams"), vials=Count("pk"))
        .order_by("presentation__product__brand")
    )
    totals = [
        {"brand": row["presentation__product__brand"], "grams": row["grams"] or Decimal("0"), "vials": row["vials"]}
        for row in by_brand
    ]
    return vials, totals


# --- the cold chain ------------------------------------------------------------------------------


def excursion_queryset() -> QuerySet:
    """Excursions with their location and how many vials each holds, still awaits a decision for,
    and reached in all: counted by correlated subqueries, one query for a whole page."""
    def count(**filters):
        return Coalesce(Subquery(
            ExcursionVial.objects.filter(excursion=OuterRef("pk"), **filters).order_by().values("excursion")
            .annotate(n=Count("pk")).values("n")
        ), 0)

    return Excursion.objects.select_related("location").annotate(
        vials_reached=count(), vials_pending=count(outcome=ExcursionVial.Outcome.PENDING)
    ).order_by("-started_at", "-pk")


def excursion_entries(excursion_id: int) -> QuerySet:
    """The vials an excursion reached, with what the pharmacist decided: one query."""
    return without_product_notes(
        ExcursionVial.objects.filter(excursion_id=excursion_id).select_related(
            "vial__presentation__product", "vial__lot", "vial__location", "decided_by"),
        "vial__presentation__product",
    ).order_by("vial__presentation__product__brand", "vial__lot__lot_number", "vial__serial")


def location_readings(location_id: int) -> QuerySet:
    return TemperatureReading.objects.filter(location_id=location_id).order_by("-taken_at")
