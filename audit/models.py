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
    # The checkpoint taken as the export began: the workbook's rows are among the seals it fixes.
    checkpoint = models.ForeignKey(
        "Checkpoint", on_delete=models.PROTECT, null=True, blank=True, related_name="exports"
    )
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


class Seal(models.Model):
    """The tamper-evident seal of one history row (or one access-log row), written in the same
    transaction as the row.

    `content` is an HMAC of the row's values; `digest` an HMAC over the row's place (source table,
    row id, object id), its content and the digest of the previous row *of the same object*, so each
    object's history is a chain of its own: writes to different objects never wait on each other.
    Checkpoints (below) fix every seal in a Merkle tree, which catches a row deleted together with
    its seal. The key is settings.AUDIT_SEAL_KEY, which the database does not hold, so whoever edits
    rows with SQL cannot write matching seals. See audit/chain.py.
    """

    source = models.CharField(max_length=64, help_text="app_label.model of the sealed table")
    row_id = models.BigIntegerField(help_text="primary key of the sealed row (history_id for history)")
    object_id = models.BigIntegerField(help_text="the object whose chain the row belongs to")
    schema = models.CharField(max_length=16, help_text="which fields the content covers (SealSchema)")
    content = models.CharField(max_length=64)
    previous = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "row_id"], name="seal_once_per_row")]
        indexes = [models.Index(fields=["source", "object_id", "row_id"], name="seal_chain")]

    def __str__(self) -> str:
        return f"seal {self.pk}: {self.source} row {self.row_id}"


class SealSchema(models.Model):
    """The fields a seal's content covers, by the hash a seal names: a field added to a history
    table later does not break the seals of rows written before it."""

    key = models.CharField(max_length=16, primary_key=True)
    source = models.CharField(max_length=64)
    fields = models.JSONField()

    def __str__(self) -> str:
        return f"{self.source} schema {self.key}"


class Checkpoint(models.Model):
    """A signed Merkle root over every seal since the previous checkpoint (a Celery beat task and
    every export take one), in the manner of Certificate Transparency's signed tree heads.

    Seals in (`after_seal`, `last_seal`] are the leaves, less `gaps` (ids not committed when the
    checkpoint was taken: a transaction still running, or rolled back), plus `late`: ids of earlier
    gaps that have since been committed. `signature` covers all of it and the previous checkpoint's
    signature, so checkpoints form a chain too.
    """

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "scheduled (Celery beat)"
        EXPORT = "export", "history export"
        COMMAND = "command", "management command"

    sequence = models.PositiveBigIntegerField(unique=True)
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    created_at = models.DateTimeField(default=timezone.now)
    after_seal = models.BigIntegerField(help_text="last seal id of the previous checkpoint (exclusive)")
    last_seal = models.BigIntegerField(help_text="highest seal id covered (inclusive)")
    leaves = models.PositiveBigIntegerField()
    root = models.CharField(max_length=64)
    gaps = models.JSONField(default=list, blank=True, help_text="[first, last, seen at] seal id ranges missing")
    late = models.JSONField(default=list, blank=True, help_text="[first, last] earlier gaps covered here")
    previous_signature = models.CharField(max_length=64, blank=True)
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"checkpoint {self.sequence} (seals to {self.last_seal})"


class HistoryPurge(models.Model):
    """History and access-log rows deleted because they passed AUDIT_RETENTION_DAYS: who, why, how
    many, and the checkpoint up to which seals (and the rows they seal) were removed."""

    operator = models.CharField(max_length=150)
    reason = models.TextField()
    retention_days = models.PositiveIntegerField()
    cutoff = models.DateTimeField()
    up_to_checkpoint = models.PositiveBigIntegerField()
    up_to_seal = models.BigIntegerField()
    rows_deleted = models.JSONField(default=dict)
    purged_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["-purged_at", "-id"]

    def __str__(self) -> str:
        return f"purge {self.pk} up to seal {self.up_to_seal}: {self.reason}"
