"""The stock-status verdict: whether a lot or a vial may be received, kept or given, written once.

Services (receiving, dispensing), the pick, the scan card and the pages all ask these functions;
none of them re-decides "recalled, expired, quarantined".
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from core.errors import ApplicationError
from inventory.exceptions import AlreadyDispensed, NotDispensable, NotInStock
from inventory.models import Lot, Vial, local_today
from labels.gs1 import ScanData

BEYOND_USE_SOON_DAYS = 7

RED, AMBER = "red", "amber"


@dataclass(frozen=True)
class Finding:
    """One thing wrong (red: stop) or worth a look (amber) about a lot or a vial.

    `warning` is the scan card's code; `code` and `refusal` are what a service raises when the
    finding stops it (cautions have no refusal)."""

    warning: str
    severity: str
    message: str
    code: str = ""
    refusal: type[ApplicationError] | None = None

    def error(self) -> ApplicationError:
        return self.refusal(self.message, code=self.code)

    def as_warning(self) -> dict:
        return {"code": self.warning, "severity": self.severity, "detail": self.message}


# A recall's reference makes the refusal actionable ("(FDA-2025-12)"); recalls live above
# inventory, so whoever knows them passes a function that names the lot's latest recall.
RecallReference = Callable[[Lot], str | None]


def _recalled(lot: Lot, recall_reference: RecallReference | None) -> Finding:
    reference = recall_reference(lot) if recall_reference else None
    ref = f" ({reference})" if reference else ""
    return Finding("recalled", RED, f"Lot {lot.lot_number} is recalled{ref}. Put the vial in quarantine.",
                   "lot_recalled", NotDispensable)


def _quarantined(lot: Lot) -> Finding:
    return Finding("quarantined", RED,
                   f"Lot {lot.lot_number} is quarantined. Keep the vial aside until a pharmacist releases it.",
                   "lot_quarantined", NotDispensable)


def _expired(lot: Lot, *, today: date, on: date) -> Finding:
    if lot.expiry_date < today:
        return Finding("expired", RED, f"Lot {lot.lot_number} expired on {lot.expiry_date:%Y-%m-%d}. Waste the vial.",
                       "lot_expired", NotDispensable)
    return Finding("expired", RED,
                   f"Lot {lot.lot_number} expires on {lot.expiry_date:%Y-%m-%d}, before the infusion on {on:%Y-%m-%d}. "
                   "Choose a vial that is still in date then.",
                   "lot_expired", NotDispensable)


def lot_findings(lot: Lot, *, today: date | None = None, recall_reference: RecallReference | None = None) -> list[Finding]:
    """What stops a lot's vials from being used: recalled, quarantined, expired."""
    today = today or local_today()
    found = []
    if lot.status == Lot.Status.RECALLED:
        found.append(_recalled(lot, recall_reference))
    elif lot.status == Lot.Status.QUARANTINED:
        found.append(_quarantined(lot))
    if lot.is_expired(today):
        found.append(_expired(lot, today=today, on=today))
    return found


def vial_findings(
    vial: Vial, *, today: date | None = None, on: date | None = None, recall_reference: RecallReference | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Everything wrong with a vial now, most urgent first (the first red one is the refusal):
    a recall outranks everything, since it tells the technician to put the vial in quarantine;
    then a vial already with a patient; then quarantine, a vial no longer on a shelf, expiry, and
    the beyond-use date (or, amber, a beyond-use date within a week).

    `on` is the day the vial is to be used (a session scheduled later than today): it must still be
    in date, and within its beyond-use date, then.

    The cold chain speaks here too, so the dispense, the pick and the scan card agree: a vial held
    for a cold-chain excursion awaits a pharmacist, and a vial whose room-temperature allowance has
    run out (to the minute, not the day) is done."""
    if now is None:
        # A day asked about (a test, a report) is looked at from its first minute.
        now = timezone.now() if today is None or today == local_today() else timezone.make_aware(
            datetime.combine(today, time.min))
    today = today or local_today()
    on = max(on or today, today)
    lot = vial.lot
    Status = Vial.Status
    found = []
    if lot.status == Lot.Status.RECALLED:
        found.append(_recalled(lot, recall_reference))
    if vial.status == Status.DISPENSED:
        found.append(Finding("already_dispensed", RED, f"Vial {vial.serial} (lot {lot.lot_number}) was already dispensed.",
                             "already_dispensed", AlreadyDispensed))
    held = vial.status == Status.QUARANTINED and vial.cold_chain_hold_id is not None
    if lot.status == Lot.Status.QUARANTINED:
        found.append(_quarantined(lot))
    if held:
        found.append(Finding("cold_chain_excursion", RED,
                             f"Vial {vial.serial} is held after a cold-chain excursion (excursion {vial.cold_chain_hold_id}). "
                             "Keep it aside until a pharmacist releases or wastes it.",
                             "cold_chain_excursion", NotDispensable))
    elif vial.status == Status.QUARANTINED and lot.status == Lot.Status.RELEASED:
        found.append(Finding("quarantined", RED,
                             f"Vial {vial.serial} is in quarantine. Keep it aside until a pharmacist releases it.",
                             "lot_quarantined", NotDispensable))
    if vial.status in (Status.WASTED, Status.RETURNED):
        found.append(Finding("not_in_stock", RED,
                             f"Vial {vial.serial} is not in stock (it was {vial.get_status_display()}).",
                             "not_in_stock", NotInStock))
    running = vial.room_temp_since is not None and vial.status in (Status.IN_STOCK, Status.QUARANTINED)
    deadline = vial.room_temp_deadline(lot.product) if running else None
    if lot.is_expired(on):
        found.append(_expired(lot, today=today, on=on))
    elif deadline is not None and deadline <= now:
        found.append(Finding(
            "room_temperature_allowance", RED,
            f"Vial {vial.serial} has used up its room-temperature allowance ({lot.product.room_temp_allowance_days} days, "
            f"ran out {timezone.localtime(deadline):%Y-%m-%d %H:%M}). Waste the vial.",
            "room_temperature_allowance_exceeded", NotDispensable))
    elif vial.is_past_beyond_use(on):
        if vial.is_past_beyond_use(today):
            message = (f"Vial {vial.serial} passed its beyond-use date {vial.beyond_use_date:%Y-%m-%d} "
                       "(room-temperature allowance used up). Waste the vial.")
        else:
            message = (f"Vial {vial.serial} reaches its beyond-use date {vial.beyond_use_date:%Y-%m-%d} before the "
                       f"infusion on {on:%Y-%m-%d}. Choose a vial that is still usable then.")
        found.append(Finding("beyond_use_date", RED, message, "beyond_use_date_passed", NotDispensable))
    elif vial.status == Status.IN_STOCK and vial.beyond_use_date <= today + timedelta(days=BEYOND_USE_SOON_DAYS):
        found.append(Finding("beyond_use_soon", AMBER, f"Use by {vial.beyond_use_date:%Y-%m-%d}."))
    return found


def dispense_refusal(vial: Vial, today: date | None = None, *, on: date | None = None) -> ApplicationError | None:
    """Why this vial must not be given to a patient now (or on the later day `on`), or None."""
    for finding in vial_findings(vial, today=today, on=on):
        if finding.refusal is not None:
            return finding.error()
    return None


def ensure_dispensable(vial: Vial, today: date | None = None, *, on: date | None = None) -> None:
    refusal = dispense_refusal(vial, today, on=on)
    if refusal is not None:
        raise refusal


def receipt_refusal(lot: Lot, today: date | None = None) -> Finding | None:
    """Why no vial of this lot may be received, or None: a recalled or an expired lot."""
    for finding in lot_findings(lot, today=today):
        if finding.code in ("lot_recalled", "lot_expired"):
            return finding
    return None


# Cartons expiring this soon are received with a caution, before the case is confirmed.
SHORT_DATED_DAYS = 90


def carton_cautions(scan: ScanData, *, expiry: date | None, today: date | None = None) -> list[Finding]:
    """What is worth a look on a carton being received (amber; nothing here refuses it): a lot
    expiring within SHORT_DATED_DAYS, and an expiry printed with day 00.

    Why day 00: it is valid GS1 ("last day of the month") and right for old stock, but GS1
    healthcare guidance (e.g. GS1 UK, 2025) no longer allows it on regulated healthcare products,
    so on a new delivery it is most likely a supplier's labelling error worth reporting."""
    today = today or local_today()
    found = []
    if expiry is not None and today <= expiry <= today + timedelta(days=SHORT_DATED_DAYS):
        found.append(Finding("short_dated", AMBER,
                             f"Short-dated: lot {scan.lot} expires on {expiry:%Y-%m-%d}, in {(expiry - today).days} days."))
    if scan.expiry_day_00 and scan.expiry is not None:
        found.append(Finding(
            "expiry_day_00", AMBER,
            f"The carton's expiry {scan.expiry:%y%m}00 uses day 00, read as the last day of the month "
            f"({scan.expiry:%Y-%m-%d}). GS1 healthcare guidance no longer allows day 00 on medicines: "
            "accepted, but tell the supplier."))
    return found
