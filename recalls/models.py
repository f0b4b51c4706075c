"""Recall records: the lots a notice names, and the patients to notify."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from core.history import history_records

from inventory.models import Lot, Vial
from traceability.models import Patient


class Recall(models.Model):
    class Source(models.TextChoices):
        MANUFACTURER = "manufacturer"
        REGULATOR = "regulator"
        INTERNAL = "internal"

    class Scheme(models.TextChoices):
        """Whose classification the notice uses: FDA (US) or MHRA (UK)."""

        FDA = "fda", "FDA"
        MHRA = "mhra", "MHRA"

    class RecallClass(models.TextChoices):
        # FDA (21 CFR 7.3(m)): I serious harm or death likely, II temporary or reversible harm,
        # III harm unlikely; a market withdrawal is a removal for a minor or no violation (the
        # catalog's 2004 and 2025 IVIG events were withdrawals, not classified recalls).
        I = "I", "class I"
        II = "II", "class II"
        III = "III", "class III"
        MARKET_WITHDRAWAL = "market_withdrawal", "market withdrawal"
        # MHRA drug alerts: 1 action now, 2 within 48 hours, 3 within 5 days, 4 caution in use.
        CLASS_1 = "1", "class 1"
        CLASS_2 = "2", "class 2"
        CLASS_3 = "3", "class 3"
        CLASS_4 = "4", "class 4"
        UNCLASSIFIED = "unclassified", "not yet classified"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    reference = models.CharField(max_length=80, unique=True, help_text="Manufacturer or regulator number")
    source = models.CharField(max_length=16, choices=Source.choices)
    scheme = models.CharField(max_length=8, choices=Scheme.choices, default=Scheme.FDA)
    recall_class = models.CharField(max_length=20, choices=RecallClass.choices)
    # When every patient must have been dealt with: set from the notice, or from what the class
    # implies (MHRA); null when nothing sets one (FDA classes set no deadline of their own).
    action_due = models.DateTimeField(null=True, blank=True)
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
        constraints = [
            models.CheckConstraint(
                condition=Q(scheme="fda", recall_class__in=["I", "II", "III", "market_withdrawal", "unclassified"])
                | Q(scheme="mhra", recall_class__in=["1", "2", "3", "4", "unclassified"]),
                name="recall_class_of_its_scheme",
            ),
        ]

    def __str__(self) -> str:
        return f"recall {self.reference}"

    @property
    def class_text(self) -> str:
        """The class as the notice states it, with what it asks of the pharmacy."""
        return class_text(self.scheme, self.recall_class)


RC = Recall.RecallClass
CLASSES_OF_SCHEME = {
    Recall.Scheme.FDA: [RC.I, RC.II, RC.III, RC.MARKET_WITHDRAWAL, RC.UNCLASSIFIED],
    Recall.Scheme.MHRA: [RC.CLASS_1, RC.CLASS_2, RC.CLASS_3, RC.CLASS_4, RC.UNCLASSIFIED],
}

# The action deadline a class implies, counted from when the recall is recorded here. MHRA's
# classes carry one; FDA's do not (the notice or the recall strategy gives it), nor does MHRA
# class 4, which asks for caution in use rather than action.
ACTION_WITHIN = {
    (Recall.Scheme.MHRA, RC.CLASS_1): timedelta(0),  # immediately
    (Recall.Scheme.MHRA, RC.CLASS_2): timedelta(hours=48),
    (Recall.Scheme.MHRA, RC.CLASS_3): timedelta(days=5),
}

_WHAT_IT_ASKS = {
    (Recall.Scheme.FDA, RC.I): "serious adverse health consequences or death are reasonably probable",
    (Recall.Scheme.FDA, RC.II): "temporary or medically reversible harm possible",
    (Recall.Scheme.FDA, RC.III): "adverse health consequences unlikely",
    (Recall.Scheme.FDA, RC.MARKET_WITHDRAWAL): "removed for a minor or no violation",
    (Recall.Scheme.MHRA, RC.CLASS_1): "action immediately",
    (Recall.Scheme.MHRA, RC.CLASS_2): "action within 48 hours",
    (Recall.Scheme.MHRA, RC.CLASS_3): "action within 5 days",
    (Recall.Scheme.MHRA, RC.CLASS_4): "caution in use",
}


def class_text(scheme: str, recall_class: str) -> str:
    """e.g. "MHRA class 2: action within 48 hours", "FDA market withdrawal: removed for a minor or
    no violation", "FDA, not yet classified"."""
    name = Recall.Scheme(scheme).label
    if recall_class == RC.UNCLASSIFIED:
        return f"{name}, not yet classified"
    asks = _WHAT_IT_ASKS.get((scheme, recall_class))
    label = f"{name} {RC(recall_class).label}"
    return f"{label}: {asks}" if asks else label


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
