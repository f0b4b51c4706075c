"""The access log of patient data: who saw which patient, when, and through which route.

Every API read that shows patients records one row per patient seen, in one INSERT; refusals and
writes record nothing; auditors read the log at GET /api/audit/access/."""

from dataclasses import dataclass
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import PatientAccess
from audit.services import patient_access_record
from inventory.models import Lot
from tests.api.helpers import ROLES, assert_constant_queries, expected_status
from tests.factories import (
    BrandSwitchFlagFactory,
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    PresentationFactory,
    UserFactory,
    VialFactory,
)
from traceability.models import InfusionSession, Patient
from recalls.models import NotificationTask
from recalls.services import recall_create
from traceability.services import vial_dispense

ACCESS = "/api/audit/access/"
TABLE = PatientAccess._meta.db_table


def log_inserts(queries) -> int:
    return sum(1 for q in queries if q["sql"].lstrip().upper().startswith("INSERT") and TABLE in q["sql"])


def seen() -> set[tuple]:
    return set(PatientAccess.objects.values_list("user__username", "patient_id", "via", "method"))


def given_lot(*patients: Patient, lot_number: str = "LOG-1") -> Lot:
    """A lot with one vial given to each patient, in a session of their own."""
    presentation = PresentationFactory()
    lot = LotFactory(product=presentation.product, lot_number=lot_number)
    tech = UserFactory()
    for patient in patients:
        vial = VialFactory(presentation=presentation, lot=lot)
        vial_dispense(session=InfusionSessionFactory(patient=patient), vial=vial, actor=tech)
    return lot


@dataclass
class World:
    ann: Patient
    bob: Patient
    lot: Lot
    recall: object
    flag: object


@pytest.fixture
def world(db) -> World:
    ann, bob = PatientFactory(mrn="MRN-ANN"), PatientFactory(mrn="MRN-BOB")
    lot = given_lot(ann, bob)
    flag = BrandSwitchFlagFactory(session=InfusionSession.objects.get(patient=ann))
    recall = recall_create(
        reference="FDA-LOG", source="regulator", recall_class="II", reason="Particulates", lots=[lot],
        actor=UserFactory(),
    )
    assert not PatientAccess.objects.exists()  # setting up the world reads nothing through the API
    return World(ann=ann, bob=bob, lot=lot, recall=recall, flag=flag)


def _session(w: World, patient: Patient) -> int:
    return InfusionSession.objects.get(patient=patient).pk


def _task(w: World, patient: Patient) -> int:
    return NotificationTask.objects.get(recall=w.recall, patient=patient).pk


# (url of the world, via, whose data it shows)
ENDPOINTS = {
    "patient list": (lambda w: "/api/patients/", "patient-list", "ab"),
    "patient detail": (lambda w: f"/api/patients/{w.ann.pk}/", "patient-detail", "a"),
    "patient history": (lambda w: f"/api/patients/{w.ann.pk}/history", "patient-history", "a"),
    "session list": (lambda w: "/api/sessions/", "session-list", "ab"),
    "session detail": (lambda w: f"/api/sessions/{_session(w, w.bob)}/", "session-detail", "b"),
    "flag list": (lambda w: "/api/flags/", "flag-list", "ab"),  # ann switched; bob had his first infusion
    "flag detail": (lambda w: f"/api/flags/{w.flag.pk}/", "flag-detail", "a"),
    "recall look-up": (lambda w: f"/api/recalls/lookup?lot={w.lot.lot_number}", "recall-lookup", "ab"),
    "recall lookback": (lambda w: f"/api/recalls/{w.recall.pk}/lookback", "recall-lookback", "ab"),
    "recall export": (lambda w: f"/api/recalls/{w.recall.pk}/export.xlsx", "recall-export", "ab"),
    "notification list": (lambda w: f"/api/recalls/{w.recall.pk}/notifications/", "recall-notifications", "ab"),
    "notification detail": (lambda w: f"/api/notifications/{_task(w, w.bob)}", "notification-detail", "b"),
    "session reactions": (lambda w: f"/api/sessions/{_session(w, w.bob)}/reactions", "session-reactions", "b"),
    "history of patients": (lambda w: "/api/audit/history/?model=patients", "audit-history", "ab"),
    "history of sessions": (lambda w: "/api/audit/history/?model=sessions", "audit-history", "ab"),
    "history of notifications": (lambda w: "/api/audit/history/?model=notifications", "audit-history", "ab"),
    "history of one patient": (lambda w: "/api/audit/history/?patient=MRN-BOB", "audit-history", "b"),
}


@pytest.mark.parametrize("name", ENDPOINTS)
def test_each_read_of_patient_data_records_who_saw_which_patient_and_through_what(name, world, auditor, auditor_client):
    url_of, via, whose = ENDPOINTS[name]
    url = url_of(world)
    patients = {"a": world.ann, "b": world.bob}

    with CaptureQueriesContext(connection) as queries:
        response = auditor_client.get(url)

    assert response.status_code == 200, response.content
    assert seen() == {("ada", patients[key].pk, via, "GET") for key in whose}
    assert log_inserts(queries) == 1
    rows = list(PatientAccess.objects.all())
    assert {row.path for row in rows} == {url}
    assert len({row.at for row in rows}) == 1  # one moment per request


LISTS = {
    # A technician sees the patients with a session in the coming days.
    "/api/patients/": lambda: InfusionSessionFactory().patient,
    "/api/sessions/": InfusionSessionFactory,
    "/api/flags/": BrandSwitchFlagFactory,
}


@pytest.mark.parametrize("url", LISTS)
def test_a_list_records_its_whole_page_in_one_insert_whatever_its_length(url, tech_client):
    make_row = LISTS[url]
    make_row()
    tech_client.get(url)  # warms the per-user role cache
    before = PatientAccess.objects.count()

    with CaptureQueriesContext(connection) as one:
        tech_client.get(url)
    for _ in range(39):
        make_row()
    with CaptureQueriesContext(connection) as forty:
        tech_client.get(url, {"page_size": 40})

    assert (log_inserts(one), log_inserts(forty)) == (1, 1)
    assert len(one) == len(forty)
    assert PatientAccess.objects.count() - before == 1 + 40


def test_a_look_up_of_a_lot_given_to_many_patients_is_one_insert(auditor_client):
    lot = given_lot(*[PatientFactory() for _ in range(30)], lot_number="MANY-30")

    with CaptureQueriesContext(connection) as queries:
        response = auditor_client.get("/api/recalls/lookup", {"lot": lot.lot_number})

    assert response.status_code == 200
    assert log_inserts(queries) == 1
    assert PatientAccess.objects.filter(via="recall-lookup").count() == 30


def test_a_page_that_shows_no_patient_records_nothing(tech_client):
    with CaptureQueriesContext(connection) as queries:
        response = tech_client.get("/api/patients/")

    assert response.status_code == 200
    assert log_inserts(queries) == 0
    assert not PatientAccess.objects.exists()


@pytest.mark.parametrize("role", [None, "none"])
def test_anonymous_and_roleless_requests_record_nothing(role, world, client_for):
    client = client_for(role)

    statuses = {client.get(ENDPOINTS[name][0](world)).status_code for name in ENDPOINTS}

    assert statuses == {expected_status(role, set(), 200)}
    assert not PatientAccess.objects.exists()


def test_a_refused_role_records_nothing(world, tech_client):
    for name in ("recall look-up", "recall lookback", "recall export", "notification list"):
        assert tech_client.get(ENDPOINTS[name][0](world)).status_code == 403

    assert not PatientAccess.objects.exists()


def test_an_unknown_record_or_bad_input_records_nothing(world, auditor_client):
    responses = [
        auditor_client.get("/api/patients/999999/"),
        auditor_client.get("/api/patients/999999/history"),
        auditor_client.get("/api/sessions/999999/"),
        auditor_client.get("/api/recalls/lookup"),
        auditor_client.get("/api/recalls/lookup", {"lot": "NO-SUCH-LOT"}),
        auditor_client.get("/api/recalls/999999/export.xlsx"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 400, 404, 404]
    assert not PatientAccess.objects.exists()


def test_a_write_is_left_to_the_history_and_records_no_access(world, pharmacist_client):
    response = pharmacist_client.patch(f"/api/patients/{world.ann.pk}/", {"weight_kg": "71.0"})

    assert response.status_code == 200
    assert not PatientAccess.objects.exists()


# --- the service ---------------------------------------------------------------------------------


def test_the_service_counts_each_patient_once_and_skips_missing_ids(db, technician):
    ann, bob = PatientFactory(), PatientFactory()

    rows = patient_access_record(user=technician, patient_ids=[bob.pk, ann.pk, bob.pk, None], via="patient-list")

    assert sorted(r.patient_id for r in rows) == sorted([ann.pk, bob.pk])
    assert seen() == {("alice", ann.pk, "patient-list", ""), ("alice", bob.pk, "patient-list", "")}


def test_the_service_writes_nothing_for_anonymous_users_or_no_patients(db, technician, django_assert_num_queries):
    from django.contrib.auth.models import AnonymousUser

    patient = PatientFactory()

    with django_assert_num_queries(0):
        assert patient_access_record(user=AnonymousUser(), patient_ids=[patient.pk], via="x") == []
        assert patient_access_record(user=None, patient_ids=[patient.pk], via="x") == []
        assert patient_access_record(user=technician, patient_ids=[], via="x") == []
        assert patient_access_record(user=technician, patient_ids=[None], via="x") == []


def test_the_service_keeps_the_first_200_characters_of_a_long_path(db, technician, rf):
    patient = PatientFactory()
    request = rf.get("/api/patients/", {"search": "x" * 500})

    (row,) = patient_access_record(user=technician, patient_ids=[patient.pk], via="patient-list", request=request)

    row.refresh_from_db()
    assert row.path == request.get_full_path()[:200] and len(row.path) == 200
    assert row.method == "GET"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite splits an INSERT past 999 bound values")
def test_on_postgresql_hundreds_of_patients_are_one_insert_and_one_for_their_seals(db, technician, django_assert_num_queries):
    ids = [PatientFactory().pk for _ in range(300)]

    with django_assert_num_queries(2):
        patient_access_record(user=technician, patient_ids=ids, via="recall-lookup")

    assert PatientAccess.objects.count() == 300


# --- the auditors' API -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_only_auditors_may_read_the_access_log(role, client_for):
    response = client_for(role).get(ACCESS)

    assert response.status_code == expected_status(role, {"auditor"}, 200)


def _log(user, patient, at, via="patient-detail") -> PatientAccess:
    return PatientAccess.objects.create(user=user, patient=patient, at=at, via=via, method="GET", path="/x")


@pytest.fixture
def log(db):
    """Alice saw ann on 10 January and bob on 12 January; paul saw bob on 11 January (local time)."""
    alice, paul = UserFactory(username="alice"), UserFactory(username="paul")
    ann, bob = PatientFactory(mrn="MRN-ANN", name="Ann"), PatientFactory(mrn="MRN-BOB", name="Bob")
    local = timezone.get_current_timezone()
    return {
        "ann-10": _log(alice, ann, datetime(2026, 1, 10, 9, 30, tzinfo=local)),
        "bob-11": _log(paul, bob, datetime(2026, 1, 11, 23, 45, tzinfo=local), via="recall-lookup"),
        "bob-12": _log(alice, bob, datetime(2026, 1, 12, 0, 15, tzinfo=local)),
    }


def _ids(client, log, **params) -> list[str]:
    response = client.get(ACCESS, params)
    assert response.status_code == 200, response.content
    names = {row.pk: name for name, row in log.items()}
    return [names[row["id"]] for row in response.json()["results"]]


def test_the_access_log_lists_newest_first_with_who_whom_when_and_how(log, auditor_client):
    body = auditor_client.get(ACCESS).json()

    assert [row["id"] for row in body["results"]] == [log["bob-12"].pk, log["bob-11"].pk, log["ann-10"].pk]
    second = body["results"][1]
    assert second["user"] == "paul"
    assert second["patient"] == {"id": log["bob-11"].patient_id, "mrn": "MRN-BOB", "name": "Bob"}
    assert (second["via"], second["method"], second["path"]) == ("recall-lookup", "GET", "/x")
    assert datetime.fromisoformat(second["at"]) == log["bob-11"].at


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"patient": "MRN-BOB"}, ["bob-12", "bob-11"]),
        ({"user": "alice"}, ["bob-12", "ann-10"]),
        ({"patient": "MRN-BOB", "user": "alice"}, ["bob-12"]),
        ({"since": "2026-01-11"}, ["bob-12", "bob-11"]),
        ({"until": "2026-01-11"}, ["bob-11", "ann-10"]),
        ({"since": "2026-01-11", "until": "2026-01-11"}, ["bob-11"]),
        ({"since": "2026-01-11T23:50:00"}, ["bob-12"]),
        ({"patient": "MRN-NOBODY"}, []),
    ],
)
def test_the_access_log_filters_by_patient_user_and_time(params, expected, log, auditor_client):
    assert _ids(auditor_client, log, **params) == expected


@pytest.mark.parametrize("params", [{"since": "last week"}, {"until": "2026-13-01"}])
def test_a_bad_date_is_a_400(params, log, auditor_client):
    response = auditor_client.get(ACCESS, params)

    assert (response.status_code, response.json()["code"]) == (400, "invalid_filter")


def test_the_access_log_pages_with_a_cursor(log, auditor_client):
    first = auditor_client.get(ACCESS, {"page_size": 2}).json()
    second = auditor_client.get(first["next"]).json()
    back = auditor_client.get(second["previous"]).json()

    assert [r["id"] for r in first["results"]] == [log["bob-12"].pk, log["bob-11"].pk]
    assert [r["id"] for r in second["results"]] == [log["ann-10"].pk]
    assert second["next"] is None
    assert back["results"] == first["results"]


def test_a_forged_cursor_is_a_400(log, auditor_client):
    response = auditor_client.get(ACCESS, {"cursor": "not-a-cursor"})

    assert (response.status_code, response.json()["code"]) == (400, "invalid_cursor")


def test_the_access_log_costs_the_same_queries_for_one_row_or_many(auditor_client, django_assert_num_queries):
    def make_row():
        patient_access_record(user=UserFactory(), patient_ids=[PatientFactory().pk], via="patient-detail")

    assert assert_constant_queries(auditor_client, ACCESS, make_row, django_assert_num_queries) == 1


def test_reading_the_access_log_records_no_access(log, auditor_client):
    auditor_client.get(ACCESS)

    assert PatientAccess.objects.count() == len(log)


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_lists_the_log_but_cannot_add_change_or_delete(admin_client, log):
    row = log["ann-10"]

    assert admin_client.get("/admin/audit/patientaccess/").status_code == 200
    assert admin_client.get(f"/admin/audit/patientaccess/{row.pk}/change/").status_code == 200
    assert admin_client.get("/admin/audit/patientaccess/add/").status_code == 403
    assert admin_client.post(f"/admin/audit/patientaccess/{row.pk}/change/", {"via": "x"}).status_code == 403
    assert admin_client.post(f"/admin/audit/patientaccess/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PatientAccess.objects.get(pk=row.pk).via == "patient-detail"
