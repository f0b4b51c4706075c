"""Shared helpers for the inventory tests: cartons to scan, a frozen clock, and a snapshot of the
stock to prove that a refusal changed nothing."""

from datetime import date, datetime, timedelta, timezone as dt_timezone

from django.utils import timezone

from inventory.models import Lot, Presentation, Vial, local_today
from labels.gs1 import element_string

UTC = dt_timezone.utc


def carton(presentation: Presentation, *, lot: str, expiry: date | None = None, serial: str | None = None) -> str:
    """What a scanner sends for a carton: the GS1 element string with a group separator."""
    return element_string(gtin=presentation.gtin, expiry=expiry, lot=lot, serial=serial)


def carton_of(vial: Vial) -> str:
    return carton(vial.presentation, lot=vial.lot.lot_number, expiry=vial.lot.expiry_date, serial=vial.serial)


def in_a_year() -> date:
    return local_today() + timedelta(days=365)


def freeze_now(monkeypatch, moment: datetime) -> datetime:
    """Stop the clock at `moment` (an aware datetime) for django.utils.timezone and everything
    that reads it through the module (localdate, local_today, services)."""
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment


def stock_state() -> dict:
    """Everything a stock operation may touch, to compare before and after a refusal."""
    return {
        "vials": list(
            Vial.objects.order_by("pk").values_list(
                "pk", "serial", "lot_id", "status", "location_id", "room_temp_since", "beyond_use_date"
            )
        ),
        "lots": list(Lot.objects.order_by("pk").values_list("pk", "lot_number", "expiry_date", "status")),
        "vial_history": Vial.history.count(),
        "lot_history": Lot.history.count(),
    }


def last_history(obj):
    """The newest history row of `obj`."""
    return obj.history.order_by("-history_date", "-history_id").first()
