"""Export jobs (background exports and their progress), export events (who exported what, when) and
the access log of patient data (who saw which patient, when, through which route)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from core.history import history_records


class ExportJob(models.Model):
    """A history export too large to build inside a web request; a Celery worker builds it.

    Note: no HistoricalRecords here on purpose. A job is operational state whose progress counter
    changes thousands of times; what an auditor needs to see is the ExportEvent written when the
    workbook is complete.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to="exports/", blank=True, max_length=255)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export job {self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        if not self.rows_total:
            return 0.0
        return min(1.0, self.rows_done / self.rows_total)


class ExportEvent(models.Model):
    """One completed history export: the export of audit data is itself an audited act."""

    class Channel(models.TextChoices):
        API = "api", "API (direct download)"
        JOB = "job", "API (background job)"
        COMMAND = "command", "management command"

    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who ran it when there is no application user (the command line): the operating-system login.
    operator = models.CharField(max_length=150, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveBigIntegerField(default=0)
    sheet_counts = models.JSONField(default=dict, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    job = models.ForeignKey(ExportJob, on_delete=models.PROTECT, null=True, blank=True, related_name="events")
    exported_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["-exported_at", "-id"]

    def __str__(self) -> str:
        who = self.exported_by.username if self.exported_by_id else (self.operator or "unknown")
        return f"export {self.pk} by {who} ({self.row_count} rows)"


class PatientAccess(models.Model):
    """Who saw which patient's record, when, and through which API route or page.

    Note: no HistoricalRecords. This is itself a log: rows are written once, in bulk, and never
    changed or deleted (the admin is read-only, and PROTECT keeps patients and users it names).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("traceability.Patient", on_delete=models.PROTECT, related_name="accesses")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    via = models.CharField(max_length=40, help_text="API route name or page, e.g. patient-detail, recall-lookup")
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "patient access"
        verbose_name_plural = "patient accesses"

    def __str__(self) -> str:
        return f"patient {self.patient_id} seen by user {self.user_id} via {self.via}"
