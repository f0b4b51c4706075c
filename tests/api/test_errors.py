"""Every error is `{"code", "detail"}` with 400/401/403/404/405/409/415, and garbage never makes a 500."""

import json

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation, ValidationError
from django.http import Http404

from api.errors import bad_request, exception_handler, page_not_found, server_error
from core.errors import ApplicationError, Conflict, NotFound
from inventory.models import StorageLocation
from tests.factories import LotFactory, StorageLocationFactory, VialFactory
from tests.inventory.helpers import carton_of, stock_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock():
    vial = VialFactory(location__code="FRIDGE-A")
    StorageLocationFactory(code="FRIDGE-B", kind=StorageLocation.Kind.REFRIGERATOR)
    return vial


def post_urls(vial) -> list[str]:
    return [
        "/api/auth/token",
        "/api/scan",
        "/api/receipts",
        "/api/products/",
        "/api/presentations/",
        "/api/locations/",
        f"/api/lots/{vial.lot_id}/quarantine",
        f"/api/lots/{vial.lot_id}/release",
        f"/api/vials/{vial.pk}/move",
        f"/api/vials/{vial.pk}/waste",
        f"/api/vials/{vial.pk}/return",
    ]


def assert_error_shape(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["code"] == code


@pytest.mark.parametrize("raw", ['{"barcode": ', "{'single': 'quotes'}", "\x00", "[1, 2", '{"a": NaN'])
def test_malformed_json_is_a_400_parse_error_everywhere(raw, stock, pharmacist_client):
    before = stock_state()

    for url in post_urls(stock):
        response = pharmacist_client.post(url, data=raw, content_type="application/json")

        assert_error_shape(response, 400, "parse_error")
    assert stock_state() == before


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null", "true", '[{"barcode": "x"}]'])
def test_json_that_is_not_an_object_is_a_400_everywhere(body, stock, pharmacist_client):
    before = stock_state()

    for url in post_urls(stock):
        response = pharmacist_client.post(url, data=body, content_type="application/json")

        assert response.status_code == 400, (url, response.content)
        assert_error_shape(response, 400)
    assert stock_state() == before


@pytest.mark.parametrize("raw", ["[" * 100_000 + "]" * 100_000, '{"a": ' * 50_000 + "1" + "}" * 50_000])
def test_json_nested_too_deep_to_parse_is_a_400_parse_error_everywhere(raw, stock, pharmacist_client):
    before = stock_state()

    for url in post_urls(stock):
        response = pharmacist_client.post(url, data=raw, content_type="application/json")

        assert_error_shape(response, 400, "parse_error")
    assert stock_state() == before


def test_a_json_body_over_the_upload_limit_is_a_413(stock, tech_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = stock_state()

    response = tech_client.post(
        "/api/receipts", {"location": "FRIDGE-A", "scans": [carton_of(stock)] * 50}, format="json"
    )

    assert_error_shape(response, 413, "request_too_large")
    assert stock_state() == before


def test_a_form_is_refused_as_the_api_reads_only_json(stock, tech_client):
    response = tech_client.post(
        "/api/scan", data="barcode=" + "0" * 2000, content_type="application/x-www-form-urlencoded"
    )

    assert_error_shape(response, 415, "unsupported_media_type")


def test_too_many_query_parameters_are_a_400(stock, tech_client):
    query = "&".join(f"x{i}=1" for i in range(1001))

    assert_error_shape(tech_client.get(f"/api/vials/?{query}"), 400, "too_many_fields")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"])
def test_a_form_with_too_many_fields_is_refused_and_receives_nothing(content_type, stock, tech_client):
    if content_type.startswith("multipart"):
        part = '--B\r\nContent-Disposition: form-data; name="scans"\r\n\r\nx\r\n'
        body = part * 1001 + "--B--\r\n"
    else:
        body = "location=FRIDGE-B&" + "&".join(["scans=x"] * 1001)
    before = stock_state()

    response = tech_client.post("/api/receipts", data=body, content_type=content_type)

    assert_error_shape(response, 415, "unsupported_media_type")
    assert stock_state() == before


def test_a_body_that_is_not_json_or_a_form_is_a_415(stock, tech_client):
    response = tech_client.post("/api/scan", data="barcode", content_type="text/plain")

    assert_error_shape(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/scan", {"barcode": {"nested": True}}),
        ("/api/scan", {"barcode": True}),
        ("/api/receipts", {"location": None, "scans": ["x"]}),
        ("/api/receipts", {"location": {"code": "FRIDGE-A"}, "scans": ["x"]}),
        ("/api/receipts", {"location": "FRIDGE-A", "scans": {"0": "x"}}),
        ("/api/receipts", {"location": "FRIDGE-A", "scans": [None]}),
        ("/api/receipts", {"location": "FRIDGE-A", "scans": ["x"] * 1001}),
        ("/api/auth/token", {"username": None, "password": None}),
        ("/api/products/", {"brand": ["x"], "manufacturer_id": "abc", "route": "XX"}),
        ("/api/products/", {"brand": "New", "manufacturer_id": 99999999999999999999, "route": "IV"}),
        ("/api/presentations/", {"product_id": "one", "gtin": 123, "grams": "ten"}),
        ("/api/locations/", {"name": "", "code": "x" * 100, "kind": "freezer"}),
        ("/api/labels/sheet", {"vials": [10**30]}),
        ("/api/labels/sheet", {"vials": [0]}),
        ("/api/labels/sheet", {"vials": "1"}),
    ],
)
def test_wrong_types_are_a_400_invalid_naming_the_field(url, body, stock, pharmacist_client):
    before = stock_state()

    response = pharmacist_client.post(url, body, format="json")

    assert_error_shape(response, 400, "invalid")
    assert response.json()["errors"]
    assert stock_state() == before


@pytest.mark.parametrize("action", ["move", "waste", "return"])
@pytest.mark.parametrize("body", [{"location": ["FRIDGE-B"], "reason": ["x"]}, {"location": {"a": 1}, "reason": {"a": 1}}])
def test_wrong_types_in_vial_actions_are_a_400(action, body, stock, tech_client):
    before = stock_state()

    response = tech_client.post(f"/api/vials/{stock.pk}/{action}", body, format="json")

    assert_error_shape(response, 400, "invalid")
    assert stock_state() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/vials/abc/", "/api/vials/-1/", "/api/vials/1.5/", "/api/lots/abc/", "/api/products/x/",
        "/api/presentations/%00/", "/api/locations/FRIDGE-A/",
    ],
)
def test_a_non_numeric_id_is_a_404(url, stock, auditor_client):
    response = auditor_client.get(url)

    assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize(
    "url",
    ["/api/vials/abc/move", "/api/vials/abc/waste", "/api/vials/abc/return", "/api/lots/abc/quarantine",
     "/api/lots/abc/release"],
)
def test_an_action_on_a_non_numeric_id_is_a_404(url, pharmacist_client):
    response = pharmacist_client.post(url, {"reason": "x", "location": "FRIDGE-A"})

    assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize(
    "url",
    ["/api/nothing-here", "/api/vials/-1/move", "/api/sessions/abc/dispenses", "/api/recalls/x/lookback",
     "/api/notifications/-3", "/api/vials/1/label/extra"],
)
def test_an_api_address_that_matches_no_route_is_a_json_404(url, pharmacist_client):
    for response in (pharmacist_client.get(url), pharmacist_client.post(url, {"reason": "x"})):
        assert response["Content-Type"] == "application/json"
        assert_error_shape(response, 404, "not_found")


def test_a_web_address_that_matches_no_route_keeps_the_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/vials/99999999999999999999999/", "not_found"),
        ("/api/lots/99999999999999999999999/", "not_found"),
        ("/api/products/99999999999999999999999/", "not_found"),
        ("/api/vials/0/", "not_found"),
    ],
)
def test_an_id_beyond_any_row_is_a_404(url, code, stock, tech_client):
    assert_error_shape(tech_client.get(url), 404, code)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/vials/99999999999999999999999/move", "unknown_vial"),
        ("/api/vials/99999999999999999999999/waste", "unknown_vial"),
        ("/api/lots/99999999999999999999999/quarantine", "unknown_lot"),
    ],
)
def test_an_action_on_an_id_beyond_any_row_is_a_404(url, code, stock, pharmacist_client):
    before = stock_state()

    assert_error_shape(pharmacist_client.post(url, {"reason": "x", "location": "FRIDGE-B"}), 404, code)
    assert stock_state() == before


@pytest.mark.parametrize("code", ["NOWHERE", "fridge-a", " ", "'; DROP TABLE inventory_vial; --", "\u2603", "x" * 500])
def test_an_unknown_location_code_is_a_404_unknown_location(code, stock, tech_client):
    before = stock_state()

    for response in (
        tech_client.post(f"/api/vials/{stock.pk}/move", {"location": code}, format="json"),
        tech_client.post("/api/receipts", {"location": code, "scans": [carton_of(stock)]}, format="json"),
    ):
        if len(code) > 40:  # longer than any location code: refused as stated in the schema
            assert_error_shape(response, 400, "invalid")
        elif code.strip():
            assert_error_shape(response, 404, "unknown_location")
        else:
            assert_error_shape(response, 400, "invalid")
    assert stock_state() == before


@pytest.mark.parametrize(
    "query",
    [
        "/api/vials/?lot=abc", "/api/vials/?lot=99999999999999999999999", "/api/vials/?lot=1.5",
        "/api/vials/?status=lost", "/api/vials/?expiry_from=2024-13-01", "/api/vials/?beyond_use_to=yesterday",
        "/api/lots/?product=abc", "/api/lots/?product=99999999999999999999999", "/api/lots/?status=gone",
        "/api/lots/?expiry_to=31/12/2030", "/api/products/?route=IM", "/api/presentations/?product=x",
        "/api/locations/?kind=freezer", "/api/stock/expiring?within_days=soon",
        "/api/sessions/?patient=99999999999999999999999", "/api/sessions/?patient=-4.8e%2B224",
        "/api/sessions/?patient=1.5", "/api/flags/?patient=99999999999999999999999",
        "/api/flags/?session=99999999999999999999999", "/api/flags/?session=abc",
    ],
)
def test_a_filter_value_of_the_wrong_type_is_a_400(query, stock, tech_client):
    assert_error_shape(tech_client.get(query), 400, "invalid")


@pytest.mark.parametrize(
    "query",
    ["/api/vials/?page=abc", "/api/vials/?page=0", "/api/vials/?page=99999999999999999999999",
     "/api/lots/?page=-1"],
)
def test_a_page_that_does_not_exist_is_a_404(query, stock, tech_client):
    assert_error_shape(tech_client.get(query), 404, "not_found")


@pytest.mark.parametrize("query", ["/api/vials/?page_size=abc", "/api/vials/?page_size=-5",
                                   "/api/vials/?page_size=99999999999"])
def test_a_page_size_that_is_not_1_to_500_is_a_400(query, stock, tech_client):
    assert_error_shape(tech_client.get(query), 400, "invalid")


@pytest.mark.parametrize("query", ["/api/vials/?ordering=drop_table", "/api/vials/?unknown_filter=1"])
def test_odd_ordering_and_unknown_parameters_fall_back_to_defaults(query, stock, tech_client):
    response = tech_client.get(query)

    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize(
    "barcode",
    ["\u2603", "\U0001F489 vial", "01\x0709501101530003", "\x1b[A", "0" * 512, "(01)", "(01)(17)(10)(21)",
     "https://", "https://id.example.com/01/abc", "]Z9abc", "\r\n", "   "],
)
def test_whatever_a_scanner_types_is_a_400_not_a_500(barcode, tech_client):
    response = tech_client.post("/api/scan", {"barcode": barcode}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid_barcode", "invalid")


def test_a_stray_enter_after_a_good_scan_is_ignored(stock, tech_client):
    response = tech_client.post("/api/scan", {"barcode": carton_of(stock) + "\r\n"}, format="json")

    assert response.status_code == 200
    assert response.json()["vial"]["id"] == stock.pk


def test_a_method_a_resource_does_not_have_is_a_405(stock, pharmacist_client):
    assert_error_shape(pharmacist_client.delete(f"/api/vials/{stock.pk}/"), 405, "method_not_allowed")
    assert_error_shape(pharmacist_client.get("/api/scan"), 405, "method_not_allowed")


def test_a_refusal_carries_its_context_next_to_code_and_detail(stock, tech_client):
    lot = LotFactory(product=stock.presentation.product, lot_number="L1")
    raw = carton_of(stock).replace(stock.lot.lot_number, "L1").replace(stock.serial, "NEW")
    raw = raw.replace(stock.lot.expiry_date.strftime("%y%m%d"), "991231")

    response = tech_client.post("/api/receipts", {"location": "FRIDGE-B", "scans": [raw]})

    assert_error_shape(response, 409, "lot_expiry_conflict")
    body = response.json()
    assert (body["lot"], body["expiry_on_record"], body["scan_index"]) == ("L1", lot.expiry_date.isoformat(), 0)


# --- the handler itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ApplicationError("bad"), 400, "invalid"),
        (NotFound("gone"), 404, "not_found"),
        (Conflict("busy", code="lot_recalled"), 409, "lot_recalled"),
        (ValidationError({"field": ["bad value"]}), 400, "invalid"),
        (ValidationError("plain message"), 400, "invalid"),
        (Http404("nothing"), 404, "not_found"),
        (PermissionDenied(), 403, "permission_denied"),
    ],
)
def test_the_handler_maps_every_error_to_code_and_detail(exc, status, code):
    response = exception_handler(exc, {})

    assert response.status_code == status
    assert response.data["code"] == code
    assert response.data["detail"]


def test_extra_context_never_overrides_code_and_detail():
    response = exception_handler(Conflict("real", code="real_code", extra={"code": "fake", "detail": "fake", "x": 1}), {})

    assert response.data == {"code": "real_code", "detail": "real", "x": 1}


def test_an_unexpected_exception_is_left_to_django():
    assert exception_handler(RuntimeError("boom"), {}) is None


def test_django_error_views_answer_json_under_the_api_and_html_elsewhere(rf):
    api, page = rf.get("/api/vials/"), rf.get("/scan/")

    for view, status in ((server_error, 500), (lambda r: bad_request(r, SuspiciousOperation()), 400),
                         (lambda r: page_not_found(r, Http404()), 404)):
        body = json.loads(view(api).content)
        assert (view(api).status_code, set(body)) == (status, {"code", "detail"})
        assert view(page)["Content-Type"].startswith("text/html")
        assert view(page).status_code == status
