"""Receiving a delivery by scan: every rule and refusal, each refusal changing nothing."""

import threading
from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings

from inventory.exceptions import DuplicateSerial, LotConflict, MoveRefused, NotDispensable, UnknownProduct
from inventory.models import Lot, StorageLocation, Vial, local_today
from inventory.services import INTERNAL_SERIAL_PREFIX, receipt_create
from labels.exceptions import InvalidBarcode
from tests.factories import (
    LotFactory,
    PresentationFactory,
    ProductFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)
from tests.inventory.helpers import UTC, carton, freeze_now, in_a_year, last_history, stock_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-A", name="Fridge A", kind=StorageLocation.Kind.REFRIGERATOR)


@pytest.fixture
def rt_shelf():
    return StorageLocationFactory(code="RT-1", name="Room-temperature shelf", kind=StorageLocation.Kind.ROOM_TEMPERATURE)


@pytest.fixture
def quarantine_cabinet():
    return StorageLocationFactory(code="QUAR-1", name="Quarantine cabinet", kind=StorageLocation.Kind.QUARANTINE)


@pytest.fixture
def presentation():
    return PresentationFactory(product=ProductFactory(brand="Gammagard Liquid", room_temp_allowance_days=30))


def test_receive_creates_one_vial_per_scan_in_the_location(presentation, fridge, technician):
    expiry = in_a_year()
    scans = [carton(presentation, lot="LE12A045", expiry=expiry, serial=f"S{n}") for n in range(3)]

    vials = receipt_create(location=fridge, scans=scans, actor=technician)

    assert [v.serial for v in vials] == ["S0", "S1", "S2"]
    lot = Lot.objects.get()
    assert (lot.product, lot.lot_number, lot.expiry_date, lot.status) == (
        presentation.product, "LE12A045", expiry, Lot.Status.RELEASED
    )
    for vial in Vial.objects.all():
        assert (vial.presentation, vial.lot, vial.location, vial.status) == (presentation, lot, fridge, Vial.Status.IN_STOCK)
        assert vial.beyond_use_date == expiry
        assert vial.room_temp_since is None
        assert vial.serial_is_internal is False


def test_receive_leaves_history_naming_the_receiver_and_the_location(presentation, fridge, technician):
    [vial] = receipt_create(location=fridge, scans=[carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")],
                            actor=technician)

    row = last_history(vial)
    assert (row.history_type, row.history_user, row.history_change_reason) == ("+", technician, "received into FRIDGE-A")
    lot_row = last_history(vial.lot)
    assert lot_row.history_user == technician
    assert lot_row.history_change_reason == "lot created on receipt of Gammagard Liquid lot L1"


def test_receive_matches_a_lot_on_record_with_the_same_expiry(presentation, fridge, technician):
    lot = LotFactory(product=presentation.product, lot_number="L1")
    vials = receipt_create(location=fridge, scans=[carton(presentation, lot="L1", expiry=lot.expiry_date, serial="S9")],
                           actor=technician)

    assert Lot.objects.count() == 1
    assert vials[0].lot == lot


def test_receive_accepts_a_scan_without_expiry_for_a_lot_on_record(presentation, fridge, technician):
    lot = LotFactory(product=presentation.product, lot_number="L1")
    [vial] = receipt_create(location=fridge, scans=[carton(presentation, lot="L1", serial="S9")], actor=technician)

    assert vial.lot == lot
    assert vial.beyond_use_date == lot.expiry_date


def test_receive_refuses_a_gtin_that_is_not_in_the_catalog(presentation, fridge, technician):
    before = stock_state()
    scan = carton(presentation, lot="L1", expiry=in_a_year(), serial="S1").replace(presentation.gtin, "09501101530003")

    with pytest.raises(UnknownProduct) as refusal:
        receipt_create(location=fridge, scans=[scan], actor=technician)

    assert refusal.value.code == "unknown_product"
    assert refusal.value.status == 400
    assert "09501101530003" in refusal.value.message
    assert refusal.value.extra["gtin"] == "09501101530003"
    assert stock_state() == before


def test_receive_refuses_a_lot_on_record_with_another_expiry(presentation, fridge, technician):
    lot = LotFactory(product=presentation.product, lot_number="L1")
    before = stock_state()

    with pytest.raises(LotConflict) as refusal:
        receipt_create(
            location=fridge,
            scans=[carton(presentation, lot="L1", expiry=lot.expiry_date + timedelta(days=30), serial="S1")],
            actor=technician,
        )

    assert (refusal.value.code, refusal.value.status) == ("lot_expiry_conflict", 409)
    assert refusal.value.extra["expiry_on_record"] == lot.expiry_date.isoformat()
    assert stock_state() == before


def test_receive_refuses_two_cartons_of_a_new_lot_with_different_expiries(presentation, fridge, technician):
    before = stock_state()
    expiry = in_a_year()
    scans = [
        carton(presentation, lot="L1", expiry=expiry, serial="S1"),
        carton(presentation, lot="L1", expiry=expiry + timedelta(days=1), serial="S2"),
    ]

    with pytest.raises(LotConflict) as refusal:
        receipt_create(location=fridge, scans=scans, actor=technician)

    assert refusal.value.code == "lot_expiry_conflict"
    assert stock_state() == before


def test_receive_of_a_known_serial_is_a_suspect_duplicate_and_changes_nothing(presentation, fridge, technician):
    vial = VialFactory(presentation=presentation, serial="S1")
    before = stock_state()

    with pytest.raises(DuplicateSerial) as refusal:
        receipt_create(
            location=fridge,
            scans=[carton(presentation, lot=vial.lot.lot_number, expiry=vial.lot.expiry_date, serial="S1")],
            actor=technician,
        )

    assert (refusal.value.code, refusal.value.status) == ("suspect_duplicate", 409)
    assert refusal.value.extra["serial"] == "S1"
    assert stock_state() == before


def test_the_same_serial_under_another_gtin_is_a_different_vial(presentation, fridge, technician):
    VialFactory(presentation=PresentationFactory(product=presentation.product), serial="S1")
    [vial] = receipt_create(location=fridge, scans=[carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")],
                            actor=technician)

    assert vial.serial == "S1"
    assert Vial.objects.filter(serial="S1").count() == 2


def test_receive_refuses_the_same_serial_twice_in_one_receipt(presentation, fridge, technician):
    before = stock_state()
    scan = carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")

    with pytest.raises(DuplicateSerial) as refusal:
        receipt_create(location=fridge, scans=[scan, scan], actor=technician)

    assert refusal.value.code == "suspect_duplicate"
    assert refusal.value.extra["scan_index"] == 1
    assert stock_state() == before


@pytest.mark.parametrize(
    "bad",
    ["invalid_barcode", "unknown_product", "known_serial", "expired_lot", "expiry_conflict", "recalled_lot"],
)
def test_a_receipt_with_one_bad_scan_among_good_ones_receives_nothing(bad, presentation, fridge, technician):
    expiry = in_a_year()
    on_record = VialFactory(presentation=presentation, serial="KNOWN", lot__lot_number="OLD")
    LotFactory(product=presentation.product, lot_number="EXP", expiry_date=local_today() - timedelta(days=1))
    LotFactory(product=presentation.product, lot_number="RCL", status=Lot.Status.RECALLED)
    bad_scans = {
        "invalid_barcode": "01" + presentation.gtin[:-1] + str((int(presentation.gtin[-1]) + 1) % 10) + "10L1",
        "unknown_product": carton(presentation, lot="L1", expiry=expiry, serial="X").replace(
            presentation.gtin, "09501101530003"
        ),
        "known_serial": carton(presentation, lot="OLD", expiry=on_record.lot.expiry_date, serial="KNOWN"),
        "expired_lot": carton(presentation, lot="EXP", serial="X"),
        "expiry_conflict": carton(presentation, lot="L1", expiry=expiry + timedelta(days=1), serial="X"),
        "recalled_lot": carton(presentation, lot="RCL", serial="X"),
    }
    good = [carton(presentation, lot="L1", expiry=expiry, serial=f"G{n}") for n in range(3)]
    before = stock_state()

    with pytest.raises(Exception) as refusal:
        receipt_create(location=fridge, scans=[*good, bad_scans[bad]], actor=technician)

    assert refusal.value.status in (400, 409)
    assert refusal.value.extra["scan_index"] == 3
    assert stock_state() == before
    assert not Lot.objects.filter(lot_number="L1").exists()


def test_receive_of_a_scan_without_serial_creates_one_vial_with_an_internal_serial(presentation, fridge, technician):
    scan = carton(presentation, lot="L1", expiry=in_a_year())

    first, second = receipt_create(location=fridge, scans=[scan, scan], actor=technician)

    for vial in (first, second):
        assert vial.serial_is_internal is True
        assert vial.serial.startswith(INTERNAL_SERIAL_PREFIX)
        assert len(vial.serial) <= Vial._meta.get_field("serial").max_length
    assert first.serial != second.serial
    assert Vial.objects.count() == 2


def test_receive_refuses_a_scan_without_lot(presentation, fridge, technician):
    before = stock_state()

    with pytest.raises(InvalidBarcode) as refusal:
        receipt_create(location=fridge, scans=[presentation.gtin], actor=technician)

    assert refusal.value.code == "missing_lot"
    assert stock_state() == before


def test_receive_refuses_a_new_lot_without_expiry(presentation, fridge, technician):
    before = stock_state()

    with pytest.raises(InvalidBarcode) as refusal:
        receipt_create(location=fridge, scans=[carton(presentation, lot="NEW", serial="S1")], actor=technician)

    assert refusal.value.code == "missing_expiry"
    assert stock_state() == before


def test_receive_refuses_an_empty_receipt(fridge, technician):
    with pytest.raises(Exception) as refusal:
        receipt_create(location=fridge, scans=[], actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("empty_receipt", 400)


def test_receive_refuses_a_location_that_is_not_in_use(presentation, technician):
    closed = StorageLocationFactory(active=False)
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        receipt_create(location=closed, scans=[carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")],
                       actor=technician)

    assert refusal.value.code == "location_inactive"
    assert stock_state() == before


def test_receive_refuses_a_lot_that_is_already_expired(presentation, fridge, technician):
    LotFactory(product=presentation.product, lot_number="EXP", expiry_date=local_today() - timedelta(days=1))
    before = stock_state()

    with pytest.raises(NotDispensable) as refusal:
        receipt_create(location=fridge, scans=[carton(presentation, lot="EXP", serial="S1")], actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("lot_expired", 409)
    assert stock_state() == before


def test_receive_refuses_a_new_lot_whose_carton_is_expired(presentation, fridge, technician):
    before = stock_state()

    with pytest.raises(NotDispensable) as refusal:
        receipt_create(location=fridge,
                       scans=[carton(presentation, lot="NEW", expiry=local_today() - timedelta(days=1), serial="S1")],
                       actor=technician)

    assert refusal.value.code == "lot_expired"
    assert stock_state() == before


def test_receive_accepts_a_lot_that_expires_today(presentation, fridge, technician):
    [vial] = receipt_create(location=fridge, scans=[carton(presentation, lot="L1", expiry=local_today(), serial="S1")],
                            actor=technician)

    assert vial.lot.expiry_date == local_today()


@override_settings(TIME_ZONE="America/New_York")
def test_expired_is_measured_against_the_sites_local_date_not_utc(monkeypatch, presentation, fridge, technician):
    # 03:00 UTC on 15 January is still 14 January in New York: a lot expiring on the 14th is good.
    freeze_now(monkeypatch, datetime(2031, 1, 15, 3, 0, tzinfo=UTC))
    assert local_today() == date(2031, 1, 14)

    [vial] = receipt_create(location=fridge,
                            scans=[carton(presentation, lot="L1", expiry=date(2031, 1, 14), serial="S1")],
                            actor=technician)

    assert vial.status == Vial.Status.IN_STOCK


@override_settings(TIME_ZONE="America/New_York")
def test_a_lot_is_expired_once_the_local_date_passes_its_expiry(monkeypatch, presentation, fridge, technician):
    freeze_now(monkeypatch, datetime(2031, 1, 15, 5, 30, tzinfo=UTC))  # 00:30 on the 15th in New York
    before = stock_state()

    with pytest.raises(NotDispensable) as refusal:
        receipt_create(location=fridge, scans=[carton(presentation, lot="L1", expiry=date(2031, 1, 14), serial="S1")],
                       actor=technician)

    assert refusal.value.code == "lot_expired"
    assert stock_state() == before


@override_settings(TIME_ZONE="Asia/Tokyo")
def test_a_site_ahead_of_utc_sees_the_lot_expired_before_utc_does(monkeypatch, presentation, fridge, technician):
    # 20:00 UTC on 14 January is already the 15th in Tokyo.
    freeze_now(monkeypatch, datetime(2031, 1, 14, 20, 0, tzinfo=UTC))

    with pytest.raises(NotDispensable) as refusal:
        receipt_create(location=fridge, scans=[carton(presentation, lot="L1", expiry=date(2031, 1, 14), serial="S1")],
                       actor=technician)

    assert refusal.value.code == "lot_expired"


def test_receive_refuses_a_recalled_lot(presentation, fridge, technician):
    LotFactory(product=presentation.product, lot_number="RCL", status=Lot.Status.RECALLED)
    before = stock_state()

    with pytest.raises(NotDispensable) as refusal:
        receipt_create(location=fridge, scans=[carton(presentation, lot="RCL", serial="S1")], actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("lot_recalled", 409)
    assert stock_state() == before


def test_vials_of_a_quarantined_lot_are_received_into_quarantine(presentation, fridge, technician):
    LotFactory(product=presentation.product, lot_number="Q1", status=Lot.Status.QUARANTINED)

    [vial] = receipt_create(location=fridge, scans=[carton(presentation, lot="Q1", serial="S1")], actor=technician)

    assert vial.status == Vial.Status.QUARANTINED


def test_vials_received_into_a_quarantine_location_are_quarantined(presentation, quarantine_cabinet, technician):
    [vial] = receipt_create(location=quarantine_cabinet,
                            scans=[carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")], actor=technician)

    assert vial.status == Vial.Status.QUARANTINED
    assert Lot.objects.get().status == Lot.Status.RELEASED


def test_receiving_into_a_room_temperature_location_starts_the_clock(monkeypatch, presentation, rt_shelf, technician):
    now = freeze_now(monkeypatch, datetime(2031, 1, 15, 15, 0, tzinfo=UTC))

    [vial] = receipt_create(location=rt_shelf,
                            scans=[carton(presentation, lot="L1", expiry=date(2032, 1, 1), serial="S1")],
                            actor=technician)

    assert vial.room_temp_since == now
    assert vial.beyond_use_date == date(2031, 1, 15) + timedelta(days=30)
    vial.refresh_from_db()
    assert vial.beyond_use_date == date(2031, 2, 14)


def test_receiving_into_room_temperature_keeps_an_earlier_lot_expiry(monkeypatch, presentation, rt_shelf, technician):
    freeze_now(monkeypatch, datetime(2031, 1, 15, 15, 0, tzinfo=UTC))

    [vial] = receipt_create(location=rt_shelf,
                            scans=[carton(presentation, lot="L1", expiry=date(2031, 1, 20), serial="S1")],
                            actor=technician)

    assert vial.beyond_use_date == date(2031, 1, 20)


def test_receiving_into_room_temperature_is_refused_for_a_product_without_allowance(rt_shelf, technician):
    presentation = PresentationFactory(product=ProductFactory(room_temp_allowance_days=None))
    before = stock_state()

    with pytest.raises(MoveRefused) as refusal:
        receipt_create(location=rt_shelf, scans=[carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")],
                       actor=technician)

    assert refusal.value.code == "room_temperature_not_allowed"
    assert stock_state() == before


def test_a_scan_with_a_dropped_separator_is_read_against_the_lots_on_record(presentation, fridge, technician):
    lot = LotFactory(product=presentation.product, lot_number="ABC")
    # "10ABC" + "21XYZ" with the separator lost: greedy reading is lot "ABC21XYZ".
    raw = "01" + presentation.gtin + "17" + lot.expiry_date.strftime("%y%m%d") + "10ABC21XYZ"

    [vial] = receipt_create(location=fridge, scans=[raw], actor=technician)

    assert (vial.lot, vial.serial) == (lot, "XYZ")


def test_a_scan_with_a_dropped_separator_and_no_known_lot_is_refused_as_ambiguous(presentation, fridge, technician):
    raw = "01" + presentation.gtin + "17" + in_a_year().strftime("%y%m%d") + "10ABC21XYZ"
    before = stock_state()

    with pytest.raises(InvalidBarcode) as refusal:
        receipt_create(location=fridge, scans=[raw], actor=technician)

    assert refusal.value.code == "ambiguous_barcode"
    assert stock_state() == before


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_location", [True, False], ids=["one location", "two locations"])
def test_two_simultaneous_receipts_of_one_serial_let_exactly_one_through(same_location):
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: {connection.vendor} serialises writers")
    presentation = PresentationFactory()
    locations = [StorageLocationFactory(code="FRIDGE-A")]
    locations.append(locations[0] if same_location else StorageLocationFactory(code="FRIDGE-B"))
    users = [UserFactory(username="alice", role="technician"), UserFactory(username="tom", role="technician")]
    scan = carton(presentation, lot="NEWLOT", expiry=in_a_year(), serial="S1")
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def receive(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = receipt_create(location=locations[index], scans=[scan], actor=users[index])
        except Exception as error:  # noqa: BLE001 - the refusal is the result under test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    refusals = [r for r in results if isinstance(r, Exception)]
    assert len(refusals) == 1, results
    assert isinstance(refusals[0], DuplicateSerial)
    assert Vial.objects.filter(serial="S1").count() == 1
    assert Lot.objects.filter(lot_number="NEWLOT").count() == 1
    assert Vial.history.filter(serial="S1").count() == 1
