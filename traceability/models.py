"""Patients, infusion sessions, dispenses, brand-switch flags, adverse reactions, the administration
record (rate steps, pauses, each vial's fate) and the home infusions a patient reports."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from core.history import history_records

from inventory.models import Product, Vial


class Patient(models.Model):
    mrn = models.CharField("medical record number", max_length=32, unique=True)
    name = models.CharField(max_length=120)
    date_of_birth = models.DateField()
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    # Height and sex give the ideal body weight (Devine) that weight-based doses may be worked out
    # from (traceability.authorisations.dosing_weight).
    height_cm = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    sex = models.CharField(max_length=6, choices=[("male", "male"), ("female", "female")], blank=True,
                           help_text="Sex for the ideal body weight formula (Devine)")
    # The clinical profile the dispense checks read (traceability.clinical); its history is the
    # patient's history. Each flag is what the prescriber or pharmacist recorded, not a guess.
    iga_deficient = models.BooleanField(default=False)
    anti_iga_antibodies = models.BooleanField(
        default=False, help_text="IgA deficient with antibodies against IgA (a history of hypersensitivity)")
    renal_impairment = models.BooleanField(
        default=False, help_text="Renal impairment or its predispositions (diabetes, over 65, volume depletion, sepsis, nephrotoxic drugs)")
    thrombosis_risk = models.BooleanField(
        default=False, help_text="Thrombosis risk factors (history of thrombosis, immobilisation, oestrogens, hyperviscosity, catheters, cardiovascular risk)")
    hyperprolinaemia = models.BooleanField(default=False, help_text="Hyperprolinaemia type I or II")
    hereditary_fructose_intolerance = models.BooleanField(
        default=False, help_text="Hereditary fructose intolerance (or an infant not yet tested for it)")
    maltose_sensitive_glucose_monitoring = models.BooleanField(
        default=False, help_text="Glucose monitored with a system that reads maltose as glucose (GDH-PQQ, glucose-dye-oxidoreductase)")
    allergy_notes = models.TextField(blank=True)
    # A code printed on the patient's wristband as a GS1 GSRN (AI 8018), where the hospital issues them.
    gsrn = models.CharField("GSRN on the wristband", max_length=18, blank=True)
    history = history_records()

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

    class Route(models.TextChoices):
        IV = "IV", "intravenous"
        SC = "SC", "subcutaneous"

    class Setting(models.TextChoices):
        CLINIC = "clinic", "given here (infusion centre or ward)"
        HOME = "home", "supplied for home use"

    OPEN_STATUSES = (Status.SCHEDULED, Status.IN_PROGRESS)

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="sessions")
    scheduled_date = models.DateField()
    # How this infusion is given: a product labelled for the other route only is refused, and a
    # change of route (IV <-> SC of one brand) is a change of product for the switch review.
    route = models.CharField(max_length=2, choices=Route.choices, default=Route.IV)
    # A home supply (SCIG, mostly) is dispensed at once and infused by the patient over the
    # following days; the patient's reports (HomeInfusion) say which vials went when.
    setting = models.CharField(max_length=8, choices=Setting.choices, default=Setting.CLINIC)
    site = models.CharField(max_length=80, blank=True)
    # The treatment authorisation the infusion is given under: the dispense checks its brand, dose,
    # interval, doses left and dates (traceability.authorisations).
    authorisation = models.ForeignKey(
        "TreatmentAuthorisation", on_delete=models.PROTECT, null=True, blank=True, related_name="sessions")
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
    # Why the grams given differ from the grams ordered beyond tolerance, given at completion.
    discrepancy_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["-scheduled_date", "-id"]
        indexes = [
            models.Index(fields=["patient", "status", "scheduled_date"]),
            # The sessions list, first page: ORDER BY scheduled_date DESC, id DESC LIMIT 50 (read
            # backwards), and today's sessions at the scan station (scheduled_date = today).
            models.Index(fields=["scheduled_date", "id"], name="session_list_order"),
            # A technician's sessions list, first page: the open sessions from yesterday to a week
            # ahead, ORDER BY scheduled_date DESC, id DESC LIMIT 50 (core.roles' upcoming scope).
            models.Index(fields=["scheduled_date", "id"], name="session_open_order",
                         condition=models.Q(status__in=["scheduled", "in_progress"])),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} · {self.patient.mrn} · {self.scheduled_date}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class TreatmentAuthorisation(models.Model):
    """The approval to give a patient immunoglobulin: for an indication, a product (one brand, or
    any brand of a route), a dose (grams, or g/kg of a dosing weight) every so many days, so many
    doses, between two dates. Every vial is dispensed against one (BloodSTAR: the dispenser is
    responsible for every vial). It is never deleted: it ends early by being revoked, with a reason."""

    class WeightBasis(models.TextChoices):
        ACTUAL = "actual", "actual body weight"
        IDEAL = "ideal", "ideal body weight (Devine)"
        ADJUSTED = "adjusted", "adjusted body weight (IBW + 0.4 × (actual − IBW))"

    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="authorisations")
    indication = models.CharField(max_length=32, choices=InfusionSession.Indication.choices)
    indication_other = models.CharField(max_length=120, blank=True)
    # One brand, or (product empty) any brand given by this route.
    product = models.ForeignKey(Product, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    route = models.CharField(max_length=2, choices=InfusionSession.Route.choices, default=InfusionSession.Route.IV)
    dose_grams = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    dose_g_per_kg = models.DecimalField(max_digits=5, decimal_places=3, null=True, blank=True)
    weight_basis = models.CharField(max_length=8, choices=WeightBasis.choices, default=WeightBasis.ACTUAL)
    interval_days = models.PositiveSmallIntegerField(help_text="The fewest days between two doses")
    doses = models.PositiveSmallIntegerField(help_text="Doses authorised")
    valid_from = models.DateField()
    valid_until = models.DateField()
    prescriber = models.CharField(max_length=120)
    approver = models.CharField(max_length=120, help_text="Who approved it (panel, payer's assessor)")
    payer_reference = models.CharField(max_length=60, blank=True, help_text="e.g. the BloodSTAR authorisation number")
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    revoked_reason = models.TextField(blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["valid_until", "id"]
        indexes = [
            # Authorisations ending soon (valid_until between two dates), and a patient's own.
            models.Index(fields=["status", "valid_until"], name="authorisation_expiry"),
            models.Index(fields=["patient", "valid_until"], name="authorisation_patient"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(dose_grams__isnull=False, dose_g_per_kg__isnull=True)
                | Q(dose_grams__isnull=True, dose_g_per_kg__isnull=False),
                name="authorisation_one_dose_kind"),
            models.CheckConstraint(condition=Q(valid_until__gte=models.F("valid_from")),
                                   name="authorisation_dates_in_order"),
        ]

    def __str__(self) -> str:
        ref = self.payer_reference or f"#{self.pk}"
        return f"authorisation {ref} · {self.patient.mrn}"


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
    # The clinical cautions shown and acknowledged at dispense, and the pharmacist overrides it
    # relied on: [{"code", "kind", "detail", "override"}].
    checks = models.JSONField(default=list, blank=True)
    # The authorisation the vial was given under, and whether it was given outside it (a pharmacist
    # overrode one of its checks, or the session had none): the authorisation discrepancy queue.
    authorisation = models.ForeignKey(
        "TreatmentAuthorisation", on_delete=models.PROTECT, null=True, blank=True, related_name="dispenses")
    outside_authorisation = models.BooleanField(default=False)
    # The pharmacist's reconciliation of a vial given outside its authorisation with the payer (a
    # retrospective approval, an amended request, a write-off): it leaves the open queue.
    authorisation_reconciliation = models.TextField(blank=True)
    authorisation_reconciled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    authorisation_reconciled_at = models.DateTimeField(null=True, blank=True)
    # A pharmacist's decision that a vial whose lot was recalled or quarantined after it was
    # dispensed was given all the same (the session cannot complete without one).
    lot_decision_reason = models.TextField(blank=True)
    lot_decision_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lot_decision_at = models.DateTimeField(null=True, blank=True)
    history = history_records()

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
        SWITCH = "switch", "brand differs from the last infusion"
        MIXED = "mixed", "several brands in one session"
        ROUTE = "route", "same brand, other route (IV / SC) than the last infusion"
        FIRST_INFUSION = "first", "first immunoglobulin infusion for the patient"
        RETURNING = "returning", "more than 8 weeks since the last infusion"

    # Flags that call for a pharmacist's acknowledgement before the session completes; the others
    # are advice for whoever infuses (watch the whole first infusion and the hour after).
    BLOCKING_KINDS = (Kind.SWITCH, Kind.MIXED, Kind.ROUTE)

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        # What was given changed (a vial went back unopened): the flag no longer applies.
        WITHDRAWN = "withdrawn"

    class Reason(models.TextChoices):
        SHORTAGE = "shortage"
        FORMULARY = "formulary"
        PAYER = "payer"
        CLINICAL = "clinical_decision", "clinical decision"
        ADVERSE_REACTION = "adverse_reaction", "adverse reaction to the previous brand"
        OTHER = "other"

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(max_length=10, choices=Kind.choices)
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
    withdrawn_reason = models.TextField(blank=True)
    history = history_records()

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
    # The infusion the reaction happened in: the administration record (with the rate running at
    # onset, 0 when paused, none after the end), or the home infusion the patient reported.
    administration = models.ForeignKey(
        "Administration", on_delete=models.PROTECT, null=True, blank=True, related_name="reactions")
    home_infusion = models.ForeignKey(
        "HomeInfusion", on_delete=models.PROTECT, null=True, blank=True, related_name="reactions")
    rate_at_onset_ml_per_h = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    rate_at_onset_ml_per_kg_per_h = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    type = models.CharField(max_length=24, choices=Type.choices)
    type_other = models.CharField(max_length=120, blank=True)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    onset_at = models.DateTimeField()
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["onset_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} ({self.severity}) in session {self.session_id}"


class DispenseOverride(models.Model):
    """A pharmacist's decision to let a session be given a product although a clinical check
    refuses it (a contraindication), a vial take the session past its ordered dose, or a vial be
    given outside the session's treatment authorisation (check_code authorisation_*). A
    technician asks for it at the scan station; a pharmacist grants or declines it with a reason.
    It holds for this session and product (the dose kind for the session) and nothing else."""

    class Status(models.TextChoices):
        REQUESTED = "requested"
        GRANTED = "granted"
        DECLINED = "declined"

    DOSE_EXCESS = "dose_excess"

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT, related_name="overrides")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    check_code = models.CharField(max_length=40, help_text="The check overridden, e.g. iga_content or dose_excess")
    detail = models.TextField(help_text="What the check said when the override was asked for")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    request_note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    history = history_records()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # One live request or grant per session, product and check; a declined one may be asked
            # again. (The dose check has no product, and NULLs are distinct in a unique index: for it
            # the session's row lock, which override_request holds, is what keeps one.)
            models.UniqueConstraint(
                fields=["session", "product", "check_code"], condition=~Q(status="declined"),
                name="override_once_per_check",
            ),
        ]

    def __str__(self) -> str:
        return f"override of {self.check_code} for session {self.session_id} ({self.status})"


class Administration(models.Model):
    """What the nurse recorded of one session's infusion: when it started and ended (stored in UTC,
    shown in the site's time zone), each rate step, pause and stop (AdministrationStep), the
    premedication, and what became of each vial (VialFate)."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        PAUSED = "paused", "paused"
        FINISHED = "finished", "finished"
        STOPPED = "stopped", "stopped early"

    ENDED = (Status.FINISHED, Status.STOPPED)

    session = models.OneToOneField(InfusionSession, on_delete=models.PROTECT, related_name="administration")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    stop_reason = models.TextField(blank=True, help_text="Why the infusion was stopped before the dose ran")
    premedication = models.TextField(blank=True, help_text="As given, e.g. paracetamol 1 g PO 09:40")
    # The weight rates in mL/kg/h are worked out from: the patient's, when the infusion started.
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    history = history_records()

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"administration in session {self.session_id} ({self.status})"

    @property
    def ended(self) -> bool:
        return self.status in self.ENDED


class AdministrationStep(models.Model):
    """One thing the nurse did, at the time it was done: a start or a rate change (with the rate),
    a pause (with the reason), a resume (with the rate), a finish, or a stop (with the reason)."""

    class Kind(models.TextChoices):
        START = "start", "started"
        RATE = "rate", "rate changed"
        PAUSE = "pause", "paused"
        RESUME = "resume", "resumed"
        FINISH = "finish", "finished"
        STOP = "stop", "stopped early"

    RATED = (Kind.START, Kind.RATE, Kind.RESUME)

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT, related_name="steps")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    at = models.DateTimeField()
    rate_ml_per_h = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    rate_ml_per_kg_per_h = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    reason = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M} (administration {self.administration_id})"


class VialFate(models.Model):
    """What became of one vial dispensed to an administered session. It must agree with its
    dispense: a vial infused whole or in part was opened, so it is not back on a shelf; a vial
    not opened was (or goes) back to stock, never wasted as given."""

    class Fate(models.TextChoices):
        INFUSED = "infused", "infused whole"
        PARTIAL = "partial", "part infused, the rest wasted"
        NOT_OPENED = "not_opened", "not opened, returned"

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT, related_name="fates")
    dispense = models.OneToOneField(Dispense, on_delete=models.PROTECT, related_name="fate")
    fate = models.CharField(max_length=12, choices=Fate.choices)
    volume_left_ml = models.DecimalField(
        max_digits=7, decimal_places=1, null=True, blank=True, help_text="Left in a part-infused vial, wasted")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["dispense_id"]

    def __str__(self) -> str:
        return f"{self.get_fate_display()}: dispense {self.dispense_id}"


class HomeInfusion(models.Model):
    """An infusion the patient gave at home from a home supply, as the patient (or a carer)
    reported it later: the day, the number of infusion sites, and the vials used (by lot)."""

    session = models.ForeignKey(InfusionSession, on_delete=models.PROTECT, related_name="home_infusions")
    infused_on = models.DateField()
    sites = models.PositiveSmallIntegerField(help_text="Infusion sites used")
    reported_by_text = models.CharField(max_length=120, blank=True, help_text="Who reported it: the patient, a carer")
    notes = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["infused_on", "id"]

    def __str__(self) -> str:
        return f"home infusion on {self.infused_on} (session {self.session_id})"


class HomeInfusionVial(models.Model):
    """One vial of a home supply used in a reported home infusion: each vial is used once."""

    home_infusion = models.ForeignKey(HomeInfusion, on_delete=models.PROTECT, related_name="vials")
    dispense = models.OneToOneField(Dispense, on_delete=models.PROTECT, related_name="home_use")
    history = history_records()

    class Meta:
        ordering = ["dispense_id"]

    def __str__(self) -> str:
        return f"dispense {self.dispense_id} used at home ({self.home_infusion_id})"
