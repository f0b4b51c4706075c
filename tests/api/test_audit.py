"""GET /api/audit/history/, GET /api/audit/export.xlsx and export jobs: wiring, codes, permissions."""

from io import BytesIO

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from openpyxl import load_workbook
from rest_framework.test import APIClient

from core.history import audited_save
from audit.models import ExportEvent, ExportJob
from config.celery import app as celery_app
from tests.audit.helpers import build_world, read_workbook
from tests.factories import InfusionSessionFactory, UserFactory

HISTORY = "/api/audit/history/"
EXPORT = "/api/audit/export.xlsx"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def eager(settings, tmp_path):
    """Jobs run in-process, as with no broker configured; files go to a temporary MEDIA_ROOT."""
    was = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AUDIT_EXPORT_SYNC_MAX_ROWS = 5
    yield
    celery_app.conf.task_always_eager = was


def workbook(response):
    return read_workbook(BytesIO(b"".join(response.streaming_content)))


@pytest.mark.parametrize(
    "role, expected",
    [("auditor", 200), ("technician", 403), ("pharmacist", 403), ("recall_coordinator", 403), ("none", 403), (None, 401)],
)
@pytest.mark.parametrize("url", [HISTORY, EXPORT])
def test_only_auditors_may_read_or_export_the_history(world, client_for, role, expected, url):
    response = client_for(role).get(url)

    assert response.status_code == expected
    if expected != 200:
        assert response.json()["code"] in ("permission_denied", "not_authenticated")


def test_a_superuser_may_export(world):
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="x" * 12))

    assert client.get(EXPORT).status_code == 200


def test_the_history_list_is_newest_first_with_who_what_and_the_diff(world, auditor_client):
    response = auditor_client.get(HISTORY, {"model": "sessions", "user": "phil"})

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None and body["previous"] is None
    (entry,) = body["results"]
    assert entry["model"] == "sessions" and entry["action"] == "changed"
    assert (entry["who"], entry["role"], entry["reason"]) == ("phil (Phil Pharm)", "pharmacist", "dose corrected")
    assert entry["changes"] == [
        {"field": "ordered_grams", "label": "ordered grams", "old": "30.00", "new": "35.00", "text": "30 → 35"}
    ]
    assert entry["record"] == "infusion session"
    assert entry["snapshot"]["ordered_grams"] == "35.00"
    assert entry["when"].endswith(("-05:00", "-04:00"))


def test_the_history_list_pages_with_cursors(world, auditor_client):
    first = auditor_client.get(HISTORY, {"page_size": 5}).json()
    second = auditor_client.get(first["next"]).json()
    back = auditor_client.get(second["previous"]).json()

    assert len(first["results"]) == 5 and first["previous"] is None
    assert [e["history_id"] for e in back["results"]] == [e["history_id"] for e in first["results"]]
    ids = {(e["model"], e["history_id"]) for e in first["results"] + second["results"]}
    assert len(ids) == 10


def test_the_history_list_filters_by_lot(world, auditor_client):
    results = auditor_client.get(HISTORY, {"lot": "P100263", "page_size": 100}).json()["results"]

    models = {e["model"] for e in results}
    assert models == {"lots", "vials", "dispenses", "sessions", "flags", "reactions", "recalls", "recall_lots", "notifications"}


@pytest.mark.parametrize(
    "params, code",
    [
        ({"since": "soon"}, "invalid_filter"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "invalid_range"),
        ({"model": "widgets"}, "invalid"),
        ({"vial": "x"}, "invalid"),
        ({"cursor": "garbage"}, "invalid_cursor"),
    ],
)
def test_bad_filters_are_a_400_with_a_code(world, auditor_client, params, code):
    response = auditor_client.get(HISTORY, params)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not ExportEvent.objects.exists()


def test_bad_filters_on_the_export_change_nothing(world, auditor_client):
    response = auditor_client.get(EXPORT, {"until": "2025-13-01"})

    assert response.status_code == 400 and response.json()["code"] == "invalid_filter"
    assert not ExportEvent.objects.exists() and not ExportJob.objects.exists()


def test_the_history_list_runs_a_constant_number_of_queries(world, auditor_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(60) as one:
        auditor_client.get(HISTORY, {"page_size": 100})
    baseline = len(one.captured_queries)
    for _ in range(10):
        session = InfusionSessionFactory()
        session.ordered_grams += 1
        audited_save(session, actor=world.pharmacist, reason="more")
    with django_assert_max_num_queries(baseline):
        auditor_client.get(HISTORY, {"page_size": 100})


def test_a_small_export_is_the_workbook_itself_and_is_recorded(world, auditor, auditor_client):
    response = auditor_client.get(EXPORT, {"lot": "P100263"})

    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    assert 'attachment; filename="history-' in response["Content-Disposition"]
    sheets = workbook(response)
    assert {r["Object id"] for r in sheets["Dispenses"]} == {world.dispense.pk}
    event = ExportEvent.objects.get()
    assert event.exported_by == auditor and event.channel == "api"
    assert event.filters == {"lot": "P100263"}
    assert event.row_count == len(sheets["Timeline"])
    assert event.row_count == sum(len(rows) for title, rows in sheets.items() if title not in ("Summary", "Timeline"))
    record = event.history.get()
    assert record.history_user == auditor and record.history_change_reason.startswith("history export")


def test_the_export_is_sent_whatever_the_accept_header(world, auditor_client):
    response = auditor_client.get(EXPORT, HTTP_ACCEPT=XLSX)

    assert response.status_code == 200 and response["Content-Type"] == XLSX


def test_a_large_export_becomes_a_job_that_runs_and_offers_its_file(
    world, auditor, auditor_client, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = auditor_client.get(EXPORT)

    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert response["Location"].endswith(reverse("audit-export-job", args=[job.pk]))
    assert response.json()["rows_total"] > 5

    status = auditor_client.get(response["Location"]).json()
    assert status["status"] == "done" and status["progress"] == 1.0
    assert status["rows_done"] == status["rows_total"]
    download = auditor_client.get(status["download"])
    assert download.status_code == 200 and download["Content-Type"] == XLSX
    sheets = workbook(download)
    assert len(sheets["Sessions"]) == 3
    event = ExportEvent.objects.get()
    assert (event.channel, event.job, event.exported_by) == ("job", job, auditor)


def test_a_queued_job_is_not_ready_for_download(world, auditor_client, eager):
    response = auditor_client.get(EXPORT)  # the worker is told only on commit, which never comes here

    job_url = response["Location"]
    assert auditor_client.get(job_url).json()["status"] == "queued"
    refused = auditor_client.get(job_url + "/download")
    assert refused.status_code == 409 and refused.json()["code"] == "export_not_ready"


def test_a_failed_job_says_so(world, auditor_client, eager, monkeypatch, django_capture_on_commit_callbacks):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("audit.services.write_history_workbook", broken)
    with django_capture_on_commit_callbacks(execute=True):
        job_url = auditor_client.get(EXPORT)["Location"]

    status = auditor_client.get(job_url).json()
    assert status["status"] == "failed" and "disk full" in status["error"]
    refused = auditor_client.get(job_url + "/download")
    assert refused.status_code == 409 and refused.json()["code"] == "export_failed"
    assert not ExportEvent.objects.exists()


def test_only_the_requester_or_a_superuser_sees_a_job(
    world, auditor_client, client_for, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job_url = auditor_client.get(EXPORT)["Location"]

    other_auditor = client_for("auditor")
    for url in (job_url, job_url + "/download"):
        response = other_auditor.get(url)
        assert response.status_code == 404 and response.json()["code"] == "export_not_found"
        assert client_for("technician").get(url).status_code == 403
    root = APIClient()
    root.force_authenticate(UserFactory(username="root", is_superuser=True))
    assert root.get(job_url + "/download").status_code == 200


def test_an_unknown_job_is_a_404(auditor_client):
    response = auditor_client.get("/api/audit/exports/999999")

    assert response.status_code == 404 and response.json()["code"] == "export_not_found"


def test_the_exports_workbook_opens_in_openpyxl(world, auditor_client):
    response = auditor_client.get(EXPORT, {"model": "vials"})

    book = load_workbook(BytesIO(b"".join(response.streaming_content)))
    assert book.sheetnames == ["Timeline", "Summary", "Vials"]


def test_an_export_for_an_unknown_lot_is_404_with_suggestions_and_records_nothing(world, auditor_client):
    from audit.models import ExportEvent

    response = auditor_client.get(EXPORT, {"lot": "p100263"})

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "lot_not_found" and body["suggestions"][0] == "P100263"
    assert not ExportEvent.objects.exists()


def test_an_export_that_matches_nothing_is_404_and_says_so(world, auditor_client):
    from audit.models import ExportEvent

    response = auditor_client.get(EXPORT, {"lot": "P100263", "since": "2999-01-01"})

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "nothing_matched" and "a wider date range (or none)" in body["suggestions"]
    assert not ExportEvent.objects.exists()


def test_the_lot_filter_trims_spaces_as_the_recall_look_up_does(world, auditor_client):
    response = auditor_client.get(HISTORY, {"lot": "  P100263 ", "model": "lots"})

    assert response.status_code == 200 and len(response.json()["results"]) == 1


def test_the_history_list_for_an_unknown_patient_is_404_with_suggestions(world, auditor_client):
    response = auditor_client.get(HISTORY, {"patient": "MRN-C"})

    assert response.status_code == 404
    assert response.json()["code"] == "patient_not_found" and "MRN-A" in response.json()["suggestions"]
