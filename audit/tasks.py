"""Celery tasks of the audit app."""

from celery import shared_task

from audit.services import export_job_run


@shared_task(name="audit.export_history_job", ignore_result=True, acks_late=True)
def export_history_job(job_id: int) -> str:
    """Build the workbook of one queued ExportJob (see audit.services.export_job_run)."""
    return export_job_run(job_id=job_id).status


@shared_task(name="audit.checkpoint", ignore_result=True)
def checkpoint() -> int:
    """Fix every seal written since the last checkpoint under a signed Merkle root (Celery beat)."""
    from audit.models import Checkpoint
    from audit.services import checkpoint_create

    return checkpoint_create(trigger=Checkpoint.Trigger.SCHEDULE).sequence
