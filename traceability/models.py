"""Patients, infusion sessions, dispenses, brand-switch flags and adverse reactions."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from inventory.models import Product, Vial


class Patient(models.Model):
    mrn = models.CharField("medical record number", max_length=32, unique=True)
    name = models.CharField(max_length=120)
    date_of_birth = models.DateField()
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    iga_deficient = models.BooleanField(default=False)
    allergy_notes = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "mrn"]
        # The patients list, first page: ORDER BY name, mrn LIMIT 50.
        indexes = [models.Index(fields=["name", "mrn"], name="patient_list_order")]

    def __str__(self) -> str:
        return f"{self.name} ({self.mrn})"


class InfusionSession(models.Model):
    class Indication(models.TextChoices):
        PID = "primary_immunodeficiency", "primary immunodeficiency"
        CIDP = "cidp", "CIDP"
        ITP = "itp", "ITP"
        KAWASAKI = "kawasaki", "Kawasaki disease"
        GBS = "guillain_barre", "Guillain-Barré syndrome"
        MG = "myasthenia_gravis", "myasthenia gravis"
        OTHER = "other"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    OPEN_STATUSES = (Status.SCHEDULED, Status.IN_PROGRESS)

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="sessions")
    scheduled_date = models.DateField()
    site = models.CharField(max_length=80, blank=True)
    indication = models.CharField(max_length=32, choices=Indication.choices)
    indication_other = models.CharField(max_length=120, blank=True)
    dose_g_per_kg = models.DecimalField(max_digits=5, decimal_places=3, null=True, blank=True)
    # The ordered dose in grams: given, or g/kg times the patient's weight at ordering.
    ordered_grams = models.DecimalField(max_digits=7, decimal_places=2)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    grams_dispensed = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-scheduled_date", "-id"]
        indexes = [
            models.Index(fields=["patient", "status", "scheduled_date"]),
            # The sessions list, first page: ORDER BY scheduled_date DESC, id DESC LIMIT 50 (read
            # backwards), and today's sessions at the scan station (scheduled_date = today).
            models.Index(fields=["scheduled_date", "id"], name="session_list_order"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} · {self.patient.mrn} · {self.scheduled_date}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Dispense(models.Model):
    class Status(models.TextChoices):
        DISPENSED = "dispensed"
        RETURNED_TO_STOCK = "returned_to_stock", "returned to stock (unopened)"
        WASTED = "wasted", "wasted (opened, partly used)"

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT, related_name="dispenses")
    vial = models.ForeignKey(Vial, on_delete=models.PROTECT, related_name="dispenses")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    grams = models.DecimalField(max_digits=6, decimal_places=2)
    dispensed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    dispensed_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DISPENSED)
    closed_reason = models.CharField(max_length=200, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["dispensed_at", "id"]
        indexes = [
            # The dispenses list, first page: ORDER BY dispensed_at DESC, id DESC LIMIT 50.
            models.Index(fields=["dispensed_at", "id"], name="dispense_list_order"),
        ]
        constraints = [
            # A vial is given at most once: the database refuses a second live dispense even if a
            # service check were bypassed. A vial returned unopened to stock may be dispensed again.
            models.UniqueConstraint(
                fields=["vial"], condition=~Q(status="returned_to_stock"), name="dispense_vial_once"
            ),
        ]

    def __str__(self) -> str:
        return f"dispense {self.pk}: {self.vial} → session {self.session_id}"


class BrandSwitchFlag(models.Model):
    class Kind(models.TextChoices):
        SWITCH = "switch", "brand differs from the last completed infusion"
        MIXED = "mixed", "several brands in one session"

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"

    class Reason(models.TextChoices):
        SHORTAGE = "shortage"
        FORMULARY = "formulary"
        PAYER = "payer"
        CLINICAL = "clinical_decision", "clinical decision"
        ADVERSE_REACTION = "adverse_reaction", "adverse reaction to the previous brand"
        OTHER = "other"

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    from_product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    to_product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    differences = models.JSONField(default=list, blank=True)
    raised_by = models.ForeignKey(Dispense, on_delete=models.PROTECT, null=True, blank=True, related_name="flags")
    raised_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    reason_text = models.TextField(blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [
            # The flags list, first page: ORDER BY raised_at DESC, id DESC LIMIT 50 (and ?open=true).
            models.Index(fields=["raised_at", "id"], name="flag_list_order"),
        ]

    def __str__(self) -> str:
        return f"brand switch {self.from_product.brand} → {self.to_product.brand} (session {self.session_id})"


class AdverseReaction(models.Model):
    class Type(models.TextChoices):
        HEADACHE = "headache"
        FEVER_CHILLS = "fever_chills", "fever or chills"
        NAUSEA = "nausea"
        MUSCLE_ACHES = "muscle_aches", "muscle aches"
        FATIGUE = "fatigue"
        ALLERGIC = "allergic_reaction", "allergic reaction"
        KIDNEY = "kidney_dysfunction", "kidney dysfunction"
        THROMBOSIS = "thrombosis"
        ASEPTIC_MENINGITIS = "aseptic_meningitis", "aseptic meningitis"
        OTHER = "other"

    class Severity(models.TextChoices):
        MILD = "mild"
        MODERATE = "moderate"
        SEVERE = "severe"
        LIFE_THREATENING = "life_threatening", "life-threatening"

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT, related_name="reactions")
    type = models.CharField(max_length=24, choices=Type.choices)
    type_other = models.CharField(max_length=120, blank=True)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    onset_at = models.DateTimeField()
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["onset_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} ({self.severity}) in session {self.session_id}"
