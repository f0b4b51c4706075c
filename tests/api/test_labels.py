"""Vial labels as a DSCSA check reads them: rendered by the API, decoded with zxing-cpp, parsed back.

A label repeats the manufacturer's product identifier, (01)(17)(10)(21), only when the carton had
a serial; the pharmacy's own id for unserialised stock is in the company-internal (91), never (21);
(17) is always the manufacturer's expiry, and an earlier beyond-use date is printed as such."""

import io
from datetime import date, timedelta
from xml.dom import minidom

import pytest
import zxingcpp
from PIL import Image

from inventory.models import Vial, local_today
from inventory.selectors import scan_lookup, vial_from_scan
from labels.gs1 import GS, parse_scan
from tests.factories import LotFactory, PresentationFactory, StorageLocationFactory, VialFactory

pytestmark = pytest.mark.django_db

GAMMAGARD = "00309442700050"


def decoded(client, vial, fmt="png") -> dict:
    response = client.get(f"/api/vials/{vial.pk}/label", {"format": fmt})
    assert response.status_code == 200, response.content
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return {result.format.name: result for result in zxingcpp.read_barcodes(image)}


def svg_lines(client, vial) -> list[str]:
    response = client.get(f"/api/vials/{vial.pk}/label", {"format": "svg"})
    root = minidom.parseString(response.content).documentElement
    return [node.firstChild.data for node in root.getElementsByTagName("text")]


@pytest.fixture
def gammagard():
    return PresentationFactory(gtin=GAMMAGARD)


def test_a_serialised_vial_label_decodes_to_the_manufacturers_01_17_10_21(tech_client, gammagard):
    vial = VialFactory(presentation=gammagard, lot__lot_number="LE12A045", lot__expiry_date=date(2027, 6, 30),
                       serial="SN0001")

    found = decoded(tech_client, vial)

    expected = f"01{GAMMAGARD}1727063010LE12A045{GS}21SN0001".encode()
    for symbol in ("DataMatrix", "Code128"):
        assert found[symbol].content_type == zxingcpp.ContentType.GS1
        assert found[symbol].bytes == expected
    assert found["DataMatrix"].text == f"(01){GAMMAGARD}(17)270630(10)LE12A045(21)SN0001"


def test_an_unserialised_vial_label_carries_no_serial_in_21_and_its_internal_id_in_91(tech_client, gammagard):
    vial = VialFactory(presentation=gammagard, lot__lot_number="LE12A045", lot__expiry_date=date(2027, 6, 30),
                       serial="INT-0A1B2C3D4E5F", serial_is_internal=True)

    found = decoded(tech_client, vial)

    for symbol in ("DataMatrix", "Code128"):
        assert found[symbol].text == f"(01){GAMMAGARD}(17)270630(10)LE12A045(91)INT-0A1B2C3D4E5F"
        scan = parse_scan(found[symbol].symbology_identifier + found[symbol].bytes.decode("ascii"))
        assert scan.serial is None
        assert scan.internal_serial == "INT-0A1B2C3D4E5F"
    assert "Internal ID INT-0A1B2C3D4E5F (91)" in svg_lines(tech_client, vial)


def test_scanning_our_own_label_of_an_unserialised_vial_finds_that_vial(tech_client, gammagard):
    lot = LotFactory(product=gammagard.product, lot_number="LE12A045")
    # Two unserialised vials of one lot on the shelf: the carton cannot tell them apart, our label can.
    vials = [VialFactory(presentation=gammagard, lot=lot, serial=f"INT-00000000000{i}", serial_is_internal=True)
             for i in (1, 2)]
    found = decoded(tech_client, vials[1])
    raw = found["DataMatrix"].symbology_identifier + found["DataMatrix"].bytes.decode("ascii")

    assert vial_from_scan(raw) == vials[1]
    result = scan_lookup(raw)
    assert result.vial == vials[1]
    assert [w["code"] for w in result.warnings] == []


def test_a_label_keeps_the_manufacturers_expiry_in_17_and_prints_the_earlier_beyond_use_date(tech_client, gammagard):
    expiry = local_today() + timedelta(days=300)
    beyond_use = local_today() + timedelta(days=20)
    vial = VialFactory(presentation=gammagard, lot__expiry_date=expiry, beyond_use_date=beyond_use, serial="RT1")

    found = decoded(tech_client, vial)

    assert parse_scan("]d2" + found["DataMatrix"].bytes.decode("ascii")).expiry == expiry
    lines = svg_lines(tech_client, vial)
    assert f"Use by {beyond_use:%Y-%m-%d} (beyond-use date)" in lines
    assert any(f"Exp {expiry:%Y-%m-%d}" in line for line in lines)


def test_a_label_without_an_earlier_beyond_use_date_prints_no_use_by_line(tech_client, gammagard):
    vial = VialFactory(presentation=gammagard, serial="FRIDGE1")

    assert not any(line.startswith("Use by") for line in svg_lines(tech_client, vial))


def test_a_lot_whose_carton_said_day_00_is_relabelled_with_day_00(tech_client, gammagard):
    vial = VialFactory(presentation=gammagard, lot__lot_number="OLD1", lot__expiry_date=date(2027, 12, 31),
                       lot__expiry_day_00=True, serial="S00")

    found = decoded(tech_client, vial)

    assert found["DataMatrix"].text == f"(01){GAMMAGARD}(17)271200(10)OLD1(21)S00"
    assert found["Code128"].text == f"(01){GAMMAGARD}(17)271200(10)OLD1(21)S00"


def test_zpl_of_an_unserialised_vial_has_no_21_and_ends_with_91(tech_client, gammagard):
    vial = VialFactory(presentation=gammagard, lot__lot_number="Z1", lot__expiry_date=date(2027, 6, 30),
                       serial="INT-ABC", serial_is_internal=True)

    zpl = tech_client.get(f"/api/vials/{vial.pk}/label", {"format": "zpl"}).content.decode()

    assert "(21)" not in zpl
    assert f"(01){GAMMAGARD}(17)270630(10)Z1(91)INT-ABC" in zpl
    assert "10Z1_191INT-ABC" in zpl  # DataMatrix data: FNC1 after the lot, then (91)


def test_receiving_our_own_label_is_refused_and_nothing_is_received(tech_client, gammagard):
    vial = VialFactory(presentation=gammagard, lot__lot_number="LE12A045", lot__expiry_date=date(2027, 6, 30),
                       serial="INT-0A1B2C3D4E5F", serial_is_internal=True)
    found = decoded(tech_client, vial)
    location = StorageLocationFactory(code="FRIDGE-A")
    before = Vial.objects.count()

    response = tech_client.post(
        "/api/receipts",
        {"location": location.code, "scans": ["]d2" + found["DataMatrix"].bytes.decode("ascii")]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "internal_label"
    assert Vial.objects.count() == before
