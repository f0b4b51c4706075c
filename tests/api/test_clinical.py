"""The safe point of dispense over HTTP: the same checks and codes as the service, the check the
card shows before F6, overrides asked and decided, wristbands, and completion's dose check."""

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.models import local_today

from tests.api.helpers import ROLES, expected_status
from tests.factories import InfusionSessionFactory, PatientFactory, StorageLocationFactory, UserFactory
from tests.inventory.helpers import carton_of
from tests.traceability.helpers import brand, state, stock
from traceability.models import DispenseOverride
from traceability.services import override_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def aiko():
    """An IgA-deficient patient with antibodies against IgA, as in the demo."""
    return PatientFactory(mrn="DEMO-1003", name="Aiko Tanaka", iga_deficient=True, anti_iga_antibodies=True)


@pytest.fixture
def session(aiko):
    return InfusionSessionFactory(patient=aiko, ordered_grams=Decimal("20"))


@pytest.fixture
def asceniv_vial():
    [vial] = stock(brand("Asceniv", excipient="glycine", iga_ug_per_ml=Decimal("200")))
    return vial


def test_the_check_shows_the_patient_the_contraindication_and_changes_nothing(tech_client, session, asceniv_vial):
    before = state()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispense-check", {"barcode": carton_of(asceniv_vial)})

    assert response.status_code == 200
    body = response.json()
    assert body["patient"] == {"id": session.patient_id, "mrn": "DEMO-1003", "name": "Aiko Tanaka",
                               "date_of_birth": session.patient.date_of_birth.isoformat()}
    assert [(c["check"], c["code"], c["override"]) for c in body["contraindications"]] == [
        ("iga_content", "contraindicated_iga_content", None)
    ]
    assert body["ready"] is False and body["refusal"] is None
    assert body["dose"]["ordered_grams"] == "20" and body["dose"]["given_grams"] == "10"
    assert state() == before


def test_the_api_refuses_with_the_code_the_check_named_until_a_pharmacist_grants(
    tech_client, pharmacist_client, session, asceniv_vial
):
    refused = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": asceniv_vial.pk})
    assert (refused.status_code, refused.json()["code"]) == (409, "contraindicated_iga_content")

    asked = tech_client.post("/api/overrides/", {"session": session.pk, "vial": asceniv_vial.pk, "check": "iga_content",
                                                 "note": "only brand in stock"})
    assert asked.status_code == 201 and asked.json()["status"] == "requested"
    assert tech_client.post(f"/api/overrides/{asked.json()['id']}/grant", {"reason": "ok"}).status_code == 403
    granted = pharmacist_client.post(f"/api/overrides/{asked.json()['id']}/grant", {"reason": "premedicated; agreed"})
    assert granted.status_code == 200 and granted.json()["decided_by"] == "paul"

    given = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": asceniv_vial.pk})
    assert given.status_code == 201
    assert [(c["check"], c["override"]) for c in given.json()["dispense"]["checks"]] == [
        ("iga_content", granted.json()["id"])
    ]


def test_a_grant_without_a_reason_is_refused(pharmacist_client, tech_client, session, asceniv_vial):
    asked = tech_client.post("/api/overrides/", {"session": session.pk, "vial": asceniv_vial.pk, "check": "iga_content"})
    response = pharmacist_client.post(f"/api/overrides/{asked.json()['id']}/grant", {"reason": ""})
    assert (response.status_code, response.json()["code"]) == (400, "reason_required")
    assert DispenseOverride.objects.get().status == "requested"


def test_cautions_are_acknowledged_by_their_check_codes(tech_client):
    session = InfusionSessionFactory(patient=PatientFactory(thrombosis_risk=True), ordered_grams=Decimal("20"))
    [vial] = stock(brand("Privigen", excipient="glycine"))

    refused = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})
    assert (refused.status_code, refused.json()["code"]) == (409, "cautions_not_acknowledged")
    assert [c["check"] for c in refused.json()["cautions"]] == ["thrombosis"]

    given = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk, "acknowledge": ["thrombosis"]})
    assert given.status_code == 201
    assert given.json()["dispense"]["checks"][0]["check"] == "thrombosis"


def test_a_dispense_for_another_patient_than_the_one_identified_is_refused(tech_client):
    session = InfusionSessionFactory(patient=PatientFactory(mrn="MRN-1"), ordered_grams=Decimal("20"))
    [vial] = stock(brand("Privigen", excipient="glycine"))
    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk, "patient_mrn": "MRN-2"})
    assert (response.status_code, response.json()["code"]) == (409, "patient_mismatch")


@pytest.mark.parametrize("role", ROLES)
def test_only_pharmacists_decide_overrides_and_stock_roles_ask(role, client_for, session, asceniv_vial):
    client = client_for(role)
    asked = client.post("/api/overrides/", {"session": session.pk, "vial": asceniv_vial.pk, "check": "iga_content"})
    assert asked.status_code == expected_status(role, {"technician", "pharmacist"}, 201)
    override = DispenseOverride.objects.first() or override_request(
        session=session, vial=asceniv_vial, check="iga_content", actor=UserFactory(role="technician")
    )
    decided = client.post(f"/api/overrides/{override.pk}/decline", {"reason": "use Gammagard"})
    assert decided.status_code == expected_status(role, {"pharmacist"}, 200)
    assert client.get("/api/overrides/").status_code == expected_status(role, {"technician", "pharmacist", "auditor"}, 200)


def test_a_wristband_scan_names_the_patient_and_their_open_sessions(tech_client, session):
    response = tech_client.post("/api/scan", {"barcode": "DEMO-1003"})
    body = response.json()
    assert body["kind"] == "patient"
    assert body["patient"]["name"] == "Aiko Tanaka"
    assert [s["id"] for s in body["sessions"]] == [session.pk]


def test_a_gsrn_wristband_scan_names_its_patient(tech_client):
    patient = PatientFactory(gsrn="095011010000000018")
    InfusionSessionFactory(patient=patient)  # a technician sees the patients of the coming days
    response = tech_client.post("/api/scan", {"barcode": "]C18018095011010000000018"})
    assert response.json()["kind"] == "patient" and response.json()["patient"]["id"] == patient.pk


def test_a_user_in_no_role_gets_nothing_from_a_wristband(client_for, session):
    response = client_for("none").post("/api/scan", {"barcode": "DEMO-1003"})
    assert response.status_code == 403


def test_a_shelf_label_scan_names_the_location(tech_client):
    location = StorageLocationFactory(code="FRIDGE-Z")
    body = tech_client.post("/api/scan", {"barcode": "FRIDGE-Z\r\n"}).json()
    assert body["kind"] == "location" and body["location"]["id"] == location.pk


def test_completion_with_a_shortfall_needs_a_discrepancy_reason(tech_client):
    session = InfusionSessionFactory(ordered_grams=Decimal("40"))
    [vial] = stock(brand("Privigen", excipient="glycine"))
    tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})

    refused = tech_client.post(f"/api/sessions/{session.pk}/complete")
    assert (refused.status_code, refused.json()["code"]) == (409, "dose_discrepancy")
    listed = tech_client.get("/api/sessions/dose-discrepancies").json()
    assert [(row["session"], row["dose"]["given_grams"]) for row in listed] == [(session.pk, "10")]

    done = tech_client.post(f"/api/sessions/{session.pk}/complete", {"discrepancy_reason": "stopped early"})
    assert done.status_code == 200 and done.json()["discrepancy_reason"] == "stopped early"
    assert tech_client.get("/api/sessions/dose-discrepancies").json() == []


# --- wristbands ---------------------------------------------------------------------------------


def _decoded(png: bytes) -> list[str]:
    import io

    import zxingcpp
    from PIL import Image

    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_a_wristband_carries_the_mrn_as_code_128_and_scans_back_to_the_patient(tech_client, session):
    response = tech_client.get(f"/api/patients/{session.patient_id}/wristband?format=png")

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    [text] = _decoded(response.content)
    assert text == "DEMO-1003"
    assert tech_client.post("/api/scan", {"barcode": text}).json()["patient"]["id"] == session.patient_id


def test_a_wristband_of_a_patient_with_a_gsrn_is_a_gs1_128_of_ai_8018(tech_client):
    patient = PatientFactory(gsrn="095011010000000018")
    InfusionSessionFactory(patient=patient)
    response = tech_client.get(f"/api/patients/{patient.pk}/wristband")
    [text] = _decoded(response.content)
    assert text.replace("(", "").replace(")", "") == "8018095011010000000018"  # zxing reads GS1 as HRI
    assert tech_client.post("/api/scan", {"barcode": text}).json()["patient"]["id"] == patient.pk


@pytest.mark.parametrize("fmt, content_type", [("pdf", "application/pdf"), ("zpl", "application/x-zpl")])
def test_a_wristband_prints_as_pdf_and_zpl(tech_client, session, fmt, content_type):
    response = tech_client.get(f"/api/patients/{session.patient_id}/wristband?format={fmt}")
    assert response.status_code == 200 and response["Content-Type"].startswith(content_type.split(";")[0])
    assert b"DEMO-1003" in response.content or fmt == "pdf"


@pytest.mark.parametrize("role", ROLES)
def test_only_roles_that_read_patients_print_wristbands(role, client_for, session):
    response = client_for(role).get(f"/api/patients/{session.patient_id}/wristband")
    # Recall coordinators see patients only through a recall (core.roles).
    assert response.status_code == expected_status(role, {"technician", "pharmacist", "auditor"}, 200)


def test_a_technician_gets_no_patient_from_the_wristband_of_someone_not_due_soon(tech_client):
    stranger = PatientFactory(mrn="MRN-FAR")
    InfusionSessionFactory(patient=stranger, scheduled_date=local_today() + timedelta(days=40))
    response = tech_client.post("/api/scan", {"barcode": "MRN-FAR"})
    assert response.json().get("kind") != "patient"
    assert tech_client.get(f"/api/patients/{stranger.pk}/wristband").status_code == 404
