"""Recall API: wiring, status and error codes, who may call what, constant query counts."""

import io

import pytest
from openpyxl import load_workbook

from inventory.models import Lot, Vial
from tests.factories import (
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    PresentationFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)
from tests.recalls.test_scenario import build_scenario
from recalls.models import Recall
from recalls.services import recall_create
from traceability.services import vial_dispense
from tests.api.helpers import ROLES, refused

pytestmark = pytest.mark.django_db

READERS = {"pharmacist", "auditor", "recall_coordinator"}
MANAGERS = {"pharmacist", "recall_coordinator"}


def lot_with(on_hand: int, given: int, *, lot_number: str | None = None) -> Lot:
    """A lot with `on_hand` vials on two shelves and `given` vials each given to its own patient."""
    presentation = PresentationFactory()
    lot = LotFactory(product=presentation.product, **({"lot_number": lot_number} if lot_number else {}))
    shelves = [StorageLocationFactory(), StorageLocationFactory()]
    tech = UserFactory()
    for i in range(on_hand + given):
        vial = VialFactory(presentation=presentation, lot=lot, location=shelves[i % 2])
        if i >= on_hand:
            vial_dispense(session=InfusionSessionFactory(patient=PatientFactory()), vial=vial, actor=tech)
    return lot


def make_recall(lot: Lot, reference: str = "FDA-1") -> Recall:
    return recall_create(
        reference=reference, source="regulator", recall_class="II", reason="Particulates", lots=[lot],
        actor=UserFactory(),
    )


@pytest.fixture
def recall():
    return make_recall(lot_with(2, 1, lot_number="LOT-A1"))


def create_body(**extra):
    body = {"reference": "MFR-2025-33", "source": "manufacturer", "recall_class": "I", "reason": "Sterility"}
    body.update(extra)
    return body


# Who may call what -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_who_may_list_and_read_recalls(client_for, recall, role):
    client = client_for(role)
    for url in ["/api/recalls/", f"/api/recalls/{recall.pk}", f"/api/recalls/{recall.pk}/lookback",
                f"/api/recalls/{recall.pk}/notifications/"]:
        response = client.get(url)
        assert response.status_code == (200 if role in READERS else refused(role)), url


@pytest.mark.parametrize("role", ROLES)
def test_who_may_look_up_a_lot(client_for, recall, role):
    response = client_for(role).get("/api/recalls/lookup", {"lot": "LOT-A1"})
    assert response.status_code == (200 if role in READERS else refused(role))


@pytest.mark.parametrize("role", ROLES)
def test_who_may_export_a_recall(client_for, recall, role):
    response = client_for(role).get(f"/api/recalls/{recall.pk}/export.xlsx")
    assert response.status_code == (200 if role in READERS else refused(role))


@pytest.mark.parametrize("role", ROLES)
def test_who_may_create_a_recall(client_for, role):
    lot = lot_with(1, 0)
    response = client_for(role).post("/api/recalls/", create_body(lots=[lot.pk]))
    assert response.status_code == (201 if role in MANAGERS else refused(role))
    assert Recall.objects.exists() == (role in MANAGERS)


@pytest.mark.parametrize("role", ROLES)
def test_who_may_record_a_notification(client_for, recall, role):
    task = recall.notifications.get()
    response = client_for(role).patch(f"/api/notifications/{task.pk}", {"status": "contacted"})
    assert response.status_code == (200 if role in MANAGERS else refused(role))
    task.refresh_from_db()
    assert (task.status == "contacted") == (role in MANAGERS)
    read = client_for(role).get(f"/api/notifications/{task.pk}")
    assert read.status_code == (200 if role in READERS else refused(role))


@pytest.mark.parametrize("role", ROLES)
def test_who_may_close_a_recall(client_for, role):
    recall = make_recall(lot_with(1, 0))
    response = client_for(role).post(f"/api/recalls/{recall.pk}/close", {"reason": "done"})
    assert response.status_code == (200 if role in MANAGERS else refused(role))
    recall.refresh_from_db()
    assert (recall.status == "closed") == (role in MANAGERS)


@pytest.mark.parametrize("role", ROLES)
def test_who_may_dispose_of_recalled_stock(client_for, recall, role):
    response = client_for(role).post(f"/api/recalls/{recall.pk}/dispose", {"action": "return", "reason": "RA-1"})
    assert response.status_code == (200 if role in MANAGERS else refused(role))
    returned = Vial.objects.filter(status=Vial.Status.RETURNED).count()
    assert returned == (2 if role in MANAGERS else 0)


# Creating ----------------------------------------------------------------------------------


def test_create_with_lot_ids_and_lot_numbers_recalls_and_quarantines(recall_client):
    first, second = lot_with(2, 1), lot_with(1, 2, lot_number="77700")
    response = recall_client.post("/api/recalls/", create_body(lots=[first.pk, "77700"], recall_date="2025-12-07"))
    assert response.status_code == 201
    body = response.json()
    assert {lot["id"] for lot in body["lots"]} == {first.pk, second.pk}
    assert {lot["status"] for lot in body["lots"]} == {"recalled"}
    assert body["recall_date"] == "2025-12-07"
    assert body["created_by"] == "rita"
    assert body["progress"] == {"total": 3, "notified": 0, "pending": 3, "overdue": 0, "contacted": 0, "unreachable": 0,
                                "not_required": 0}
    assert Vial.objects.filter(status=Vial.Status.QUARANTINED).count() == 3


def test_create_from_pasted_text(recall_client):
    lot_with(1, 1, lot_number="AB12")
    lot_with(1, 1, lot_number="CD34")
    response = recall_client.post("/api/recalls/", create_body(lots_text="  AB12\n\nCD34\r\nAB12\n"))
    assert response.status_code == 201
    assert sorted(lot["lot_number"] for lot in response.json()["lots"]) == ["AB12", "CD34"]


def test_create_from_text_with_unknown_lots_is_refused_with_the_list_and_creates_nothing(recall_client):
    lot_with(1, 1, lot_number="AB12")
    response = recall_client.post("/api/recalls/", create_body(lots_text="AB12\nab12\nZZ99\n"))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_lots"
    assert body["unknown_lots"] == ["ab12", "ZZ99"]
    assert body["suggestions"]["ab12"] == ["AB12"]
    assert "ab12" in body["detail"]
    assert not Recall.objects.exists()
    assert not Lot.objects.filter(status="recalled").exists()


def test_a_paste_of_many_unknown_lot_numbers_lists_them_all_and_suggests_for_the_first_few(recall_client):
    lot_with(1, 0, lot_number="AB12")
    unknown = [f"X{n:05d}" for n in range(300)]

    response = recall_client.post("/api/recalls/", create_body(lots_text="\n".join(unknown)))

    body = response.json()
    assert (response.status_code, body["code"]) == (400, "unknown_lots")
    assert body["unknown_lots"] == unknown
    assert list(body["suggestions"]) == unknown[:25]
    assert "and 275 more" in body["detail"]
    assert not Recall.objects.exists()


def test_create_from_text_far_longer_than_a_lot_number_is_refused_without_suggestions(recall_client):
    lot_with(1, 0, lot_number="AB12")
    pasted = "AB12" * 5_000

    response = recall_client.post("/api/recalls/", create_body(lots_text=pasted))

    assert (response.status_code, response.json()["code"]) == (400, "unknown_lots")
    assert response.json()["suggestions"] == {pasted: []}
    assert not Recall.objects.exists()


def test_pasted_lots_beyond_the_stated_size_are_refused_before_any_work(recall_client):
    response = recall_client.post("/api/recalls/", create_body(lots_text="AB12" * 15_000))

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "lots_text" in response.json()["errors"]
    assert not Recall.objects.exists()


def test_create_with_allow_unknown_keeps_the_unknown_lot_numbers_on_the_recall(recall_client):
    lot_with(1, 1, lot_number="AB12")
    response = recall_client.post("/api/recalls/", create_body(lots_text="AB12\nZZ99", allow_unknown=True))
    assert response.status_code == 201
    assert response.json()["unmatched_lot_numbers"] == ["ZZ99"]


@pytest.mark.parametrize(
    "extra, code",
    [
        ({}, "invalid"),
        ({"lots": [1], "lots_text": "A"}, "invalid"),
        ({"lots": []}, "invalid"),
        ({"lots": [True]}, "invalid"),
        ({"lots": [{"id": 1}]}, "invalid"),
        ({"lots": [424242]}, "unknown_lots"),
        ({"lots": [10**30]}, "invalid"),
        ({"lots": [0]}, "invalid"),
        ({"lots_text": "\n \n"}, "no_lots"),
        ({"lots_text": "A", "recall_class": "IV"}, "invalid"),
    ],
)
def test_create_refuses_bad_input_and_changes_nothing(recall_client, extra, code):
    response = recall_client.post("/api/recalls/", create_body(**extra))
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Recall.objects.exists()


def test_create_with_a_known_reference_is_a_conflict(recall_client, recall):
    response = recall_client.post("/api/recalls/", create_body(reference="FDA-1", lots=[recall.lots.get().pk]))
    assert (response.status_code, response.json()["code"]) == (409, "recall_reference_exists")


# Reading -----------------------------------------------------------------------------------


def test_the_list_filters_by_status_and_lot_number(auditor_client, recall):
    make_recall(lot_with(1, 0, lot_number="OTHER-9"), reference="FDA-2")
    assert [r["reference"] for r in auditor_client.get("/api/recalls/", {"lot_number": "LOT-A1"}).json()["results"]] == ["FDA-1"]
    assert len(auditor_client.get("/api/recalls/", {"status": "open"}).json()["results"]) == 2
    assert auditor_client.get("/api/recalls/", {"status": "closed"}).json()["results"] == []


def test_the_detail_shows_lots_and_progress(auditor_client, recall):
    body = auditor_client.get(f"/api/recalls/{recall.pk}").json()
    assert [lot["lot_number"] for lot in body["lots"]] == ["LOT-A1"]
    assert body["progress"]["total"] == 1
    assert body["status"] == "open"


def test_an_unknown_recall_is_404(auditor_client):
    assert auditor_client.get("/api/recalls/999999").status_code == 404
    assert auditor_client.get("/api/recalls/999999/export.xlsx").status_code == 404


def test_the_lookback_lists_each_patient_once(auditor_client):
    scenario = build_scenario()
    recall = recall_create(reference="R", source="internal", recall_class="I", reason="x", lots=scenario.lots,
                           actor=UserFactory())
    body = auditor_client.get(f"/api/recalls/{recall.pk}/lookback").json()
    mrns = [p["patient"]["mrn"] for p in body["patients"]]
    assert mrns == ["MRN0001", "MRN0002", "MRN0003", "MRN0004"]
    ann = body["patients"][0]
    assert ann["vials"] == 3 and ann["received"] is True
    assert {d["vial"]["serial"] for d in ann["dispenses"]} == {"A0004", "A0005", "B0011"}


def _pages(client, url, params) -> list[dict]:
    """Every page of a look-up or lookback, following `next` to the end."""
    pages = [client.get(url, params).json()]
    while pages[-1]["next"]:
        assert len(pages) < 20
        pages.append(client.get(pages[-1]["next"]).json())
    return pages


def test_a_lookback_comes_a_page_of_patients_at_a_time_and_every_patient_is_on_one_page(auditor_client):
    scenario = build_scenario()
    recall = recall_create(reference="R", source="internal", recall_class="I", reason="x", lots=scenario.lots,
                           actor=UserFactory())
    url = f"/api/recalls/{recall.pk}/lookback"
    whole = auditor_client.get(url).json()
    pages = _pages(auditor_client, url, {"page_size": 3})

    assert [len(p["patients"]) for p in pages] == [3, 1]
    assert [p["patient"]["mrn"] for page in pages for p in page["patients"]] == ["MRN0001", "MRN0002", "MRN0003",
                                                                                "MRN0004"]
    assert all(page["patients_count"] == 4 == whole["patients_count"] for page in pages)
    assert pages[0]["previous"] is None and pages[1]["previous"] and whole["next"] is None
    # The lots' counts and stock are whole on every page; their lines are the page's patients'.
    for page in pages:
        assert [lot["counts"] for lot in page["lots"]] == [lot["counts"] for lot in whole["lots"]]
        assert [lot["on_hand"] for lot in page["lots"]] == [lot["on_hand"] for lot in whole["lots"]]
        on_page = {p["patient"]["id"] for p in page["patients"]}
        assert all(d["patient"]["id"] in on_page for lot in page["lots"] for d in lot["dispenses"])
    lines = sorted(d["id"] for page in pages for lot in page["lots"] for d in lot["dispenses"])
    assert lines == sorted(d["id"] for lot in whole["lots"] for d in lot["dispenses"])


def test_a_lookup_of_a_lot_given_to_many_shows_each_patient_on_exactly_one_page(auditor_client):
    lot = lot_with(1, 7, lot_number="MANY-7")
    pages = _pages(auditor_client, "/api/recalls/lookup", {"lot": "MANY-7", "page_size": 3})

    assert [len(p["results"][0]["patients"]) for p in pages] == [3, 3, 1]
    ids = [p["patient"]["id"] for page in pages for p in page["results"][0]["patients"]]
    given = set(Vial.objects.filter(lot=lot, dispenses__isnull=False)
                .values_list("dispenses__session__patient_id", flat=True))
    assert len(ids) == 7 and set(ids) == given
    for page in pages:
        result = page["results"][0]
        assert page["patients_count"] == 7
        assert result["counts"]["patients"] == 7 and result["counts"]["dispenses"] == 7
        assert sum(g["count"] for g in result["on_hand"]) == 1
        assert len(result["dispenses"]) == len(result["patients"])


def test_only_the_patients_on_the_page_are_logged_as_seen(client_for):
    from audit.models import PatientAccess

    lot_with(0, 5, lot_number="SEEN-5")
    body = client_for("recall_coordinator").get("/api/recalls/lookup", {"lot": "SEEN-5", "page_size": 2}).json()
    shown = {p["patient"]["id"] for p in body["results"][0]["patients"]}
    assert len(shown) == 2
    assert set(PatientAccess.objects.values_list("patient_id", flat=True)) == shown


@pytest.mark.parametrize("query", [{"page": 9}, {"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": 501}])
def test_a_lookback_page_that_does_not_exist_or_a_bad_page_size_is_refused_and_logs_no_access(client_for, query):
    from audit.models import PatientAccess

    recall = make_recall(lot_with(1, 2, lot_number="PG-2"))
    client = client_for("recall_coordinator")
    for url, params in ((f"/api/recalls/{recall.pk}/lookback", query), ("/api/recalls/lookup", {"lot": "PG-2", **query})):
        response = client.get(url, params)
        assert response.status_code == (404 if query == {"page": 9} else 400), url
        assert response.json()["code"]
    assert not PatientAccess.objects.exists()  # a refusal shows no one


# Look-up -----------------------------------------------------------------------------------


def test_lookup_returns_each_lot_with_stock_by_location_and_patients(auditor_client):
    build_scenario()
    response = auditor_client.get("/api/recalls/lookup", {"lot": " P100263 "})
    assert response.status_code == 200
    body = response.json()
    assert body["lot_number"] == "P100263" and body["truncated"] is False
    (lot,) = body["results"]
    assert lot["product"]["brand"] == "Privigen"
    assert lot["lot"]["status"] == "released" and lot["lot"]["expiry_date"]
    assert {g["location"]["code"]: g["count"] for g in lot["on_hand"]} == {"FRIDGE-A": 3, "RT-1": 1}
    given = {(d["vial"]["serial"], d["patient"]["mrn"], d["patient"]["name"], d["dispensed_by"], d["status"])
             for d in lot["dispenses"]}
    assert ("A0007", "MRN0004", "Dan Dunn", "tess", "wasted") in given
    assert all(d["session"]["scheduled_date"] and d["dispensed_at"] for d in lot["dispenses"])
    assert {v["serial"] for v in lot["wasted"]} == {"A0007", "A0008"}
    assert [v["serial"] for v in lot["returned"]] == ["A0009"]
    assert lot["counts"]["patients"] == 4
    assert lot["recalls"] == []


def test_lookup_of_an_unknown_lot_is_404_with_suggestions(auditor_client):
    lot_with(1, 0, lot_number="LE12A045")
    response = auditor_client.get("/api/recalls/lookup", {"lot": "le12a045"})
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "lot_not_found"
    assert body["suggestions"] == ["LE12A045"]


def test_lookup_of_text_far_longer_than_a_lot_number_is_404_without_suggestions(auditor_client):
    lot_with(1, 0, lot_number="LE12A045")

    response = auditor_client.get("/api/recalls/lookup", {"lot": "LE12A045" * 15})

    assert (response.status_code, response.json()["code"]) == (404, "lot_not_found")
    assert response.json()["suggestions"] == []
    too_long = auditor_client.get("/api/recalls/lookup", {"lot": "LE12A045" * 8_000})
    assert (too_long.status_code, too_long.json()["code"]) == (400, "invalid")


def test_lookup_by_prefix(auditor_client):
    lot_with(1, 0, lot_number="LE12A045")
    lot_with(1, 0, lot_number="LE12A046")
    body = auditor_client.get("/api/recalls/lookup", {"lot": "LE12A", "match": "prefix"}).json()
    assert [r["lot"]["lot_number"] for r in body["results"]] == ["LE12A045", "LE12A046"]


def test_lookup_by_barcode(auditor_client):
    from labels.gs1 import element_string

    lot = lot_with(1, 0, lot_number="LE12A045")
    raw = element_string(gtin=lot.product.presentations.get().gtin, expiry=lot.expiry_date, lot="LE12A045", serial="X1")
    body = auditor_client.get("/api/recalls/lookup", {"barcode": raw}).json()
    assert [r["lot"]["id"] for r in body["results"]] == [lot.pk]


def test_lookup_by_one_field_reads_a_scan_as_a_barcode_and_anything_else_as_a_lot_number(auditor_client):
    from labels.gs1 import element_string, hri

    lot = lot_with(1, 0, lot_number="LE12A045")
    gtin = lot.product.presentations.get().gtin
    for typed in (
        "LE12A045",
        "  LE12A045 ",
        element_string(gtin=gtin, expiry=lot.expiry_date, lot="LE12A045", serial="X1"),
        hri(gtin=gtin, expiry=lot.expiry_date, lot="LE12A045", serial="X1"),
        "]d2" + element_string(gtin=gtin, lot="LE12A045"),
    ):
        body = auditor_client.get("/api/recalls/lookup", {"q": typed}).json()
        assert [r["lot"]["id"] for r in body["results"]] == [lot.pk], typed


@pytest.mark.parametrize(
    "params, code",
    [({}, "invalid"), ({"lot": "X", "match": "fuzzy"}, "invalid"), ({"barcode": "not a barcode"}, "invalid_barcode"),
     ({"q": "(01)123"}, "invalid_barcode")],
)
def test_lookup_refuses_bad_input(auditor_client, params, code):
    response = auditor_client.get("/api/recalls/lookup", params)
    assert (response.status_code, response.json()["code"]) == (400, code)


# Notifications, close, dispose, export ------------------------------------------------------


def test_notifications_list_shows_patient_vials_and_status(recall_client, recall):
    body = recall_client.get(f"/api/recalls/{recall.pk}/notifications/").json()
    (task,) = body["results"]
    assert task["status"] == "pending"
    assert task["recall_reference"] == "FDA-1"
    assert task["patient"]["mrn"]
    assert [v["lot_number"] for v in task["vials"]] == ["LOT-A1"]
    assert recall_client.get(f"/api/recalls/{recall.pk}/notifications/", {"status": "contacted"}).json()["results"] == []


@pytest.mark.parametrize("method", ["patch", "post"])
def test_recording_a_notification_returns_who_and_when(recall_client, recall, method):
    task = recall.notifications.get()
    response = getattr(recall_client, method)(f"/api/notifications/{task.pk}", {"status": "unreachable", "note": "No answer"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["note"], body["updated_by"]) == ("unreachable", "No answer", "rita")
    assert body["updated_at"]
    progress = recall_client.get(f"/api/recalls/{recall.pk}").json()["progress"]
    assert (progress["notified"], progress["pending"], progress["unreachable"]) == (1, 0, 1)


def test_a_bad_notification_status_is_400_and_changes_nothing(recall_client, recall):
    task = recall.notifications.get()
    response = recall_client.patch(f"/api/notifications/{task.pk}", {"status": "emailed"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    response = recall_client.patch(f"/api/notifications/{task.pk}", {"status": "not_required"})
    assert (response.status_code, response.json()["code"]) == (400, "note_required")
    task.refresh_from_db()
    assert task.status == "pending" and task.updated_by is None
    assert recall_client.patch("/api/notifications/999999", {"status": "contacted"}).status_code == 404


def test_close_with_patients_pending_is_409(recall_client, recall):
    response = recall_client.post(f"/api/recalls/{recall.pk}/close", {"reason": "done"})
    assert (response.status_code, response.json()["code"], response.json()["pending"]) == (409, "notifications_pending", 1)
    recall.refresh_from_db()
    assert recall.status == "open"


def test_close_records_who_when_and_why_and_a_second_close_is_409(recall_client, recall):
    task = recall.notifications.get()
    recall_client.post(f"/api/notifications/{task.pk}", {"status": "contacted"})
    assert recall_client.post(f"/api/recalls/{recall.pk}/close", {}).json()["code"] == "invalid"
    assert recall_client.post(f"/api/recalls/{recall.pk}/close", {"reason": ""}).json()["code"] == "reason_required"
    body = recall_client.post(f"/api/recalls/{recall.pk}/close", {"reason": "All informed"}).json()
    assert (body["status"], body["closed_by"], body["close_reason"]) == ("closed", "rita", "All informed")
    assert body["closed_at"]
    again = recall_client.post(f"/api/recalls/{recall.pk}/close", {"reason": "again"})
    assert (again.status_code, again.json()["code"]) == (409, "recall_closed")


def test_dispose_returns_the_vials_taken_out_of_stock(pharmacist_client, recall):
    response = pharmacist_client.post(f"/api/recalls/{recall.pk}/dispose", {"action": "waste", "reason": "Per notice"})
    assert response.status_code == 200
    body = response.json()
    assert (body["action"], body["count"]) == ("waste", 2)
    assert {v["status"] for v in body["vials"]} == {"wasted"}
    again = pharmacist_client.post(f"/api/recalls/{recall.pk}/dispose", {"action": "waste", "reason": "x"})
    assert (again.status_code, again.json()["code"]) == (409, "nothing_to_dispose")


@pytest.mark.parametrize("body", [{"action": "burn", "reason": "x"}, {"action": "return"}])
def test_dispose_refuses_bad_input_and_changes_nothing(pharmacist_client, recall, body):
    response = pharmacist_client.post(f"/api/recalls/{recall.pk}/dispose", body)
    assert response.status_code == 400
    assert Vial.objects.filter(status=Vial.Status.QUARANTINED).count() == 2


def test_export_is_an_xlsx_attachment(auditor_client, recall):
    response = auditor_client.get(f"/api/recalls/{recall.pk}/export.xlsx")
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"] == 'attachment; filename="recall-FDA-1-lookback.xlsx"'
    wb = load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == ["Recall", "On hand", "Patients", "Notifications"]
    assert wb["Patients"].max_row == 2


def test_export_honours_an_xlsx_accept_header(auditor_client, recall):
    accept = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert auditor_client.get(f"/api/recalls/{recall.pk}/export.xlsx", HTTP_ACCEPT=accept).status_code == 200


# Query counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 40])
def test_lookup_query_count_is_constant(client_for, django_assert_num_queries, size):
    lot = lot_with(size // 2, size // 2, lot_number=f"SZ{size}")
    client = client_for("auditor")
    # roles, lots, the lots' patients, vials, vials by status, the page's dispenses, recall links, excursion vials,
    # access-log INSERT, seals
    with django_assert_num_queries(10):
        response = client.get("/api/recalls/lookup", {"lot": lot.lot_number})
    assert response.json()["results"][0]["counts"]["vials"] == size


@pytest.mark.parametrize("size", [2, 40])
def test_lookback_query_count_is_constant(client_for, django_assert_num_queries, size):
    recall = make_recall(lot_with(size // 2, size // 2))
    client = client_for("auditor")
    # roles, recall, lots, the lots' patients, vials, vials by status, the page's dispenses, recall links,
    # excursion vials, access-log INSERT, seals
    with django_assert_num_queries(11):
        client.get(f"/api/recalls/{recall.pk}/lookback")


@pytest.mark.parametrize("count", [1, 6])
def test_recall_list_query_count_is_constant(client_for, django_assert_num_queries, count):
    for i in range(count):
        make_recall(lot_with(1, 2), reference=f"R-{i}")
    client = client_for("auditor")
    with django_assert_num_queries(4):  # roles, count, page, lots
        response = client.get("/api/recalls/")
    assert len(response.json()["results"]) == count


@pytest.mark.parametrize("patients", [1, 12])
def test_notification_list_query_count_is_constant(client_for, django_assert_num_queries, patients):
    recall = make_recall(lot_with(0, patients))
    client = client_for("recall_coordinator")
    with django_assert_num_queries(7):  # roles, recall, count, page, vials, access-log INSERT, seals
        response = client.get(f"/api/recalls/{recall.pk}/notifications/")
    assert response.json()["count"] == patients


@pytest.mark.parametrize("patients", [1, 12])
def test_export_query_count_is_constant(client_for, django_assert_num_queries, patients):
    recall = make_recall(lot_with(3, patients))
    client = client_for("auditor")
    # roles, recall, lots, vials, vials by status, dispenses, recall links, excursion vials, tasks, task vials,
    # progress, access-log INSERT, seals
    with django_assert_num_queries(13):
        client.get(f"/api/recalls/{recall.pk}/export.xlsx")


def test_the_written_out_lookback_serialisers_give_what_drf_gives_from_their_fields(technician):
    from rest_framework import serializers

    from api.recalls import DispenseLineOut, LookbackVialOut, PatientBrief, SessionBrief
    from recalls.selectors import lot_lookup
    from traceability.models import Dispense
    from traceability.services import dispense_waste

    lot = lot_with(1, 2)
    dispense_waste(dispense=Dispense.objects.filter(vial__lot=lot).order_by("pk").first(), reason="partly used",
                   actor=technician)
    result = lot_lookup(lot=lot.lot_number).results[0]
    assert {d.status for d in result.dispenses} == {"dispensed", "wasted"}
    for d in result.dispenses:
        for serializer, instance in ((DispenseLineOut(), d), (LookbackVialOut(), d.vial),
                                     (PatientBrief(), d.session.patient), (SessionBrief(), d.session)):
            assert serializer.to_representation(instance) == serializers.Serializer.to_representation(serializer, instance)
    for vial in result.vials:
        serializer = LookbackVialOut()
        assert serializer.to_representation(vial) == serializers.Serializer.to_representation(serializer, vial)


def test_each_dispense_is_serialised_once_per_response_and_shown_in_both_places(client_for):
    lot = lot_with(0, 3)
    body = client_for("recall_coordinator").get("/api/recalls/lookup", {"lot": lot.lot_number}).json()
    result = body["results"][0]
    by_patient = [line for exposure in result["patients"] for line in exposure["dispenses"]]
    assert sorted(line["id"] for line in by_patient) == sorted(line["id"] for line in result["dispenses"])
    assert {line["id"]: line for line in by_patient} == {line["id"]: line for line in result["dispenses"]}
