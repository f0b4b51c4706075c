"""Traceability integrity over HTTP: the same refusals and codes as the services."""

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.models import SuspectScan, local_today
from inventory.services import lot_quarantine
from tests.api.helpers import ROLES, expected_status
from tests.factories import InfusionSessionFactory, LotFactory, UserFactory
from tests.inventory.helpers import carton
from tests.traceability.helpers import brand, state, stock
from traceability.services import vial_dispense

pytestmark = pytest.mark.django_db


@pytest.fixture
def suspect():
    [vial] = stock(brand("Privigen", excipient="glycine"), serial="S1", lot=LotFactory(lot_number="LOT-A"))
    return vial, carton(vial.presentation, lot="LOT-B", expiry=local_today() - timedelta(days=3), serial="S1")


def test_a_dispense_by_a_scan_of_a_known_serial_on_another_lot_is_refused_and_reported(tech_client, suspect):
    vial, raw = suspect
    session = InfusionSessionFactory(ordered_grams=Decimal("10"))
    before = state()

    response = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"barcode": raw})

    assert (response.status_code, response.json()["code"]) == (409, "suspect_product")
    assert state() == before  # nothing dispensed; the report is the one record made
    report = SuspectScan.objects.get()
    assert (report.vial, report.scanned_lot, report.reported_by.username) == (vial, "LOT-B", "alice")


def test_the_scan_card_shows_a_suspect_product_in_red_with_no_action(tech_client, suspect):
    _, raw = suspect
    body = tech_client.post("/api/scan", {"barcode": raw}).json()
    assert [w["code"] for w in body["warnings"]] == ["suspect_product"]
    assert body["actions"] == [] and body["vial"] is None
    assert SuspectScan.objects.count() == 1


@pytest.mark.parametrize("role", ROLES)
def test_pharmacists_resolve_suspect_reports(role, client_for, tech_client, suspect):
    tech_client.post("/api/scan", {"barcode": suspect[1]})
    report = SuspectScan.objects.get()
    client = client_for(role)
    listed = client.get("/api/suspect-scans/?status=open")
    resolved = client.post(f"/api/suspect-scans/{report.pk}/resolve", {"resolution": "quarantined, maker told"})
    assert listed.status_code == expected_status(role, {"technician", "pharmacist", "auditor", "recall_coordinator"}, 200)
    assert resolved.status_code == expected_status(role, {"pharmacist"}, 200)


def test_completion_waits_for_a_decision_on_a_vial_whose_lot_was_quarantined_after_dispense(
    tech_client, pharmacist_client
):
    session = InfusionSessionFactory(ordered_grams=Decimal("10"))
    [vial] = stock(brand("Privigen", excipient="glycine"))
    dispense = vial_dispense(session=session, vial=vial, actor=UserFactory(role="technician"))
    lot_quarantine(lot=vial.lot, reason="particles", actor=UserFactory(role="pharmacist"))

    refused = tech_client.post(f"/api/sessions/{session.pk}/complete")
    assert (refused.status_code, refused.json()["code"]) == (409, "lot_out_of_use_in_session")
    listed = pharmacist_client.get("/api/dispenses/?lot_out_of_use=true").json()["results"]
    assert [d["id"] for d in listed] == [dispense.pk]
    assert tech_client.post(f"/api/dispenses/{dispense.pk}/lot-decision", {"reason": "given"}).status_code == 403
    decided = pharmacist_client.post(f"/api/dispenses/{dispense.pk}/lot-decision", {"reason": "infusion was over"})
    assert decided.status_code == 200 and decided.json()["lot_decision_by"] == "paul"
    assert tech_client.post(f"/api/sessions/{session.pk}/complete").status_code == 200


def test_a_partly_given_session_is_not_cancelled_over_http(tech_client, pharmacist_client):
    session = InfusionSessionFactory(ordered_grams=Decimal("10"))
    [vial] = stock(brand("Privigen", excipient="glycine"))
    given = tech_client.post(f"/api/sessions/{session.pk}/dispenses", {"vial": vial.pk}).json()["dispense"]
    tech_client.post(f"/api/dispenses/{given['id']}/waste", {"reason": "reaction"})

    response = pharmacist_client.post(f"/api/sessions/{session.pk}/cancel", {"reason": "unwell"})
    assert (response.status_code, response.json()["code"]) == (409, "session_has_given_vials")


def test_a_presentation_with_a_case_gtin_is_refused_by_the_catalog(pharmacist_client):
    product = brand("Privigen", excipient="glycine")
    response = pharmacist_client.post("/api/presentations/", {"product": product.pk, "gtin": "19520000000018",
                                                                "grams": "10"})
    assert response.status_code == 400
    assert "case or pack" in response.json()["detail"]
