"""The rules that say whether a vial may be used, written once for services, scans and pages."""

from datetime import date

from config.errors import ApplicationError
from inventory.exceptions import AlreadyDispensed, NotDispensable, NotInStock
from inventory.models import Lot, Vial, local_today


def dispense_refusal(vial: Vial, today: date | None = None) -> ApplicationError | None:
    """Why this vial must not be given to a patient now, or None. Lot state first: a recall
    outranks everything, since it tells the technician to put the vial in quarantine."""
    today = today or local_today()
    lot = vial.lot
    if lot.status == Lot.Status.RECALLED:
        return NotDispensable(
            f"Lot {lot.lot_number} is recalled. Put the vial in quarantine.", code="lot_recalled"
        )
    if vial.status == Vial.Status.DISPENSED:
        return AlreadyDispensed(f"Vial {vial.serial} (lot {lot.lot_number}) was already dispensed.")
    if lot.status == Lot.Status.QUARANTINED or vial.status == Vial.Status.QUARANTINED:
        return NotDispensable(
            f"Lot {lot.lot_number} is quarantined. Keep the vial aside until a pharmacist releases it.",
            code="lot_quarantined",
        )
    if vial.status != Vial.Status.IN_STOCK:
        return NotInStock(
            f"Vial {vial.serial} is not in stock (it is {vial.get_status_display()})."
        )
    if lot.is_expired(today):
        return NotDispensable(
            f"Lot {lot.lot_number} expired on {lot.expiry_date:%Y-%m-%d}. Waste the vial.", code="lot_expired"
        )
    if vial.is_past_beyond_use(today):
        return NotDispensable(
            f"Vial {vial.serial} passed its beyond-use date {vial.beyond_use_date:%Y-%m-%d} "
            "(room-temperature allowance used up). Waste the vial.",
            code="beyond_use_date_passed",
        )
    return None


def ensure_dispensable(vial: Vial, today: date | None = None) -> None:
    refusal = dispense_refusal(vial, today)
    if refusal is not None:
        raise refusal
