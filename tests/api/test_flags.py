import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BrandSwitchFlagFactory, InfusionSessionFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, state
from traceability.models import BrandSwitchFlag
from tests.api.helpers import ROLES, refused

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ROLES)
def test_flags_are_read_by_technicians_pharmacists_and_auditors(role, client_for):
    flag = BrandSwitchFlagFactory()
    client = client_for(role)
    readers = {"technician", "pharmacist", "auditor"}

    for url in ("/api/flags/", f"/api/flags/{flag.pk}/"):
        assert client.get(url).status_code == (200 if role in readers else refused(role)), url


@pytest.mark.parametrize("role", ROLES)
def test_only_a_pharmacist_acknowledges_a_flag(role, client_for):
    flag = BrandSwitchFlagFactory()

    response = client_for(role).post(f"/api/flags/{flag.pk}/acknowledge", {"reason": "shortage"})

    assert response.status_code == (200 if role == "pharmacist" else refused(role))
    flag.refresh_from_db()
    assert flag.status == ("acknowledged" if role == "pharmacist" else "open")


def test_open_flags_are_listed_with_their_patient(tech_client):
    session = InfusionSessionFactory(patient=PatientFactory(mrn="MRN-7", name="Ann Smith"))
    open_flag = BrandSwitchFlagFactory(session=session, from_product=brand("Privigen"), to_product=brand("Panzyga"))
    BrandSwitchFlagFactory(status=BrandSwitchFlag.Status.ACKNOWLEDGED)

    body = tech_client.get("/api/flags/", {"open": "true"}).json()

    [row] = body["results"]
    assert row["id"] == open_flag.pk
    assert row["patient"] == {"id": session.patient.pk, "mrn": "MRN-7", "name": "Ann Smith"}
    assert row["advice"] == (
        "Start the first infusion of Panzyga at the initial (slowest) rate and watch the whole first infusion and the "
        "hour after; the patient is switching from Privigen."
    )


def test_flags_filter_by_open_session_and_patient(tech_client):
    a = BrandSwitchFlagFactory()
    b = BrandSwitchFlagFactory(status=BrandSwitchFlag.Status.ACKNOWLEDGED)

    def ids(**params):
        return [f["id"] for f in tech_client.get("/api/flags/", params).json()["results"]]

    assert ids(open="false") == [b.pk]
    assert ids(session=a.session_id) == [a.pk]
    assert ids(patient=b.session.patient_id) == [b.pk]


def test_acknowledge_records_the_reason_and_the_pharmacist(pharmacist_client):
    flag = BrandSwitchFlagFactory()

    response = pharmacist_client.post(
        f"/api/flags/{flag.pk}/acknowledge", {"reason": "other", "reason_text": "patient preference"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "acknowledged"
    assert (body["reason"], body["reason_text"]) == ("other", "patient preference")
    assert body["acknowledged_by"] == "paul"
    row = BrandSwitchFlag.objects.get(pk=flag.pk).history.first()
    assert row.history_user.username == "paul"


def test_a_second_acknowledgement_is_a_conflict_that_changes_nothing(pharmacist_client):
    flag = BrandSwitchFlagFactory()
    pharmacist_client.post(f"/api/flags/{flag.pk}/acknowledge", {"reason": "payer"})
    before = state()

    response = pharmacist_client.post(f"/api/flags/{flag.pk}/acknowledge", {"reason": "shortage"})

    assert response.status_code == 409
    assert response.json()["code"] == "flag_already_acknowledged"
    assert state() == before


@pytest.mark.parametrize(
    "body, code",
    [({}, "invalid"), ({"reason": "bored"}, "invalid_reason"), ({"reason": "other"}, "reason_text_required")],
)
def test_an_acknowledgement_without_a_valid_reason_is_refused(body, code, pharmacist_client):
    flag = BrandSwitchFlagFactory()
    before = state()

    response = pharmacist_client.post(f"/api/flags/{flag.pk}/acknowledge", body)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert state() == before


def test_an_unknown_flag_is_not_found(pharmacist_client):
    response = pharmacist_client.post("/api/flags/999999/acknowledge", {"reason": "payer"})

    assert response.status_code == 404


def _count(client, url) -> int:
    client.get(url)  # warms the per-user role cache
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_flag_list_costs_the_same_queries_for_one_or_many(tech_client):
    BrandSwitchFlagFactory(acknowledged_by=UserFactory())
    one = _count(tech_client, "/api/flags/")
    for _ in range(5):
        BrandSwitchFlagFactory(acknowledged_by=UserFactory())

    assert _count(tech_client, "/api/flags/") == one == 4  # count, page, access-log INSERT and its seals
