"""The administration record and home use over HTTP: who may, the whole bedside flow, refusals as
codes, times in the site's zone, constant queries, and the patient history that shows it all."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.models import local_today
from tests.api.helpers import assert_constant_queries, expected_status
from tests.factories import AuthorisationFactory, LotFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, stock
from traceability.models import Administration, Dispense, HomeInfusion, VialFate
from traceability.services import session_create, vial_dispense

pytestmark = pytest.mark.django_db

ROLES = ["technician", "pharmacist", "auditor", "recall_coordinator", "nurse", "none", None]
READERS = {"technician", "pharmacist", "auditor", "nurse"}
RECORDERS = {"pharmacist", "nurse"}


@pytest.fixture
def nurse_client():
    client = APIClient()
    client.force_authenticate(UserFactory(username="nina", role="nurse"))
    return client


def dispensed_session(n=2, *, weight="70.0", setting="clinic", lot=None, product=None):
    tech = UserFactory(username="alice", role="technician")
    product = product or brand("Privigen")
    patient = PatientFactory(weight_kg=Decimal(weight))
    route = "SC" if setting == "home" else "IV"
    session = session_create(patient=patient, scheduled_date=local_today(),
                             indication="cidp", ordered_grams=Decimal(10 * n), setting=setting,
                             route=route, actor=tech,
                             authorisation=AuthorisationFactory(patient=patient, indication="cidp", route=route))
    for vial in stock(product, 10, n, lot=lot):
        vial_dispense(session=session, vial=vial, actor=tech)
    Dispense.objects.filter(session=session).update(dispensed_at=timezone.now() - timedelta(hours=2))
    return session


@pytest.mark.parametrize("role", ROLES)
def test_nurses_and_pharmacists_record_infusions_and_the_other_readers_read_them(role, client_for):
    session = dispensed_session()
    client = client_for(role)

    assert client.get("/api/administrations/worklist").status_code == expected_status(role, READERS, 200)
    assert client.get("/api/administrations/").status_code == expected_status(role, READERS, 200)
    response = client.post("/api/administrations/", {"session": session.pk, "rate_ml_per_h": "30"}, format="json")
    assert response.status_code == expected_status(role, RECORDERS, 201)
    assert Administration.objects.exists() == (role in RECORDERS)


def test_a_whole_infusion_is_recorded_through_the_api(nurse_client):
    session = dispensed_session(2)
    worklist = nurse_client.get("/api/administrations/worklist").json()
    assert [row["session"] for row in worklist] == [session.pk]
    first, second = (d["id"] for d in worklist[0]["dispenses"])

    started = nurse_client.post("/api/administrations/", {
        "session": session.pk, "rate_ml_per_kg_per_h": "0.5", "premedication": "paracetamol 1 g PO",
        "at": (timezone.localtime() - timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M"),
    }, format="json")
    assert started.status_code == 201, started.json()
    body = started.json()
    pk = body["id"]
    assert body["rate"] == {"ml_per_h": "35.0", "ml_per_kg_per_h": "0.500"}
    # The time typed without an offset is the site's; it is answered with the site's offset.
    local = timezone.localtime() - timedelta(minutes=90)
    assert body["started_at"].startswith(local.strftime("%Y-%m-%dT%H:%M"))
    assert body["started_at"].endswith(local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:])

    assert nurse_client.post(f"/api/administrations/{pk}/rate", {"rate_ml_per_h": "70"}, format="json").status_code == 200
    assert nurse_client.post(f"/api/administrations/{pk}/pause", {"reason": "chills"}, format="json").json()["rate"] is None
    reaction = nurse_client.post(f"/api/administrations/{pk}/reactions", {
        "type": "fever_chills", "severity": "moderate", "onset_at": timezone.now().isoformat()}, format="json")
    assert reaction.status_code == 201
    assert reaction.json()["administration"] == pk and reaction.json()["rate_at_onset_ml_per_h"] == "0.0"
    assert nurse_client.post(f"/api/administrations/{pk}/resume", {"rate_ml_per_h": "35"}, format="json").status_code == 200
    finished = nurse_client.post(f"/api/administrations/{pk}/finish", {"fates": [
        {"dispense": first, "fate": "infused"}, {"dispense": second, "fate": "partial", "volume_left_ml": "25"}]},
        format="json")
    assert finished.status_code == 200, finished.json()
    body = finished.json()
    assert body["status"] == "finished"
    assert [s["kind"] for s in body["steps"]] == ["start", "rate", "pause", "resume", "finish"]
    assert {f["fate"] for f in body["fates"]} == {"infused", "partial"}
    assert len(body["reactions"]) == 1


def test_refusals_answer_with_their_codes_and_change_nothing(nurse_client):
    session = dispensed_session(1)
    pk = nurse_client.post("/api/administrations/", {"session": session.pk, "rate_ml_per_h": "30"},
                           format="json").json()["id"]
    dispense = session.dispenses.get()

    response = nurse_client.post(f"/api/administrations/{pk}/finish", {"fates": []}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "vial_fates_missing")
    response = nurse_client.post(f"/api/administrations/{pk}/reactions", {
        "type": "headache", "severity": "mild",
        "onset_at": (timezone.now() - timedelta(hours=1)).isoformat()}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "onset_before_start")
    response = nurse_client.post(f"/api/administrations/{pk}/stop", {"reason": "", "fates": []}, format="json")
    assert response.status_code == 400
    nurse_client.post(f"/api/administrations/{pk}/finish", {"fates": [{"dispense": dispense.pk, "fate": "infused"}]},
                      format="json")
    steps = Administration.objects.get().steps.count()
    response = nurse_client.post(f"/api/administrations/{pk}/rate", {"rate_ml_per_h": "60"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "administration_ended")
    assert Administration.objects.get().steps.count() == steps
    assert nurse_client.post("/api/administrations/999999/rate", {"rate_ml_per_h": "60"}, format="json").status_code == 404


def test_the_administration_list_costs_the_same_queries_for_one_or_many(nurse_client, django_assert_num_queries):
    nurse = UserFactory(username="nina")

    def make_row():
        from traceability.infusion import administration_start, administration_rate
        administration = administration_start(session=dispensed_session(1), actor=nurse, rate_ml_per_h=Decimal("30"))
        administration_rate(administration=administration, actor=nurse, rate_ml_per_h=Decimal("60"))

    # count, page, steps, fates, reactions, access-log INSERT and its seal
    assert assert_constant_queries(nurse_client, "/api/administrations/", make_row, django_assert_num_queries,
                                   many=6) == 7


def test_the_worklist_costs_the_same_queries_for_one_or_many(nurse_client, django_assert_num_queries):
    # sessions, dispenses, flags, reactions, access-log INSERT and its seal
    assert assert_constant_queries(nurse_client, "/api/administrations/worklist", dispensed_session,
                                   django_assert_num_queries, rows=len, many=6) == 6


def test_the_patient_history_shows_the_administration_times_and_the_fate_of_each_vial(nurse_client, pharmacist_client):
    session = dispensed_session(1)
    pk = nurse_client.post("/api/administrations/", {"session": session.pk, "rate_ml_per_h": "30"},
                           format="json").json()["id"]
    dispense = session.dispenses.get()
    nurse_client.post(f"/api/administrations/{pk}/finish",
                      {"fates": [{"dispense": dispense.pk, "fate": "partial", "volume_left_ml": "12.5"}]}, format="json")

    history = pharmacist_client.get(f"/api/patients/{session.patient_id}/history").json()

    (infusion,) = history["infusions"]
    assert infusion["administration"]["status"] == "finished"
    assert infusion["administration"]["started_at"] and infusion["administration"]["ended_at"]
    assert infusion["administration"]["started_by"] == "nina"
    (given,) = infusion["dispenses"]
    assert given["fate"]["fate"] == "partial" and given["fate"]["volume_left_ml"] == "12.5"
    assert given["status"] == "wasted"


def test_a_home_supply_is_ordered_dispensed_and_its_reported_infusions_close_the_loop(nurse_client, pharmacist_client):
    hizentra = brand("Hizentra", route="SC")
    patient = PatientFactory()
    authorisation = AuthorisationFactory(patient=patient, route="SC")
    created = pharmacist_client.post("/api/sessions/", {
        "patient": patient.pk, "scheduled_date": local_today().isoformat(), "indication": "primary_immunodeficiency",
        "ordered_grams": "20", "route": "SC", "setting": "home", "authorisation": authorisation.pk}, format="json")
    assert created.status_code == 201 and created.json()["setting"] == "home"
    session_id = created.json()["id"]
    lot = LotFactory(product=hizentra, lot_number="HZ-77")
    for vial in stock(hizentra, 10, 2, lot=lot):
        assert pharmacist_client.post(f"/api/sessions/{session_id}/dispenses", {"vial": vial.pk},
                                      format="json").status_code == 201

    response = nurse_client.post("/api/home-infusions/", {
        "session": session_id, "infused_on": local_today().isoformat(), "sites": 2,
        "vials": [{"lot": "HZ-77", "count": 1}], "reported_by_text": "patient, by phone"}, format="json")
    assert response.status_code == 201, response.json()
    home = response.json()
    assert [v["lot_number"] for v in home["vials"]] == ["HZ-77"]
    too_many = nurse_client.post("/api/home-infusions/", {
        "session": session_id, "infused_on": local_today().isoformat(), "sites": 2,
        "vials": [{"lot": "HZ-77", "count": 2}]}, format="json")
    assert (too_many.status_code, too_many.json()["code"]) == (409, "home_vials_unavailable")
    assert HomeInfusion.objects.count() == 1
    reaction = nurse_client.post(f"/api/home-infusions/{home['id']}/reactions", {
        "type": "other", "type_other": "swelling at the site", "severity": "mild",
        "onset_at": timezone.now().isoformat()}, format="json")
    assert reaction.status_code == 201 and reaction.json()["home_infusion"] == home["id"]

    history = pharmacist_client.get(f"/api/patients/{patient.pk}/history").json()
    used = [d["used_at_home_on"] for d in history["infusions"][0]["dispenses"]]
    assert sorted(used, key=str) == sorted([local_today().isoformat(), None], key=str)
    assert nurse_client.get(f"/api/home-infusions/?session={session_id}").json()["count"] == 1


def test_no_vial_fate_is_recorded_for_a_home_supply_and_no_administration_starts(nurse_client):
    session = dispensed_session(1, setting="home", product=brand("Hizentra", route="SC"))
    response = nurse_client.post("/api/administrations/", {"session": session.pk, "rate_ml_per_h": "20"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "home_supply")
    assert not VialFate.objects.exists()


def test_a_technician_reads_the_administration_record_of_the_coming_days_only(client_for):
    from traceability.infusion import administration_finish, administration_start
    from traceability.models import InfusionSession

    nurse = UserFactory(username="nina", role="nurse")
    today, past = dispensed_session(1), dispensed_session(1)
    for session in (today, past):
        administration_start(session=session, actor=nurse, rate_ml_per_h=Decimal("30"))
    administration_finish(administration=past.administration, actor=nurse,
                          fates=[{"dispense": past.dispenses.get().pk, "fate": "infused"}])
    # The other infusion ran a fortnight ago and its session is closed.
    InfusionSession.objects.filter(pk=past.pk).update(status=InfusionSession.Status.COMPLETED,
                                                      scheduled_date=local_today() - timedelta(days=14))
    technician = client_for("technician")

    listed = technician.get("/api/administrations/").json()["results"]
    assert [row["session"] for row in listed] == [today.pk]
    assert technician.get(f"/api/administrations/{past.administration.pk}/").status_code == 404
    assert technician.get(f"/api/administrations/{today.administration.pk}/").status_code == 200
    for role in ("pharmacist", "auditor", "nurse"):
        assert {row["session"] for row in client_for(role).get("/api/administrations/").json()["results"]} == {
            today.pk, past.pk}, role


def test_a_technician_reads_no_home_infusion_of_a_closed_supply(client_for, pharmacist_client):
    from traceability.infusion import home_infusion_report
    from traceability.models import InfusionSession

    hizentra = brand("Hizentra", route="SC")
    lot = LotFactory(product=hizentra, lot_number="HZ-1")
    session = dispensed_session(2, setting="home", lot=lot, product=hizentra)
    home_infusion_report(session=session, infused_on=local_today(), sites=2, actor=UserFactory(role="nurse"),
                         vials=[{"lot": "HZ-1", "count": 1}])
    technician = client_for("technician")
    assert technician.get("/api/home-infusions/").json()["count"] == 1

    InfusionSession.objects.filter(pk=session.pk).update(status=InfusionSession.Status.COMPLETED,
                                                         scheduled_date=local_today() - timedelta(days=30))
    assert technician.get("/api/home-infusions/").json()["count"] == 0
    assert pharmacist_client.get("/api/home-infusions/").json()["count"] == 1
