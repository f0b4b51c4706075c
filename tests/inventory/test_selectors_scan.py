"""Reads: a scan resolved to a vial, what the scan station shows for it, and the expiring-stock report."""

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.exceptions import UnknownProduct, UnknownVial
from inventory.models import Lot, Vial, local_today
from inventory.selectors import expiring_stock, scan_lookup, vial_from_scan
from labels.exceptions import InvalidBarcode
from tests.factories import (
    LotFactory,
    PresentationFactory,
    ProductFactory,
    RecallFactory,
    RecallLotFactory,
    VialFactory,
)
from tests.inventory.helpers import carton, carton_of, in_a_year
from api.scan import scan_actions
from recalls.selectors import latest_recall_reference

pytestmark = pytest.mark.django_db

TECH, PHARM, AUDITOR, RECALL = {"technician"}, {"pharmacist"}, {"auditor"}, {"recall_coordinator"}


def lookup(raw: str, *, roles: set[str], today=None):
    """What the scan station gets: the facts of the scan, and the actions the API derives from
    them for these roles."""
    result = scan_lookup(raw, today=today, recall_reference=latest_recall_reference)
    result.actions = scan_actions(result, roles)
    return result


def codes(result) -> list[str]:
    return [w["code"] for w in result.warnings]


# --- vial_from_scan ------------------------------------------------------------------------------


def test_a_scan_finds_the_received_vial_by_gtin_and_serial():
    vial = VialFactory()
    VialFactory(presentation=vial.presentation, lot=vial.lot)

    assert vial_from_scan(carton_of(vial)) == vial


def test_a_scan_without_serial_finds_the_one_unserialised_vial_of_its_lot_on_the_shelf():
    vial = VialFactory(serial="INT-0001", serial_is_internal=True)
    VialFactory(presentation=vial.presentation, lot=vial.lot, status=Vial.Status.DISPENSED, location=None)

    assert vial_from_scan(carton(vial.presentation, lot=vial.lot.lot_number, expiry=vial.lot.expiry_date)) == vial


def test_a_scan_without_serial_refuses_to_guess_between_several_vials():
    vial = VialFactory(serial_is_internal=True)
    VialFactory(presentation=vial.presentation, lot=vial.lot, serial_is_internal=True)

    with pytest.raises(Exception) as refusal:
        vial_from_scan(carton(vial.presentation, lot=vial.lot.lot_number))

    assert (refusal.value.code, refusal.value.status) == ("serial_needed", 400)


def test_a_scan_of_a_gtin_not_in_the_catalog_is_an_unknown_product():
    with pytest.raises(UnknownProduct) as refusal:
        vial_from_scan("0109501101530003" + "10L1\x1d21S1")

    assert refusal.value.code == "unknown_product"


def test_a_scan_of_a_vial_never_received_is_not_received():
    presentation = PresentationFactory()

    with pytest.raises(UnknownVial) as refusal:
        vial_from_scan(carton(presentation, lot="L1", expiry=in_a_year(), serial="NEVER"))

    assert (refusal.value.code, refusal.value.status) == ("not_received", 404)


@pytest.mark.parametrize("raw", ["", "hello", "0109501101530004", "]d2", "(01)12345"])
def test_a_scan_that_is_not_a_gs1_barcode_is_an_invalid_barcode(raw):
    with pytest.raises(InvalidBarcode) as refusal:
        vial_from_scan(raw)

    assert refusal.value.code == "invalid_barcode"


# --- scan_lookup: warnings -----------------------------------------------------------------------


def test_a_good_vial_in_stock_has_no_warning():
    vial = VialFactory()

    result = lookup(carton_of(vial), roles=TECH)

    assert (result.vial, result.lot, result.presentation) == (vial, vial.lot, vial.presentation)
    assert result.warnings == []


def test_a_gtin_not_in_the_catalog_warns_unknown_product():
    result = lookup("0109501101530003" + "10L1\x1d21S1", roles=TECH)

    assert codes(result) == ["unknown_product"]
    assert result.warnings[0]["severity"] == "red"
    assert (result.presentation, result.lot, result.vial, result.actions) == (None, None, None, [])


def test_a_carton_not_yet_received_warns_not_received_and_offers_receiving():
    presentation = PresentationFactory()

    result = lookup(carton(presentation, lot="NEW", expiry=in_a_year(), serial="S1"), roles=TECH)

    assert codes(result) == ["not_received"]
    assert result.warnings[0]["severity"] == "amber"
    assert result.actions == ["receive"]


def test_an_expired_lot_warns_expired():
    today = local_today()
    vial = VialFactory(lot__expiry_date=today - timedelta(days=1))

    result = lookup(carton_of(vial), roles=TECH, today=today)

    assert "expired" in codes(result)
    assert "dispense" not in result.actions


def test_an_expired_carton_not_yet_received_warns_expired_and_offers_no_receiving():
    presentation = PresentationFactory()

    result = lookup(carton(presentation, lot="NEW", expiry=local_today() - timedelta(days=1), serial="S1"),
                         roles=TECH)

    assert codes(result) == ["expired", "not_received"]
    assert result.actions == []


def test_a_vial_past_its_beyond_use_date_warns_beyond_use_date():
    today = local_today()
    vial = VialFactory(beyond_use_date=today - timedelta(days=1))

    result = lookup(carton_of(vial), roles=TECH, today=today)

    assert codes(result) == ["beyond_use_date"]
    assert "dispense" not in result.actions


def test_a_vial_close_to_its_beyond_use_date_warns_in_amber():
    today = local_today()
    vial = VialFactory(beyond_use_date=today + timedelta(days=3))

    result = lookup(carton_of(vial), roles=TECH, today=today)

    assert result.warnings == [{"code": "beyond_use_soon", "severity": "amber", "detail": f"Use by {vial.beyond_use_date:%Y-%m-%d}."}]
    assert result.actions[0] == "dispense"


@pytest.mark.parametrize(
    ("lot_status", "vial_status"),
    [(Lot.Status.QUARANTINED, Vial.Status.QUARANTINED), (Lot.Status.RELEASED, Vial.Status.QUARANTINED)],
)
def test_a_quarantined_lot_or_vial_warns_quarantined(lot_status, vial_status):
    vial = VialFactory(lot__status=lot_status, status=vial_status)

    result = lookup(carton_of(vial), roles=TECH)

    assert codes(result) == ["quarantined"]
    assert "dispense" not in result.actions


def test_a_recalled_lot_warns_recalled_and_names_the_recall():
    vial = VialFactory(lot__status=Lot.Status.RECALLED, lot__lot_number="P1234", status=Vial.Status.QUARANTINED)
    RecallLotFactory(recall=RecallFactory(reference="FDA-2025-12"), lot=vial.lot)

    result = lookup(carton_of(vial), roles=TECH)

    assert codes(result) == ["recalled"]
    assert result.warnings[0]["detail"] == "Lot P1234 is recalled (FDA-2025-12). Put the vial in quarantine."


def test_a_carton_of_a_recalled_lot_not_yet_received_warns_recalled_and_offers_no_receiving():
    lot = LotFactory(status=Lot.Status.RECALLED)
    presentation = PresentationFactory(product=lot.product)

    result = lookup(carton(presentation, lot=lot.lot_number, serial="S1"), roles=TECH)

    assert codes(result) == ["recalled", "not_received"]
    assert result.actions == []


def test_a_dispensed_vial_warns_already_dispensed():
    vial = VialFactory(status=Vial.Status.DISPENSED, location=None)

    result = lookup(carton_of(vial), roles=TECH)

    assert codes(result) == ["already_dispensed"]


def test_a_wasted_vial_warns_not_in_stock():
    vial = VialFactory(status=Vial.Status.WASTED, location=None)

    result = lookup(carton_of(vial), roles=TECH)

    assert codes(result) == ["not_in_stock"]
    assert result.actions == []


def test_a_carton_whose_expiry_disagrees_with_the_lot_warns_of_the_mismatch():
    vial = VialFactory()
    raw = carton(vial.presentation, lot=vial.lot.lot_number, expiry=vial.lot.expiry_date + timedelta(days=1),
                 serial=vial.serial)

    result = lookup(raw, roles=TECH)

    assert codes(result) == ["lot_expiry_mismatch"]


def test_an_unserialised_carton_with_several_vials_on_the_shelf_asks_for_the_vials_own_label():
    vial = VialFactory(serial_is_internal=True)
    VialFactory(presentation=vial.presentation, lot=vial.lot, serial_is_internal=True)

    result = lookup(carton(vial.presentation, lot=vial.lot.lot_number), roles=TECH)

    assert codes(result) == ["serial_needed"]
    assert result.lot == vial.lot


def test_an_invalid_barcode_is_refused():
    with pytest.raises(InvalidBarcode):
        lookup("not a barcode", roles=TECH)


# --- scan_lookup: actions per role ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "actions"),
    [
        (TECH, ["dispense", "move", "waste", "return_to_supplier"]),
        (PHARM, ["dispense", "move", "waste", "return_to_supplier", "quarantine_lot"]),
        (AUDITOR, []),
        (RECALL, []),
        (set(), []),
        ({"superuser"}, ["dispense", "move", "waste", "return_to_supplier", "quarantine_lot"]),
    ],
)
def test_the_actions_offered_for_a_good_vial_depend_on_the_role(roles, actions):
    vial = VialFactory()

    assert lookup(carton_of(vial), roles=roles).actions == actions


@pytest.mark.parametrize(
    ("roles", "actions"),
    [
        (TECH, ["move", "waste", "return_to_supplier"]),
        (PHARM, ["move", "waste", "return_to_supplier", "release_lot"]),
        (AUDITOR, []),
        (RECALL, []),
    ],
)
def test_the_actions_offered_for_a_quarantined_vial_depend_on_the_role(roles, actions):
    vial = VialFactory(lot__status=Lot.Status.QUARANTINED, status=Vial.Status.QUARANTINED)

    assert lookup(carton_of(vial), roles=roles).actions == actions


@pytest.mark.parametrize(
    ("roles", "actions"),
    [
        (TECH, ["return_to_stock", "waste_dispensed"]),
        (PHARM, ["return_to_stock", "waste_dispensed", "quarantine_lot"]),
        (AUDITOR, []),
        (RECALL, []),
    ],
)
def test_the_actions_offered_for_a_dispensed_vial_depend_on_the_role(roles, actions):
    vial = VialFactory(status=Vial.Status.DISPENSED, location=None)

    assert lookup(carton_of(vial), roles=roles).actions == actions


@pytest.mark.parametrize(("roles", "actions"), [(TECH, ["receive"]), (PHARM, ["receive"]), (AUDITOR, []), (RECALL, [])])
def test_only_stock_roles_are_offered_to_receive_a_new_carton(roles, actions):
    presentation = PresentationFactory()

    assert lookup(carton(presentation, lot="L1", expiry=in_a_year(), serial="S1"), roles=roles).actions == actions


# --- expiring stock ------------------------------------------------------------------------------


def test_expiring_stock_lists_vials_on_the_shelf_within_the_horizon_first_to_expire_first():
    today = local_today()
    gamma = PresentationFactory(product=ProductFactory(brand="Gammagard Liquid"), grams=Decimal("10"))
    privigen = PresentationFactory(product=ProductFactory(brand="Privigen"), grams=Decimal("20"))
    late = VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=20))
    soon = VialFactory(presentation=privigen, beyond_use_date=today + timedelta(days=2))
    past = VialFactory(presentation=gamma, beyond_use_date=today - timedelta(days=1))
    VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=31))  # beyond the horizon
    VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=1), status=Vial.Status.DISPENSED)
    VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=1), status=Vial.Status.WASTED)

    vials, by_brand = expiring_stock(within_days=30, today=today)

    assert list(vials) == [past, soon, late]
    assert by_brand == [
        {"brand": "Gammagard Liquid", "grams": Decimal("20"), "vials": 2},
        {"brand": "Privigen", "grams": Decimal("20"), "vials": 1},
    ]


def test_expiring_stock_within_zero_days_is_what_is_due_today_or_overdue():
    today = local_today()
    due = VialFactory(beyond_use_date=today)
    VialFactory(beyond_use_date=today + timedelta(days=1))

    vials, by_brand = expiring_stock(within_days=0, today=today)

    assert list(vials) == [due]
    assert [row["vials"] for row in by_brand] == [1]


def test_a_scan_with_a_dropped_separator_is_reported_as_the_reading_that_names_the_vial():
    vial = VialFactory(lot__lot_number="ABC", serial="XYZ")
    raw = "01" + vial.presentation.gtin + "17" + vial.lot.expiry_date.strftime("%y%m%d") + "10ABC21XYZ"

    result = lookup(raw, roles=TECH)

    assert result.vial == vial
    assert (result.scan.lot, result.scan.serial) == ("ABC", "XYZ")
    assert result.warnings == []
