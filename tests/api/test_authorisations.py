"""The authorisations API: recording, revoking, the reports and their query counts, the dose
calculator, orders under an authorisation, and what the scan check shows of it."""

from datetime import timedelta
from decimal import Decimal

import pytest

from audit.models import PatientAccess
from inventory.models import local_today
from tests.api.helpers import assert_constant_queries
from tests.factories import AuthorisationFactory, InfusionSessionFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, stock
from traceability.models import InfusionSession, TreatmentAuthorisation
from traceability.services import override_grant, vial_dispense

pytestmark = pytest.mark.django_db


def _body(patient, **changes) -> dict:
    today = local_today()
    return {"patient": patient.pk, "indication": "cidp", "route": "IV", "dose_g_per_kg": "0.4",
            "weight_basis": "adjusted", "interval_days": 21, "doses": 6, "valid_from": today.isoformat(),
            "valid_until": (today + timedelta(days=180)).isoformat(), "prescriber": "Dr Nadia Rahman",
            "approver": "Regional panel", "payer_reference": "BS-2026-0042", **changes}


def test_a_pharmacist_records_an_authorisation_and_reads_its_dose(pharmacist_client):
    patient = PatientFactory(weight_kg=Decimal("110"), height_cm=Decimal("180"), sex="male")

    response = pharmacist_client.post("/api/authorisations/", _body(patient), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    # 0.4 g/kg × adjusted 89.0 kg (IBW 75.0 + 0.4 × 35.0) = 35.6 g.
    assert body["grams_per_dose"] == "35.6"
    assert (body["state"], body["doses_used"], body["doses_remaining"], body["days_left"]) == ("current", 0, 6, 180)
    assert body["patient"]["mrn"] == patient.mrn and body["product"] is None
    assert TreatmentAuthorisation.objects.get().created_by.username == "paul"


def test_an_authorisation_without_what_its_basis_needs_is_refused_and_nothing_is_recorded(pharmacist_client):
    patient = PatientFactory(weight_kg=Decimal("80"), height_cm=None)

    response = pharmacist_client.post("/api/authorisations/", _body(patient), format="json")

    assert response.status_code == 400 and response.json()["code"] == "height_or_sex_unknown"
    assert not TreatmentAuthorisation.objects.exists()


def test_a_technician_and_an_auditor_may_not_record_one(tech_client, auditor_client):
    patient = PatientFactory()
    assert tech_client.post("/api/authorisations/", _body(patient), format="json").status_code == 403
    assert auditor_client.post("/api/authorisations/", _body(patient), format="json").status_code == 403
    assert tech_client.get("/api/authorisations/").status_code == 403
    assert auditor_client.get("/api/authorisations/").status_code == 200


def test_revoking_ends_it_and_the_reason_is_kept(pharmacist_client):
    a = AuthorisationFactory()

    blank = pharmacist_client.post(f"/api/authorisations/{a.pk}/revoke", {"reason": ""}, format="json")
    response = pharmacist_client.post(f"/api/authorisations/{a.pk}/revoke", {"reason": "panel withdrew"}, format="json")
    again = pharmacist_client.post(f"/api/authorisations/{a.pk}/revoke", {"reason": "again"}, format="json")

    assert blank.status_code == 400
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    assert response.json()["revoked_reason"] == "panel withdrew" and response.json()["revoked_by"] == "paul"
    assert again.status_code == 409 and again.json()["code"] == "authorisation_state_conflict"


def test_the_list_filters_by_patient_and_current_and_logs_who_saw_whom(pharmacist_client):
    mine = AuthorisationFactory()
    AuthorisationFactory(patient=mine.patient, valid_until=local_today() - timedelta(days=1))
    AuthorisationFactory()

    rows = pharmacist_client.get("/api/authorisations/", {"patient": mine.patient_id, "current": "true"}).json()

    assert [r["id"] for r in rows["results"]] == [mine.pk]
    assert PatientAccess.objects.filter(patient=mine.patient, via="authorisation-list").exists()


def _used(a: TreatmentAuthorisation) -> None:
    """One dose given under the authorisation."""
    session = InfusionSessionFactory(patient=a.patient, authorisation=a)
    [vial] = stock(brand("Privigen"))
    vial_dispense(session=session, vial=vial, actor=UserFactory())


def test_the_list_costs_the_same_queries_for_one_or_many(pharmacist_client, django_assert_num_queries):
    def make():
        a = AuthorisationFactory(product=brand("Privigen"))
        _used(a)

    n = assert_constant_queries(pharmacist_client, "/api/authorisations/", make, django_assert_num_queries, many=8)
    assert n == 4  # the count, the page (doses used annotated), the access-log INSERT and its seal


def test_the_expiring_report_lists_those_ending_within_the_days_with_what_is_left(pharmacist_client,
                                                                                  django_assert_num_queries):
    soon = AuthorisationFactory(valid_until=local_today() + timedelta(days=9), doses=4)
    _used(soon)
    AuthorisationFactory(valid_until=local_today() + timedelta(days=60))

    rows = pharmacist_client.get("/api/authorisations/expiring", {"days": 30}).json()["results"]

    assert [(r["id"], r["days_left"], r["doses_remaining"]) for r in rows] == [(soon.pk, 9, 3)]
    assert pharmacist_client.get("/api/authorisations/expiring", {"days": 5}).json()["results"] == []
    assert pharmacist_client.get("/api/authorisations/expiring", {"days": -1}).status_code == 400

    def make():
        _used(AuthorisationFactory(valid_until=local_today() + timedelta(days=20)))

    # Counted: the rows ending in 20 days (the one ending in 9 is listed too, and stays one row).
    n = assert_constant_queries(pharmacist_client, "/api/authorisations/expiring?days=25",
                                make, django_assert_num_queries, many=6,
                                rows=lambda body: len([r for r in body["results"] if r["days_left"] == 20]))
    assert n == 4


def test_the_discrepancy_queue_shows_the_override_and_who_decided(pharmacist_client, django_assert_num_queries):
    tech, pharm = UserFactory(role="technician"), UserFactory(username="phil", role="pharmacist")

    def make():
        session = InfusionSessionFactory(authorisation=None)
        [vial] = stock(brand("Privigen"))
        override_grant(session=session, vial=vial, check="authorisation_missing", reason="urgent, request lodged",
                       actor=pharm)
        vial_dispense(session=session, vial=vial, actor=tech)

    n = assert_constant_queries(pharmacist_client, "/api/authorisations/discrepancies", make,
                                django_assert_num_queries, many=6)
    assert n == 5  # the count, the page, the overrides it relied on, the access-log INSERT and its seal
    row = pharmacist_client.get("/api/authorisations/discrepancies").json()["results"][0]
    assert row["reason"] == "no_authorisation" and row["brand"] == "Privigen"
    assert [(c["check"], c["decided_by"], c["decision_reason"]) for c in row["checks"]] == [
        ("authorisation_missing", "phil", "urgent, request lodged")]


def test_the_dose_calculator_gives_the_weight_the_grams_and_the_least_waste_vials(pharmacist_client, tech_client):
    privigen = brand("Privigen")
    stock(privigen, 10, 4)
    stock(privigen, 5, 2)
    patient = PatientFactory(weight_kg=Decimal("110"), height_cm=Decimal("180"), sex="male")
    a = AuthorisationFactory(patient=patient, dose_grams=None, dose_g_per_kg=Decimal("0.4"), weight_basis="adjusted")

    response = pharmacist_client.post("/api/dose", {"patient": patient.pk, "authorisation": a.pk}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dosing_weight"] == {"basis": "adjusted", "actual_kg": "110", "ideal_kg": "75", "adjusted_kg": "89",
                                     "dosing_kg": "89", "note": "adjusted body weight: IBW + 0.4 × (actual − IBW)"}
    # 35.6 g: three 10 g and one 5 g vial make 35 g (short), so 40 g; 3 × 10 + 2 × 5 also 40 g but one more vial.
    assert (body["grams"], body["grams_in_whole_vials"], body["total_grams"], body["overfill_grams"]) == (
        "35.6", "40", "40", "4.4")
    assert len(body["vials"]) == 4 and body["brands"] == ["Privigen"]
    assert tech_client.post("/api/dose", {"patient": patient.pk, "authorisation": a.pk}, format="json").status_code == 403


def test_the_dose_calculator_refuses_another_patients_authorisation_and_missing_stock(pharmacist_client):
    a = AuthorisationFactory()
    other = pharmacist_client.post("/api/dose", {"patient": PatientFactory().pk, "authorisation": a.pk}, format="json")
    empty = pharmacist_client.post("/api/dose", {"patient": a.patient_id, "authorisation": a.pk}, format="json")

    assert other.status_code == 404
    assert empty.status_code == 409 and empty.json()["code"] == "insufficient_stock"


def test_a_session_is_ordered_under_an_authorisation_and_attached_to_one_later(pharmacist_client):
    a = AuthorisationFactory(dose_grams=Decimal("32.5"), indication="cidp")
    created = pharmacist_client.post("/api/sessions/", {
        "patient": a.patient_id, "scheduled_date": local_today().isoformat(), "indication": "cidp",
        "authorisation": a.pk}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["ordered_grams"] == "32.50" and created.json()["authorisation"]["id"] == a.pk

    urgent = InfusionSessionFactory(patient=a.patient, authorisation=None, indication="cidp")
    attached = pharmacist_client.post(f"/api/sessions/{urgent.pk}/authorisation", {"authorisation": a.pk}, format="json")
    assert attached.status_code == 200 and attached.json()["authorisation"]["payer_reference"] == a.payer_reference
    unknown = pharmacist_client.post(f"/api/sessions/{urgent.pk}/authorisation", {"authorisation": 99999},
                                     format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_authorisation"


def test_an_order_above_the_authorised_dose_is_refused(pharmacist_client):
    a = AuthorisationFactory(dose_grams=Decimal("30"))
    response = pharmacist_client.post("/api/sessions/", {
        "patient": a.patient_id, "scheduled_date": local_today().isoformat(), "indication": a.indication,
        "ordered_grams": "35", "authorisation": a.pk}, format="json")

    assert response.status_code == 409 and response.json()["code"] == "authorisation_dose"
    assert not InfusionSession.objects.exists()


def test_the_scan_check_shows_doses_left_the_end_date_and_the_refusals(tech_client):
    session = InfusionSessionFactory()
    a = session.authorisation
    a.doses, a.valid_until = 3, local_today() + timedelta(days=6)
    a.save()
    [vial] = stock(brand("Privigen"))

    body = tech_client.post(f"/api/sessions/{session.pk}/dispense-check", {"vial": vial.pk}, format="json").json()

    assert body["authorisation"]["doses_remaining_after_this"] == 2
    assert body["authorisation"]["days_left"] == 6 and body["authorisation"]["state"] == "current"
    assert body["authorisation_checks"] == [] and body["ready"]

    bare = InfusionSessionFactory(authorisation=None)
    body = tech_client.post(f"/api/sessions/{bare.pk}/dispense-check", {"vial": vial.pk}, format="json").json()
    assert body["authorisation"] is None and not body["ready"]
    assert [(c["check"], c["code"], c["override"]) for c in body["authorisation_checks"]] == [
        ("authorisation_missing", "authorisation_missing", None)]
    refused = tech_client.post(f"/api/sessions/{bare.pk}/dispenses", {"vial": vial.pk}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "authorisation_missing"
    asked = tech_client.post("/api/overrides/", {"session": bare.pk, "vial": vial.pk,
                                                 "check": "authorisation_missing"}, format="json")
    assert asked.status_code == 201 and asked.json()["product"] is None
    body = tech_client.post(f"/api/sessions/{bare.pk}/dispense-check", {"vial": vial.pk}, format="json").json()
    assert body["authorisation_checks"][0]["override"]["status"] == "requested"


def test_patients_carry_height_and_sex(pharmacist_client):
    patient = PatientFactory()
    response = pharmacist_client.patch(f"/api/patients/{patient.pk}/", {"height_cm": "172.5", "sex": "female"},
                                       format="json")
    assert response.status_code == 200 and (response.json()["height_cm"], response.json()["sex"]) == ("172.5", "female")
    bad = pharmacist_client.patch(f"/api/patients/{patient.pk}/", {"height_cm": "400"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_height"


def _given_without_authorisation(serial_brand="Privigen"):
    tech, pharm = UserFactory(role="technician"), UserFactory(username="phil", role="pharmacist")
    session = InfusionSessionFactory(authorisation=None)
    [vial] = stock(brand(serial_brand))
    override_grant(session=session, vial=vial, check="authorisation_missing", reason="urgent, request lodged",
                   actor=pharm)
    return vial_dispense(session=session, vial=vial, actor=tech)


def test_a_pharmacist_reconciles_a_discrepancy_and_it_leaves_the_open_queue(pharmacist_client):
    from traceability.models import Dispense

    dispense = _given_without_authorisation()
    url = f"/api/authorisations/discrepancies/{dispense.pk}/reconcile"

    response = pharmacist_client.post(url, {"note": "retrospective approval BS-20261130-7"}, format="json")

    assert response.status_code == 200, response.content
    row = response.json()
    assert (row["dispense"], row["reconciliation"], row["reconciled_by"]) == (
        dispense.pk, "retrospective approval BS-20261130-7", response.wsgi_request.user.username)
    assert row["reconciled_at"]
    assert pharmacist_client.get("/api/authorisations/discrepancies").json()["count"] == 0
    reconciled = pharmacist_client.get("/api/authorisations/discrepancies", {"state": "reconciled"}).json()
    assert [r["dispense"] for r in reconciled["results"]] == [dispense.pk]
    assert pharmacist_client.get("/api/authorisations/discrepancies", {"state": "all"}).json()["count"] == 1
    # The dispense keeps what it was; the reconciliation is a new history row with its reason.
    dispense = Dispense.objects.get(pk=dispense.pk)
    assert dispense.outside_authorisation and dispense.status == Dispense.Status.DISPENSED
    latest = dispense.history.order_by("-history_id").first()
    assert latest.history_change_reason == "authorisation discrepancy reconciled: retrospective approval BS-20261130-7"


def test_reconciling_is_refused_twice_without_a_note_for_a_vial_given_under_its_authorisation_and_unknown(
        pharmacist_client):
    from traceability.models import Dispense

    dispense = _given_without_authorisation()
    url = f"/api/authorisations/discrepancies/{dispense.pk}/reconcile"
    rows = Dispense.history.count()

    response = pharmacist_client.post(url, {"note": "  "}, format="json")
    assert response.status_code == 400 and response.json()["code"]
    assert pharmacist_client.post(url, {"note": "x" * 201}, format="json").status_code == 400
    assert Dispense.history.count() == rows

    assert pharmacist_client.post(url, {"note": "amended request"}, format="json").status_code == 200
    again = pharmacist_client.post(url, {"note": "amended request again"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "discrepancy_already_reconciled")

    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"))
    covered = vial_dispense(session=session, vial=vial, actor=UserFactory(role="technician"))
    refused = pharmacist_client.post(f"/api/authorisations/discrepancies/{covered.pk}/reconcile",
                                     {"note": "nothing to settle"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "not_a_discrepancy")
    assert not Dispense.objects.get(pk=covered.pk).authorisation_reconciliation
    assert pharmacist_client.post("/api/authorisations/discrepancies/999999/reconcile",
                                  {"note": "x"}, format="json").status_code == 404
    assert pharmacist_client.get("/api/authorisations/discrepancies", {"state": "closed"}).status_code == 400


@pytest.mark.parametrize("role", ["technician", "auditor", "nurse", "recall_coordinator"])
def test_only_a_pharmacist_reconciles(role, client_for):
    dispense = _given_without_authorisation()
    response = client_for(role).post(f"/api/authorisations/discrepancies/{dispense.pk}/reconcile",
                                     {"note": "retrospective approval"}, format="json")
    assert response.status_code == 403
