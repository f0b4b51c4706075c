"""Whether a vial may be used: expiry on the local date, beyond-use date, lot and vial state."""

from datetime import date, datetime, timedelta

import pytest
from django.test import override_settings

from inventory.exceptions import AlreadyDispensed, NotDispensable, NotInStock
from inventory.models import Lot, Vial, local_today
from inventory.rules import dispense_refusal, ensure_dispensable
from tests.factories import LotFactory, ProductFactory, VialFactory
from tests.inventory.helpers import UTC, freeze_now

pytestmark = pytest.mark.django_db


def refusal_code(vial, today=None):
    refusal = dispense_refusal(vial, today)
    return refusal.code if refusal is not None else None


def test_a_good_vial_may_be_dispensed():
    vial = VialFactory()

    assert dispense_refusal(vial) is None
    ensure_dispensable(vial)


@pytest.mark.parametrize(
    ("lot_status", "vial_status", "code", "error"),
    [
        (Lot.Status.RECALLED, Vial.Status.IN_STOCK, "lot_recalled", NotDispensable),
        (Lot.Status.RECALLED, Vial.Status.DISPENSED, "lot_recalled", NotDispensable),
        (Lot.Status.RELEASED, Vial.Status.DISPENSED, "already_dispensed", AlreadyDispensed),
        (Lot.Status.QUARANTINED, Vial.Status.QUARANTINED, "lot_quarantined", NotDispensable),
        (Lot.Status.RELEASED, Vial.Status.QUARANTINED, "lot_quarantined", NotDispensable),
        (Lot.Status.RELEASED, Vial.Status.WASTED, "not_in_stock", NotInStock),
        (Lot.Status.RELEASED, Vial.Status.RETURNED, "not_in_stock", NotInStock),
    ],
)
def test_a_vial_out_of_use_is_refused_with_its_reason(lot_status, vial_status, code, error):
    vial = VialFactory(lot__status=lot_status, status=vial_status)

    assert refusal_code(vial) == code
    with pytest.raises(error) as refusal:
        ensure_dispensable(vial)
    assert (refusal.value.code, refusal.value.status) == (code, 409)


def test_a_recalled_lot_tells_the_technician_to_quarantine_the_vial():
    vial = VialFactory(lot__status=Lot.Status.RECALLED, lot__lot_number="P1234")

    assert "Lot P1234 is recalled. Put the vial in quarantine." in dispense_refusal(vial).message


def test_a_lot_expiring_today_is_still_good_and_expired_tomorrow():
    today = local_today()
    vial = VialFactory(lot__expiry_date=today)

    assert refusal_code(vial, today) is None
    assert refusal_code(vial, today + timedelta(days=1)) == "lot_expired"


def test_a_vial_past_its_beyond_use_date_is_refused_though_the_lot_is_good():
    today = local_today()
    vial = VialFactory(lot__expiry_date=today + timedelta(days=100), beyond_use_date=today - timedelta(days=1))

    assert refusal_code(vial, today) == "beyond_use_date_passed"
    assert refusal_code(vial, today - timedelta(days=1)) is None


def test_an_expired_lot_is_named_before_the_beyond_use_date():
    today = local_today()
    vial = VialFactory(lot__expiry_date=today - timedelta(days=2), beyond_use_date=today - timedelta(days=3))

    assert refusal_code(vial, today) == "lot_expired"


@override_settings(TIME_ZONE="America/New_York")
def test_expired_means_before_the_local_date_at_the_site(monkeypatch):
    vial = VialFactory(lot__expiry_date=date(2031, 1, 14), beyond_use_date=date(2031, 1, 14))
    # 03:00 UTC on the 15th is 22:00 on the 14th in New York: still good there.
    freeze_now(monkeypatch, datetime(2031, 1, 15, 3, 0, tzinfo=UTC))
    assert local_today() == date(2031, 1, 14)
    assert vial.lot.is_expired() is False
    assert refusal_code(vial) is None

    freeze_now(monkeypatch, datetime(2031, 1, 15, 5, 0, tzinfo=UTC))  # midnight in New York
    assert vial.lot.is_expired() is True
    assert refusal_code(vial) == "lot_expired"


@override_settings(TIME_ZONE="UTC")
def test_the_same_moment_is_already_the_next_day_at_a_utc_site(monkeypatch):
    vial = VialFactory(lot__expiry_date=date(2031, 1, 14), beyond_use_date=date(2031, 1, 14))
    freeze_now(monkeypatch, datetime(2031, 1, 15, 3, 0, tzinfo=UTC))

    assert refusal_code(vial) == "lot_expired"


@pytest.mark.parametrize(
    ("allowance", "expiry", "expected"),
    [
        (30, date(2032, 1, 1), date(2031, 3, 31)),  # the allowance ends first
        (30, date(2031, 3, 10), date(2031, 3, 10)),  # the lot expires first
        (None, date(2032, 1, 1), date(2032, 1, 1)),  # no allowance: only the expiry counts
    ],
)
def test_the_beyond_use_date_is_the_earlier_of_expiry_and_the_end_of_the_allowance(allowance, expiry, expected):
    product = ProductFactory(room_temp_allowance_days=allowance)
    vial = VialFactory(presentation__product=product, lot=LotFactory(product=product, expiry_date=expiry),
                       room_temp_since=datetime(2031, 3, 1, 14, 0, tzinfo=UTC))

    assert vial.compute_beyond_use_date() == expected


def test_a_vial_that_never_left_the_fridge_is_good_until_its_lot_expires():
    vial = VialFactory(lot__expiry_date=date(2032, 1, 1))

    assert vial.room_temp_deadline() is None
    assert vial.compute_beyond_use_date() == date(2032, 1, 1)
