from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import PatientAccess
from inventory.models import Lot, StorageLocation, Vial, local_today
from tests.factories import (
    AdverseReactionFactory,
    BrandSwitchFlagFactory,
    DispenseFactory,
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    StorageLocationFactory,
    UserFactory,
)
from tests.traceability.helpers import brand, completed_session, fridge, state, stock
from traceability.models import AdverseReaction, BrandSwitchFlag, InfusionSession
from tests.api.helpers import ROLES, expected_status

pytestmark = pytest.mark.django_db

READERS = {"technician", "pharmacist", "auditor"}
ACTORS = {"technician", "pharmacist"}
ORDERERS = {"pharmacist"}


def scan_of(vial: Vial) -> str:
    """The raw DataMatrix content a keyboard-wedge scanner sends for this vial."""
    return (
        f"]d201{vial.presentation.gtin}17{vial.lot.expiry_date:%y%m%d}10{vial.lot.lot_number}\x1d21{vial.serial}"
    )


# --- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_sessions_are_read_by_the_roles_that_need_them(role, client_for):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)
    client = client_for(role)

    for url in ("/api/sessions/", f"/api/sessions/{session.pk}/", f"/api/sessions/{session.pk}/reactions"):
        assert client.get(url).status_code == expected_status(role, READERS, 200), url


@pytest.mark.parametrize("role", ROLES)
def test_only_pharmacists_order_start_and_cancel_sessions(role, client_for):
    client = client_for(role)
    patient = PatientFactory()
    to_start, to_cancel = InfusionSessionFactory(), InfusionSessionFactory()

    created = client.post(
        "/api/sessions/",
        {"patient": patient.pk, "scheduled_date": str(local_today()), "indication": "cidp", "ordered_grams": "40"},
    )
    started = client.post(f"/api/sessions/{to_start.pk}/start")
    cancelled = client.post(f"/api/sessions/{to_cancel.pk}/cancel", {"reason": "unwell"})

    assert created.status_code == expected_status(role, ORDERERS, 201)
    assert started.status_code == expected_status(role, ORDERERS, 200)
    assert cancelled.status_code == expected_status(role, ORDERERS, 200)
    if role not in ORDERERS:
        assert InfusionSession.objects.count() == 2
        assert set(InfusionSession.objects.values_list("status", flat=True)) == {"scheduled"}


@pytest.mark.parametrize("role", ROLES)
def test_only_technicians_and_pharmacists_dispense_pick_return_and_waste(role, client_for):
    client = client_for(role)
    session = InfusionSessionFactory(ordered_grams=Decimal("30"))
    [vial] = stock(brand("Privigen"), grams=10)
    to_return, to_waste = DispenseFactory(session=session), DispenseFactory(session=session)

    picked = client.post(f"/api/sessions/{session.pk}/pick")
    dispensed = client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})
    returned = client.post(f"/api/dispenses/{to_return.pk}/return", {"location": fridge().code, "reason": "spare"})
    wasted = client.post(f"/api/dispenses/{to_waste.pk}/waste", {"reason": "opened"})

    assert picked.status_code == expected_status(role, ACTORS, 200)
    assert dispensed.status_code == expected_status(role, ACTORS, 201)
    assert returned.status_code == expected_status(role, ACTORS, 200)
    assert wasted.status_code == expected_status(role, ACTORS, 200)
    if role not in ACTORS:
        assert Vial.objects.get(pk=vial.pk).status == Vial.Status.IN_STOCK


@pytest.mark.parametrize("role", ROLES)
def test_dispenses_are_read_by_technicians_pharmacists_and_auditors(role, client_for):
    dispense = DispenseFactory()

    response = client_for(role).get(f"/api/dispenses/{dispense.pk}/")

    assert response.status_code == expected_status(role, {"technician", "pharmacist", "auditor"}, 200)


@pytest.mark.parametrize("role", ROLES)
def test_the_dispense_list_is_read_by_technicians_pharmacists_and_auditors(role, client_for):
    DispenseFactory()

    response = client_for(role).get("/api/dispenses/")

    assert response.status_code == expected_status(role, {"technician", "pharmacist", "auditor"}, 200)


def test_the_dispense_list_finds_the_live_dispense_of_a_vial(tech_client):
    returned = DispenseFactory(status="returned_to_stock")
    vial = returned.vial
    live = DispenseFactory(vial=vial)
    DispenseFactory()

    response = tech_client.get(f"/api/dispenses/?vial={vial.pk}&status=dispensed")

    assert response.status_code == 200
    assert [d["id"] for d in response.json()["results"]] == [live.pk]


def test_the_dispense_list_costs_the_same_queries_for_one_and_for_many(tech_client, django_assert_num_queries):
    DispenseFactory()
    tech_client.get("/api/dispenses/")  # the first request loads the user's roles
    # The count, the page's keys, its rows with their joins by key.
    with django_assert_num_queries(3):
        assert tech_client.get("/api/dispenses/").json()["count"] == 1
    for _ in range(15):
        DispenseFactory()
    with django_assert_num_queries(3):
        assert tech_client.get("/api/dispenses/").json()["count"] == 16


@pytest.mark.parametrize("query", ["vial=abc", "vial=0", "session=99999999999999999999", "status=lost"])
def test_the_dispense_list_refuses_bad_filters(query, tech_client):
    response = tech_client.get(f"/api/dispenses/?{query}")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")


@pytest.mark.parametrize("role", ROLES)
def test_technicians_and_pharmacists_complete_sessions_but_only_pharmacists_record_reactions(role, client_for):
    client = client_for(role)
    session = DispenseFactory(session__status=InfusionSession.Status.IN_PROGRESS, session__ordered_grams=Decimal("10")).session
    onset = (timezone.now() - timedelta(minutes=5)).isoformat()

    reaction = client.post(
        f"/api/sessions/{session.pk}/reactions", {"type": "headache", "severity": "mild", "onset_at": onset}
    )
    completed = client.post(f"/api/sessions/{session.pk}/complete")

    assert reaction.status_code == expected_status(role, ORDERERS, 201)
    assert completed.status_code == expected_status(role, ACTORS, 200)
    if role not in ORDERERS:
        assert not AdverseReaction.objects.exists()


# --- ordering -----------------------------------------------------------------------------------


def test_a_session_ordered_in_grams_per_kg_gets_its_grams_from_the_weight(pharmacist_client):
    patient = PatientFactory(weight_kg=Decimal("80"))

    response = pharmacist_client.post(
        "/api/sessions/",
        {"patient": patient.pk, "scheduled_date": str(local_today()), "indication": "primary_immunodeficiency",
         "dose_g_per_kg": "0.5", "site": "Day unit"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["ordered_grams"] == "40.00"
    assert body["status"] == "scheduled"
    assert body["patient"]["mrn"] == patient.mrn
    assert body["dispenses"] == [] and body["flags"] == [] and body["reactions"] == []


def test_a_dose_per_kg_for_a_patient_without_weight_is_refused_and_nothing_is_created(pharmacist_client):
    patient = PatientFactory(weight_kg=None)
    before = state()

    response = pharmacist_client.post(
        "/api/sessions/",
        {"patient": patient.pk, "scheduled_date": str(local_today()), "indication": "itp", "dose_g_per_kg": "1"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "weight_unknown"
    assert state() == before


def test_an_order_for_an_unknown_patient_is_invalid(pharmacist_client):
    response = pharmacist_client.post(
        "/api/sessions/",
        {"patient": 999999, "scheduled_date": str(local_today()), "indication": "itp", "ordered_grams": "10"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_session_with_live_dispenses_is_not_cancelled(pharmacist_client):
    dispense = DispenseFactory()
    before = state()

    response = pharmacist_client.post(f"/api/sessions/{dispense.session_id}/cancel", {"reason": "unwell"})

    assert response.status_code == 409
    assert response.json()["code"] == "session_has_live_dispenses"
    assert response.json()["dispenses"] == [dispense.pk]
    assert state() == before


def test_start_of_a_session_in_progress_is_a_conflict(pharmacist_client):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)

    response = pharmacist_client.post(f"/api/sessions/{session.pk}/start/")

    assert response.status_code == 409
    assert response.json()["code"] == "session_state_conflict"


# --- dispensing ---------------------------------------------------------------------------------


def test_a_scanned_vial_is_dispensed_to_the_session(tech_client):
    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"), grams=10)

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": scan_of(vial)})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["dispense"]["vial"]["id"] == vial.pk
    assert body["dispense"]["vial"]["lot"]["lot_number"] == vial.lot.lot_number
    assert body["dispense"]["product"]["brand"] == "Privigen"
    assert body["dispense"]["dispensed_by"] == "alice"
    # The patient's first infusion: advice to watch it, not a switch.
    assert [f["kind"] for f in body["flags_raised"]] == ["first"]
    assert "First immunoglobulin infusion" in body["advice"]
    assert Vial.objects.get(pk=vial.pk).status == Vial.Status.DISPENSED


def test_a_brand_switch_is_announced_in_the_dispense_response(tech_client):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient)
    [vial] = stock(panzyga)

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})

    assert response.status_code == 201
    body = response.json()
    [flag] = body["flags_raised"]
    assert flag["kind"] == "switch"
    assert flag["from_product"]["brand"] == "Privigen" and flag["to_product"]["brand"] == "Panzyga"
    assert flag["status"] == "open"
    assert body["advice"] == (
        "Start the first infusion of Panzyga at the initial (slowest) rate and watch the whole first infusion and the "
        "hour after; the patient is switching from Privigen."
    )


def test_a_dispense_costs_a_fixed_number_of_statements(tech_client, django_assert_num_queries):
    """The session and the vial named, then under the dispense's savepoint: the session, its
    authorisation and the vial locked, the checks (previous reactions, what the session was given,
    the authorisation's doses and vial sizes), the vial, dispense and their history rows, the
    patient's last infusion, and the seals of the history rows in two statements."""
    privigen = brand("Privigen")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("40"))
    first, second = stock(privigen, grams=10, n=2)
    assert tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": first.pk}).status_code == 201

    with django_assert_num_queries(DISPENSE_STATEMENTS):
        response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": scan_of(second)})

    assert response.status_code == 201, response.json()
    assert response.json()["flags_raised"] == []


DISPENSE_STATEMENTS = 20  # 34 before the checks and the seals shared their reads


def test_a_recalled_vial_is_refused_with_its_code_and_nothing_changes(tech_client):
    session = InfusionSessionFactory()
    privigen = brand("Privigen")
    [vial] = stock(privigen, lot=LotFactory(product=privigen, status=Lot.Status.RECALLED))
    before = state()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": scan_of(vial)})

    assert response.status_code == 409
    assert response.json()["code"] == "lot_recalled"
    assert state() == before


def test_a_dispense_to_a_completed_session_is_refused(pharmacist_client):
    session = InfusionSessionFactory(status=InfusionSession.Status.COMPLETED)
    [vial] = stock(brand("Privigen"))

    response = pharmacist_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})

    assert response.status_code == 409
    assert response.json()["code"] == "session_not_open"


def test_a_second_scan_of_a_dispensed_vial_is_refused(tech_client):
    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"))
    tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})
    before = state()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": scan_of(vial)})

    assert response.status_code == 409
    assert response.json()["code"] == "already_dispensed"
    assert state() == before


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({}, 400, "invalid"),
        ({"barcode": "x", "vial": 1}, 400, "invalid"),
        ({"barcode": "not a barcode"}, 400, "invalid_barcode"),
        ({"vial": 999999}, 404, "unknown_vial"),
    ],
)
def test_a_dispense_request_that_names_no_vial_is_refused(body, status, code, tech_client):
    session = InfusionSessionFactory()
    before = state()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", body)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert state() == before


def test_a_dispense_to_an_unknown_session_is_not_found(tech_client):
    [vial] = stock(brand("Privigen"))

    response = tech_client.post("/api/sessions/999999/dispenses", {"vial": vial.pk})

    assert response.status_code == 404


def test_an_unopened_vial_is_returned_to_a_shelf(tech_client):
    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"))
    dispense_id = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk}).json()["dispense"]["id"]
    shelf = StorageLocationFactory(code="FRIDGE-9", kind=StorageLocation.Kind.REFRIGERATOR)

    response = tech_client.post(f"/api/dispenses/{dispense_id}/return", {"location": "FRIDGE-9", "reason": "spare"})

    assert response.status_code == 200
    assert response.json()["status"] == "returned_to_stock"
    assert response.json()["closed_by"] == "alice"
    vial.refresh_from_db()
    assert (vial.status, vial.location) == (Vial.Status.IN_STOCK, shelf)


def test_a_return_without_a_reason_is_refused(tech_client):
    dispense = DispenseFactory()
    before = state()

    response = tech_client.post(f"/api/dispenses/{dispense.pk}/return", {"location": fridge().code, "reason": " "})

    assert response.status_code == 400
    assert response.json()["code"] == "reason_required"
    assert state() == before


def test_a_return_to_an_unknown_shelf_is_refused(tech_client):
    dispense = DispenseFactory()

    response = tech_client.post(f"/api/dispenses/{dispense.pk}/return", {"location": "NOPE", "reason": "x"})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_location"


def test_an_opened_vial_is_wasted_and_a_second_waste_is_a_conflict(tech_client):
    dispense = DispenseFactory()

    first = tech_client.post(f"/api/dispenses/{dispense.pk}/waste", {"reason": "half used"})
    second = tech_client.post(f"/api/dispenses/{dispense.pk}/waste", {"reason": "again"})

    assert first.status_code == 200 and first.json()["status"] == "wasted"
    assert Vial.objects.get(pk=dispense.vial_id).status == Vial.Status.WASTED
    assert second.status_code == 409 and second.json()["code"] == "dispense_closed"


# --- picking ------------------------------------------------------------------------------------


def test_pick_proposes_vials_with_their_overfill(tech_client):
    privigen = brand("Privigen")
    stock(privigen, grams=10, n=3)
    stock(privigen, grams=5, n=1)
    session = InfusionSessionFactory(ordered_grams=Decimal("22"))

    response = tech_client.post(f"/api/sessions/{session.pk}/pick")

    assert response.status_code == 200
    body = response.json()
    assert body["needed_grams"] == "22.00"
    assert body["total_grams"] == "25.00"
    assert body["overfill_grams"] == "3.00"
    assert sorted(v["grams"] for v in body["vials"]) == ["10.00", "10.00", "5.00"]
    assert body["brands"] == ["Privigen"]
    assert body["brand_switch"] is None
    assert all(v["location"]["code"] == "FRIDGE-1" for v in body["vials"])


def test_pick_names_the_brand_switch_it_would_cause(tech_client):
    privigen, panzyga = brand("Privigen"), brand("Panzyga", excipient="glycine")
    patient = PatientFactory()
    completed_session(patient, privigen)
    stock(panzyga, grams=10, n=2)
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("20"))

    body = tech_client.post(f"/api/sessions/{session.pk}/pick").json()

    switch = body["brand_switch"]
    assert switch["from_product"]["brand"] == "Privigen" and switch["to_product"]["brand"] == "Panzyga"
    assert {"field": "excipient", "from": "L-proline", "to": "glycine"} in switch["differences"]
    assert switch["advice"].startswith("Start the first infusion of Panzyga")


def test_pick_without_enough_stock_is_a_conflict_saying_what_is_available(tech_client):
    stock(brand("Privigen"), grams=10, n=1)
    session = InfusionSessionFactory(ordered_grams=Decimal("30"))

    response = tech_client.post(f"/api/sessions/{session.pk}/pick")

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["available_grams"] == "10"


# --- completion and reactions -------------------------------------------------------------------


def test_completion_waits_for_the_pharmacist_to_acknowledge_the_switch(tech_client, pharmacist_client):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("20"))
    for vial in stock(panzyga, n=2):
        tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk})
    before = state()

    answer = tech_client.post(f"/api/sessions/{session.pk}/complete")

    assert answer.status_code == 409
    assert answer.json()["code"] == "open_brand_switch_flag"
    assert state() == before
    flag = BrandSwitchFlag.objects.get()
    pharmacist_client.post(f"/api/flags/{flag.pk}/acknowledge", {"reason": "shortage"})
    completed = tech_client.post(f"/api/sessions/{session.pk}/complete")
    assert completed.status_code == 200
    assert completed.json()["status"] == "completed"
    assert completed.json()["grams_dispensed"] == "20.00"
    assert completed.json()["ordered_grams"] == "20.00"
    assert completed.json()["completed_by"] == "alice"


def test_reactions_are_recorded_and_listed_under_the_session(pharmacist_client):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)
    onset = timezone.now() - timedelta(minutes=20)

    created = pharmacist_client.post(
        f"/api/sessions/{session.pk}/reactions",
        {"type": "fever_chills", "severity": "moderate", "onset_at": onset.isoformat(), "notes": "rate halved"},
    )
    listed = pharmacist_client.get(f"/api/sessions/{session.pk}/reactions")

    assert created.status_code == 201
    assert created.json()["recorded_by"] == "paul"
    assert listed.json()["count"] == 1
    assert [r["type"] for r in listed.json()["results"]] == ["fever_chills"]


@pytest.mark.parametrize("onset", ["9999-12-31T23:59:59", "0001-01-01T00:00:00Z", "not a time"])
def test_a_reaction_onset_off_the_calendar_is_a_400_and_records_nothing(onset, pharmacist_client):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)

    response = pharmacist_client.post(
        f"/api/sessions/{session.pk}/reactions", {"type": "headache", "severity": "mild", "onset_at": onset}
    )

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "onset_at" in response.json()["errors"]
    assert not AdverseReaction.objects.exists()


def test_a_reaction_on_a_session_never_started_is_a_conflict(pharmacist_client):
    session = InfusionSessionFactory()

    response = pharmacist_client.post(
        f"/api/sessions/{session.pk}/reactions",
        {"type": "headache", "severity": "mild", "onset_at": timezone.now().isoformat()},
    )

    assert response.status_code == 409
    assert response.json()["code"] == "no_infusion"
    assert not AdverseReaction.objects.exists()


# --- lists --------------------------------------------------------------------------------------


def test_sessions_filter_by_patient_dates_status_and_brand(auditor_client):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    ann, bob = PatientFactory(), PatientFactory()
    a_old = completed_session(ann, privigen, days_ago=60)
    a_recent = completed_session(ann, panzyga, days_ago=10)
    b_today = InfusionSessionFactory(patient=bob)

    def ids(**params):
        return [s["id"] for s in auditor_client.get("/api/sessions/", params).json()["results"]]

    assert ids(patient=ann.pk) == [a_recent.pk, a_old.pk]
    assert ids(date_from=str(local_today() - timedelta(days=30))) == [b_today.pk, a_recent.pk]
    assert ids(date_to=str(local_today() - timedelta(days=30))) == [a_old.pk]
    assert ids(status="scheduled") == [b_today.pk]
    assert ids(brand="privigen") == [a_old.pk]


def _count(client, url) -> int:
    client.get(url)  # warms the per-user role cache
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _busy_session():
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    session = completed_session(patient, privigen, panzyga)
    BrandSwitchFlagFactory(session=session, from_product=privigen, to_product=panzyga, acknowledged_by=UserFactory())
    AdverseReactionFactory(session=session)
    return session


def test_the_session_list_costs_the_same_queries_for_one_or_many(pharmacist_client):
    _busy_session()
    one = _count(pharmacist_client, "/api/sessions/")
    for _ in range(5):
        _busy_session()

    # 6 reads (the count, the page's keys, its rows, their dispenses, flags, reactions) + the
    # access-log INSERT and its seals.
    assert _count(pharmacist_client, "/api/sessions/") == one == 8


def test_a_session_detail_costs_the_same_queries_however_full(pharmacist_client):
    empty = InfusionSessionFactory()
    busy = _busy_session()

    # 4 reads + the access-log INSERT and its seals
    assert _count(pharmacist_client, f"/api/sessions/{empty.pk}/") == _count(pharmacist_client, f"/api/sessions/{busy.pk}/") == 6



# --- who sees which sessions --------------------------------------------------------------------


def test_a_technician_sees_only_the_open_sessions_of_the_coming_days(tech_client):
    soon = InfusionSessionFactory(scheduled_date=local_today() + timedelta(days=3))
    later = InfusionSessionFactory(scheduled_date=local_today() + timedelta(days=30))
    done = completed_session(PatientFactory(), brand("Privigen"), days_ago=14)

    listed = [s["id"] for s in tech_client.get("/api/sessions/").json()["results"]]

    assert listed == [soon.pk]
    for hidden in (later, done):
        for url in (f"/api/sessions/{hidden.pk}/", f"/api/sessions/{hidden.pk}/reactions"):
            response = tech_client.get(url)
            assert response.status_code == 404, url
            assert hidden.patient.mrn not in response.content.decode()


def test_a_technician_cannot_dispense_into_a_session_beyond_the_coming_days(tech_client):
    later = InfusionSessionFactory(scheduled_date=local_today() + timedelta(days=30))
    [vial] = stock(brand("Privigen"))
    before = state()

    response = tech_client.post(f"/api/sessions/{later.pk}/dispenses", {"vial": vial.pk})

    assert response.status_code == 404
    assert state() == before


def test_a_technician_sees_only_the_flags_of_the_coming_sessions(tech_client):
    soon = BrandSwitchFlagFactory(session=InfusionSessionFactory())
    old = BrandSwitchFlagFactory(session=completed_session(PatientFactory(), brand("Privigen"), days_ago=14))

    listed = [f["id"] for f in tech_client.get("/api/flags/").json()["results"]]

    assert listed == [soon.pk]
    assert tech_client.get(f"/api/flags/{old.pk}/").status_code == 404


def test_a_recall_coordinator_reads_no_session_nor_what_is_nested_in_one(recall_client):
    session = DispenseFactory(session__status=InfusionSession.Status.IN_PROGRESS).session
    BrandSwitchFlagFactory(session=session)

    for url in ("/api/sessions/", f"/api/sessions/{session.pk}/", f"/api/sessions/{session.pk}/reactions",
                "/api/flags/", "/api/dispenses/"):
        response = recall_client.get(url)
        assert response.status_code == 403, url
        assert session.patient.mrn not in response.content.decode()


def test_the_reactions_of_a_session_are_a_page_and_their_read_is_logged(auditor_client):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)
    AdverseReactionFactory.create_batch(3, session=session)

    body = auditor_client.get(f"/api/sessions/{session.pk}/reactions", {"page_size": 2}).json()

    assert (body["count"], len(body["results"])) == (3, 2)
    assert body["next"] is not None
    assert list(PatientAccess.objects.values_list("patient_id", "via")) == [(session.patient_id, "session-reactions")]
