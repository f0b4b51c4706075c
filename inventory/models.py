"""Products (brand, manufacturer, GTIN presentations), lots, storage locations and vials."""

from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.text import grams_text
from labels.gs1 import is_valid_gtin


def local_today() -> date:
    """Today's date at the site (settings.TIME_ZONE), which is what "expired" is measured against."""
    return timezone.localdate()


def validate_gtin14(value: str) -> None:
    if len(value) != 14 or not (value.isascii() and value.isdigit()):
        raise ValidationError("A GTIN-14 has exactly 14 digits.", code="invalid_gtin")
    if not is_valid_gtin(value):
        raise ValidationError("GTIN %(value)s has a wrong check digit.", code="invalid_gtin", params={"value": value})


class Manufacturer(models.Model):
    name = models.CharField(max_length=120, unique=True)
    history = HistoricalRecords()

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
    history = HistoricalRecords()

    class Meta:
        ordering = ["brand"]

    def __str__(self) -> str:
        return self.brand


class Presentation(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="presentations")
    gtin = models.CharField(max_length=14, unique=True, validators=[validate_gtin14])
    grams = models.DecimalField(max_digits=6, decimal_places=2)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    ndc = models.CharField(max_length=13, blank=True)
    history = HistoricalRecords()

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
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RELEASED)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

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


class StorageLocation(models.Model):
    class Kind(models.TextChoices):
        REFRIGERATOR = "refrigerator"
        ROOM_TEMPERATURE = "room_temperature"
        QUARANTINE = "quarantine"

    name = models.CharField(max_length=80, unique=True)
    code = models.CharField(max_length=40, unique=True, help_text="Printed on the shelf label and scanned")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

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
    history = HistoricalRecords()

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
