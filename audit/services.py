"""Writes of the audit app: history exports (direct or as a background job) and their record, and
the access log of patient data."""

import logging
from datetime import timedelta
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core.roles import primary_role
from audit.export import write_history_workbook
from core.errors import Conflict, InvalidInput
from core.history import audited_create, audited_save
from audit.chain import (
    MerkleTree,
    canon_for,
    checkpoint_signature,
    checkpoint_values,
    ids_of,
    leaf,
    ranges,
    seal_key,
    seal_rows,
    sealed_models,
)
from audit.models import Checkpoint, ExportEvent, ExportJob, HistoryPurge, PatientAccess, Seal
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

    A checkpoint is taken first: the workbook's summary names it, so whoever holds the file can
    later prove (verify_history) that the history it came from is unchanged.

    Note: not one transaction. The workbook streams for as long as it takes and must not hold a
    transaction (and its locks) open; the record is written once the file is complete.
    """
    checkpoint = checkpoint_create(trigger=Checkpoint.Trigger.EXPORT)
    result = write_history_workbook(
        path, filters, exported_by=_exporter_label(actor, operator), checkpoint=checkpoint, progress=progress
    )
    sheet_counts = dict(result.sheet_counts)
    if result.access_rows:
        sheet_counts["access"] = result.access_rows
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
            sheet_counts=sheet_counts,
            checkpoint=checkpoint,
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

    Note: no lock. A log row is only ever inserted (each row is sealed on its own, so no chain has
    to be extended under a lock), and a read that was served stays logged even if something later
    in the request fails. On SQLite, Django splits an INSERT
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
    with transaction.atomic(savepoint=False):
        # The INSERT and its seals together: a log row never exists unsealed. (No savepoint: inside
        # a request's transaction it costs two statements and buys nothing, as a failed INSERT
        # fails the request's transaction either way.)
        rows = PatientAccess.objects.bulk_create(rows)
        seal_rows(PatientAccess, rows)
    return rows


# --- Checkpoints -------------------------------------------------------------------------------


def _late_and_pending(previous: Checkpoint | None, *, now) -> tuple[list[int], list[list]]:
    """Of the previous checkpoint's gaps: the seal ids committed since (covered now, "late"), and
    the ranges still missing, carried while younger than AUDIT_CHECKPOINT_GAP_HOURS (a transaction
    runs for seconds; an id missing for hours was rolled back and stays missing)."""
    if previous is None or not previous.gaps:
        return [], []
    horizon = now.timestamp() - settings.AUDIT_CHECKPOINT_GAP_HOURS * 3600
    late: list[int] = []
    pending: list[list] = []
    for first, last, seen in previous.gaps:
        present = set(Seal.objects.filter(id__gte=first, id__lte=last).values_list("id", flat=True))
        late.extend(present)
        if seen >= horizon:
            pending.extend([a, b, seen] for a, b in ranges(set(range(first, last + 1)) - present))
    return sorted(late), pending


def checkpoint_create(*, trigger: str) -> Checkpoint:
    """Fix every seal since the previous checkpoint under a signed Merkle root; when nothing was
    sealed since, the previous checkpoint still stands and is returned.

    Checkpoints take turns (a lock on the newest checkpoint row, and `sequence` is unique);
    writers of history never wait on them.
    """
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return _checkpoint_create(trigger=trigger)
        except IntegrityError:  # another checkpoint took this sequence number first: start again
            continue
    raise RuntimeError("Could not take a checkpoint: other checkpoints kept taking the sequence number.")


def _checkpoint_create(*, trigger: str) -> Checkpoint:
    previous = Checkpoint.objects.select_for_update().order_by("-sequence").first()
    after = previous.last_seal if previous else 0
    now = timezone.now()
    last = Seal.objects.aggregate(top=Max("id"))["top"] or 0
    late, pending = _late_and_pending(previous, now=now)
    if previous is not None and last <= after and not late:
        return previous
    tree = MerkleTree()
    for seal_id, source, row_id, digest in (
        Seal.objects.filter(id__in=late).order_by("id").values_list("id", "source", "row_id", "digest")
    ):
        tree.add(leaf(seal_id, source, row_id, digest))
    expected = after + 1
    missing: list[int] = []
    for seal_id, source, row_id, digest in (
        Seal.objects.filter(id__gt=after, id__lte=last)
        .order_by("id")
        .values_list("id", "source", "row_id", "digest")
        .iterator(chunk_size=5000)
    ):
        if seal_id > expected:
            missing.extend(range(expected, seal_id))
        expected = seal_id + 1
        tree.add(leaf(seal_id, source, row_id, digest))
    seen = now.timestamp()
    checkpoint = Checkpoint(
        sequence=(previous.sequence + 1) if previous else 1,
        trigger=trigger,
        created_at=now,
        after_seal=after,
        last_seal=max(last, after),
        leaves=tree.size,
        root=tree.root(),
        gaps=pending + [[a, b, seen] for a, b in ranges(missing)],
        late=ranges(late),
        previous_signature=previous.signature if previous else "",
    )
    checkpoint.signature = checkpoint_signature(seal_key(), checkpoint_values(checkpoint))
    checkpoint.save()
    return checkpoint


# --- Retention -----------------------------------------------------------------------------------


@transaction.atomic
def history_purge(*, reason: str, operator: str, now=None) -> HistoryPurge:
    """Delete history and access-log rows older than AUDIT_RETENTION_DAYS, with a reason, and
    record who did it, why and how much (the record is itself history, and sealed).

    Whole checkpoints go at once: every row sealed up to the newest checkpoint taken before the
    cutoff, with its seals, so verify_history still proves what remains (its chains start where the
    purge ended, and the purged checkpoints keep their signatures). Nothing is deleted while the
    retention is "forever" (the default), nor without a reason.
    """
    days = settings.AUDIT_RETENTION_DAYS
    if days is None:
        raise Conflict("History and access logs are kept forever (AUDIT_RETENTION_DAYS is not set).", code="retention_forever")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why the history is purged.", code="reason_required")
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    done = HistoryPurge.objects.aggregate(top=Max("up_to_seal"))["top"] or 0
    checkpoint = (
        Checkpoint.objects.filter(created_at__lt=cutoff, last_seal__gt=done).order_by("-sequence").first()
    )
    if checkpoint is None:
        raise Conflict(f"Nothing was checkpointed before {cutoff:%Y-%m-%d %H:%M} that is not purged already.", code="nothing_to_purge")
    # Seals a later checkpoint took up late (ids of its gaps) are fixed by that checkpoint: keep them.
    keep = set()
    for later in Checkpoint.objects.filter(sequence__gt=checkpoint.sequence).only("late"):
        keep.update(i for i in ids_of(later.late) if i <= checkpoint.last_seal)
    deleted: dict[str, int] = {}
    for model in sealed_models():
        canon = canon_for(model)
        seals = Seal.objects.filter(source=canon.source, id__lte=checkpoint.last_seal).exclude(id__in=keep)
        rows, _ = model._default_manager.filter(**{f"{canon.pk}__in": seals.values("row_id")}).delete()
        if rows:
            deleted[canon.source] = rows
    Seal.objects.filter(id__lte=checkpoint.last_seal).exclude(id__in=keep).delete()
    return _record_purge(reason=reason, operator=operator, days=days, cutoff=cutoff, checkpoint=checkpoint, deleted=deleted)


def _record_purge(*, reason, operator, days, cutoff, checkpoint, deleted) -> HistoryPurge:
    purge = HistoryPurge(
        operator=operator,
        reason=reason,
        retention_days=days,
        cutoff=cutoff,
        up_to_checkpoint=checkpoint.sequence,
        up_to_seal=checkpoint.last_seal,
        rows_deleted=deleted,
    )
    return audited_save(purge, actor=None, reason=f"retention purge: {reason}"[:100])
