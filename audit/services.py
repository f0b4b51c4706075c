"""Writes of the audit app: history exports (direct or as a background job) and their record, and
the access log of patient data."""

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.roles import primary_role
from audit.export import write_history_workbook
from core.history import audited_create
from audit.models import ExportEvent, ExportJob, PatientAccess
from audit.selectors import HistoryFilters, filters_from_record

logger = logging.getLogger(__name__)


def exports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _exporter_label(actor, operator: str) -> str:
    if actor is not None:
        role = primary_role(actor)
        return f"{actor.username} ({role})" if role else actor.username
    return f"{operator or 'unknown'} (command line)"


def history_export(
    *,
    filters: HistoryFilters,
    path: Path | BinaryIO,
    channel: str,
    actor=None,
    operator: str = "",
    job: ExportJob | None = None,
    file_name: str = "",
    progress: Callable[[int], None] | None = None,
) -> ExportEvent:
    """Write the history workbook to `path` (a path or a binary file) and record who exported what, when, and how much.

    Note: not one transaction. The workbook streams for as long as it takes and must not hold a
    transaction (and its locks) open; the record is written once the file is complete.
    """
    result = write_history_workbook(
        path, filters, exported_by=_exporter_label(actor, operator), progress=progress
    )
    with transaction.atomic():
        return audited_create(
            ExportEvent,
            actor=actor,
            reason=f"history export ({result.rows} rows)",
            exported_by=actor,
            operator=operator,
            channel=channel,
            filters=filters.given,
            row_count=result.rows,
            sheet_counts=result.sheet_counts,
            file_name=file_name or Path(getattr(path, "name", path)).name,
            job=job,
        )


@transaction.atomic
def export_job_create(*, filters: HistoryFilters, actor, rows_total: int) -> ExportJob:
    """Queue a background export; the worker is told only once the job row is committed."""
    from audit.tasks import export_history_job

    job = ExportJob.objects.create(requested_by=actor, filters=filters.given, rows_total=rows_total)
    transaction.on_commit(lambda: export_history_job.delay(job.pk))
    return job


def export_job_run(*, job_id: int) -> ExportJob:
    """Build a queued job's workbook under MEDIA_ROOT/exports, reporting progress as it goes."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().select_related("requested_by").get(pk=job_id)
        if job.status != ExportJob.Status.QUEUED:
            # A task delivered twice (broker redelivery) must not export twice.
            return job
        job.status = ExportJob.Status.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])

    name = f"history-{job.pk}-{job.started_at.strftime('%Y%m%d-%H%M%S')}.xlsx"
    final = exports_dir() / name
    partial = final.with_name(name + ".part")
    step = max(1000, job.rows_total // 100)
    reported = 0

    def progress(rows: int) -> None:
        nonlocal reported
        if rows - reported >= step:
            reported = rows
            # Note: ExportJob keeps no history, so a plain UPDATE is right here (and cheap).
            ExportJob.objects.filter(pk=job.pk).update(rows_done=rows)

    try:
        filters = filters_from_record(job.filters)
        event = history_export(
            filters=filters,
            path=partial,
            channel=ExportEvent.Channel.JOB,
            actor=job.requested_by,
            job=job,
            file_name=name,
            progress=progress,
        )
        partial.replace(final)
    except Exception as exc:  # the job must end in a state the requester can see
        logger.exception("history export job %s failed", job.pk)
        partial.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(exc)[:2000] or exc.__class__.__name__, finished_at=timezone.now()
        )
    else:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.DONE,
            rows_done=event.row_count,
            rows_total=event.row_count,  # what was written, should the data have moved since the count
            file=f"exports/{name}",
            finished_at=timezone.now(),
        )
    job.refresh_from_db()
    return job


VIA_MAX = PatientAccess._meta.get_field("via").max_length
PATH_MAX = PatientAccess._meta.get_field("path").max_length


def patient_access_record(*, user, patient_ids: Iterable[int | None], via: str, request=None) -> list[PatientAccess]:
    """Record that `user` saw these patients through `via`: one row per patient, all of them written
    by one bulk INSERT. Anonymous users and empty sets record nothing; repeated ids count once.

    Note: no transaction and no lock. A log row is only ever inserted, and a read that was served
    stays logged even if something later in the request fails. On SQLite, Django splits an INSERT
    past 999 bound values (166 rows here); PostgreSQL takes any number in one statement.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    ids = sorted({pk for pk in patient_ids if pk is not None})
    if not ids:
        return []
    at = timezone.now()
    method = (request.method or "")[:8] if request is not None else ""
    path = request.get_full_path()[:PATH_MAX] if request is not None else ""
    rows = [
        PatientAccess(user=user, patient_id=pk, at=at, via=via[:VIA_MAX], method=method, path=path) for pk in ids
    ]
    return PatientAccess.objects.bulk_create(rows)
