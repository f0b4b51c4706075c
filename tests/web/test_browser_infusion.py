"""The nurse's page in a real browser, on a tablet: a whole infusion with a reaction, recorded
from start to finish (Debian's headless Chromium, driven by Playwright, as in test_browser)."""

from decimal import Decimal

import pytest

from inventory.models import local_today
from tests.factories import AuthorisationFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, stock
from tests.web.test_browser import _allow_orm_beside_playwright, browser, log_in, shot  # noqa: F401 (fixtures)
from traceability.models import AdverseReaction, Administration, Dispense, VialFate
from traceability.services import session_create, vial_dispense

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tablet(browser):  # noqa: F811
    # A 10-inch tablet held in landscape, touch screen.
    context = browser.new_context(viewport={"width": 1180, "height": 820}, has_touch=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert page.errors == [], page.errors
    context.close()


@pytest.fixture
def ward(db):
    tech = UserFactory(username="tina", role="technician")
    UserFactory(username="nina", role="nurse", first_name="Nina", last_name="Nurse")
    privigen = brand("Privigen")
    rosa = PatientFactory(name="Rosa Diaz", mrn="MRN-7731", weight_kg=Decimal("60.0"))
    session = session_create(patient=rosa, scheduled_date=local_today(), indication="cidp",
                             ordered_grams=Decimal("20"), actor=tech,
                             authorisation=AuthorisationFactory(patient=rosa, indication="cidp"))
    dispenses = [vial_dispense(session=session, vial=v, actor=tech) for v in stock(privigen, 10, 2)]
    return {"session": session, "dispenses": dispenses}


def rate_shows(page, start: str) -> None:
    """Wait until the big rate line (redrawn after each action) starts with `start`."""
    page.wait_for_function(
        "s => { const n = document.getElementById('rate-now'); return !!n && n.textContent.startsWith(s); }", arg=start)


def test_a_nurse_records_a_whole_infusion_with_a_reaction_on_the_tablet(tablet, live_server, ward):
    page = tablet
    first, second = ward["dispenses"]
    log_in(page, live_server, "nina", "/infusion/")
    page.click(f"button[data-session='{ward['session'].pk}']")
    page.wait_for_selector("#who")
    assert "Rosa Diaz" in page.inner_text("#who") and "MRN-7731" in page.inner_text("#who")
    assert first.vial.serial in page.inner_text("#vials")

    page.fill("#premedication", "paracetamol 1 g PO, cetirizine 10 mg PO")
    page.fill("#start-rate", "0.5")
    page.select_option("#start-unit", "kg")
    page.click("#start-button")
    page.wait_for_selector("#rate-now")
    assert page.inner_text("#rate-now") == "30 mL/h (0.5 mL/kg/h)"
    shot(page, "nurse-1-infusion-started")

    page.fill("#step-rate", "60")
    page.click("#step-button")
    rate_shows(page, "60 mL/h")

    page.select_option("#reaction-type", "fever_chills")
    page.select_option("#reaction-severity", "moderate")
    page.fill("#reaction-notes", "Rigors, temperature 38.4 °C")
    page.click("#reaction-button")
    page.wait_for_selector("#timeline li.reaction")
    assert "Reaction recorded" in page.inner_text("#message")
    assert "at 60 mL/h" in page.inner_text("#timeline li.reaction")

    page.fill("#pause-reason", "rigors: paused for assessment")
    page.click("#pause-button")
    rate_shows(page, "Paused")
    shot(page, "nurse-2-reaction-and-pause")
    page.fill("#resume-rate", "30")
    page.click("#resume-button")
    rate_shows(page, "30 mL/h")

    page.select_option(f"select[data-dispense='{second.pk}']", "partial")
    page.fill(f"input[data-volume='{second.pk}']", "40")
    page.click("#finish-button")
    rate_shows(page, "Finished")
    shot(page, "nurse-3-finished", full_page=True)

    administration = Administration.objects.get(session=ward["session"])
    assert administration.status == Administration.Status.FINISHED
    assert administration.premedication == "paracetamol 1 g PO, cetirizine 10 mg PO"
    assert list(administration.steps.values_list("kind", flat=True)) == ["start", "rate", "pause", "resume", "finish"]
    assert set(administration.steps.values_list("recorded_by__username", flat=True)) == {"nina"}
    reaction = AdverseReaction.objects.get(session=ward["session"])
    assert reaction.administration == administration and reaction.rate_at_onset_ml_per_h == Decimal("60.0")
    assert dict(VialFate.objects.values_list("dispense_id", "fate")) == {first.pk: "infused", second.pk: "partial"}
    assert Dispense.objects.get(pk=second.pk).status == Dispense.Status.WASTED


def test_the_infusion_page_is_not_for_a_recall_coordinator(tablet, live_server, ward):
    UserFactory(username="rick", role="recall_coordinator")
    log_in(tablet, live_server, "rick", "/scan/")
    response = tablet.goto(f"{live_server.url}/infusion/")
    assert response.status == 403


def test_the_recall_coordinator_sees_the_lot_signal_with_its_patients_on_the_recall_page(tablet, live_server, ward):
    from tests.factories import LotFactory
    from tests.recalls.test_signals import infusions

    privigen = brand("Privigen")
    infusions(LotFactory(product=privigen, lot_number="BAD-7"), 5, 4)
    infusions(LotFactory(product=privigen, lot_number="GOOD-7"), 20, 1)
    UserFactory(username="rick", role="recall_coordinator")
    log_in(tablet, live_server, "rick", "/recall/")
    tablet.wait_for_selector("#signals .signal[data-lot='BAD-7']")
    text = tablet.inner_text("#signals")
    assert "Privigen lot BAD-7: 4 reaction(s) in 5 infusion(s), 800 per 1,000" in text
    assert "4 patient(s)" in text
    shot(tablet, "recall-4-lot-signal")
