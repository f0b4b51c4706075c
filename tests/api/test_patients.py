from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import PatientAccess
from inventory.models import local_today
from tests.factories import InfusionSessionFactory, PatientFactory
from tests.traceability.helpers import brand, completed_session, state
from traceability.models import Patient
from tests.api.helpers import ROLES, refused

pytestmark = pytest.mark.django_db

READERS = {"pharmacist", "auditor"}


@pytest.mark.parametrize("role", ROLES)
def test_every_patient_is_read_only_by_pharmacists_and_auditors(role, client_for):
    patient = PatientFactory()
    client = client_for(role)

    for url in ("/api/patients/", f"/api/patients/{patient.pk}/", f"/api/patients/{patient.pk}/history"):
        response = client.get(url)
        if role == "technician":
            # A patient with no session in the coming days is none of a technician's business.
            assert response.status_code == (200 if url == "/api/patients/" else 404), url
            if url == "/api/patients/":
                assert response.json()["results"] == []
        else:
            assert response.status_code == (200 if role in READERS else refused(role)), url


def test_a_recall_coordinator_sees_no_patient_outside_a_recall(recall_client):
    patient = PatientFactory()
    InfusionSessionFactory(patient=patient)

    for url in ("/api/patients/", f"/api/patients/{patient.pk}/", f"/api/patients/{patient.pk}/history"):
        response = recall_client.get(url)
        assert response.status_code == 403, url
        assert patient.mrn not in response.content.decode()
    assert not PatientAccess.objects.exists()


@pytest.mark.parametrize(("days_ahead", "status", "seen"), [
    (0, "scheduled", True),
    (0, "in_progress", True),
    (-1, "in_progress", True),
    (7, "scheduled", True),
    (8, "scheduled", False),
    (-2, "scheduled", False),
    (0, "cancelled", False),
    (0, "completed", False),
])
def test_a_technician_sees_only_patients_with_an_open_session_in_the_coming_days(days_ahead, status, seen,
                                                                                 tech_client):
    patient = PatientFactory(allergy_notes="latex")
    InfusionSessionFactory(patient=patient, scheduled_date=local_today() + timedelta(days=days_ahead), status=status)
    PatientFactory()  # no session at all

    listed = tech_client.get("/api/patients/").json()["results"]
    detail = tech_client.get(f"/api/patients/{patient.pk}/")

    assert [p["mrn"] for p in listed] == ([patient.mrn] if seen else [])
    assert detail.status_code == (200 if seen else 404)
    assert set(PatientAccess.objects.values_list("patient_id", flat=True)) == ({patient.pk} if seen else set())


def test_a_technician_reads_only_the_coming_sessions_in_a_patient_s_history(tech_client):
    privigen = brand("Privigen")
    patient = PatientFactory()
    completed_session(patient, privigen, days_ago=28)
    today = InfusionSessionFactory(patient=patient, scheduled_date=local_today())

    body = tech_client.get(f"/api/patients/{patient.pk}/history").json()

    assert [s["id"] for s in body["infusions"]] == [today.pk]


@pytest.mark.parametrize("role", ROLES)
def test_only_a_pharmacist_registers_and_updates_patients(role, client_for):
    patient = PatientFactory()
    client = client_for(role)

    created = client.post("/api/patients/", {"mrn": "MRN-NEW", "name": "New", "date_of_birth": "1970-01-01"})
    updated = client.patch(f"/api/patients/{patient.pk}/", {"weight_kg": "80.0"})

    assert created.status_code == (201 if role == "pharmacist" else refused(role))
    assert updated.status_code == (200 if role == "pharmacist" else refused(role))
    if role != "pharmacist":
        assert not Patient.objects.filter(mrn="MRN-NEW").exists()


def test_a_patient_is_registered(pharmacist_client):
    response = pharmacist_client.post(
        "/api/patients/",
        {"mrn": "MRN-1", "name": "Ann Smith", "date_of_birth": "1980-05-01", "weight_kg": "61.5", "iga_deficient": True},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["mrn"] == "MRN-1" and body["weight_kg"] == "61.5" and body["iga_deficient"] is True
    assert Patient.objects.get(mrn="MRN-1").history.first().history_user.username == "paul"


def test_a_duplicate_mrn_is_a_conflict_that_changes_nothing(pharmacist_client):
    PatientFactory(mrn="MRN-1")
    before = state()

    response = pharmacist_client.post("/api/patients/", {"mrn": "MRN-1", "name": "B", "date_of_birth": "1990-01-01"})

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_mrn"
    assert state() == before


def test_a_patient_without_a_name_is_invalid(pharmacist_client):
    response = pharmacist_client.post("/api/patients/", {"mrn": "MRN-1", "date_of_birth": "1990-01-01"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_patient_update_changes_only_what_is_sent(pharmacist_client):
    patient = PatientFactory(weight_kg=Decimal("70"), allergy_notes="none")

    response = pharmacist_client.patch(f"/api/patients/{patient.pk}/", {"weight_kg": "72.5"})

    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("72.5") and patient.allergy_notes == "none"
    assert patient.history.first().history_change_reason == "patient updated: weight_kg"


def test_put_and_delete_are_not_offered(pharmacist_client):
    patient = PatientFactory()

    assert pharmacist_client.delete(f"/api/patients/{patient.pk}/").status_code == 405
    assert pharmacist_client.put(f"/api/patients/{patient.pk}/", {}).status_code == 405


def test_patients_filter_by_mrn_and_search_by_name(pharmacist_client):
    PatientFactory(mrn="MRN-1", name="Ann Smith")
    PatientFactory(mrn="MRN-2", name="Bob Smithers")
    PatientFactory(mrn="MRN-3", name="Carl Jones")

    by_mrn = pharmacist_client.get("/api/patients/", {"mrn": "mrn-2"}).json()["results"]
    by_name = pharmacist_client.get("/api/patients/", {"name": "smith"}).json()["results"]
    search = pharmacist_client.get("/api/patients/", {"search": "MRN-3"}).json()["results"]

    assert [p["mrn"] for p in by_mrn] == ["MRN-2"]
    assert [p["mrn"] for p in by_name] == ["MRN-1", "MRN-2"]
    assert [p["name"] for p in search] == ["Carl Jones"]


def test_an_unknown_patient_is_not_found(tech_client):
    response = tech_client.get("/api/patients/999999/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_history_lists_every_infusion_newest_first_with_brands_lots_and_vials(pharmacist_client):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    old = completed_session(patient, privigen, days_ago=56)
    recent = completed_session(patient, panzyga, days_ago=28)
    today = InfusionSessionFactory(patient=patient, scheduled_date=local_today())

    response = pharmacist_client.get(f"/api/patients/{patient.pk}/history")

    assert response.status_code == 200
    body = response.json()
    assert body["patient"]["mrn"] == patient.mrn
    assert [s["id"] for s in body["infusions"]] == [today.pk, recent.pk, old.pk]
    last = body["infusions"][1]
    assert last["brands"] == ["Panzyga"]
    dispense = recent.dispenses.get()
    assert last["lots"] == [
        {
            "id": dispense.vial.lot.pk,
            "lot_number": dispense.vial.lot.lot_number,
            "expiry_date": dispense.vial.lot.expiry_date.isoformat(),
            "status": "released",
            "brand": "Panzyga",
        }
    ]
    assert last["dispenses"][0]["vial"]["serial"] == dispense.vial.serial
    assert last["dispenses"][0]["product"]["brand"] == "Panzyga"


def test_the_history_comes_a_page_at_a_time_newest_first(pharmacist_client):
    from api.patients import HISTORY_PAGE_SIZE

    patient = PatientFactory()
    sessions = [InfusionSessionFactory(patient=patient, scheduled_date=local_today() - timedelta(days=21 * n))
                for n in range(HISTORY_PAGE_SIZE + 3)]  # newest first
    url = f"/api/patients/{patient.pk}/history"

    first = pharmacist_client.get(url).json()
    assert (first["count"], first["count_exact"], first["previous"]) == (HISTORY_PAGE_SIZE + 3, True, None)
    assert [s["id"] for s in first["infusions"]] == [s.pk for s in sessions[:HISTORY_PAGE_SIZE]]
    second = pharmacist_client.get(first["next"]).json()
    assert [s["id"] for s in second["infusions"]] == [s.pk for s in sessions[HISTORY_PAGE_SIZE:]]
    assert second["next"] is None and second["patient"]["id"] == patient.pk
    everything = pharmacist_client.get(url, {"page_size": 500}).json()
    assert [s["id"] for s in everything["infusions"]] == [s.pk for s in sessions]


@pytest.mark.parametrize("query", [{"page": 3}, {"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": 501}])
def test_a_history_page_that_does_not_exist_or_a_bad_page_size_is_refused(pharmacist_client, query):
    patient = PatientFactory()
    InfusionSessionFactory(patient=patient)
    before = PatientAccess.objects.count()

    response = pharmacist_client.get(f"/api/patients/{patient.pk}/history", query)

    assert response.status_code == (404 if query == {"page": 3} else 400)
    assert response.json()["code"]
    assert PatientAccess.objects.count() == before  # a refusal shows no one


def _count(client, url) -> int:
    client.get(url)  # warms the per-user role cache
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_patient_list_costs_the_same_queries_for_one_or_many(pharmacist_client):
    PatientFactory()
    one = _count(pharmacist_client, "/api/patients/")
    for _ in range(6):
        PatientFactory()

    assert _count(pharmacist_client, "/api/patients/") == one == 4  # count, page, access-log INSERT and its seals


def test_a_technician_s_patient_list_costs_the_same_queries_for_one_or_many(tech_client):
    InfusionSessionFactory()
    one = _count(tech_client, "/api/patients/")
    for _ in range(6):
        InfusionSessionFactory()

    assert _count(tech_client, "/api/patients/") == one == 4  # count, page, access-log INSERT and its seals


def test_the_history_costs_the_same_queries_for_one_or_many_infusions(pharmacist_client):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen, days_ago=7)
    url = f"/api/patients/{patient.pk}/history"
    one = _count(pharmacist_client, url)
    for days in range(14, 90, 14):
        completed_session(patient, privigen, panzyga, days_ago=days)

    assert _count(pharmacist_client, url) == one == 8  # the count, 5 reads + the access-log INSERT and its seals
