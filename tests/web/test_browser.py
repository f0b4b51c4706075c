"""End-to-end in a real browser: Debian's headless Chromium driven by Playwright against a live
server, as a technician at a busy counter and a pharmacist use it: a keyboard-wedge scanner
typing fast, a refused scan between two good ones, the cursor left in the wrong field, a patient
whose record rules a product out, an order that four vials would overshoot. Screenshots of each
step are kept in artifacts/screenshots/ (the README's come from here)."""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from inventory.models import StorageLocation, Vial, local_today
from recalls.models import NotificationTask
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
from tests.inventory.helpers import carton_of
from traceability.models import BrandSwitchFlag, Dispense, DispenseOverride, InfusionSession

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
    # The bench's small workstation screen: what is below 720 px is out of sight.
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert page.errors == [], page.errors
    context.close()


def shot(page, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def log_in(page, live_server, username: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def wedge_scan(page, *parts: str, field: str = "#scan-input") -> None:
    """Type a scan as a keyboard-wedge scanner does: characters fast, a group separator between
    variable-length fields, then Enter, into whatever field has the cursor (`field=None`)."""
    if field:
        page.locator(field).focus()
    for i, part in enumerate(parts):
        if i:
            page.keyboard.insert_text(GS)
        page.keyboard.type(part)
    page.keyboard.press("Enter")


def scan_vial(page, vial: Vial) -> None:
    wedge_scan(page, *carton_of(vial).split(GS))
    page.wait_for_selector("#card .brand")


def in_view(page, selector: str) -> bool:
    """Whether the element is wholly inside the 1280x720 viewport without scrolling."""
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720


@pytest.fixture
def pharmacy(db):
    gammagard = ProductFactory(brand="Gammagard Liquid", excipient="glycine", iga_ug_per_ml=Decimal("37"))
    octagam = ProductFactory(brand="Octagam 10%", excipient="glycine", iga_ug_per_ml=Decimal("106"))
    asceniv = ProductFactory(brand="Asceniv", excipient="glycine", iga_ug_per_ml=Decimal("200"))
    octagam_10g = PresentationFactory(product=octagam, grams=Decimal("10"), gtin="09520130010003")
    gammagard_10g = PresentationFactory(product=gammagard, grams=Decimal("10"))
    asceniv_10g = PresentationFactory(product=asceniv, grams=Decimal("10"))
    fridge = StorageLocationFactory(name="Main pharmacy fridge A", code="FRIDGE-A", kind=StorageLocation.Kind.REFRIGERATOR)
    StorageLocationFactory(name="Quarantine cabinet", code="QUAR-1", kind=StorageLocation.Kind.QUARANTINE)
    maria = PatientFactory(name="Maria Lopez", mrn="MRN-0000042-LONG")
    last_month = InfusionSessionFactory(
        patient=maria, scheduled_date=local_today() - timedelta(days=28), status=InfusionSession.Status.COMPLETED
    )
    DispenseFactory(session=last_month, vial=VialFactory(presentation=gammagard_10g, status=Vial.Status.DISPENSED, location=None))
    aiko = PatientFactory(name="Aiko Tanaka", mrn="DEMO-1003", iga_deficient=True, anti_iga_antibodies=True)
    UserFactory(username="tina", role="technician")
    UserFactory(username="phil", role="pharmacist")
    UserFactory(username="rick", role="recall_coordinator")
    return {
        "octagam": octagam_10g, "gammagard": gammagard_10g, "asceniv": asceniv_10g, "fridge": fridge,
        "maria": maria, "aiko": aiko,
        "maria_today": InfusionSessionFactory(patient=maria, scheduled_date=local_today(), ordered_grams=Decimal("30")),
        "aiko_today": InfusionSessionFactory(patient=aiko, scheduled_date=local_today(), ordered_grams=Decimal("20")),
        "expiry": local_today() + timedelta(days=400),
    }


def shelf(pharmacy, presentation, n=1, **fields) -> list[Vial]:
    return [VialFactory(presentation=presentation, location=pharmacy["fridge"], **fields) for _ in range(n)]


def choose_session(page, session) -> None:
    page.select_option("#session-select", str(session.pk))
    page.wait_for_selector("#patient-box.chosen")


# --- a technician's day -------------------------------------------------------------------------


def test_technician_receives_a_case_dispenses_with_a_brand_switch_and_the_recall_finds_the_patient(
    page, live_server, pharmacy
):
    gtin, expiry = pharmacy["octagam"].gtin, pharmacy["expiry"].strftime("%y%m%d")

    log_in(page, live_server, "tina", "/scan/")
    page.keyboard.press("F3")
    page.wait_for_selector("#receive-panel:not([hidden])")
    for serial in ("CASE0001", "CASE0002", "CASE0003"):
        # ]d2 symbology prefix, fixed-length fields first, GS after the lot, as a DataMatrix reads.
        wedge_scan(page, f"]d201{gtin}17{expiry}10OCT77A", f"21{serial}")
        page.wait_for_function("document.querySelectorAll('#receive-rows tr').length >= 1")
    page.wait_for_function("document.querySelectorAll('#receive-rows tr').length === 3")
    wedge_scan(page, f"]d201{gtin}17{expiry}10OCT77A", "21CASE0002")  # the same carton again
    page.wait_for_selector("#message.red")
    assert "scanned twice" in page.inner_text("#message")
    assert page.locator("#receive-rows tr").count() == 3
    assert "3 vial(s), 30 g" in page.inner_text("#receive-totals")
    shot(page, "tech-1-receiving-a-case", full_page=True)
    page.click("#receive-confirm")
    page.wait_for_selector("#message.green")
    assert "Received 3 vial(s)" in page.inner_text("#message")
    assert Vial.objects.filter(lot__lot_number="OCT77A", status=Vial.Status.IN_STOCK).count() == 3

    page.keyboard.press("F2")
    wedge_scan(page, "MRN-0000042-LONG")  # Maria's wristband
    page.wait_for_selector("#patient-box.chosen")
    assert "MRN-0000042-LONG" in page.inner_text("#patient-box")  # the whole MRN
    wedge_scan(page, f"01{gtin}17{expiry}10OCT77A", "21CASE0002")
    page.wait_for_selector("#check-box .for-patient")
    assert "Maria Lopez" in page.inner_text("#check-box")
    shot(page, "tech-2-vial-for-the-patient")
    page.keyboard.press("F6")
    page.wait_for_selector("#message.amber")
    assert "BRAND SWITCH" in page.inner_text("#message")
    assert "initial" in page.inner_text("#message").lower()
    shot(page, "tech-3-dispensed-with-brand-switch")
    dispense = Dispense.objects.get(vial__serial="CASE0002")
    assert dispense.session == pharmacy["maria_today"]
    assert BrandSwitchFlag.objects.filter(session=pharmacy["maria_today"], status=BrandSwitchFlag.Status.OPEN).exists()

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
    assert "Maria Lopez" in body and "MRN-0000042-LONG" in body
    assert "FRIDGE-A" in body or "Fridge A" in body
    shot(page, "recall-1-lookup")

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
    shot(page, "recall-2-confirmation")
    page.click(".confirm-recall")
    page.wait_for_selector("#message.green")
    assert "1 patient(s) to notify" in page.inner_text("#message")
    page.wait_for_selector("a.button[href$='export.xlsx']")
    assert Vial.objects.filter(lot__lot_number="OCT77A", status=Vial.Status.QUARANTINED).count() == 2
    assert NotificationTask.objects.get(recall__reference="OCT-2026-11").patient == pharmacy["maria"]
    workbook = page.request.get(live_server.url + page.get_attribute("a.button[href$='export.xlsx']", "href"))
    assert workbook.status == 200 and workbook.body()[:2] == b"PK"

    # A refresh keeps the message and the count: both come back from the server.
    page.reload()
    page.wait_for_selector("#message.green")
    assert "1 patient(s) to notify" in page.inner_text("#message")
    page.wait_for_selector(".recall-line")
    assert "1 patient(s) to notify" in page.inner_text(".recall-line")
    assert "MHRA class 2: action within 48 hours" in page.inner_text(".recall-line")
    shot(page, "recall-3-opened-after-refresh")


def slow_server(monkeypatch, module, name: str, seconds: float) -> None:
    """The server at a busy hour: `module.name` answers only after `seconds`, so the scanner's
    next carton arrives before the answer about the one before."""
    import time

    real = getattr(module, name)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)


def test_a_case_scanned_faster_than_the_server_answers_is_listed_whole_in_order(page, live_server, pharmacy, monkeypatch):
    import api.scan

    gtin, expiry = pharmacy["octagam"].gtin, pharmacy["expiry"].strftime("%y%m%d")
    log_in(page, live_server, "tina", "/scan/")
    page.keyboard.press("F3")
    page.wait_for_selector("#receive-panel:not([hidden])")
    slow_server(monkeypatch, api.scan, "receipt_check", 0.3)
    serials = ("FAST0001", "FAST0002", "FAST0003", "FAST0004")
    for serial in serials:  # back to back: no scan waits for the answer about the one before
        wedge_scan(page, f"01{gtin}17{expiry}10OCT88B", f"21{serial}")
    page.wait_for_function("document.querySelectorAll('#receive-rows tr').length === 4")
    page.wait_for_function("document.getElementById('receive-totals').innerText.includes('4 vial(s), 40 g')")
    rows = [page.inner_text(f"#receive-rows tr:nth-child({i})") for i in range(1, 5)]
    assert [serial for row, serial in zip(rows, serials) if serial in row] == list(serials)
    assert all("ok" in row for row in rows)
    page.click("#receive-confirm")
    page.wait_for_selector("#message.green")
    assert "Received 4 vial(s)" in page.inner_text("#message")
    assert set(Vial.objects.filter(lot__lot_number="OCT88B").values_list("serial", flat=True)) == set(serials)


def test_two_vials_scanned_back_to_back_leave_the_card_on_the_second_and_f6_dispenses_it(page, live_server, pharmacy):
    first, second = shelf(pharmacy, pharmacy["gammagard"], 2)
    log_in(page, live_server, "tina", "/scan/")
    choose_session(page, pharmacy["maria_today"])
    held = []  # the first scan's request, held back so that its answer would come last

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/scan", hold_the_first)
    wedge_scan(page, *carton_of(first).split(GS))
    wedge_scan(page, *carton_of(second).split(GS))
    page.wait_for_function("() => document.getElementById('card').hidden")
    page.keyboard.press("F6")  # while the first scan is unanswered there is nothing to act on
    page.wait_for_selector("#message.amber")
    assert "Nothing to act on" in page.inner_text("#message")
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_function(
        "(serial) => { const b = document.querySelector('button[data-action=dispense]:not([disabled])');"
        " return b && b.innerText.includes(serial); }",
        arg=second.serial,
    )
    page.wait_for_timeout(300)  # an answer arriving late would have replaced the card by now
    assert second.serial in page.inner_text("#card") and first.serial not in page.inner_text("#card")
    page.keyboard.press("F6")
    page.wait_for_function(
        "(serial) => document.getElementById('card').innerText.includes('Dispensed ' + serial)", arg=second.serial
    )
    assert list(Dispense.objects.filter(vial__in=[first, second]).values_list("vial", flat=True)) == [second.pk]
    assert Vial.objects.get(pk=first.pk).status == Vial.Status.IN_STOCK


def test_f6_after_a_refused_scan_dispenses_nothing_and_the_refusal_stands_in_view(page, live_server, pharmacy):
    [good] = shelf(pharmacy, pharmacy["gammagard"])
    log_in(page, live_server, "tina", "/scan/")
    choose_session(page, pharmacy["maria_today"])
    scan_vial(page, good)
    page.wait_for_selector("button[data-action=dispense]:not([disabled])")
    assert good.serial in page.inner_text("button[data-action=dispense]")  # the button names the vial

    wedge_scan(page, "0100309442700051")  # a misread carton: wrong check digit
    page.wait_for_selector("#card.red .refusal")
    assert page.locator("#card button").count() == 0  # every action of the previous vial is gone
    assert in_view(page, "#card .refusal")
    assert "not a barcode we can read" in page.inner_text("#card .refusal")
    assert "check digit" in page.inner_text("#card .technical")  # the parser's words, in small print
    shot(page, "tech-4-refused-scan-in-view")
    page.keyboard.press("F6")
    page.wait_for_selector("#message.amber")

    assert "Nothing to act on" in page.inner_text("#message")
    assert not Dispense.objects.filter(vial=good).exists()
    assert Vial.objects.get(pk=good.pk).status == Vial.Status.IN_STOCK


def test_focus_cannot_be_lost_a_scan_is_a_scan_whatever_field_has_the_cursor(page, live_server, pharmacy):
    first, second = shelf(pharmacy, pharmacy["gammagard"], n=2)
    log_in(page, live_server, "tina", "/scan/")

    # After choosing a session in the drop-down, the next scan is taken, not swallowed.
    page.select_option("#session-select", str(pharmacy["maria_today"].pk))
    wedge_scan(page, *carton_of(first).split(GS), field=None)
    page.wait_for_selector("#card .brand")
    assert first.serial in page.inner_text("#card")

    # With the cursor in the reason prompt, a shelf-label scan is a scan, not a reason.
    page.keyboard.press("F9")
    page.wait_for_selector("#reason-dialog[open]")
    wedge_scan(page, "QUAR-1", field=None)
    page.wait_for_selector("#reason-dialog[open]", state="detached")
    page.wait_for_selector("#message.green")
    assert "Quarantine cabinet" in page.inner_text("#message")
    assert page.input_value("#location-select") == "QUAR-1"
    assert Vial.objects.get(pk=first.pk).status == Vial.Status.IN_STOCK  # nothing was wasted

    # A vial scanned with the cursor left in the reason prompt replaces the card: the prompt's
    # action is abandoned, and the next action is on the new vial.
    scan_vial(page, first)
    page.keyboard.press("F9")
    page.wait_for_selector("#reason-dialog[open]")
    wedge_scan(page, *carton_of(second).split(GS), field=None)
    page.wait_for_function(f"document.getElementById('card').textContent.includes('{second.serial}')")
    assert Vial.objects.get(pk=first.pk).status == Vial.Status.IN_STOCK

    # A reason typed at a person's pace goes into the prompt, and the scan field has the cursor after.
    page.keyboard.press("F9")
    page.wait_for_selector("#reason-dialog[open]")
    page.keyboard.type("carton crushed", delay=90)
    page.keyboard.press("Enter")
    page.wait_for_selector("#card.green .done")
    assert f"Wasted {second.serial}" in page.inner_text("#card")
    assert Vial.objects.get(pk=second.pk).status == Vial.Status.WASTED
    assert page.evaluate("document.activeElement.id") == "scan-input"
    shot(page, "tech-5-waste-is-green")


def test_no_session_is_chosen_for_the_technician_and_f6_waits_for_the_patient(page, live_server, pharmacy):
    [vial] = shelf(pharmacy, pharmacy["gammagard"])
    log_in(page, live_server, "tina", "/scan/")
    assert page.input_value("#session-select") == ""
    assert "None identified" in page.inner_text("#patient-box")

    scan_vial(page, vial)
    page.keyboard.press("F6")
    page.wait_for_selector("#message.amber")
    assert "Identify the patient first" in page.inner_text("#message")
    assert not Dispense.objects.filter(vial=vial).exists()

    wedge_scan(page, "DEMO-1003")  # Aiko's wristband
    page.wait_for_selector("#patient-box.chosen")
    assert "Aiko Tanaka" in page.inner_text("#patient-box") and "born" in page.inner_text("#patient-box")
    scan_vial(page, vial)
    page.wait_for_selector("#check-box .for-patient")
    page.wait_for_selector("button[data-action=dispense]:not([disabled])")
    page.keyboard.press("F6")
    page.wait_for_selector("#card .done")
    assert "WATCH THIS INFUSION" in page.inner_text("#message")  # her first infusion: watch it whole
    assert Dispense.objects.get(vial=vial).session == pharmacy["aiko_today"]


def test_the_iga_deficient_patient_is_refused_asceniv_until_a_pharmacist_overrides(page, live_server, pharmacy):
    [asceniv] = shelf(pharmacy, pharmacy["asceniv"])
    log_in(page, live_server, "tina", "/scan/")
    wedge_scan(page, "DEMO-1003")
    page.wait_for_selector("#patient-box.chosen")
    scan_vial(page, asceniv)
    page.wait_for_selector('#check-box [data-check="iga_content"]')
    assert "antibodies against IgA" in page.inner_text("#check-box")
    assert page.locator("button[data-action=dispense]").is_disabled()
    shot(page, "tech-6-contraindication")
    page.keyboard.press("F6")
    page.wait_for_selector("#message.red")
    assert not Dispense.objects.filter(vial=asceniv).exists()

    page.click("text=Ask a pharmacist to decide")
    page.wait_for_selector("#reason-dialog[open]")
    page.keyboard.type("only brand in stock today", delay=60)
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('message').textContent.includes('Asked a pharmacist')")
    assert DispenseOverride.objects.get().status == DispenseOverride.Status.REQUESTED

    page.context.clear_cookies()
    log_in(page, live_server, "phil", "/review/")
    page.wait_for_selector("[data-override]")
    assert "Aiko Tanaka" in page.inner_text("#overrides")
    shot(page, "pharm-1-review-override", full_page=True)
    page.fill("[data-override] input", "discussed with immunology: premedicate, slow rate")
    page.click("[data-override] button.primary")
    page.wait_for_selector("#message.green")
    assert DispenseOverride.objects.get().status == DispenseOverride.Status.GRANTED

    page.context.clear_cookies()
    log_in(page, live_server, "tina", "/scan/")
    wedge_scan(page, "DEMO-1003")
    page.wait_for_selector("#patient-box.chosen")
    scan_vial(page, asceniv)
    page.wait_for_selector("button[data-action=dispense]:not([disabled])")
    page.keyboard.press("F6")
    page.wait_for_selector("#card .done")
    assert Dispense.objects.get(vial=asceniv).checks[0]["check"] == "iga_content"


def test_a_vial_that_would_overshoot_the_order_is_refused(page, live_server, pharmacy):
    session = InfusionSessionFactory(patient=pharmacy["maria"], scheduled_date=local_today(), ordered_grams=Decimal("27.2"))
    vials = shelf(pharmacy, pharmacy["gammagard"], n=4)
    log_in(page, live_server, "tina", "/scan/")
    page.reload()
    choose_session(page, session)
    for vial in vials[:3]:
        scan_vial(page, vial)
        page.wait_for_selector("button[data-action=dispense]:not([disabled])")
        page.keyboard.press("F6")
        page.wait_for_selector("#card .done")

    scan_vial(page, vials[3])
    page.wait_for_selector("#check-box .dose.red")
    assert "40 g after this vial, of 27.2 g ordered" in page.inner_text("#check-box")
    assert page.locator("button[data-action=dispense]").is_disabled()
    page.keyboard.press("F6")
    page.wait_for_selector("#message.red")
    assert Dispense.objects.filter(session=session).count() == 3


def test_refusals_in_plain_words_and_no_script_error_on_a_carton_not_received(page, live_server, pharmacy):
    log_in(page, live_server, "tina", "/scan/")
    wedge_scan(page, "hello world")
    page.wait_for_selector("#card.red .refusal")
    assert "not a barcode we can read" in page.inner_text("#card .refusal")
    assert "identifier" not in page.inner_text("#card .refusal")

    gtin = pharmacy["octagam"].gtin
    wedge_scan(page, f"(01){gtin}(17){pharmacy['expiry']:%y%m%d}(10)NEWLOT(21)X1")
    page.wait_for_selector('#card [data-code="not_received"]')
    page.keyboard.press("F6")  # nothing to dispense: said in words, no script error (the fixture checks)
    page.wait_for_selector("#message.amber")
    assert "not offered" in page.inner_text("#message")

    # A short-dated carton is marked before the case is confirmed.
    page.keyboard.press("F3")
    soon = local_today() + timedelta(days=20)
    wedge_scan(page, f"01{gtin}17{soon:%y%m%d}10SHORT1", "21S1")
    page.wait_for_selector("#receive-rows tr.amber")
    assert "Short-dated" in page.inner_text("#receive-rows")

    # Values wrap between words, never inside one.
    assert page.evaluate("getComputedStyle(document.querySelector('.scan-input')).wordBreak") != "break-all"
    css = Path(__file__).resolve().parents[2] / "web" / "static" / "web" / "style.css"
    assert "break-all" not in css.read_text()


def test_the_top_bar_shows_roles_in_words(page, live_server, pharmacy):
    log_in(page, live_server, "rick", "/recall/")
    assert "recall coordinator" in page.inner_text(".who")


def test_a_lot_given_to_more_patients_than_a_page_shows_them_all_page_by_page(page, live_server, pharmacy):
    vials = shelf(pharmacy, pharmacy["gammagard"], 1)
    lot = vials[0].lot
    for n in range(53):
        session = InfusionSessionFactory(patient=PatientFactory(name=f"Patient {n:03d}", mrn=f"PG{n:04d}"),
                                         scheduled_date=local_today() - timedelta(days=3))
        DispenseFactory(session=session, vial=VialFactory(presentation=pharmacy["gammagard"], lot=lot,
                                                          status=Vial.Status.DISPENSED, location=None))
    log_in(page, live_server, "rick", "/recall/")
    page.fill("#lot-input", lot.lot_number)
    page.keyboard.press("Enter")
    page.wait_for_selector(".lot-block")
    # The lot's counts are whole on the first page; its patients come fifty at a time, by name.
    assert "patients: 53" in page.inner_text(".lot-block .counts")
    assert "50 of 53 patients shown" in page.inner_text(".more-patients")
    body = page.inner_text("#lookup-result")
    assert "PG0049" in body and "PG0050" not in body
    # The button sits right under the patients' table, not below the recall form.
    assert page.evaluate("document.querySelector('.more-patients').previousElementSibling.matches('table.grid')")
    page.locator(".more-patients").scroll_into_view_if_needed()
    shot(page, "recall-4-first-page-of-patients")
    page.click(".more-patients button")
    page.wait_for_selector(".more-patients", state="detached")
    body = page.inner_text("#lookup-result")
    assert all(f"PG{n:04d}" in body for n in range(53))
    assert page.locator(".lot-block table.grid tbody tr:has-text('PG00')").count() == 53
    shot(page, "recall-4-every-patient-page-by-page")


# --- a pharmacist's day -------------------------------------------------------------------------


def test_the_pharmacist_acknowledges_a_brand_switch_and_completes_a_short_session_on_the_review_page(
    page, live_server, pharmacy
):
    session = pharmacy["maria_today"]
    [octagam] = shelf(pharmacy, pharmacy["octagam"])
    from traceability.services import vial_dispense

    vial_dispense(session=session, vial=octagam, actor=UserFactory(role="technician"))
    log_in(page, live_server, "phil", "/review/")
    page.wait_for_selector("[data-flag]")
    flags = page.inner_text("#flags-card")
    assert "Gammagard Liquid → Octagam 10%" in flags
    assert "Shortage" in flags and "Clinical decision" in flags  # the reason list, in words
    page.select_option("[data-flag] select", "shortage")
    page.click("[data-flag] button")
    page.wait_for_selector("#message.green")
    assert BrandSwitchFlag.objects.get().status == BrandSwitchFlag.Status.ACKNOWLEDGED

    page.wait_for_selector(f"[data-session='{session.pk}']")
    assert "10 g given of 30 g ordered" in page.inner_text("#doses")
    page.click(f"[data-session='{session.pk}'] button")
    page.wait_for_selector("#message.red")  # no reason: refused in words
    page.fill(f"[data-session='{session.pk}'] input", "infusion stopped after a reaction")
    page.click(f"[data-session='{session.pk}'] button")
    page.wait_for_selector("#message.green")
    session.refresh_from_db()
    assert session.status == InfusionSession.Status.COMPLETED
    assert session.discrepancy_reason == "infusion stopped after a reaction"
    shot(page, "pharm-2-review-done", full_page=True)


def test_the_review_page_is_for_pharmacists_only(page, live_server, pharmacy):
    log_in(page, live_server, "tina", "/scan/")
    response = page.goto(f"{live_server.url}/review/")
    assert response.status == 403


def test_a_suspect_carton_is_red_at_the_bench_and_resolved_on_the_review_page(page, live_server, pharmacy):
    from tests.inventory.helpers import carton

    [vial] = shelf(pharmacy, pharmacy["gammagard"])
    log_in(page, live_server, "tina", "/scan/")
    wedge_scan(page, *carton(vial.presentation, lot="OTHERLOT", expiry=pharmacy["expiry"], serial=vial.serial).split(GS))
    page.wait_for_selector('#card [data-code="suspect_product"]')
    assert page.locator("#card button").count() == 0

    page.context.clear_cookies()
    log_in(page, live_server, "phil", "/review/")
    page.wait_for_selector("[data-suspect]")
    assert "OTHERLOT" in page.inner_text("#suspects")
    page.fill("[data-suspect] input", "carton quarantined; manufacturer informed")
    page.click("[data-suspect] button")
    page.wait_for_selector("#message.green")
    from inventory.models import SuspectScan

    assert SuspectScan.objects.get().status == SuspectScan.Status.RESOLVED


def test_the_pharmacist_releases_vials_held_by_a_cold_chain_excursion_on_the_review_page(page, live_server, pharmacy):
    from django.utils import timezone

    from inventory.coldchain import ReadingIn, readings_record

    [vial] = shelf(pharmacy, pharmacy["gammagard"])
    Vial.history.filter(id=vial.pk).update(history_date=timezone.now() - timedelta(days=5))
    start = timezone.now() - timedelta(hours=8)
    readings_record(location=pharmacy["fridge"], actor=None, readings=[
        ReadingIn(taken_at=start + timedelta(minutes=15 * n), celsius=Decimal("12" if 4 <= n < 12 else "5"), where=str(n))
        for n in range(20)])

    log_in(page, live_server, "phil", "/review/")
    page.wait_for_selector("[data-excursion]")
    assert "Gammagard Liquid: 1 held" in page.inner_text("#excursions")
    page.fill("[data-excursion] .decide input", "2 h at 12 °C, within the label's allowance")
    page.click("[data-excursion] .decide button.primary")
    page.wait_for_selector("#message.green")

    vial.refresh_from_db()
    assert (vial.status, vial.cold_chain_hold_id) == (Vial.Status.IN_STOCK, None)
