"""Moving vials between fridge, room temperature and quarantine: the clock, the way back, the refusals."""

from datetime import date, datetime, timedelta

import pytest
from django.test import override_settings

from inventory.exceptions import MoveRefused, NotInStock
from inventory.models import Lot, StorageLocation, Vial
from inventory.services import vial_move
from tests.factories import LotFactory, PresentationFactory, ProductFactory, StorageLocationFactory, VialFactory
from tests.inventory.helpers import UTC, freeze_now, last_history, stock_state

pytestmark = pytest.mark.django_db

Kind = StorageLocation.Kind


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-A", name="Fridge A", kind=Kind.REFRIGERATOR)


@pytest.fixture
def fridge_b():
    return StorageLocationFactory(code="FRIDGE-B", name="Fridge B", kind=Kind.REFRIGERATOR)


@pytest.fixture
def rt_shelf():
    return StorageLocationFactory(code="RT-1", name="Room-temperature shelf", kind=Kind.ROOM_TEMPERATURE)


@pytest.fixture
def rt_shelf_2():
    return StorageLocationFactory(code="RT-2", name="Second room-temperature shelf", kind=Kind.ROOM_TEMPERATURE)


@pytest.fixture
def quarantine_cabinet():
    return StorageLocationFactory(code="QUAR-1", name="Quarantine cabinet", kind=Kind.QUARANTINE)


def vial_of(*, allowance: int | None = 30, may_return: bool = False, expiry: date = date(2032, 6, 30), **kwargs) -> Vial:
    product = ProductFactory(room_temp_allowance_days=allowance, may_return_to_fridge=may_return)
    lot = LotFactory(product=product, expiry_date=expiry, **{k[5:]: v for k, v in kwargs.items() if k.startswith("lot__")})
    return VialFactory(presentation=PresentationFactory(product=product), lot=lot,
                       **{k: v for k, v in kwargs.items() if not k.startswith("lot__")})


def test_moving_a_vial_between_fridges_changes_only_its_location(fridge, fridge_b, technician):
    vial = vial_of(location=fridge)

    moved = vial_move(vial=vial, location=fridge_b, actor=technician)

    assert (moved.location, moved.status, moved.room_temp_since) == (fridge_b, Vial.Status.IN_STOCK, None)
    row = last_history(moved)
    assert (row.history_user, row.history_change_reason) == (technician, "moved from FRIDGE-A to FRIDGE-B")


def test_moving_a_vial_to_room_temperature_starts_the_clock(monkeypatch, fridge, rt_shelf, technician):
    now = freeze_now(monkeypatch, datetime(2031, 3, 1, 14, 0, tzinfo=UTC))
    vial = vial_of(allowance=30, location=fridge)

    vial_move(vial=vial, location=rt_shelf, actor=technician)

    vial.refresh_from_db()
    assert vial.room_temp_since == now
    assert vial.beyond_use_date == date(2031, 3, 31)
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (technician, "moved from FRIDGE-A to RT-1")


def test_the_beyond_use_date_is_the_lot_expiry_when_that_comes_first(monkeypatch, fridge, rt_shelf, technician):
    freeze_now(monkeypatch, datetime(2031, 3, 1, 14, 0, tzinfo=UTC))
    vial = vial_of(allowance=30, expiry=date(2031, 3, 10), location=fridge)

    vial_move(vial=vial, location=rt_shelf, actor=technician)

    vial.refresh_from_db()
    assert vial.beyond_use_date == date(2031, 3, 10)


@override_settings(TIME_ZONE="America/New_York")
def test_the_room_temperature_allowance_counts_from_the_local_date(monkeypatch, fridge, rt_shelf, technician):
    # 02:00 UTC on 1 March is still 28 February in New York.
    freeze_now(monkeypatch, datetime(2031, 3, 1, 2, 0, tzinfo=UTC))
    vial = vial_of(allowance=10, location=fridge)

    vial_move(vial=vial, location=rt_shelf, actor=technician)

    vial.refresh_from_db()
    assert vial.beyond_use_date == date(2031, 2, 28) + timedelta(days=10)


def test_moving_between_room_temperature_shelves_keeps_the_first_start(monkeypatch, fridge, rt_shelf, rt_shelf_2, technician):
    started = freeze_now(monkeypatch, datetime(2031, 3, 1, 14, 0, tzinfo=UTC))
    vial = vial_of(allowance=30, location=fridge)
    vial_move(vial=vial, location=rt_shelf, actor=technician)

    freeze_now(monkeypatch, datetime(2031, 3, 20, 14, 0, tzinfo=UTC))
    vial_move(vial=vial, location=rt_shelf_2, actor=technician)

    vial.refresh_from_db()
    assert (vial.location, vial.room_temp_since, vial.beyond_use_date) == (rt_shelf_2, started, date(2031, 3, 31))


def test_moving_to_room_temperature_is_refused_for_a_product_without_allowance(fridge, rt_shelf, technician):
    vial = vial_of(allowance=None, location=fridge)
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        vial_move(vial=vial, location=rt_shelf, actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("room_temperature_not_allowed", 409)
    assert stock_state() == before


def test_moving_back_to_the_fridge_is_refused_where_the_product_forbids_it(monkeypatch, fridge, rt_shelf, technician):
    freeze_now(monkeypatch, datetime(2031, 3, 1, 14, 0, tzinfo=UTC))
    vial = vial_of(allowance=30, may_return=False, location=fridge)
    vial_move(vial=vial, location=rt_shelf, actor=technician)
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        vial_move(vial=vial, location=fridge, actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("return_to_fridge_forbidden", 409)
    assert "2031-03-31" in refusal.value.message
    assert stock_state() == before


def test_moving_back_to_the_fridge_is_allowed_where_the_product_permits_it(monkeypatch, fridge, rt_shelf, technician):
    freeze_now(monkeypatch, datetime(2031, 3, 1, 14, 0, tzinfo=UTC))
    vial = vial_of(allowance=30, may_return=True, location=fridge)
    vial_move(vial=vial, location=rt_shelf, actor=technician)

    freeze_now(monkeypatch, datetime(2031, 3, 4, 14, 0, tzinfo=UTC))
    vial_move(vial=vial, location=fridge, actor=technician)

    vial.refresh_from_db()
    assert (vial.location, vial.status) == (fridge, Vial.Status.IN_STOCK)
    # The clock stops in the fridge; the three days at room temperature are not given back.
    assert (vial.room_temp_since, vial.room_temp_used, vial.beyond_use_date) == (None, timedelta(days=3), date(2032, 6, 30))


def test_moving_a_vial_to_quarantine_quarantines_it(fridge, quarantine_cabinet, technician):
    vial = vial_of(location=fridge)

    vial_move(vial=vial, location=quarantine_cabinet, actor=technician)

    vial.refresh_from_db()
    assert (vial.location, vial.status) == (quarantine_cabinet, Vial.Status.QUARANTINED)


def test_moving_a_vial_of_a_released_lot_out_of_quarantine_puts_it_back_in_stock(quarantine_cabinet, fridge, technician):
    vial = vial_of(location=quarantine_cabinet, status=Vial.Status.QUARANTINED)

    vial_move(vial=vial, location=fridge, actor=technician)

    vial.refresh_from_db()
    assert (vial.location, vial.status) == (fridge, Vial.Status.IN_STOCK)


@pytest.mark.parametrize("lot_status", [Lot.Status.QUARANTINED, Lot.Status.RECALLED])
def test_a_vial_of_a_lot_out_of_release_cannot_leave_quarantine(lot_status, quarantine_cabinet, fridge, technician):
    vial = vial_of(location=quarantine_cabinet, status=Vial.Status.QUARANTINED, lot__status=lot_status)
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        vial_move(vial=vial, location=fridge, actor=technician)

    assert refusal.value.code == "lot_not_released"
    assert stock_state() == before


@pytest.mark.parametrize("status", [Vial.Status.DISPENSED, Vial.Status.WASTED, Vial.Status.RETURNED])
def test_a_vial_that_left_the_shelf_cannot_be_moved(status, fridge, fridge_b, technician):
    vial = vial_of(location=None, status=status)
    before = stock_state()

    with pytest.raises(NotInStock) as refusal:
        vial_move(vial=vial, location=fridge_b, actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("not_in_stock", 409)
    assert stock_state() == before


def test_moving_into_a_location_not_in_use_is_refused(fridge, technician):
    vial = vial_of(location=fridge)
    closed = StorageLocationFactory(active=False)
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        vial_move(vial=vial, location=closed, actor=technician)

    assert refusal.value.code == "location_inactive"
    assert stock_state() == before


def test_moving_a_vial_to_where_it_already_is_is_refused(fridge, technician):
    vial = vial_of(location=fridge)
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        vial_move(vial=vial, location=fridge, actor=technician)

    assert refusal.value.code == "already_at_location"
    assert stock_state() == before
