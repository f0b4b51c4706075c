"""Stock-changing operations: receive, move, quarantine/release, waste, return to supplier.

Each is atomic, locks the rows it changes (lot before vials, vials in primary-key order, so two
operations on the same stock cannot deadlock) and leaves a history row naming who and why.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.history import audited_bulk_create, audited_create, audited_save
from core.compiled import CompiledQuery
from core.errors import ApplicationError
from inventory.exceptions import (
    AlreadyDispensed,
    DuplicateSerial,
    LotConflict,
    LotStateConflict,
    MoveRefused,
    NotDispensable,
    NotInStock,
    ReasonRequired,
    UnknownLocation,
    UnknownProduct,
)
from inventory.exceptions import SuspectProduct
from inventory.models import (
    Excursion, ExcursionVial, Lot, Manufacturer, Presentation, Product, StorageLocation, SuspectScan, Vial, local_today,
)
from inventory.rules import SHORT_DATED_DAYS, carton_cautions, receipt_refusal  # noqa: F401 (SHORT_DATED_DAYS: re-exported)
from inventory.selectors import ensure_not_a_case
from inventory.signals import holds_on, lot_arrived
from labels.exceptions import InvalidBarcode
from labels.gs1 import ScanData, parse_scan

INTERNAL_SERIAL_PREFIX = "INT-"


def require_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("A reason is required for this action.")
    return reason


def location_by_code(code: str) -> StorageLocation:
    code = (code or "").strip()
    try:
        return StorageLocation.objects.get(code=code)
    except StorageLocation.DoesNotExist:
        raise UnknownLocation(f"No storage location has the code {code!r}.", extra={"location": code}) from None


def presentation_by_gtin(gtin: str) -> Presentation:
    ensure_not_a_case(gtin)
    try:
        return Presentation.objects.select_related("product").get(gtin=gtin)
    except Presentation.DoesNotExist:
        raise UnknownProduct(
            f"GTIN {gtin} is not in the product catalog. Ask a pharmacist to add the presentation before receiving it.",
            extra={"gtin": gtin},
        ) from None


# --- receiving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptLine:
    index: int
    raw: str
    scan: ScanData
    presentation: Presentation


def _choose_interpretation(scan: ScanData, presentation: Presentation) -> ScanData:
    """A scanner that dropped the group separator leaves lot and serial run together. The parser
    offers every plausible split; the one whose lot we already hold for this product wins."""
    if not scan.alternatives:
        return scan
    candidates = [scan, *scan.alternatives]
    # A reading with a company-internal (91) id is one of our own labels only if that vial exists;
    # otherwise it is a lot that happens to contain "91" (a carton's lot needs no separator when last).
    ids = [c.internal_serial for c in candidates if c.internal_serial]
    if ids:
        ours = set(
            Vial.objects.filter(presentation=presentation, serial__in=ids, serial_is_internal=True).values_list(
                "serial", flat=True
            )
        )
        for candidate in candidates:
            if candidate.internal_serial in ours:
                return candidate
        candidates = [c for c in candidates if not c.internal_serial]
        if len(candidates) == 1:
            return candidates[0]
    lot_numbers = {c.lot for c in candidates if c.lot}
    known = set(
        Lot.objects.filter(product=presentation.product, lot_number__in=lot_numbers).values_list(
            "lot_number", flat=True
        )
    )
    matching = [c for c in candidates if c.lot in known]
    if len(matching) == 1:
        return matching[0]
    raise InvalidBarcode(
        "The scanner dropped the separator between lot and serial, so they cannot be told apart. "
        "Rescan the carton, or type the lot and serial in the parenthesised form (10)…(21)….",
        code="ambiguous_barcode",
        extra={"candidates": [{"lot": c.lot, "serial": c.serial} for c in candidates]},
    )


def _parse_receipt_line(
    index: int, raw: str, presentations: dict[str, Presentation] | None = None, scan: ScanData | None = None
) -> ReceiptLine:
    """One scan of a delivery, read. `presentations` (GTIN → presentation, fetched for the whole
    delivery at once) saves a query per carton; a GTIN missing from it is unknown. `scan`: the
    scan already parsed, if it was."""
    try:
        scan = scan if scan is not None else parse_scan(raw)
        if presentations is None:
            presentation = presentation_by_gtin(scan.gtin)
        elif scan.gtin in presentations:
            presentation = presentations[scan.gtin]
        else:
            ensure_not_a_case(scan.gtin)
            raise UnknownProduct(
                f"GTIN {scan.gtin} is not in the product catalog. Ask a pharmacist to add the presentation before receiving it.",
                extra={"gtin": scan.gtin},
            )
        scan = _choose_interpretation(scan, presentation)
        if not scan.lot:
            raise InvalidBarcode("The barcode carries no lot number (10); a vial cannot be received without one.",
                                 code="missing_lot")
        if scan.internal_serial:
            # Only our own labels carry (91): the vial was received when the label was printed.
            raise InvalidBarcode(
                f"This is the pharmacy's own label (internal id {scan.internal_serial}), not the manufacturer's "
                "carton: the vial was received already. Scan it in look-up mode.",
                code="internal_label",
            )
    except ApplicationError as error:
        error.extra = {**error.extra, "scan_index": index, "scan": raw}
        error.message = f"Scan {index + 1}: {error.message}"
        raise
    return ReceiptLine(index=index, raw=raw, scan=scan, presentation=presentation)


def _presentations_for(scans: list[str]) -> tuple[dict[str, Presentation], list[ScanData | None]]:
    """Each scan parsed (None where it does not parse: reading it line by line reports why, in
    order), and the catalog presentations the scans name, by GTIN, in one query."""
    parsed: list[ScanData | None] = []
    for raw in scans:
        try:
            parsed.append(parse_scan(raw))
        except ApplicationError:
            parsed.append(None)
    gtins = {scan.gtin for scan in parsed if scan is not None}
    if not gtins:
        return {}, parsed
    return {p.gtin: p for p in Presentation.objects.select_related("product").filter(gtin__in=gtins)}, parsed


def _parse_receipt_lines(scans: list[str]) -> list[ReceiptLine]:
    presentations, parsed = _presentations_for(scans)
    return [_parse_receipt_line(index, raw, presentations, parsed[index]) for index, raw in enumerate(scans)]


def _lot_for_receipt(line: ReceiptLine, *, actor: User, today: date) -> Lot:
    scan, product = line.scan, line.presentation.product
    lot = Lot.objects.select_for_update().filter(product=product, lot_number=scan.lot).first()
    arrived_recalled = False
    if lot is None:
        if scan.expiry is None:
            raise InvalidBarcode(
                f"Scan {line.index + 1}: lot {scan.lot} is new and the barcode carries no expiry date (17).",
                code="missing_expiry", extra={"scan_index": line.index, "scan": line.raw},
            )
        holds = holds_on(product=product, lot_number=scan.lot)
        # A lot a recall named before it arrived is received recalled, into quarantine: the stock
        # is in the building, so the recall's lookback must show it, and nobody may use it.
        lot = Lot(product=product, lot_number=scan.lot, expiry_date=scan.expiry, expiry_day_00=scan.expiry_day_00,
                  status=Lot.Status.RECALLED if holds else Lot.Status.RELEASED, manufactured_on=scan.production_date)
        reason = f"lot created on receipt of {product.brand} lot {scan.lot}"
        if holds:
            reason += f", recalled on arrival ({'; '.join(holds)})"
        try:
            with transaction.atomic():
                audited_save(lot, actor=actor, reason=reason)
        except IntegrityError:
            # Another receipt created the same lot a moment ago: use theirs.
            lot = Lot.objects.select_for_update().get(product=product, lot_number=scan.lot)
        else:
            lot_arrived.send(sender=Lot, lot=lot, actor=actor)
            arrived_recalled = bool(holds)
    if scan.expiry is not None and scan.expiry != lot.expiry_date:
        raise LotConflict(
            f"Scan {line.index + 1}: lot {lot.lot_number} is on record with expiry {lot.expiry_date:%Y-%m-%d}, "
            f"but this carton says {scan.expiry:%Y-%m-%d}. Check the carton and tell the pharmacist.",
            extra={"scan_index": line.index, "scan": line.raw, "lot": lot.lot_number,
                   "expiry_on_record": lot.expiry_date.isoformat(), "expiry_scanned": scan.expiry.isoformat()},
        )
    if lot.manufactured_on is None and scan.production_date is not None:
        # The first carton of the lot to carry its production date (11) records it.
        lot.manufactured_on = scan.production_date
        audited_save(lot, actor=actor, reason=f"production date {scan.production_date:%Y-%m-%d} read from a carton",
                     update_fields=["manufactured_on"])
    refusal = receipt_refusal(lot, today)
    if refusal is not None and not (arrived_recalled and refusal.code == "lot_recalled"):
        what = {
            "lot_recalled": "is recalled and cannot be received. Quarantine the carton.",
            "lot_expired": f"expired on {lot.expiry_date:%Y-%m-%d} and cannot be received.",
        }[refusal.code]
        raise refusal.refusal(
            f"Scan {line.index + 1}: lot {lot.lot_number} {what}",
            code=refusal.code, extra={"scan_index": line.index, "scan": line.raw},
        )
    return lot


@dataclass(frozen=True)
class ScanCaution:
    scan_index: int
    code: str
    detail: str


class ReceivedVials(list):
    """The vials of a receipt in scan order, with the cautions seen on the cartons (amber: they
    were received, but someone should look, e.g. an expiry printed with day 00)."""

    def __init__(self, vials, cautions: list[ScanCaution]):
        super().__init__(vials)
        self.cautions = cautions


@transaction.atomic
def receipt_create(*, location: StorageLocation, scans: list[str], actor: User) -> ReceivedVials:
    """Receive a delivery: every scan becomes one vial, or nothing is received at all."""
    if not scans:
        raise ApplicationError("A receipt needs at least one scan.", code="empty_receipt")
    location = StorageLocation.objects.select_for_update().get(pk=location.pk)
    if not location.active:
        raise MoveRefused(f"Location {location.code} is not in use.", code="location_inactive")
    today = local_today()
    now = timezone.now()
    lines = _parse_receipt_lines(scans)

    seen: dict[tuple[int, str], int] = {}
    for line in lines:
        if line.scan.serial:
            key = (line.presentation.pk, line.scan.serial)
            if key in seen:
                raise DuplicateSerial(
                    f"Scan {line.index + 1} repeats serial {line.scan.serial} of scan {seen[key] + 1}. "
                    "The same carton was scanned twice, or the product is suspect.",
                    extra={"scan_index": line.index, "scan": line.raw, "serial": line.scan.serial},
                )
            seen[key] = line.index
    serials = {(pk, serial) for pk, serial in seen}
    if serials:
        existing = Vial.objects.filter(
            presentation_id__in={pk for pk, _ in serials}, serial__in={s for _, s in serials}
        ).values_list("presentation_id", "serial", "presentation__gtin")
        for presentation_id, serial, gtin in existing:
            if (presentation_id, serial) in serials:
                index = seen[(presentation_id, serial)]
                raise DuplicateSerial(
                    f"Scan {index + 1}: GTIN {gtin} serial {serial} was already received. "
                    "A second unit with the same serial is a suspect product: set it aside and report it.",
                    extra={"scan_index": index, "scan": scans[index], "gtin": gtin, "serial": serial},
                )

    vials = []
    lots: dict[tuple[int, str], Lot] = {}
    for line in sorted(lines, key=lambda l: (l.presentation.product_id, l.scan.lot)):
        key = (line.presentation.product_id, line.scan.lot)
        if key not in lots:
            lots[key] = _lot_for_receipt(line, actor=actor, today=today)
        elif line.scan.expiry is not None and line.scan.expiry != lots[key].expiry_date:
            lot = lots[key]
            raise LotConflict(
                f"Scan {line.index + 1}: lot {lot.lot_number} has expiry {lot.expiry_date:%Y-%m-%d} on another carton "
                f"of this receipt, but this one says {line.scan.expiry:%Y-%m-%d}.",
                extra={"scan_index": line.index, "scan": line.raw, "lot": lot.lot_number},
            )
        lot = lots[key]
        vial = Vial(
            presentation=line.presentation,
            lot=lot,
            serial=line.scan.serial or INTERNAL_SERIAL_PREFIX + uuid.uuid4().hex[:12].upper(),
            serial_is_internal=not line.scan.serial,
            location=location,
            status=Vial.Status.QUARANTINED if _holds_quarantine(location, lot) else Vial.Status.IN_STOCK,
            received_at=now,
            beyond_use_date=lot.expiry_date,
        )
        if location.kind == StorageLocation.Kind.ROOM_TEMPERATURE:
            _start_room_temperature(vial, lot.product, now=now)
        vial._line_index = line.index
        vials.append(vial)

    try:
        with transaction.atomic():
            # One multi-row INSERT for the vials and one for their history rows (batched by the
            # database's limit on parameters), not two statements per carton.
            audited_bulk_create(Vial, vials, actor=actor, reason=f"received into {location.code}")
    except IntegrityError:
        # Two receipts of the same serial raced past the check above; the constraint decides.
        raise DuplicateSerial("One of these serials was received by someone else a moment ago. Nothing was received.") from None
    vials.sort(key=lambda v: v._line_index)
    scan_of = {line.index: line.scan for line in lines}
    cautions = [
        ScanCaution(scan_index=vial._line_index, code=finding.warning, detail=f"Scan {vial._line_index + 1}: {finding.message}")
        for vial in vials
        for finding in carton_cautions(scan_of[vial._line_index], expiry=vial.lot.expiry_date, today=today)
    ]
    return ReceivedVials(vials, cautions)


@dataclass
class CheckedLine:
    index: int
    raw: str
    line: ReceiptLine | None
    problem: ApplicationError | None = None
    cautions: list[str] = field(default_factory=list)


@dataclass
class ReceiptCheck:
    lines: list[CheckedLine]
    # (brand, lot number) -> (vials, grams), in the order the lots were first scanned.
    totals: dict[tuple[str, str], tuple[int, Decimal]]

    @property
    def ready(self) -> bool:
        return bool(self.lines) and all(line.problem is None for line in self.lines)


def receipt_check(*, scans: list[str], today: date | None = None) -> ReceiptCheck:
    """What receiving these scans would do, line by line, changing nothing: each scan's problem
    (the refusal receipt_create would raise for it), its cautions (a short-dated carton), and the
    totals by lot. The scan station shows a case from this before it is confirmed."""
    today = today or local_today()
    checked: list[CheckedLine] = []
    seen: dict[tuple[int, str], int] = {}
    expiry_of: dict[tuple[int, str], date] = {}
    totals: dict[tuple[str, str], tuple[int, Decimal]] = {}
    presentations, scans_read = _presentations_for(scans)
    parsed: list[tuple[int, str, ReceiptLine | ApplicationError]] = []
    for index, raw in enumerate(scans):
        try:
            parsed.append((index, raw, _parse_receipt_line(index, raw, presentations, scans_read[index])))
        except ApplicationError as error:
            parsed.append((index, raw, error))
    # What the database already holds for the whole case, in two queries rather than two per carton.
    lines_read = [line for _, _, line in parsed if isinstance(line, ReceiptLine)]
    received = _received_serials(lines_read)
    lots_held = _lots_held(lines_read)
    for index, raw, line in parsed:
        if isinstance(line, ApplicationError):
            checked.append(CheckedLine(index=index, raw=raw, line=None, problem=line))
            continue
        item = CheckedLine(index=index, raw=raw, line=line)
        checked.append(item)
        scan, presentation = line.scan, line.presentation
        try:
            if scan.serial:
                key = (presentation.pk, scan.serial)
                if key in seen:
                    raise DuplicateSerial(
                        f"Scan {index + 1} repeats serial {scan.serial} of scan {seen[key] + 1}: "
                        "the same carton was scanned twice.",
                        code="repeated_in_case", extra={"scan_index": index, "repeats": seen[key]},
                    )
                seen[key] = index
                if (presentation.pk, scan.serial) in received:
                    raise DuplicateSerial(
                        f"Scan {index + 1}: GTIN {presentation.gtin} serial {scan.serial} was already received.",
                        extra={"scan_index": index},
                    )
            lot_key = (presentation.product_id, scan.lot)
            lot = lots_held.get(lot_key)
            expiry = lot.expiry_date if lot is not None else expiry_of.get(lot_key, scan.expiry)
            if expiry is None:
                raise InvalidBarcode(
                    f"Scan {index + 1}: lot {scan.lot} is new and the barcode carries no expiry date (17).",
                    code="missing_expiry",
                )
            if scan.expiry is not None and scan.expiry != expiry:
                raise LotConflict(
                    f"Scan {index + 1}: lot {scan.lot} has expiry {expiry:%Y-%m-%d}, "
                    f"but this carton says {scan.expiry:%Y-%m-%d}.",
                )
            expiry_of.setdefault(lot_key, expiry)
            if lot is None:
                for hold in holds_on(product=presentation.product, lot_number=scan.lot):
                    item.cautions.append(f"Lot {scan.lot} is named by {hold}: it will be received recalled, into quarantine.")
            refusal = receipt_refusal(lot, today) if lot is not None else None
            if refusal is None and expiry < today:
                raise NotDispensable(f"Scan {index + 1}: the carton expired on {expiry:%Y-%m-%d}.", code="lot_expired")
            if refusal is not None:
                raise refusal.error()
        except ApplicationError as error:
            item.problem = error
            continue
        item.cautions += [finding.message for finding in carton_cautions(scan, expiry=expiry, today=today)]
        vials, grams = totals.get((presentation.product.brand, scan.lot), (0, Decimal("0")))
        totals[(presentation.product.brand, scan.lot)] = (vials + 1, grams + presentation.grams)
    return ReceiptCheck(lines=checked, totals=totals)


def _received_serials(lines: list[ReceiptLine]) -> set[tuple[int, str]]:
    """(presentation id, serial) of the lines' vials already received."""
    wanted = {(line.presentation.pk, line.scan.serial) for line in lines if line.scan.serial}
    if not wanted:
        return set()
    found = Vial.objects.filter(
        presentation_id__in={pk for pk, _ in wanted}, serial__in={serial for _, serial in wanted}
    ).values_list("presentation_id", "serial")
    return set(found) & wanted


def _lots_held(lines: list[ReceiptLine]) -> dict[tuple[int, str], Lot]:
    """The lots the lines name that exist already, by (product id, lot number)."""
    wanted = {(line.presentation.product_id, line.scan.lot) for line in lines}
    if not wanted:
        return {}
    lots = Lot.objects.filter(
        product_id__in={pk for pk, _ in wanted}, lot_number__in={number for _, number in wanted}
    )
    return {(lot.product_id, lot.lot_number): lot for lot in lots if (lot.product_id, lot.lot_number) in wanted}


def _holds_quarantine(location: StorageLocation, lot: Lot) -> bool:
    return location.kind == StorageLocation.Kind.QUARANTINE or lot.status != Lot.Status.RELEASED


def _start_room_temperature(vial: Vial, product: Product, *, now: datetime) -> None:
    """Start (or keep running) the vial's room-temperature clock; its beyond-use date follows."""
    if product.room_temp_allowance_days is None:
        raise MoveRefused(
            f"{product.brand} has no room-temperature allowance on its label: keep it refrigerated.",
            code="room_temperature_not_allowed",
        )
    if vial.room_temp_since is None:
        remaining = vial.room_temp_remaining(now, product)
        if remaining <= timedelta(0):
            raise MoveRefused(
                f"Vial {vial.serial} has used up its room-temperature allowance "
                f"({product.room_temp_allowance_days} days). Waste the vial.",
                code="room_temperature_allowance_exceeded",
            )
        window = vial.room_temp_window_end(product)
        if window is not None and window < timezone.localtime(now).date():
            # Gammagard Liquid: room temperature only within the first 24 months from manufacture.
            raise MoveRefused(
                f"{product.brand} may be kept at room temperature only within {product.room_temp_within_months} "
                f"months of manufacture; lot {vial.lot.lot_number} passed that on {window:%Y-%m-%d}. Keep it refrigerated.",
                code="room_temperature_window_closed",
            )
        vial.room_temp_since = now
    vial.beyond_use_date = vial.compute_beyond_use_date()


def _stop_room_temperature(vial: Vial, product: Product, *, now: datetime) -> None:
    """Back into a fridge: the clock stops and the time is added to what the vial has used; where
    the label forbids the way back, or the allowance is used up, the move is refused."""
    if vial.room_temp_since is None:
        return
    if not product.may_return_to_fridge:
        raise MoveRefused(
            f"{product.brand} may not go back to the fridge after room-temperature storage: "
            f"use it by {vial.beyond_use_date:%Y-%m-%d} or waste it.",
            code="return_to_fridge_forbidden",
        )
    remaining = vial.room_temp_remaining(now, product)
    if remaining is not None and remaining <= timedelta(0):
        raise MoveRefused(
            f"Vial {vial.serial} has used up its room-temperature allowance: it may not go back to the fridge. "
            "Waste the vial.",
            code="room_temperature_allowance_exceeded",
        )
    vial.room_temp_used += now - vial.room_temp_since
    vial.room_temp_since = None
    vial.beyond_use_date = vial.compute_beyond_use_date()


# --- moving ------------------------------------------------------------------------------------


def place_vial(vial: Vial, location: StorageLocation, *, now: datetime) -> str:
    """Put a vial (locked by the caller, on a shelf or coming back to one) in `location` under the
    storage rules, without saving: the room-temperature clock starts on a room-temperature shelf,
    a product whose label forbids it does not go back to the fridge, a quarantine location
    quarantines, and a quarantined vial leaves quarantine only when its lot is released.
    Returns the code of the location the vial came from ("nowhere" when it had none)."""
    product = vial.lot.product
    if not location.active:
        raise MoveRefused(f"Location {location.code} is not in use.", code="location_inactive")
    if vial.location_id == location.pk:
        raise MoveRefused(f"Vial {vial.serial} is already in {location.name}.", code="already_at_location")

    Kind = StorageLocation.Kind
    if location.kind == Kind.ROOM_TEMPERATURE:
        _start_room_temperature(vial, product, now=now)
    elif location.kind == Kind.REFRIGERATOR and vial.room_temp_since is not None:
        from_fridge = vial.location is not None and vial.location.kind == Kind.REFRIGERATOR
        # A vial whose clock runs in a fridge (an excursion released against a label that allows no
        # way back) may change fridge; its clock runs on.
        if not (from_fridge and not product.may_return_to_fridge):
            _stop_room_temperature(vial, product, now=now)
    elif vial.room_temp_since is not None:
        # Into quarantine: the clock runs on (the cabinet is not known to be cold enough to stop it).
        vial.beyond_use_date = vial.compute_beyond_use_date()

    if location.kind == Kind.QUARANTINE:
        vial.status = Vial.Status.QUARANTINED
    elif vial.status == Vial.Status.QUARANTINED and vial.cold_chain_hold_id is not None:
        pass  # held for a cold-chain excursion: quarantined wherever it goes until a pharmacist decides
    elif vial.status == Vial.Status.QUARANTINED:
        if vial.lot.status != Lot.Status.RELEASED:
            raise MoveRefused(
                f"Lot {vial.lot.lot_number} is {vial.lot.status}: its vials stay in quarantine until a pharmacist releases the lot.",
                code="lot_not_released",
            )
        vial.status = Vial.Status.IN_STOCK
    previous = vial.location.code if vial.location else "nowhere"
    vial.location = location
    return previous


def lock_vial(vial_id: int) -> Vial:
    """The vial's row, locked, with what the stock rules read (lot, product, presentation, location)
    and what a response shows of it (the product's maker), so nothing is read again to answer."""
    return _locked_vial.get(vial_id)


# of=("self",): PostgreSQL refuses FOR UPDATE on the nullable side of the location outer join.
# Every dispense, return and move locks a vial: compiled once (core.compiled).
_locked_vial = CompiledQuery(
    lambda pk: Vial.objects.select_for_update(of=("self",))
    .select_related("lot__product", "presentation__product__manufacturer", "location").filter(pk=pk).order_by(),
    int,
)


@transaction.atomic
def vial_move(*, vial: Vial, location: StorageLocation, actor: User) -> Vial:
    vial = lock_vial(vial.pk)
    if vial.status not in (Vial.Status.IN_STOCK, Vial.Status.QUARANTINED):
        raise NotInStock(f"Vial {vial.serial} is {vial.get_status_display()} and cannot be moved.")
    previous = place_vial(vial, location, now=timezone.now())
    return audited_save(vial, actor=actor, reason=f"moved from {previous} to {location.code}")


# --- lot decisions -----------------------------------------------------------------------------


def _lock_lot(lot: Lot) -> Lot:
    return Lot.objects.select_for_update().select_related("product").get(pk=lot.pk)


def _lock_vials(**filters) -> list[Vial]:
    return list(
        Vial.objects.select_for_update(of=("self",)).select_related("location").filter(**filters).order_by("pk")
    )


@transaction.atomic
def lot_quarantine(*, lot: Lot, reason: str, actor: User) -> Lot:
    reason = require_reason(reason)
    lot = _lock_lot(lot)
    if lot.status == Lot.Status.RECALLED:
        raise LotStateConflict(f"Lot {lot.lot_number} is recalled; it is already out of use.", code="lot_recalled")
    if lot.status == Lot.Status.QUARANTINED:
        raise LotStateConflict(f"Lot {lot.lot_number} is already quarantined.")
    lot.status = Lot.Status.QUARANTINED
    audited_save(lot, actor=actor, reason=f"quarantine: {reason}")
    for vial in _lock_vials(lot=lot, status=Vial.Status.IN_STOCK):
        vial.status = Vial.Status.QUARANTINED
        audited_save(vial, actor=actor, reason=f"lot {lot.lot_number} quarantined: {reason}")
    return lot


@transaction.atomic
def lot_release(*, lot: Lot, reason: str, actor: User) -> Lot:
    reason = require_reason(reason)
    lot = _lock_lot(lot)
    if lot.status == Lot.Status.RECALLED:
        raise LotStateConflict(f"Lot {lot.lot_number} is recalled and cannot be released.", code="lot_recalled")
    if lot.status == Lot.Status.RELEASED:
        raise LotStateConflict(f"Lot {lot.lot_number} is already released.")
    lot.status = Lot.Status.RELEASED
    audited_save(lot, actor=actor, reason=f"release: {reason}")
    # Vials sitting in a quarantine location stay quarantined until someone moves them out.
    # ... and so do vials held for a cold-chain excursion, until a pharmacist disposes of them.
    for vial in _lock_vials(lot=lot, status=Vial.Status.QUARANTINED, cold_chain_hold__isnull=True):
        if vial.location is None or vial.location.kind != StorageLocation.Kind.QUARANTINE:
            vial.status = Vial.Status.IN_STOCK
            audited_save(vial, actor=actor, reason=f"lot {lot.lot_number} released: {reason}")
    return lot


# --- leaving stock -----------------------------------------------------------------------------


def _take_out_of_stock(vial: Vial, *, status: str, reason: str, actor: User, verb: str) -> Vial:
    reason = require_reason(reason)
    vial = lock_vial(vial.pk)
    if vial.status == Vial.Status.DISPENSED:
        # A dispensed vial belongs to a patient's session now: the dispense record must say what
        # became of it, so it is returned or wasted from the session, never from the shelf.
        raise AlreadyDispensed(
            f"Vial {vial.serial} was dispensed; only vials on a shelf can be {verb}. "
            "Return or waste it from its infusion session."
        )
    if vial.status not in (Vial.Status.IN_STOCK, Vial.Status.QUARANTINED):
        raise NotInStock(f"Vial {vial.serial} is {vial.get_status_display()}; only vials on a shelf can be {verb}.")
    vial.status = status
    vial.location = None
    outcome = ExcursionVial.Outcome.WASTED if status == Vial.Status.WASTED else ExcursionVial.Outcome.NOT_HELD
    settle_cold_chain_holds(vial, outcome=outcome, reason=f"{verb} from the shelf: {reason}",
                            actor=actor)
    return audited_save(vial, actor=actor, reason=f"{verb}: {reason}")


def settle_cold_chain_holds(vial: Vial, *, outcome: str, reason: str, actor: User) -> None:
    """A held vial that leaves stock another way (wasted or returned from the shelf) settles its
    pending excursion entries, so no excursion waits for a vial that is gone; an excursion with
    nothing left pending is closed. The vial (locked by the caller) is saved by the caller."""
    if vial.cold_chain_hold_id is None:
        return
    now = timezone.now()
    entries = list(
        ExcursionVial.objects.select_for_update().filter(vial=vial, outcome=ExcursionVial.Outcome.PENDING).order_by("pk")
    )
    for entry in entries:
        entry.outcome, entry.reason, entry.decided_by, entry.decided_at = outcome, reason, actor, now
        audited_save(entry, actor=actor, reason=reason)
    vial.cold_chain_hold = None
    for excursion_id in sorted({entry.excursion_id for entry in entries}):
        close_excursion_if_settled(excursion_id, actor=actor)


def close_excursion_if_settled(excursion_id: int, *, actor: User) -> None:
    excursion = Excursion.objects.select_for_update().get(pk=excursion_id)
    pending = ExcursionVial.objects.filter(excursion_id=excursion_id, outcome=ExcursionVial.Outcome.PENDING).exists()
    if excursion.status == Excursion.Status.OPEN and not pending and excursion.ended_at is not None:
        excursion.status = Excursion.Status.CLOSED
        audited_save(excursion, actor=actor, reason="every vial of the excursion disposed of")


@transaction.atomic
def vial_waste(*, vial: Vial, reason: str, actor: User) -> Vial:
    return _take_out_of_stock(vial, status=Vial.Status.WASTED, reason=reason, actor=actor, verb="wasted")


@transaction.atomic
def vial_return_to_supplier(*, vial: Vial, reason: str, actor: User) -> Vial:
    return _take_out_of_stock(vial, status=Vial.Status.RETURNED, reason=reason, actor=actor, verb="returned to supplier")


# --- suspect products --------------------------------------------------------------------------


@transaction.atomic
def suspect_scan_record(*, raw: str, suspect: "SuspectProduct", actor: User) -> SuspectScan:
    """Put a suspect scan before a pharmacist: once per vial and lot scanned while it is open."""
    extra = suspect.extra
    vial = Vial.objects.select_for_update(of=("self",)).get(pk=extra["vial"])
    expiry = date.fromisoformat(extra["expiry_scanned"]) if extra.get("expiry_scanned") else None
    existing = SuspectScan.objects.filter(
        vial=vial, scanned_lot=extra.get("lot_scanned") or "", scanned_expiry=expiry, status=SuspectScan.Status.OPEN
    ).first()
    if existing is not None:
        return existing
    return audited_create(
        SuspectScan, actor=actor, reason=f"suspect product: serial {vial.serial} scanned as lot {extra.get('lot_scanned')}",
        vial=vial, raw=raw[:512], scanned_lot=(extra.get("lot_scanned") or "")[:20], scanned_expiry=expiry,
        reported_by=actor,
    )


@transaction.atomic
def suspect_scan_resolve(*, report: SuspectScan, resolution: str, actor: User) -> SuspectScan:
    """A pharmacist closes a suspect-product report, saying what was found and done."""
    resolution = require_reason(resolution)
    report = SuspectScan.objects.select_for_update().get(pk=report.pk)
    if report.status != SuspectScan.Status.OPEN:
        raise LotStateConflict("This report is already resolved.", code="already_resolved")
    report.status = SuspectScan.Status.RESOLVED
    report.resolution = resolution
    report.resolved_by = actor
    report.resolved_at = timezone.now()
    return audited_save(report, actor=actor, reason=f"suspect product resolved: {resolution}")


# --- the catalog and the locations (master data) --------------------------------------------------

CATALOG_MODELS = (Manufacturer, Product, Presentation, StorageLocation)


def _catalog_model(model) -> None:
    if model not in CATALOG_MODELS:
        raise ValueError(f"{model.__name__} is not catalog data.")


@transaction.atomic
def catalog_create(*, model, actor: User, **fields):
    """Add a manufacturer, product, presentation or storage location (audited). The API and the
    admin both come here; their forms have checked the values."""
    _catalog_model(model)
    return audited_save(model(**fields), actor=actor, reason="catalog: created")


@transaction.atomic
def catalog_update(*, obj, actor: User, **changes):
    """Edit catalog data under its row lock (audited); an edit that changes nothing writes nothing."""
    model = type(obj)
    _catalog_model(model)
    locked = model.objects.select_for_update().get(pk=obj.pk)
    changed = [name for name, value in changes.items() if getattr(locked, name) != value]
    if not changed:
        return locked
    for name in changed:
        setattr(locked, name, changes[name])
    return audited_save(locked, actor=actor, reason="catalog: edited")
