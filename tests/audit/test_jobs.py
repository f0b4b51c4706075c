"""Background export jobs: in-process (no broker), and against a real Celery worker and Redis."""

import os
import time

import pytest
from django.db import connections

from audit.models import ExportEvent, ExportJob
from audit.selectors import parse_filters
from audit.services import export_job_create, export_job_run
from config.celery import app as celery_app
from tests.audit.helpers import build_world, read_workbook


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_a_job_writes_its_workbook_under_media_exports_and_reports_progress(db, media, auditor):
    build_world()
    job = ExportJob.objects.create(requested_by=auditor, filters={"patient": "MRN-A"}, rows_total=9)

    job = export_job_run(job_id=job.pk)

    assert job.status == ExportJob.Status.DONE
    assert job.file.name.startswith("exports/history-") and job.file.name.endswith(".xlsx")
    path = media / job.file.name
    assert not list((media / "exports").glob("*.part"))
    sheets = read_workbook(path)
    assert len(sheets["Sessions"]) == 2
    assert job.rows_done == job.rows_total == ExportEvent.objects.get(job=job).row_count
    assert job.progress == 1.0 and job.finished_at >= job.started_at


def test_a_job_delivered_twice_exports_once(db, media, auditor):
    build_world()
    job = ExportJob.objects.create(requested_by=auditor, filters={}, rows_total=1)

    export_job_run(job_id=job.pk)
    export_job_run(job_id=job.pk)

    assert ExportEvent.objects.filter(job=job).count() == 1


def test_a_job_with_filters_that_no_longer_parse_fails_visibly(db, media, auditor):
    job = ExportJob.objects.create(requested_by=auditor, filters={"model": "gone"}, rows_total=1)

    job = export_job_run(job_id=job.pk)

    assert job.status == ExportJob.Status.FAILED and "gone" in job.error
    assert not job.file


def test_without_a_broker_a_job_runs_in_process_once_committed(db, media, auditor, django_capture_on_commit_callbacks):
    build_world()
    was = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = export_job_create(filters=parse_filters(lot="P100263"), actor=auditor, rows_total=12)
    finally:
        celery_app.conf.task_always_eager = was

    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL")
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_finishes_an_export_job(media, auditor):
    from celery.contrib.testing.worker import start_worker

    build_world()
    was = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = os.environ["REDIS_URL"]
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            job = export_job_create(filters=parse_filters(), actor=auditor, rows_total=30)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                job.refresh_from_db()
                if job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED):
                    break
                time.sleep(0.2)
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.broker_url = was
        # The worker thread's database connection must not outlive the test database.
        connections.close_all()

    assert job.status == ExportJob.Status.DONE, job.error
    assert read_workbook(media / job.file.name)["Sessions"]
