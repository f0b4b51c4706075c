"""An expiry printed with day 00: received (it is valid GS1, and right on old stock), with a caution,
since GS1 healthcare guidance no longer allows day 00 on regulated healthcare products."""

import calendar
from datetime import date

import pytest

from inventory.models import Lot, StorageLocation
from inventory.selectors import scan_lookup
from inventory.services import receipt_check, receipt_create
from labels.gs1 import GS
from tests.factories import PresentationFactory, StorageLocationFactory, VialFactory
from tests.inventory.helpers import carton, in_a_year

pytestmark = pytest.mark.django_db


def day_00(presentation, *, lot: str, serial: str, month_end: date) -> str:
    return f"01{presentation.gtin}17{month_end:%y%m}00" + f"10{lot}{GS}21{serial}"


@pytest.fixture
def month_end():
    year = in_a_year()
    return year.replace(day=calendar.monthrange(year.year, year.month)[1])


@pytest.fixture
def presentation():
    return PresentationFactory()


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-A", kind=StorageLocation.Kind.REFRIGERATOR)


def test_a_day_00_carton_is_received_with_its_caution(presentation, fridge, technician, month_end):
    vials = receipt_create(location=fridge, scans=[day_00(presentation, lot="D00", serial="S1", month_end=month_end)],
                           actor=technician)

    assert len(vials) == 1
    lot = Lot.objects.get(lot_number="D00")
    assert (lot.expiry_date, lot.expiry_day_00) == (month_end, True)
    assert [(c.scan_index, c.code) for c in vials.cautions] == [(0, "expiry_day_00")]
    assert "day 00" in vials.cautions[0].detail and "tell the supplier" in vials.cautions[0].detail
    assert vials.cautions[0].detail.startswith("Scan 1: ")


def test_a_carton_with_a_real_expiry_day_is_received_without_a_caution(presentation, fridge, technician):
    vials = receipt_create(location=fridge, scans=[carton(presentation, lot="OK1", expiry=in_a_year(), serial="S1")],
                           actor=technician)

    assert vials.cautions == []
    assert Lot.objects.get(lot_number="OK1").expiry_day_00 is False


def test_the_receipt_check_cautions_a_day_00_carton_and_still_lets_the_case_through(presentation, month_end):
    check = receipt_check(scans=[
        day_00(presentation, lot="D00", serial="S1", month_end=month_end),
        carton(presentation, lot="D00", expiry=month_end, serial="S2"),
    ])

    assert check.ready
    assert len(check.lines[0].cautions) == 1 and "day 00" in check.lines[0].cautions[0]
    assert check.lines[1].cautions == []


def test_the_scan_card_warns_amber_of_day_00_on_a_carton_not_yet_received(presentation, month_end):
    result = scan_lookup(day_00(presentation, lot="D00", serial="S1", month_end=month_end))

    warnings = {w["code"]: w for w in result.warnings}
    assert warnings["expiry_day_00"]["severity"] == "amber"
    assert result.receivable


def test_the_scan_card_does_not_repeat_day_00_on_a_vial_already_received(presentation, month_end):
    vial = VialFactory(presentation=presentation, lot__lot_number="D00", lot__expiry_date=month_end,
                       lot__expiry_day_00=True, serial="S1")

    result = scan_lookup(day_00(presentation, lot="D00", serial="S1", month_end=month_end))

    assert result.vial == vial
    assert "expiry_day_00" not in [w["code"] for w in result.warnings]


# --- a lot containing "91", and our own labels read without their separator ---------------------


def test_an_unserialised_carton_whose_lot_contains_91_is_received_under_that_lot(presentation, fridge, technician):
    # The lot is the last field, so no separator follows it: "91" inside it is not a new field.
    raw = f"01{presentation.gtin}17{in_a_year():%y%m%d}10B0391X7"

    vials = receipt_create(location=fridge, scans=[raw], actor=technician)

    assert vials[0].lot.lot_number == "B0391X7"
    assert vials[0].serial_is_internal


def test_our_own_label_read_without_its_separator_is_still_refused_on_receipt(presentation, fridge, technician):
    from labels.exceptions import InvalidBarcode
    from tests.inventory.helpers import stock_state

    vial = VialFactory(presentation=presentation, lot__lot_number="LOT1", serial="INT-0A1B2C3D4E5F",
                       serial_is_internal=True)
    before = stock_state()

    with pytest.raises(InvalidBarcode) as refused:
        receipt_create(location=fridge, actor=technician,
                       scans=[f"01{presentation.gtin}17{vial.lot.expiry_date:%y%m%d}10LOT191INT-0A1B2C3D4E5F"])

    assert refused.value.code == "internal_label"
    assert stock_state() == before
