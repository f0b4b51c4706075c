"""POST /api/scan (what is this carton) and POST /api/receipts (receive these cartons)."""

from datetime import timedelta

import pytest

from inventory.models import Lot, StorageLocation, Vial, local_today
from labels.gs1 import hri
from tests.api.helpers import ALL_FOUR, ROLES, STOCK, expected_status
from tests.factories import LotFactory, PresentationFactory, RecallFactory, RecallLotFactory, StorageLocationFactory, VialFactory
from tests.inventory.helpers import carton, carton_of, in_a_year, last_history, stock_state

pytestmark = pytest.mark.django_db


def scan(client, raw):
    return client.post("/api/scan", {"barcode": raw})


def warning_codes(response) -> list[str]:
    return [w["code"] for w in response.json()["warnings"]]


# --- scan --------------------------------------------------------------------------------------


def test_a_scan_of_a_received_vial_returns_its_data_product_lot_and_vial(tech_client):
    vial = VialFactory(presentation__product__brand="Privigen", lot__lot_number="P100263", serial="SN42")

    response = scan(tech_client, carton_of(vial))

    assert response.status_code == 200
    body = response.json()
    assert (body["gtin"], body["lot"], body["serial"]) == (vial.presentation.gtin, "P100263", "SN42")
    assert body["expiry"] == vial.lot.expiry_date.isoformat()
    assert body["product"]["product"]["brand"] == "Privigen"
    assert body["lot_record"]["id"] == vial.lot_id
    assert body["vial"]["id"] == vial.pk
    assert body["warnings"] == []
    assert body["actions"] == ["dispense", "move", "waste", "return_to_supplier"]


def test_a_scan_by_token_is_two_queries_the_token_with_its_roles_and_the_vial_with_all_it_shows(
        technician, django_assert_num_queries):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    vial = VialFactory(presentation__product__brand="Privigen", lot__lot_number="P100263")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(technician)[1]}")

    with django_assert_num_queries(2):
        body = scan(client, carton_of(vial)).json()

    # The lot's product is the presentation's, read once and shown in both places.
    assert body["lot_record"]["product"]["brand"] == body["product"]["product"]["brand"] == "Privigen"
    assert body["actions"] == ["dispense", "move", "waste", "return_to_supplier"]

@pytest.mark.parametrize("form", ["element_string", "symbology", "hri", "digital_link", "stand_in"])
def test_every_form_a_scanner_sends_finds_the_same_vial(form, tech_client):
    vial = VialFactory()
    fields = dict(gtin=vial.presentation.gtin, expiry=vial.lot.expiry_date, lot=vial.lot.lot_number, serial=vial.serial)
    raw = {
        "element_string": carton_of(vial),
        "symbology": "]d2" + carton_of(vial),
        "hri": hri(**fields),
        "digital_link": f"https://id.example.com/01/{vial.presentation.gtin}/10/{vial.lot.lot_number}/21/{vial.serial}"
                        f"?17={vial.lot.expiry_date:%y%m%d}",
        "stand_in": carton_of(vial).replace("\x1d", "<GS>"),
    }[form]

    response = scan(tech_client, raw)

    assert response.status_code == 200, response.content
    assert response.json()["vial"]["id"] == vial.pk


def test_a_scan_changes_nothing(tech_client):
    vial = VialFactory()
    before = stock_state()

    scan(tech_client, carton_of(vial))

    assert stock_state() == before


def _expired():
    return carton_of(VialFactory(lot__expiry_date=local_today() - timedelta(days=1)))


def _beyond_use_date():
    return carton_of(VialFactory(beyond_use_date=local_today() - timedelta(days=1)))


def _quarantined():
    return carton_of(VialFactory(lot__status=Lot.Status.QUARANTINED, status=Vial.Status.QUARANTINED))


def _recalled():
    vial = VialFactory(lot__status=Lot.Status.RECALLED, status=Vial.Status.QUARANTINED)
    RecallLotFactory(recall=RecallFactory(), lot=vial.lot)
    return carton_of(vial)


def _unknown_product():
    return "0109501101530003" + "10L1\x1d21S1"


def _not_received():
    return carton(PresentationFactory(), lot="L1", expiry=in_a_year(), serial="NEW")


def _already_dispensed():
    return carton_of(VialFactory(status=Vial.Status.DISPENSED, location=None))


WARNINGS = {
    "expired": (_expired, "red"),
    "beyond_use_date": (_beyond_use_date, "red"),
    "quarantined": (_quarantined, "red"),
    "recalled": (_recalled, "red"),
    "unknown_product": (_unknown_product, "red"),
    "not_received": (_not_received, "amber"),
    "already_dispensed": (_already_dispensed, "red"),
}


@pytest.mark.parametrize("code", WARNINGS)
def test_each_problem_with_a_carton_is_a_warning_with_a_colour(code, tech_client):
    make, severity = WARNINGS[code]

    response = scan(tech_client, make())

    assert response.status_code == 200, response.content
    [warning] = response.json()["warnings"]
    assert (warning["code"], warning["severity"]) == (code, severity)
    assert warning["detail"]
    assert "dispense" not in response.json()["actions"]


GOOD_VIAL_ACTIONS = {
    "technician": ["dispense", "move", "waste", "return_to_supplier"],
    "pharmacist": ["dispense", "move", "waste", "return_to_supplier", "quarantine_lot"],
    "auditor": [],
    "recall_coordinator": [],
}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_scan_and_is_offered_the_actions_of_its_role(role, client_for):
    vial = VialFactory()

    response = scan(client_for(role), carton_of(vial))

    assert response.status_code == expected_status(role, ALL_FOUR, 200)
    if response.status_code == 200:
        assert response.json()["actions"] == GOOD_VIAL_ACTIONS[role]


@pytest.mark.parametrize(
    ("role", "actions"),
    [("technician", ["receive"]), ("pharmacist", ["receive"]), ("auditor", []), ("recall_coordinator", [])],
)
def test_a_carton_not_yet_received_offers_receiving_to_stock_roles_only(role, actions, client_for):
    response = scan(client_for(role), _not_received())

    assert response.json()["actions"] == actions


@pytest.mark.parametrize(
    "raw",
    [
        "hello world",
        "0109521234567891",  # wrong GTIN check digit, bare
        "010952123456789317310230",  # wrong check digit with an expiry
        "17310230" + "10LOT1",  # no GTIN
        "(01)09501101530003(17)310231",  # 31 February
        "0109501101530003" + "2312345",  # unknown application identifier
        "0109501101530003" + "1",  # truncated application identifier
        "]d2",
        "https://id.example.com/no-gtin-here",
        "\x1d\x1d",
    ],
)
def test_a_scan_that_is_not_a_gs1_barcode_is_an_invalid_barcode(raw, tech_client):
    response = scan(tech_client, raw)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_barcode"
    assert response.json()["detail"]


@pytest.mark.parametrize("body", [{}, {"barcode": ""}, {"barcode": None}, {"barcode": ["x"]}, {"barcode": "x" * 600}])
def test_a_scan_request_without_a_usable_barcode_field_is_invalid(body, tech_client):
    response = tech_client.post("/api/scan", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


# --- receipts ----------------------------------------------------------------------------------


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-A", kind=StorageLocation.Kind.REFRIGERATOR)


@pytest.fixture
def presentation():
    return PresentationFactory()


def receive(client, location, scans):
    return client.post("/api/receipts", {"location": location, "scans": scans})


def test_a_receipt_creates_the_vials_and_returns_them_in_scan_order(technician, tech_client, fridge, presentation):
    expiry = in_a_year()
    scans = [carton(presentation, lot="L1", expiry=expiry, serial=s) for s in ("B", "A", "C")]

    response = receive(tech_client, "FRIDGE-A", scans)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["received"] == 3
    assert [v["serial"] for v in body["vials"]] == ["B", "A", "C"]
    assert {v["location"]["code"] for v in body["vials"]} == {"FRIDGE-A"}
    assert {v["lot"]["lot_number"] for v in body["vials"]} == {"L1"}
    vial = Vial.objects.get(serial="B")
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (technician, "received into FRIDGE-A")


@pytest.mark.parametrize("role", ROLES)
def test_only_technicians_and_pharmacists_receive(role, client_for, fridge, presentation):
    before = stock_state()

    response = receive(client_for(role), "FRIDGE-A", [carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")])

    assert response.status_code == expected_status(role, STOCK, 201)
    if response.status_code != 201:
        assert stock_state() == before


def test_a_receipt_into_an_unknown_location_is_a_404_that_changes_nothing(tech_client, presentation):
    before = stock_state()

    response = receive(tech_client, "NOWHERE", [carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")])

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_location"
    assert stock_state() == before


def test_a_receipt_of_an_unknown_gtin_is_refused(tech_client, fridge):
    before = stock_state()

    response = receive(tech_client, "FRIDGE-A", [_unknown_product()])

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_product"
    assert response.json()["gtin"] == "09501101530003"
    assert stock_state() == before


def test_a_receipt_of_a_known_serial_is_a_409_suspect_duplicate(tech_client, fridge):
    vial = VialFactory()
    before = stock_state()

    response = receive(tech_client, "FRIDGE-A", [carton_of(vial)])

    assert response.status_code == 409
    assert response.json()["code"] == "suspect_duplicate"
    assert stock_state() == before


def test_a_receipt_of_a_lot_with_another_expiry_is_a_409(tech_client, fridge, presentation):
    lot = LotFactory(product=presentation.product, lot_number="L1")
    before = stock_state()

    response = receive(tech_client, "FRIDGE-A", [carton(presentation, lot="L1", expiry=lot.expiry_date + timedelta(days=1),
                                                        serial="S1")])

    assert response.status_code == 409
    assert response.json()["code"] == "lot_expiry_conflict"
    assert stock_state() == before


def test_a_receipt_with_one_bad_scan_receives_nothing_and_names_the_scan(tech_client, fridge, presentation):
    good = [carton(presentation, lot="L1", expiry=in_a_year(), serial=f"G{n}") for n in range(3)]
    before = stock_state()

    response = receive(tech_client, "FRIDGE-A", [*good, "garbage"])

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["scan_index"], body["scan"]) == ("invalid_barcode", 3, "garbage")
    assert body["detail"].startswith("Scan 4:")
    assert stock_state() == before


def test_a_receipt_of_an_unserialised_carton_gets_an_internal_serial(tech_client, fridge, presentation):
    response = receive(tech_client, "FRIDGE-A", [carton(presentation, lot="L1", expiry=in_a_year())])

    assert response.status_code == 201
    [vial] = response.json()["vials"]
    assert vial["serial_is_internal"] is True
    assert vial["serial"].startswith("INT-")


@pytest.mark.parametrize(
    "body",
    [{}, {"location": "FRIDGE-A"}, {"location": "FRIDGE-A", "scans": []}, {"location": "FRIDGE-A", "scans": "0109"},
     {"location": "FRIDGE-A", "scans": [""]}, {"location": "FRIDGE-A", "scans": [{"a": 1}]},
     {"location": ["FRIDGE-A"], "scans": ["x"]}, {"scans": ["x"]}],
)
def test_a_receipt_request_of_the_wrong_shape_is_invalid(body, tech_client, fridge):
    before = stock_state()

    response = tech_client.post("/api/receipts", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert stock_state() == before


# --- checking a case before receiving it -------------------------------------------------------


def test_a_case_is_checked_line_by_line_with_exact_totals_and_nothing_received(tech_client):
    presentation = PresentationFactory(product__brand="Privigen", grams="2.5")
    scans = [carton(presentation, lot="L1", expiry=in_a_year(), serial=f"S{n}") for n in range(3)]
    scans.append(scans[0])

    response = tech_client.post("/api/receipts/check", {"scans": scans})

    assert response.status_code == 200
    body = response.json()
    assert [line["problem"]["code"] if line["problem"] else None for line in body["lines"]] == [None, None, None, "repeated_in_case"]
    assert body["lines"][0] | {"cautions": []} == {
        "index": 0, "gtin": presentation.gtin, "brand": "Privigen", "grams": "2.5", "lot": "L1",
        "expiry": in_a_year().isoformat(), "serial": "S0", "problem": None, "cautions": [],
    }
    assert body["totals"] == [{"brand": "Privigen", "lot": "L1", "vials": 3, "grams": "7.5"}]
    assert (body["cartons"], body["ready"]) == (4, False)
    assert not Vial.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_only_stock_roles_check_a_case(role, client_for):
    response = client_for(role).post("/api/receipts/check", {"scans": []})
    assert response.status_code == expected_status(role, STOCK, 200)


def test_a_dispensed_vial_scan_names_the_dispense_it_is_out_on(tech_client):
    from tests.factories import DispenseFactory

    dispense = DispenseFactory()
    response = scan(tech_client, carton_of(dispense.vial))
    body = response.json()
    assert body["live_dispense"] == dispense.pk
    assert body["actions"][:2] == ["return_to_stock", "waste_dispensed"]
    assert scan(tech_client, carton_of(VialFactory())).json()["live_dispense"] is None


# --- expiry printed with day 00 ----------------------------------------------------------------


def _day_00_carton(presentation, *, lot, serial):
    month = in_a_year().replace(day=1)
    return f"01{presentation.gtin}17{month:%y%m}00" + f"10{lot}\x1d21{serial}"


def test_a_day_00_carton_is_received_and_the_answer_carries_its_caution(tech_client, fridge, presentation):
    response = receive(tech_client, "FRIDGE-A", [
        carton(presentation, lot="L0", expiry=in_a_year(), serial="A"),
        _day_00_carton(presentation, lot="L00", serial="B"),
    ])

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["received"] == 2
    assert [(c["scan_index"], c["code"]) for c in body["cautions"]] == [(1, "expiry_day_00")]
    assert body["cautions"][0]["detail"].startswith("Scan 2: ")


def test_the_case_check_and_the_scan_card_both_show_the_day_00_caution(tech_client, presentation):
    raw = _day_00_carton(presentation, lot="L00", serial="B")

    check = tech_client.post("/api/receipts/check", {"scans": [raw]}).json()
    card = scan(tech_client, raw).json()

    assert check["ready"] is True
    assert "day 00" in check["lines"][0]["cautions"][0]
    assert {"code": "expiry_day_00", "severity": "amber"}.items() <= next(
        w for w in card["warnings"] if w["code"] == "expiry_day_00").items()
    assert "receive" in card["actions"]
