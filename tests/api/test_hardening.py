"""What an attacker or a careless user sent, and PostgreSQL answered with a 500: each is now a 400
or a success, and the refusals change nothing."""

import base64
import json

import pytest
from django.core import signing

from audit.models import PatientAccess
from audit.services import patient_access_record
from inventory.models import Lot, StorageLocation, Vial
from recalls.models import NotificationTask, Recall
from recalls.services import MAX_RECALL_LOTS, recall_create
from tests.factories import (
    DispenseFactory,
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)
from tests.inventory.helpers import stock_state
from traceability.models import Dispense, InfusionSession

pytestmark = pytest.mark.django_db

REASON = "r" * 200  # the longest reason allowed: "<verb>: " + reason overflowed varchar(100) on PostgreSQL


def _last_reason(obj) -> str:
    return obj.history.order_by("-history_id").values_list("history_change_reason", flat=True).first()


# --- long reasons -----------------------------------------------------------------------------------


def test_the_longest_reason_is_kept_whole_by_every_action_that_takes_one(pharmacist_client):
    fridge = StorageLocationFactory(code="FRIDGE-R", kind=StorageLocation.Kind.REFRIGERATOR)
    to_waste, to_return, lot_vial = VialFactory(), VialFactory(), VialFactory()
    session = InfusionSessionFactory()
    d_return, d_waste = DispenseFactory(session=InfusionSessionFactory()), DispenseFactory(session=InfusionSessionFactory())
    recalled = VialFactory()
    recall = recall_create(reference="R-LONG", source="regulator", recall_class="II", reason="x",
                           lots=[recalled.lot], actor=UserFactory())

    calls = [
        (f"/api/vials/{to_waste.pk}/waste", {}, lambda: Vial.objects.get(pk=to_waste.pk)),
        (f"/api/vials/{to_return.pk}/return", {}, lambda: Vial.objects.get(pk=to_return.pk)),
        (f"/api/lots/{lot_vial.lot_id}/quarantine", {}, lambda: Lot.objects.get(pk=lot_vial.lot_id)),
        (f"/api/lots/{lot_vial.lot_id}/release", {}, lambda: Lot.objects.get(pk=lot_vial.lot_id)),
        (f"/api/sessions/{session.pk}/cancel", {}, lambda: InfusionSession.objects.get(pk=session.pk)),
        (f"/api/dispenses/{d_return.pk}/return", {"location": fridge.code}, lambda: Dispense.objects.get(pk=d_return.pk)),
        (f"/api/dispenses/{d_waste.pk}/waste", {}, lambda: Dispense.objects.get(pk=d_waste.pk)),
        (f"/api/recalls/{recall.pk}/dispose", {"action": "waste"}, lambda: Vial.objects.get(pk=recalled.pk)),
        (f"/api/recalls/{recall.pk}/close", {}, lambda: Recall.objects.get(pk=recall.pk)),
    ]
    for url, body, changed in calls:
        response = pharmacist_client.post(url, {**body, "reason": REASON})

        assert response.status_code == 200, (url, response.content)
        assert _last_reason(changed()).endswith(REASON), url


def test_a_dispense_keeps_the_whole_reason_it_was_closed_with(pharmacist_client):
    dispense = DispenseFactory()

    pharmacist_client.post(f"/api/dispenses/{dispense.pk}/waste", {"reason": REASON})

    assert Dispense.objects.get(pk=dispense.pk).closed_reason == REASON


@pytest.mark.parametrize("url", ["/api/vials/{vial}/waste", "/api/lots/{lot}/quarantine", "/api/dispenses/{dispense}/waste"])
def test_a_reason_longer_than_stated_is_refused_and_changes_nothing(url, pharmacist_client):
    vial, dispense = VialFactory(), DispenseFactory()
    before = stock_state()

    response = pharmacist_client.post(url.format(vial=vial.pk, lot=vial.lot_id, dispense=dispense.pk),
                                      {"reason": REASON + "r"})

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "reason" in response.json()["errors"]
    assert stock_state() == before


# --- dates at the ends of the calendar ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/audit/history/", "/api/audit/export.xlsx", "/api/audit/access/"])
@pytest.mark.parametrize("params", [{"until": "9999-12-31"}, {"since": "0001-01-01"},
                                    {"since": "0001-01-01T00:00:00+05:00"}, {"until": "9999-12-31T23:59:59-05:00"}])
def test_a_date_at_the_end_of_the_calendar_is_a_400_on_the_audit_endpoints(url, params, auditor_client):
    response = auditor_client.get(url, params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_range"


# --- characters no database can store ------------------------------------------------------------


@pytest.mark.parametrize("bad", ["LOT\u0000A", "LOT\ud800"])
@pytest.mark.parametrize("field", ["lots", "lots_text", "reason", "reference"])
def test_nul_or_a_lone_surrogate_is_refused_before_anything_is_stored(bad, field, recall_client):
    lot = VialFactory().lot
    body = {"reference": "R-NUL", "source": "regulator", "recall_class": "II", "reason": "x", "lots": [lot.lot_number]}
    if field == "lots":
        body["lots"] = [lot.lot_number, bad]
    elif field == "lots_text":
        del body["lots"]
        body["lots_text"] = f"{lot.lot_number}\n{bad}"
    else:
        body[field] = bad
    raw = json.dumps(body)  # json.dumps writes the lone surrogate as the escape \ud800

    response = recall_client.post("/api/recalls/", data=raw, content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_characters")
    assert not Recall.objects.exists()
    assert Lot.objects.get(pk=lot.pk).status == Lot.Status.RELEASED


@pytest.mark.parametrize("url", ["/api/scan", "/api/receipts/check"])
def test_a_scan_holding_a_lone_surrogate_is_refused(url, tech_client):
    body = {"barcode": "01\ud83d"} if url == "/api/scan" else {"scans": ["01\udfff"]}

    response = tech_client.post(url, data=json.dumps(body), content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_characters")


# --- cursors ---------------------------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", [
    "abc",
    _b64("p=abc"),
    _b64("o=1&p=2026-01-01"),
    base64.urlsafe_b64encode(json.dumps({"w": "2026-01-01T00:00:00+00:00", "r": 0, "h": 1, "b": 0}).encode()).decode(),
    signing.dumps({"w": "2026-01-01T00:00:00+00:00", "r": 0, "h": 1, "b": 0}, salt="another.salt"),
])
@pytest.mark.parametrize("url", ["/api/audit/history/", "/api/audit/access/"])
def test_a_forged_cursor_is_refused(url, cursor, auditor_client):
    response = auditor_client.get(url, {"cursor": cursor})

    assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")


def test_the_cursors_the_server_hands_out_still_page_through(auditor, auditor_client):
    patient_access_record(user=auditor, patient_ids=[PatientFactory().pk for _ in range(3)], via="test")

    first = auditor_client.get("/api/audit/access/", {"page_size": 2}).json()
    second = auditor_client.get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert PatientAccess.objects.count() == 3


# --- sizes -----------------------------------------------------------------------------------------


def test_a_dispense_barcode_longer_than_any_scan_is_refused(tech_client):
    session = InfusionSessionFactory()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": "01" + "9" * 2_400_000})

    assert (response.status_code, response.json()["code"]) in ((400, "invalid"), (413, "request_too_large"))
    assert not Dispense.objects.exists()


def test_a_barcode_just_over_the_stated_length_is_refused(tech_client):
    session = InfusionSessionFactory()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": "9" * 513})

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "barcode" in response.json()["errors"]


def test_a_recall_naming_more_lots_than_allowed_is_refused(recall_client):
    lots = [f"L{n}" for n in range(MAX_RECALL_LOTS + 1)]

    as_list = recall_client.post("/api/recalls/", {"reference": "R-BIG", "source": "regulator", "recall_class": "II",
                                                   "reason": "x", "lots": lots})
    as_text = recall_client.post("/api/recalls/", {"reference": "R-BIG", "source": "regulator", "recall_class": "II",
                                                   "reason": "x", "lots_text": "\n".join(lots)})

    assert (as_list.status_code, as_list.json()["code"]) == (400, "invalid")
    assert (as_text.status_code, as_text.json()["code"]) == (400, "too_many_lots")
    assert not Recall.objects.exists()


def test_the_worst_allowed_recall_body_is_answered(recall_client):
    # The most lots, each as long as allowed, every one known: the whole recall is made. (How fast
    # is measured in bench/worst_bodies.py; here, that it works at all.)
    lots = [LotFactory(lot_number=f"{n:020d}") for n in range(MAX_RECALL_LOTS)]
    pasted = "\n".join(f"{lot.lot_number:<39}" for lot in lots) + "\n" + lots[0].lot_number  # one repeat

    response = recall_client.post("/api/recalls/", {"reference": "R-MAX", "source": "regulator",
                                                    "recall_class": "II", "reason": "x", "lots_text": pasted})

    assert response.status_code == 201, response.content
    assert len(response.json()["lots"]) == MAX_RECALL_LOTS
    assert not NotificationTask.objects.exists()


# --- location codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["A^B", "~DG", "A>B", "FRIDGE\u00e9", "TAB\tX", "x" * 41])
def test_a_location_code_no_shelf_label_can_print_is_refused(code, pharmacist_client):
    created = pharmacist_client.post("/api/locations/", {"name": "Fridge Z", "code": code, "kind": "refrigerator"})
    location = StorageLocationFactory(code="FRIDGE-OK")
    renamed = pharmacist_client.patch(f"/api/locations/{location.pk}/", {"code": code})

    assert (created.status_code, created.json()["code"]) == (400, "invalid")
    assert (renamed.status_code, renamed.json()["code"]) == (400, "invalid")
    assert set(StorageLocation.objects.values_list("code", flat=True)) == {"FRIDGE-OK"}


# --- what schemathesis found once every answer had to be documented --------------------------------


@pytest.mark.parametrize("value", ["null", "0", "501", "abc", "1.5"])
@pytest.mark.parametrize("url", ["/api/lots/", "/api/audit/access/"])
def test_a_page_size_out_of_range_is_refused_rather_than_replaced(url, value, auditor_client):
    response = auditor_client.get(url, {"page_size": value})

    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_a_refusal_of_the_lookback_workbook_is_json_whatever_format_is_asked(recall_client):
    response = recall_client.get("/api/recalls/999999/export.xlsx", {"format": "xlsx"})

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"])
def test_the_api_reads_json_only(content_type, pharmacist_client):
    response = pharmacist_client.post("/api/patients/", data="mrn=M1&name=A&date_of_birth=1980-01-01&iga_deficient=yes",
                                      content_type=content_type)

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
