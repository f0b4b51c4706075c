"""Products (brand, manufacturer, GTIN presentations), lots, storage locations and vials."""

from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from core.history import history_records

from core.text import grams_text
from inventory import ndc as ndc_rules
from labels.gs1 import is_valid_gtin
from labels.codes import LOCATION_CODE_RULE, printable_location_code


def local_today() -> date:
    """Today's date at the site (settings.TIME_ZONE), which is what "expired" is measured against."""
    return timezone.localdate()


def validate_gtin14(value: str) -> None:
    if len(value) != 14 or not (value.isascii() and value.isdigit()):
        raise ValidationError("A GTIN-14 has exactly 14 digits.", code="invalid_gtin")
    if not is_valid_gtin(value):
        raise ValidationError("GTIN %(value)s has a wrong check digit.", code="invalid_gtin", params={"value": value})


def validate_unit_gtin(value: str) -> None:
    """A vial's GTIN is a unit-level GTIN: packaging indicator 0 (a GTIN-12 or GTIN-13 padded to
    14 digits). Indicators 1-8 are cases and packs of units (GS1 General Specifications 3.3.2):
    a case entered as a presentation would turn one case scan into one vial."""
    validate_gtin14(value)
    if value[0] != "0":
        raise ValidationError(
            "GTIN %(value)s has packaging indicator %(indicator)s: it is a case or pack, not a vial. "
            "Add it as a case of its unit presentation.",
            code="case_gtin", params={"value": value, "indicator": value[0]},
        )


def validate_case_gtin(value: str) -> None:
    validate_gtin14(value)
    if value[0] not in "12345678":
        raise ValidationError("GTIN %(value)s is not a case GTIN (packaging indicator 1-8).", code="not_case_gtin",
                              params={"value": value})


def validate_ndc(value: str) -> None:
    problem = ndc_rules.ndc_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_ndc")


class Manufacturer(models.Model):
    name = models.CharField(max_length=120, unique=True)
    history = history_records()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    class Route(models.TextChoices):
        IV = "IV", "intravenous"
        SC = "SC", "subcutaneous"
        IV_SC = "IV_SC", "intravenous or subcutaneous"

    brand = models.CharField(max_length=80, unique=True)
    manufacturer = models.ForeignKey(Manufacturer, on_delete=models.PROTECT, related_name="products")
    route = models.CharField(max_length=8, choices=Route.choices)
    concentration_pct = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    excipient = models.CharField(max_length=200, blank=True, help_text="Stabiliser / excipient, as labelled")
    iga_ug_per_ml = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    iga_note = models.CharField(max_length=200, blank=True)
    fridge_min_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("2"))
    fridge_max_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("8"))
    # Days a vial may spend at room temperature (<= 25 °C) within its expiry; null: the label allows none.
    room_temp_allowance_days = models.PositiveIntegerField(null=True, blank=True)
    may_return_to_fridge = models.BooleanField(
        default=False, help_text="Whether a vial that went to room temperature may go back to the fridge"
    )
    storage_notes = models.TextField(blank=True)
    source_notes = models.TextField(blank=True, help_text="Where the facts come from")
    history = history_records()

    class Meta:
        ordering = ["brand"]

    def __str__(self) -> str:
        return self.brand


class Presentation(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="presentations")
    gtin = models.CharField(max_length=14, unique=True, validators=[validate_unit_gtin])
    grams = models.DecimalField(max_digits=6, decimal_places=2)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    # As printed on the carton (10, 11 or 12 digits, hyphens kept), beside the GTIN: not derived
    # from it, since 12-digit NDCs no longer fit inside a GTIN.
    ndc = models.CharField(max_length=ndc_rules.MAX_LENGTH, blank=True, validators=[validate_ndc])
    history = history_records()

    class Meta:
        ordering = ["product__brand", "grams"]

    def __str__(self) -> str:
        return f"{self.product.brand} {grams_text(self.grams)} g"


class Lot(models.Model):
    class Status(models.TextChoices):
        RELEASED = "released"
        QUARANTINED = "quarantined"
        RECALLED = "recalled"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=20)
    expiry_date = models.DateField()
    # The carton printed the expiry as YYMM00 (day 00: the last day of the month). Kept so that a
    # label the pharmacy prints repeats the manufacturer's (17) exactly, not a date worked out from it.
    expiry_day_00 = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RELEASED)
    created_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["expiry_date", "lot_number"]
        constraints = [models.UniqueConstraint(fields=["product", "lot_number"], name="lot_unique_per_product")]
        indexes = [
            models.Index(fields=["lot_number"]),
            # The lots list, first page: ORDER BY expiry_date, lot_number, id LIMIT 50.
            models.Index(fields=["expiry_date", "lot_number", "id"], name="lot_list_order"),
        ]

    def __str__(self) -> str:
        return f"{self.product.brand} lot {self.lot_number}"

    def is_expired(self, today: date | None = None) -> bool:
        return self.expiry_date < (today or local_today())


def validate_location_code(value: str) -> None:
    """A location code is printed on its shelf label and scanned back: it must be printable, and
    have no space at either end (a scan is trimmed, so such a code could never be found)."""
    if not printable_location_code(value) or value != value.strip():
        raise ValidationError(
            "A location code is %(rule)s, with no space at either end.", code="invalid_location_code",
            params={"rule": LOCATION_CODE_RULE},
        )


class StorageLocation(models.Model):
    class Kind(models.TextChoices):
        REFRIGERATOR = "refrigerator"
        ROOM_TEMPERATURE = "room_temperature"
        QUARANTINE = "quarantine"

    name = models.CharField(max_length=80, unique=True)
    code = models.CharField(
        max_length=40, unique=True, validators=[validate_location_code], help_text="Printed on the shelf label and scanned"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    active = models.BooleanField(default=True)
    history = history_records()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Vial(models.Model):
    class Status(models.TextChoices):
        IN_STOCK = "in_stock"
        DISPENSED = "dispensed"
        WASTED = "wasted"
        RETURNED = "returned", "returned to supplier"
        QUARANTINED = "quarantined"

    presentation = models.ForeignKey(Presentation, on_delete=models.PROTECT, related_name="vials")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="vials")
    serial = models.CharField(max_length=20)
    # Unserialised stock gets an internal serial ("INT-…") so every vial can still be told apart.
    serial_is_internal = models.BooleanField(default=False)
    location = models.ForeignKey(
        StorageLocation, on_delete=models.PROTECT, related_name="vials", null=True, blank=True
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_STOCK)
    room_temp_since = models.DateTimeField(null=True, blank=True)
    beyond_use_date = models.DateField()
    received_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["beyond_use_date", "id"]
        constraints = [
            # GTIN + serial identifies one physical unit (DSCSA); a second receipt is a suspect product.
            models.UniqueConstraint(fields=["presentation", "serial"], name="vial_unique_gtin_serial"),
        ]
        indexes = [
            # Stock by status, first to expire first: ?status=in_stock, the expiring-stock report, the pick.
            models.Index(fields=["status", "beyond_use_date"]),
            # The vials list, first page: ORDER BY beyond_use_date, id LIMIT 50 over every vial.
            models.Index(fields=["beyond_use_date", "id"], name="vial_list_order"),
            # Vials on the shelf per lot, counted for each lot of the lots list (lot_queryset), and
            # a lot's vials by status (lot quarantine and release, recall disposal): lot_id = %s AND
            # status IN (...), answered from the index alone.
            models.Index(fields=["lot", "status"], name="vial_lot_status"),
        ]

    def __str__(self) -> str:
        return f"{self.presentation} · lot {self.lot.lot_number} · serial {self.serial}"

    @property
    def grams(self) -> Decimal:
        return self.presentation.grams

    def room_temp_deadline(self, product: Product | None = None) -> date | None:
        product = product or self.lot.product
        if self.room_temp_since is None or product.room_temp_allowance_days is None:
            return None
        started = timezone.localtime(self.room_temp_since).date()
        return started + timedelta(days=product.room_temp_allowance_days)

    def compute_beyond_use_date(self) -> date:
        """The earlier of the lot's expiry and the end of the room-temperature allowance."""
        deadline = self.room_temp_deadline()
        expiry = self.lot.expiry_date
        return min(expiry, deadline) if deadline else expiry

    def is_past_beyond_use(self, today: date | None = None) -> bool:
        return self.beyond_use_date < (today or local_today())


class CasePackage(models.Model):
    """A GTIN of a higher packaging level (a case or a pack of vials: packaging indicator 1-8)
    and what it holds, so a case's barcode is recognised as a case, never taken for one vial."""

    gtin = models.CharField(max_length=14, unique=True, validators=[validate_case_gtin])
    presentation = models.ForeignKey(Presentation, on_delete=models.PROTECT, related_name="cases")
    units = models.PositiveIntegerField(help_text="Vials (or cartons) in the case")
    history = history_records()

    class Meta:
        ordering = ["gtin"]

    def __str__(self) -> str:
        return f"case of {self.units} × {self.presentation} (GTIN {self.gtin})"


class SuspectScan(models.Model):
    """A scan naming a vial we hold by GTIN and serial but with another lot or expiry: the same
    product identifier on two lots is a suspect product (DSCSA), set aside for a pharmacist."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    vial = models.ForeignKey(Vial, on_delete=models.PROTECT, related_name="suspect_scans")
    raw = models.CharField(max_length=512)
    scanned_lot = models.CharField(max_length=20, blank=True)
    scanned_expiry = models.DateField(null=True, blank=True)
    reported_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    reported_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    history = history_records()

    class Meta:
        ordering = ["-reported_at", "-id"]

    def __str__(self) -> str:
        return f"suspect scan of vial {self.vial_id} (lot {self.scanned_lot})"
