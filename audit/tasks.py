"""Celery tasks of the audit app."""

from celery import shared_task

from audit.services import export_job_run


@shared_task(name="audit.export_history_job", ignore_result=True, acks_late=True)
def export_history_job(job_id: int) -> str:
    """Build the workbook of one queued ExportJob (see audit.services.export_job_run)."""
    return export_job_run(job_id=job_id).status
