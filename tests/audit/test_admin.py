"""Export events and jobs are visible in the admin, read-only, with the events' history."""

import pytest

from core.history import audited_create
from audit.models import ExportEvent, ExportJob


@pytest.fixture
def event(db, auditor):
    job = ExportJob.objects.create(requested_by=auditor, filters={"lot": "P1"}, status="done")
    return audited_create(
        ExportEvent, actor=auditor, reason="history export (3 rows)", exported_by=auditor, channel="job",
        filters={"lot": "P1"}, row_count=3, job=job,
    )


def test_export_events_are_listed_and_their_history_shown(admin_client, event):
    listing = admin_client.get("/admin/audit/exportevent/")
    history = admin_client.get(f"/admin/audit/exportevent/{event.pk}/history/")

    assert listing.status_code == 200 and b"ada" in listing.content
    assert history.status_code == 200 and b"history export (3 rows)" in history.content


def test_export_events_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, event):
    assert admin_client.get("/admin/audit/exportevent/add/").status_code == 403
    assert admin_client.post(f"/admin/audit/exportevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ExportEvent.objects.filter(pk=event.pk).exists()


def test_export_jobs_are_listed(admin_client, event):
    assert admin_client.get("/admin/audit/exportjob/").status_code == 200
