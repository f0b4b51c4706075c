"""In a real browser: the treatment authorisation on the scan card (the doses left and the end
date), a session without one refused until the pharmacist at the bench overrides it, and the
review page's authorisation reports."""

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.models import local_today
from tests.factories import AuthorisationFactory, InfusionSessionFactory, UserFactory
from tests.web.test_browser import (  # noqa: F401 (fixtures)
    _allow_orm_beside_playwright,
    browser,
    choose_session,
    log_in,
    page,
    pharmacy,
    scan_vial,
    shelf,
    shot,
)
from traceability.models import Dispense, DispenseOverride
from traceability.services import vial_dispense

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_card_shows_the_last_dose_of_an_authorisation_ending_soon(page, live_server, pharmacy):
    session = pharmacy["maria_today"]
    a = session.authorisation
    a.payer_reference, a.doses, a.valid_until = "BS-7781", 1, local_today() + timedelta(days=5)
    a.save()
    [vial] = shelf(pharmacy, pharmacy["gammagard"])
    log_in(page, live_server, "tina", "/scan/")
    choose_session(page, session)
    scan_vial(page, vial)

    page.wait_for_selector("#check-box .authorisation.amber")
    text = page.inner_text("#check-box .authorisation")
    assert "BS-7781" in text and "dose 1 of 1, 0 left after this" in text and "(5 days)" in text
    shot(page, "tech-authorisation-last-dose")


def test_a_session_without_an_authorisation_waits_for_the_pharmacists_override(page, live_server, pharmacy):
    session = InfusionSessionFactory(patient=pharmacy["maria"], authorisation=None, ordered_grams=Decimal("10"))
    [vial] = shelf(pharmacy, pharmacy["gammagard"])
    log_in(page, live_server, "phil", "/scan/")
    choose_session(page, session)
    scan_vial(page, vial)

    page.wait_for_selector('#check-box [data-check="authorisation_missing"]')
    assert "no treatment authorisation" in page.inner_text("#check-box")
    assert page.locator("button[data-action=dispense]").is_disabled()
    page.click("text=Override authorisation missing")
    # Typed at a person's pace: the station reads fast typing as a scanner's.
    page.wait_for_selector("#reason-dialog[open]")
    page.keyboard.type("Kawasaki: urgent; request lodged with the panel", delay=60)
    page.keyboard.press("Enter")
    page.wait_for_selector("button[data-action=dispense]:not([disabled])")
    page.keyboard.press("F6")
    page.wait_for_selector("#card .done")

    dispense = Dispense.objects.get(vial=vial)
    assert dispense.outside_authorisation
    assert DispenseOverride.objects.get().decision_reason == "Kawasaki: urgent; request lodged with the panel"

    page.goto(f"{live_server.url}/review/")
    page.wait_for_selector(f"#authorisation-discrepancies [data-dispense='{dispense.pk}']")
    assert "request lodged with the panel" in page.inner_text("#authorisation-discrepancies")
    # Settled with the payer: the pharmacist says how, and the vial leaves the open queue.
    page.fill(f"[aria-label='Reconciliation of dispense {dispense.pk}']", "retrospective approval BS-7790")
    page.click(f"#authorisation-discrepancies [data-dispense='{dispense.pk}'] button:has-text('Reconciled')")
    page.wait_for_selector(f"#authorisation-discrepancies [data-dispense='{dispense.pk}']", state="detached")
    dispense.refresh_from_db()
    assert dispense.authorisation_reconciliation == "retrospective approval BS-7790"


def test_the_review_page_lists_authorisations_ending_soon(page, live_server, pharmacy):
    ending = AuthorisationFactory(patient=pharmacy["aiko"], payer_reference="BS-0099",
                                  valid_until=local_today() + timedelta(days=10), doses=6)
    vial_dispense(session=InfusionSessionFactory(patient=pharmacy["aiko"], authorisation=ending),
                  vial=shelf(pharmacy, pharmacy["gammagard"])[0], actor=UserFactory(role="technician"))
    log_in(page, live_server, "phil", "/review/")

    page.wait_for_selector(f"#authorisations-expiring [data-authorisation='{ending.pk}']")
    text = page.inner_text("#authorisations-expiring")
    assert "Aiko Tanaka" in text and "BS-0099" in text and "(10 days); 5 of 6 doses left" in text
    page.wait_for_load_state("networkidle")  # the page's other lists have arrived too
