"""Recall records: the lots a notice names, and the patients to notify."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from core.history import history_records

from inventory.models import Lot, Vial
from traceability.models import Patient


class Recall(models.Model):
    class Source(models.TextChoices):
        MANUFACTURER = "manufacturer"
        REGULATOR = "regulator"
        INTERNAL = "internal"

    class RecallClass(models.TextChoices):
        I = "I"
        II = "II"
        III = "III"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    reference = models.CharField(max_length=80, unique=True, help_text="Manufacturer or regulator number")
    source = models.CharField(max_length=16, choices=Source.choices)
    recall_class = models.CharField(max_length=3, choices=RecallClass.choices)
    reason = models.TextField()
    recall_date = models.DateField()
    lots = models.ManyToManyField(Lot, through="RecallLot", related_name="recalls")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)
    # Lot numbers the notice named that match no lot here (created with allow_unknown): kept, not dropped.
    unmatched_lot_numbers = models.JSONField(default=list, blank=True)
    history = history_records()

    class Meta:
        ordering = ["-recall_date", "-id"]

    def __str__(self) -> str:
        return f"recall {self.reference}"


class RecallLot(models.Model):
    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="recall_lots")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="recall_lots")
    history = history_records()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["recall", "lot"], name="recall_lot_once")]


class NotificationTask(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONTACTED = "contacted"
        UNREACHABLE = "unreachable"
        NOT_REQUIRED = "not_required", "not required"

    recall = models.ForeignKey(Recall, on_delete=models.PROTECT, related_name="notifications")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="recall_notifications")
    vials = models.ManyToManyField(Vial, related_name="+", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    note = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(null=True, blank=True)
    history = history_records()

    class Meta:
        ordering = ["recall", "patient__name"]
        constraints = [models.UniqueConstraint(fields=["recall", "patient"], name="notification_once_per_patient")]

    def __str__(self) -> str:
        return f"{self.recall.reference}: notify {self.patient.mrn} ({self.status})"
