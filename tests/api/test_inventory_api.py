"""Products, presentations, lots, locations and vials over the API: reads, filters, pagination,
actions, who may call what, and flat query counts."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from inventory.models import Lot, Manufacturer, Presentation, Product, StorageLocation, Vial, local_today
from tests.api.helpers import ALL_FOUR, PHARMACIST_ONLY, ROLES, STOCK, assert_constant_queries, expected_status
from tests.factories import (
    LotFactory,
    ManufacturerFactory,
    PresentationFactory,
    ProductFactory,
    StorageLocationFactory,
    VialFactory,
    gtin_with_check_digit,
)
from tests.inventory.helpers import UTC, freeze_now, last_history, stock_state

pytestmark = pytest.mark.django_db

Kind = StorageLocation.Kind


def catalog_state() -> dict:
    return {
        "rows": [m.objects.count() for m in (Manufacturer, Product, Presentation, StorageLocation)],
        "products": list(Product.objects.order_by("pk").values_list("brand", "room_temp_allowance_days")),
        "locations": list(StorageLocation.objects.order_by("pk").values_list("name", "code", "kind", "active")),
        "history": [m.history.count() for m in (Product, Presentation, StorageLocation)],
    }


# --- who may read ------------------------------------------------------------------------------

READ_URLS = {
    "products": lambda v: "/api/products/",
    "product": lambda v: f"/api/products/{v.presentation.product_id}/",
    "presentations": lambda v: "/api/presentations/",
    "presentation": lambda v: f"/api/presentations/{v.presentation_id}/",
    "lots": lambda v: "/api/lots/",
    "lot": lambda v: f"/api/lots/{v.lot_id}/",
    "locations": lambda v: "/api/locations/",
    "location": lambda v: f"/api/locations/{v.location_id}/",
    "vials": lambda v: "/api/vials/",
    "vial": lambda v: f"/api/vials/{v.pk}/",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", READ_URLS)
def test_every_role_reads_inventory_and_no_one_else_does(endpoint, role, client_for):
    vial = VialFactory()

    response = client_for(role).get(READ_URLS[endpoint](vial))

    assert response.status_code == expected_status(role, ALL_FOUR, 200)
    if response.status_code != 200:
        assert response.json()["code"] in ("not_authenticated", "permission_denied")


# --- who may write -----------------------------------------------------------------------------


def _write_cases():
    def product_create(client, ctx):
        return client.post("/api/products/", {"brand": "Newgam", "manufacturer_id": ctx["vial"].presentation.product.manufacturer_id,
                                              "route": "IV"})

    def product_update(client, ctx):
        return client.patch(f"/api/products/{ctx['vial'].presentation.product_id}/", {"room_temp_allowance_days": 7})

    def presentation_create(client, ctx):
        return client.post("/api/presentations/", {"product_id": ctx["vial"].presentation.product_id,
                                                   "gtin": gtin_with_check_digit("0952999999999"), "grams": "5"})

    def presentation_update(client, ctx):
        return client.patch(f"/api/presentations/{ctx['vial'].presentation_id}/", {"volume_ml": "50"})

    def location_create(client, ctx):
        return client.post("/api/locations/", {"name": "Fridge C", "code": "FRIDGE-C", "kind": "refrigerator"})

    def location_update(client, ctx):
        return client.patch(f"/api/locations/{ctx['vial'].location_id}/", {"name": "Renamed"})

    def lot_quarantine(client, ctx):
        return client.post(f"/api/lots/{ctx['vial'].lot_id}/quarantine", {"reason": "excursion"})

    def lot_release(client, ctx):
        return client.post(f"/api/lots/{ctx['quarantined'].lot_id}/release", {"reason": "cleared"})

    def vial_move(client, ctx):
        return client.post(f"/api/vials/{ctx['vial'].pk}/move", {"location": "FRIDGE-B"})

    def vial_waste(client, ctx):
        return client.post(f"/api/vials/{ctx['vial'].pk}/waste", {"reason": "dropped"})

    def vial_return(client, ctx):
        return client.post(f"/api/vials/{ctx['vial'].pk}/return", {"reason": "short-dated"})

    return {
        "product_create": (product_create, PHARMACIST_ONLY, 201),
        "product_update": (product_update, PHARMACIST_ONLY, 200),
        "presentation_create": (presentation_create, PHARMACIST_ONLY, 201),
        "presentation_update": (presentation_update, PHARMACIST_ONLY, 200),
        "location_create": (location_create, PHARMACIST_ONLY, 201),
        "location_update": (location_update, PHARMACIST_ONLY, 200),
        "lot_quarantine": (lot_quarantine, PHARMACIST_ONLY, 200),
        "lot_release": (lot_release, PHARMACIST_ONLY, 200),
        "vial_move": (vial_move, STOCK, 200),
        "vial_waste": (vial_waste, STOCK, 200),
        "vial_return": (vial_return, STOCK, 200),
    }


WRITES = _write_cases()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("write", WRITES)
def test_only_the_right_roles_change_inventory(write, role, client_for):
    ctx = {
        "vial": VialFactory(location__code="FRIDGE-A"),
        "quarantined": VialFactory(lot__status=Lot.Status.QUARANTINED, status=Vial.Status.QUARANTINED),
    }
    StorageLocationFactory(code="FRIDGE-B")
    call, allowed, ok = WRITES[write]
    before = (stock_state(), catalog_state())

    response = call(client_for(role), ctx)

    assert response.status_code == expected_status(role, allowed, ok), response.content
    if response.status_code != ok:
        assert (stock_state(), catalog_state()) == before


@pytest.mark.parametrize("role", ROLES)
def test_nobody_deletes_catalog_rows_or_vials(role, client_for):
    vial = VialFactory()
    for url in (f"/api/products/{vial.presentation.product_id}/", f"/api/presentations/{vial.presentation_id}/",
                f"/api/locations/{vial.location_id}/", f"/api/lots/{vial.lot_id}/", f"/api/vials/{vial.pk}/"):
        response = client_for(role).delete(url)

        assert response.status_code in (401, 403, 405)
    assert Vial.objects.count() == 1


# --- products and presentations ----------------------------------------------------------------


def test_products_list_their_presentations_and_manufacturer(tech_client):
    product = ProductFactory(brand="Privigen", manufacturer=ManufacturerFactory(name="CSL Behring"))
    PresentationFactory(product=product, grams=Decimal("10"))
    PresentationFactory(product=product, grams=Decimal("20"))

    body = tech_client.get("/api/products/").json()

    assert body["count"] == 1
    [row] = body["results"]
    assert (row["brand"], row["manufacturer"]) == ("Privigen", "CSL Behring")
    assert [p["grams"] for p in row["presentations"]] == ["10.00", "20.00"]
    assert "manufacturer_id" not in row


@pytest.mark.parametrize(
    ("query", "brands"),
    [("brand=gam", ["Gammagard Liquid", "Gamunex-C"]), ("route=SC", ["Hizentra"]), ("manufacturer=takeda", ["Gammagard Liquid"]),
     ("ordering=-brand", ["Hizentra", "Gamunex-C", "Gammagard Liquid"])],
)
def test_products_filter_by_brand_route_and_manufacturer(query, brands, auditor_client):
    ProductFactory(brand="Gammagard Liquid", manufacturer=ManufacturerFactory(name="Takeda"))
    ProductFactory(brand="Gamunex-C", manufacturer=ManufacturerFactory(name="Grifols"))
    ProductFactory(brand="Hizentra", route=Product.Route.SC, manufacturer=ManufacturerFactory(name="CSL Behring"))

    body = auditor_client.get(f"/api/products/?{query}").json()

    assert [row["brand"] for row in body["results"]] == brands


def test_a_pharmacist_adds_a_product_and_the_history_says_who(pharmacist, pharmacist_client):
    maker = ManufacturerFactory(name="Kedrion")

    response = pharmacist_client.post("/api/products/", {"brand": "Gammaked", "manufacturer_id": maker.pk, "route": "IV",
                                                         "room_temp_allowance_days": 180})

    assert response.status_code == 201, response.content
    product = Product.objects.get(brand="Gammaked")
    assert response.json()["id"] == product.pk
    row = last_history(product)
    assert (row.history_user, row.history_change_reason) == (pharmacist, "catalog: created")


def test_a_pharmacist_edits_a_product_and_the_history_says_who(pharmacist, pharmacist_client):
    product = ProductFactory(room_temp_allowance_days=None)

    response = pharmacist_client.patch(f"/api/products/{product.pk}/", {"room_temp_allowance_days": 30,
                                                                       "may_return_to_fridge": True})

    assert response.status_code == 200
    product.refresh_from_db()
    assert (product.room_temp_allowance_days, product.may_return_to_fridge) == (30, True)
    row = last_history(product)
    assert (row.history_user, row.history_change_reason) == (pharmacist, "catalog: edited")


def test_a_presentation_with_a_wrong_gtin_check_digit_is_refused(pharmacist_client):
    product = ProductFactory()
    good = gtin_with_check_digit("0952000000777")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    before = catalog_state()

    response = pharmacist_client.post("/api/presentations/", {"product_id": product.pk, "gtin": bad, "grams": "10"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "check digit" in response.json()["detail"]
    assert catalog_state() == before


@pytest.mark.parametrize("ndc", ["0944-2700-05", "00944-2700-05", "000944-2700-05"])
def test_a_presentation_keeps_its_ndc_as_printed_in_10_11_or_12_digits(pharmacist_client, ndc):
    product = ProductFactory()

    response = pharmacist_client.post("/api/presentations/", {
        "product_id": product.pk, "gtin": gtin_with_check_digit("0952000000778"), "grams": "10", "ndc": ndc})

    assert response.status_code == 201, response.content
    assert response.json()["ndc"] == ndc


def test_a_presentation_with_an_ndc_in_no_known_format_is_refused(pharmacist_client):
    product = ProductFactory()
    before = catalog_state()

    response = pharmacist_client.post("/api/presentations/", {
        "product_id": product.pk, "gtin": gtin_with_check_digit("0952000000779"), "grams": "10", "ndc": "944-2700-05"})

    assert response.status_code == 400
    assert "segments 3-4-2" in response.json()["detail"]
    assert catalog_state() == before


def test_a_presentation_gtin_is_unique(pharmacist_client):
    presentation = PresentationFactory()
    before = catalog_state()

    response = pharmacist_client.post("/api/presentations/", {"product_id": presentation.product_id,
                                                              "gtin": presentation.gtin, "grams": "10"})

    assert response.status_code == 400
    assert "gtin" in response.json()["errors"]
    assert catalog_state() == before


def test_presentations_filter_by_gtin_and_brand(tech_client):
    wanted = PresentationFactory(product=ProductFactory(brand="Octagam 10%"))
    PresentationFactory(product=ProductFactory(brand="Panzyga"))

    by_gtin = tech_client.get(f"/api/presentations/?gtin={wanted.gtin}").json()
    by_brand = tech_client.get("/api/presentations/?brand=octagam").json()

    assert [row["id"] for row in by_gtin["results"]] == [wanted.pk]
    assert [row["id"] for row in by_brand["results"]] == [wanted.pk]
    assert by_brand["results"][0]["product"]["brand"] == "Octagam 10%"


# --- lots --------------------------------------------------------------------------------------


def test_lots_show_their_product_status_expiry_and_vials_on_the_shelf(recall_client):
    lot = LotFactory(lot_number="P100263", expiry_date=local_today() - timedelta(days=1))
    presentation = PresentationFactory(product=lot.product)
    VialFactory.create_batch(2, presentation=presentation, lot=lot)
    VialFactory(presentation=presentation, lot=lot, status=Vial.Status.QUARANTINED)
    VialFactory(presentation=presentation, lot=lot, status=Vial.Status.DISPENSED, location=None)

    body = recall_client.get(f"/api/lots/{lot.pk}/").json()

    assert body["lot_number"] == "P100263"
    assert body["expired"] is True
    assert body["vials_in_stock"] == 3
    assert body["product"]["brand"] == lot.product.brand


def test_lots_filter_by_brand_status_number_expiry_and_gtin(tech_client):
    today = local_today()
    privigen = ProductFactory(brand="Privigen")
    soon = LotFactory(product=privigen, lot_number="P1", expiry_date=today + timedelta(days=10))
    late = LotFactory(product=privigen, lot_number="P2", expiry_date=today + timedelta(days=400),
                      status=Lot.Status.QUARANTINED)
    other = LotFactory(lot_number="X1", expiry_date=today + timedelta(days=20))
    gtin = PresentationFactory(product=other.product).gtin

    def ids(query):
        response = tech_client.get(f"/api/lots/?{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids("brand=privigen") == [soon.pk, late.pk]
    assert ids("status=quarantined") == [late.pk]
    assert ids("lot_number=X1") == [other.pk]
    assert ids(f"expiry_from={today + timedelta(days=15)}&expiry_to={today + timedelta(days=30)}") == [other.pk]
    assert ids(f"gtin={gtin}") == [other.pk]
    assert ids(f"product={privigen.pk}") == [soon.pk, late.pk]


def test_a_pharmacist_quarantines_a_lot_and_its_vials_follow(pharmacist, pharmacist_client):
    vial = VialFactory()

    response = pharmacist_client.post(f"/api/lots/{vial.lot_id}/quarantine/", {"reason": "temperature excursion"})

    assert response.status_code == 200
    assert response.json()["status"] == "quarantined"
    assert response.json()["vials_in_stock"] == 1
    vial.refresh_from_db()
    assert vial.status == Vial.Status.QUARANTINED
    row = last_history(vial.lot)
    assert (row.history_user, row.history_change_reason) == (pharmacist, "quarantine: temperature excursion")


def test_a_pharmacist_releases_a_quarantined_lot_and_its_vials_follow(pharmacist_client):
    vial = VialFactory(lot__status=Lot.Status.QUARANTINED, status=Vial.Status.QUARANTINED)

    response = pharmacist_client.post(f"/api/lots/{vial.lot_id}/release", {"reason": "logger data fine"})

    assert response.status_code == 200
    assert response.json()["status"] == "released"
    vial.refresh_from_db()
    assert vial.status == Vial.Status.IN_STOCK


@pytest.mark.parametrize(("body", "code"), [({}, "invalid"), ({"reason": ""}, "reason_required"),
                                            ({"reason": "   "}, "reason_required"), ({"reason": "r" * 201}, "invalid")])
def test_quarantining_a_lot_without_a_reason_is_refused(body, code, pharmacist_client):
    vial = VialFactory()
    before = stock_state()

    response = pharmacist_client.post(f"/api/lots/{vial.lot_id}/quarantine", body)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert stock_state() == before


def test_releasing_a_recalled_lot_is_refused(pharmacist_client):
    vial = VialFactory(lot__status=Lot.Status.RECALLED, status=Vial.Status.QUARANTINED)
    before = stock_state()

    response = pharmacist_client.post(f"/api/lots/{vial.lot_id}/release", {"reason": "looks fine"})

    assert response.status_code == 409
    assert response.json()["code"] == "lot_recalled"
    assert stock_state() == before


def test_deciding_on_an_unknown_lot_is_a_404(pharmacist_client):
    response = pharmacist_client.post("/api/lots/999999/quarantine", {"reason": "x"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_lot"


# --- locations ---------------------------------------------------------------------------------


def test_locations_filter_by_kind_code_and_use(auditor_client):
    fridge = StorageLocationFactory(code="FRIDGE-A", kind=Kind.REFRIGERATOR)
    shelf = StorageLocationFactory(code="RT-1", kind=Kind.ROOM_TEMPERATURE)
    closed = StorageLocationFactory(code="OLD", kind=Kind.REFRIGERATOR, active=False)

    def ids(query):
        return [row["id"] for row in auditor_client.get(f"/api/locations/?{query}").json()["results"]]

    assert ids("kind=room_temperature") == [shelf.pk]
    assert ids("code=FRIDGE-A") == [fridge.pk]
    assert sorted(ids("active=false")) == [closed.pk]


def test_a_location_code_is_unique(pharmacist_client):
    StorageLocationFactory(code="FRIDGE-A")
    before = catalog_state()

    response = pharmacist_client.post("/api/locations/", {"name": "Another", "code": "FRIDGE-A", "kind": "refrigerator"})

    assert response.status_code == 400
    assert catalog_state() == before


# --- vials -------------------------------------------------------------------------------------


def test_a_vial_shows_product_lot_location_and_dates(tech_client):
    vial = VialFactory(presentation__product__brand="Panzyga", lot__lot_number="N3210A", location__code="FRIDGE-A",
                       serial="SN1")

    body = tech_client.get(f"/api/vials/{vial.pk}/").json()

    assert (body["brand"], body["serial"], body["status"]) == ("Panzyga", "SN1", "in_stock")
    assert body["lot"]["lot_number"] == "N3210A"
    assert body["location"]["code"] == "FRIDGE-A"
    assert body["gtin"] == vial.presentation.gtin
    assert body["beyond_use_date"] == vial.beyond_use_date.isoformat()


def test_vials_filter_by_brand_status_lot_location_expiry_gtin_and_serial(tech_client):
    today = local_today()
    fridge = StorageLocationFactory(code="FRIDGE-A")
    a = VialFactory(presentation__product__brand="Privigen", lot__lot_number="P1", location=fridge, serial="A1",
                    lot__expiry_date=today + timedelta(days=30))
    b = VialFactory(presentation__product__brand="Gamunex-C", lot__lot_number="G1", status=Vial.Status.WASTED,
                    location=None, lot__expiry_date=today + timedelta(days=300))
    c = VialFactory(presentation=a.presentation, lot=a.lot, beyond_use_date=today + timedelta(days=2))

    def ids(query):
        response = tech_client.get(f"/api/vials/?{query}")
        assert response.status_code == 200, response.content
        return sorted(row["id"] for row in response.json()["results"])

    assert ids("brand=privigen") == sorted([a.pk, c.pk])
    assert ids("status=wasted") == [b.pk]
    assert ids("lot_number=G1") == [b.pk]
    assert ids(f"lot={a.lot_id}") == sorted([a.pk, c.pk])
    assert ids("location=FRIDGE-A") == [a.pk]
    assert ids(f"expiry_from={today + timedelta(days=100)}") == [b.pk]
    assert ids(f"expiry_to={today + timedelta(days=100)}") == sorted([a.pk, c.pk])
    assert ids(f"beyond_use_to={today + timedelta(days=5)}") == [c.pk]
    assert ids(f"gtin={b.presentation.gtin}") == [b.pk]
    assert ids("serial=A1") == [a.pk]


def test_vials_are_paginated(tech_client):
    VialFactory.create_batch(5)

    first = tech_client.get("/api/vials/?page_size=2").json()
    last = tech_client.get("/api/vials/?page_size=2&page=3").json()

    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert "page=2" in first["next"]
    assert len(last["results"]) == 1
    assert last["next"] is None


def test_a_page_past_the_end_is_a_404(tech_client):
    VialFactory()

    response = tech_client.get("/api/vials/?page=3")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_moving_a_vial_to_room_temperature_over_the_api_starts_the_clock(monkeypatch, technician, tech_client):
    now = freeze_now(monkeypatch, datetime(2031, 3, 1, 15, 0, tzinfo=UTC))
    vial = VialFactory(presentation__product__room_temp_allowance_days=30, lot__expiry_date=datetime(2032, 1, 1).date(),
                       location__code="FRIDGE-A")
    StorageLocationFactory(code="RT-1", kind=Kind.ROOM_TEMPERATURE)

    response = tech_client.post(f"/api/vials/{vial.pk}/move", {"location": "RT-1"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["location"]["code"] == "RT-1"
    assert body["beyond_use_date"] == "2031-03-31"
    vial.refresh_from_db()
    assert vial.room_temp_since == now
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (technician, "moved from FRIDGE-A to RT-1")


def test_moving_a_vial_back_to_a_forbidden_fridge_is_a_409_that_changes_nothing(tech_client):
    vial = VialFactory(presentation__product__may_return_to_fridge=False, location__kind=Kind.ROOM_TEMPERATURE,
                       room_temp_since=datetime(2031, 3, 1, 15, 0, tzinfo=UTC))
    StorageLocationFactory(code="FRIDGE-A")
    before = stock_state()

    response = tech_client.post(f"/api/vials/{vial.pk}/move", {"location": "FRIDGE-A"})

    assert response.status_code == 409
    assert response.json()["code"] == "return_to_fridge_forbidden"
    assert stock_state() == before


def test_moving_a_vial_to_an_unknown_location_is_a_404_that_changes_nothing(tech_client):
    vial = VialFactory()
    before = stock_state()

    response = tech_client.post(f"/api/vials/{vial.pk}/move", {"location": "NOWHERE"})

    assert response.status_code == 404
    assert response.json() == {"code": "unknown_location", "detail": "No storage location has the code 'NOWHERE'.",
                               "location": "NOWHERE"}
    assert stock_state() == before


def test_wasting_a_vial_over_the_api(technician, tech_client):
    vial = VialFactory()

    response = tech_client.post(f"/api/vials/{vial.pk}/waste/", {"reason": "cracked"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["location"]) == ("wasted", None)
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (technician, "wasted: cracked")


@pytest.mark.parametrize(("body", "code"), [({}, "invalid"), ({"reason": ""}, "reason_required"),
                                            ({"reason": "  "}, "reason_required"), ({"reason": "r" * 201}, "invalid")])
def test_wasting_a_vial_without_a_reason_is_refused(body, code, tech_client):
    vial = VialFactory()
    before = stock_state()

    response = tech_client.post(f"/api/vials/{vial.pk}/waste", body)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert stock_state() == before


def test_a_dispensed_vial_cannot_be_wasted_from_the_shelf(tech_client):
    vial = VialFactory(status=Vial.Status.DISPENSED, location=None)
    before = stock_state()

    response = tech_client.post(f"/api/vials/{vial.pk}/waste", {"reason": "broken"})

    assert response.status_code == 409
    assert response.json()["code"] == "already_dispensed"
    assert stock_state() == before


def test_returning_a_vial_to_the_supplier_over_the_api(pharmacist, pharmacist_client):
    vial = VialFactory()

    response = pharmacist_client.post(f"/api/vials/{vial.pk}/return", {"reason": "wrong delivery"})

    assert response.status_code == 200
    assert response.json()["status"] == "returned"
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (pharmacist, "returned to supplier: wrong delivery")


def test_acting_on_an_unknown_vial_is_a_404(tech_client):
    response = tech_client.post("/api/vials/999999/waste", {"reason": "x"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_vial"


# --- labels ------------------------------------------------------------------------------------

LABEL_TYPES = {"png": "image/png", "svg": "image/svg+xml", "zpl": "application/x-zpl", "pdf": "application/pdf"}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_prints_labels_and_no_one_else_does(role, client_for):
    vial = VialFactory()
    client = client_for(role)

    responses = [
        client.get(f"/api/vials/{vial.pk}/label"),
        client.get(f"/api/locations/{vial.location_id}/label"),
        client.post("/api/labels/sheet", {"vials": [vial.pk]}),
    ]

    assert [r.status_code for r in responses] == [expected_status(role, ALL_FOUR, 200)] * 2 + [
        expected_status(role, STOCK, 200)
    ]


@pytest.mark.parametrize("fmt", LABEL_TYPES)
def test_a_label_comes_in_the_format_asked_for(fmt, tech_client):
    vial = VialFactory()

    for url in (f"/api/vials/{vial.pk}/label", f"/api/locations/{vial.location_id}/label"):
        response = tech_client.get(url, {"format": fmt})

        assert response.status_code == 200, response.content
        assert response["Content-Type"] == LABEL_TYPES[fmt]


def test_a_label_is_served_whatever_the_accept_header_says(tech_client):
    vial = VialFactory()

    response = tech_client.get(f"/api/vials/{vial.pk}/label", {"format": "pdf"}, HTTP_ACCEPT="application/pdf")

    assert (response.status_code, response["Content-Type"]) == (200, "application/pdf")


@pytest.mark.parametrize("fmt", ["gif", "json", "api", "PNG"])
def test_an_unknown_label_format_is_a_400_in_json_whatever_the_accept_header(fmt, tech_client):
    vial = VialFactory()

    response = tech_client.get(f"/api/vials/{vial.pk}/label", {"format": fmt}, HTTP_ACCEPT="image/png")

    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    assert response.json()["code"] == "invalid"


def test_a_label_of_an_unknown_vial_is_a_404(tech_client):
    response = tech_client.get("/api/vials/99999999999999999999999/label", {"format": "svg"})

    assert (response.status_code, response.json()["code"]) == (404, "unknown_vial")


# --- query counts ------------------------------------------------------------------------------


def _product_with_presentations():
    product = ProductFactory()
    PresentationFactory.create_batch(2, product=product)


def _lot_with_vials():
    vial = VialFactory()
    VialFactory(presentation=vial.presentation, lot=vial.lot)


# The counts: one COUNT for the paginator, one SELECT with its joins, and for products one prefetch
# of their presentations.
LISTS = {
    "products": ("/api/products/", _product_with_presentations, 3),
    "presentations": ("/api/presentations/", PresentationFactory, 2),
    "lots": ("/api/lots/", _lot_with_vials, 2),
    "locations": ("/api/locations/", StorageLocationFactory, 2),
    "vials": ("/api/vials/", VialFactory, 3),  # the count, the page's keys, its rows by key
}


@pytest.mark.parametrize("name", LISTS)
def test_every_list_takes_the_same_number_of_queries_for_one_row_and_for_twenty(
    name, tech_client, django_assert_num_queries
):
    url, make_row, expected = LISTS[name]

    assert assert_constant_queries(tech_client, url, make_row, django_assert_num_queries) == expected
