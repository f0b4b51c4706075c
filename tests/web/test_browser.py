"""End-to-end in a real browser: Debian's headless Chromium driven by Playwright against a live
server. A technician receives a case of three cartons with a keyboard-wedge scanner, dispenses one
to a patient who is switching brand, and a recall coordinator looks the lot up and finds that patient.
Screenshots of each page are kept in artifacts/screenshots/."""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from inventory.models import StorageLocation, Vial, local_today
from tests.factories import (
    DispenseFactory,
    InfusionSessionFactory,
    PatientFactory,
    PresentationFactory,
    ProductFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)
from traceability.models import BrandSwitchFlag, Dispense, InfusionSession
from recalls.models import NotificationTask

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "pw-secret-123"
GS = "\x1d"


@pytest.fixture(scope="module", autouse=True)
def _allow_orm_beside_playwright():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between page steps are plain synchronous code, which Django must be told is fine here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium package is needed: make test installs it (make browser)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, live_server, username: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def wedge_scan(page, *parts: str) -> None:
    """Type a scan as a keyboard-wedge scanner does: characters, a group separator between
    variable-length fields, then Enter."""
    scan_field = page.locator("#scan-input")
    scan_field.focus()
    for i, part in enumerate(parts):
        if i:
            page.keyboard.insert_text(GS)
        page.keyboard.type(part)
    page.keyboard.press("Enter")


@pytest.fixture
def pharmacy(db):
    switching_from = ProductFactory(brand="Gammagard Liquid", excipient="glycine", iga_ug_per_ml=Decimal("37"))
    new_brand = ProductFactory(brand="Octagam 10%", excipient="maltose", iga_ug_per_ml=Decimal("106"))
    presentation = PresentationFactory(product=new_brand, grams=Decimal("10"), gtin="09520130010003")
    fridge = StorageLocationFactory(name="Fridge A", code="FRIDGE-A", kind=StorageLocation.Kind.REFRIGERATOR)
    patient = PatientFactory(name="Maria Lopez", mrn="MRN0042")
    last_month = InfusionSessionFactory(
        patient=patient, scheduled_date=local_today() - timedelta(days=28), status=InfusionSession.Status.COMPLETED
    )
    DispenseFactory(session=last_month, vial=VialFactory(presentation__product=switching_from, status=Vial.Status.DISPENSED, location=None))
    today = InfusionSessionFactory(patient=patient, scheduled_date=local_today(), ordered_grams=Decimal("30"))
    UserFactory(username="tina", role="technician")
    UserFactory(username="rick", role="recall_coordinator")
    expiry = local_today() + timedelta(days=400)
    return {"presentation": presentation, "fridge": fridge, "patient": patient, "session": today, "expiry": expiry}


def test_technician_receives_a_case_dispenses_with_a_brand_switch_and_the_recall_finds_the_patient(
    page, live_server, pharmacy
):
    gtin, expiry = pharmacy["presentation"].gtin, pharmacy["expiry"].strftime("%y%m%d")

    log_in(page, live_server, "tina", "/scan/")
    page.keyboard.press("F3")
    page.wait_for_selector("#receive-panel:not([hidden])")
    for serial in ("CASE0001", "CASE0002", "CASE0003"):
        # ]d2 symbology prefix, fixed-length fields first, GS after the lot, as a DataMatrix reads.
        wedge_scan(page, f"]d201{gtin}17{expiry}10OCT77A", f"21{serial}")
        page.wait_for_function("document.querySelectorAll('#receive-rows tr').length >= 1")
    page.wait_for_function("document.querySelectorAll('#receive-rows tr').length === 3")
    assert "3 vial(s), 30 g" in page.inner_text("#receive-totals")
    shot(page, "1-receiving-a-case")
    page.click("#receive-confirm")
    page.wait_for_selector("#message.green")
    assert "Received 3 vial(s)" in page.inner_text("#message")
    assert Vial.objects.filter(lot__lot_number="OCT77A", status=Vial.Status.IN_STOCK).count() == 3

    page.keyboard.press("F2")
    wedge_scan(page, f"01{gtin}17{expiry}10OCT77A", "21CASE0002")
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_function("document.getElementById('r-brand').textContent.includes('Octagam')")
    assert "OCT77A" in page.inner_text("#r-lot")
    page.select_option("#session-select", str(pharmacy["session"].pk))
    page.click("button[data-action=dispense]")
    page.wait_for_selector("#message.amber")
    assert "BRAND SWITCH" in page.inner_text("#message")
    assert "initial" in page.inner_text("#message").lower()
    page.wait_for_selector('#r-warnings [data-code="brand_switch"]')
    shot(page, "2-dispensed-with-brand-switch")
    dispense = Dispense.objects.get(vial__serial="CASE0002")
    assert dispense.session == pharmacy["session"]
    assert BrandSwitchFlag.objects.filter(session=pharmacy["session"], status=BrandSwitchFlag.Status.OPEN).exists()

    page.context.clear_cookies()
    log_in(page, live_server, "rick", "/recall/")
    # A lot number mistyped from the notice: the page offers the close one, and a click looks it up.
    page.fill("#lot-input", "OCT77B")
    page.keyboard.press("Enter")
    page.wait_for_selector("#message.red")
    page.click("#suggestions button.suggestion:has-text('OCT77A')")
    page.wait_for_selector(".lot-block")
    assert page.input_value("#lot-input") == "OCT77A"
    body = page.inner_text("#lookup-result")
    assert "Maria Lopez" in body and "MRN0042" in body
    assert "FRIDGE-A" in body or "Fridge A" in body
    shot(page, "3-recall-lookup")

    page.fill("input[name=reference]", "OCT-2026-11")
    page.fill("input[name=reason]", "Increased reports of hypersensitivity reactions")
    page.select_option("select[name=scheme]", "mhra")
    page.select_option("select[name=recall_class]", "2")
    page.click(".recall-form button[type=submit]")
    # The first press only asks: nothing is recalled until the confirmation.
    page.wait_for_selector(".confirm-step:not([hidden])")
    confirm_text = page.inner_text(".confirm-text")
    assert "2 vial(s) on hand will be quarantined" in confirm_text and "1 patient(s)" in confirm_text
    assert "MHRA class 2: action within 48 hours" in confirm_text
    assert not Vial.objects.filter(lot__lot_number="OCT77A", status=Vial.Status.QUARANTINED).exists()
    shot(page, "4-recall-confirmation")
    page.click(".confirm-recall")
    page.wait_for_selector("#message.green")
    assert "1 patient(s) to notify" in page.inner_text("#message")
    page.wait_for_selector("a.button[href$='export.xlsx']")
    assert Vial.objects.filter(lot__lot_number="OCT77A", status=Vial.Status.QUARANTINED).count() == 2
    assert NotificationTask.objects.get(recall__reference="OCT-2026-11").patient == pharmacy["patient"]
    workbook = page.request.get(live_server.url + page.get_attribute("a.button[href$='export.xlsx']", "href"))
    assert workbook.status == 200 and workbook.body()[:2] == b"PK"

    # A refresh keeps the message and the count: both come back from the server.
    page.reload()
    page.wait_for_selector("#message.green")
    assert "1 patient(s) to notify" in page.inner_text("#message")
    page.wait_for_selector(".recall-line")
    assert "1 patient(s) to notify" in page.inner_text(".recall-line")
    assert "MHRA class 2: action within 48 hours" in page.inner_text(".recall-line")
    shot(page, "5-recall-opened-after-refresh")


def test_a_refusal_is_shown_in_words_and_the_page_keeps_working(page, live_server, pharmacy):
    log_in(page, live_server, "tina", "/scan/")
    wedge_scan(page, "0100309442700051")  # wrong check digit
    page.wait_for_selector("#message.red")
    assert "check digit" in page.inner_text("#message")
    wedge_scan(page, "")  # a stray Enter changes nothing
    # A scanner that drops the group separator: lot and serial run together, and the page still
    # finds the vial because only one reading of the scan names a lot we hold.
    VialFactory(presentation=pharmacy["presentation"], lot__lot_number="DROP1", serial="DROPSER1",
                location=pharmacy["fridge"])
    expiry = VialFactory._meta.model.objects.get(serial="DROPSER1").lot.expiry_date
    wedge_scan(page, f"01{pharmacy['presentation'].gtin}17{expiry:%y%m%d}10DROP121DROPSER1")
    page.wait_for_function("document.getElementById('r-serial').textContent === 'DROPSER1'")
    assert page.inner_text("#r-lot") == "DROP1"

    # Dispensed, then brought back unopened: the dispense stays, the vial is on the shelf again.
    page.select_option("#session-select", str(pharmacy["session"].pk))
    page.keyboard.press("F6")
    page.wait_for_selector("#message.amber")
    wedge_scan(page, f"01{pharmacy['presentation'].gtin}17{expiry:%y%m%d}10DROP1", "21DROPSER1")
    page.wait_for_selector('#r-warnings [data-code="already_dispensed"]')
    page.fill("#reason-input", "infusion postponed, vial unopened")
    page.click("button[data-action=return_to_stock]")
    page.wait_for_selector("#message.green")
    assert "Returned DROPSER1" in page.inner_text("#message")
    returned = Dispense.objects.get(vial__serial="DROPSER1")
    assert returned.status == Dispense.Status.RETURNED_TO_STOCK
    assert returned.vial.status == Vial.Status.IN_STOCK and returned.vial.location == pharmacy["fridge"]
    wedge_scan(page, f"(01){pharmacy['presentation'].gtin}(17){pharmacy['expiry']:%y%m%d}(10)NEWLOT(21)X1")
    page.wait_for_selector('#r-warnings [data-code="not_received"]')
    shot(page, "6-refusal-then-new-carton")
