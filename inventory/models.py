"""Products (brand, manufacturer, GTIN presentations), lots, storage locations and vials."""

import calendar
from datetime import date, datetime, timedelta
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
    # The warmest temperature the label's room-temperature allowance covers (25 °C on every label
    # that has one). A cold-chain excursion warmer than this cannot be released against the allowance.
    room_temp_max_c = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("25"))
    # Shelf life from manufacture, months: the manufacture date of a lot whose carton did not carry
    # (11) is its expiry minus this.
    shelf_life_months = models.PositiveSmallIntegerField(null=True, blank=True)
    # Room-temperature storage allowed only within the first N months from manufacture (Gammagard
    # Liquid: 24); null: at any time within the shelf life.
    room_temp_within_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Room-temperature storage only within this many months from manufacture"
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
    # GS1 (11), when a carton of the lot carried it; otherwise unknown (see manufacture_date()).
    manufactured_on = models.DateField(null=True, blank=True)
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

    def manufacture_date(self, product: "Product | None" = None) -> date | None:
        """The production date (11) as scanned, else the expiry minus the product's shelf life."""
        if self.manufactured_on is not None:
            return self.manufactured_on
        product = product or self.product
        if product.shelf_life_months is None:
            return None
        return add_months(self.expiry_date, -product.shelf_life_months)


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, kept within the month (31 January + 1 month: 28/29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


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
    # The range readings must stay within; null: the kind's default (DEFAULT_RANGES).
    min_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True,
                                help_text="Lowest allowed temperature, °C (empty: the kind's default)")
    max_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True,
                                help_text="Highest allowed temperature, °C (empty: the kind's default)")
    # A fridge door opened for a delivery warms the air for minutes: readings out of range for no
    # longer than this are not an excursion.
    excursion_grace_minutes = models.PositiveIntegerField(default=30)
    history = history_records()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def temperature_range(self) -> tuple[Decimal | None, Decimal | None]:
        """(lowest, highest) allowed °C; None: no bound on that side."""
        low, high = DEFAULT_RANGES[self.kind]
        return (self.min_c if self.min_c is not None else low, self.max_c if self.max_c is not None else high)

    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.excursion_grace_minutes)


# Defaults by kind: a fridge 2–8 °C; a room-temperature shelf at most 25 °C; a quarantine shelf is
# a fridge shelf set apart, since what waits there for a decision must not be spoilt meanwhile.
DEFAULT_RANGES = {
    StorageLocation.Kind.REFRIGERATOR: (Decimal("2"), Decimal("8")),
    StorageLocation.Kind.ROOM_TEMPERATURE: (None, Decimal("25")),
    StorageLocation.Kind.QUARANTINE: (Decimal("2"), Decimal("8")),
}


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
    # The room-temperature clock: `room_temp_since` is when the running stretch began (null while
    # the clock is stopped), `room_temp_used` the time of the stretches already ended (and of
    # excursions released against the allowance). See inventory.clock.
    room_temp_since = models.DateTimeField(null=True, blank=True)
    room_temp_used = models.DurationField(default=timedelta(0))
    # The excursion whose disposition this vial awaits (quarantined until a pharmacist decides).
    cold_chain_hold = models.ForeignKey(
        "Excursion", on_delete=models.PROTECT, null=True, blank=True, related_name="held_vials"
    )
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
            # Whether a presentation has a vial on the shelf (the dose tolerance: the smallest vial
            # size in stock, read by each pick, dispense check and completion): EXISTS (… WHERE
            # presentation_id = %s AND status = 'in_stock'), one probe of the shelf's entries only.
            models.Index(fields=["presentation"], condition=models.Q(status="in_stock"), name="vial_in_stock_presentation"),
        ]

    def __str__(self) -> str:
        return f"{self.presentation} · lot {self.lot.lot_number} · serial {self.serial}"

    @property
    def grams(self) -> Decimal:
        return self.presentation.grams

    @property
    def has_been_at_room_temperature(self) -> bool:
        return self.room_temp_since is not None or self.room_temp_used > timedelta(0)

    def room_temp_deadline(self, product: Product | None = None) -> datetime | None:
        """When the room-temperature allowance runs out, while the clock runs; else None."""
        product = product or self.lot.product
        if self.room_temp_since is None or product.room_temp_allowance_days is None:
            return None
        return self.room_temp_since + (timedelta(days=product.room_temp_allowance_days) - self.room_temp_used)

    def room_temp_remaining(self, now: datetime, product: Product | None = None) -> timedelta | None:
        """What is left of the allowance at `now` (negative once used up); None: the label allows none."""
        product = product or self.lot.product
        if product.room_temp_allowance_days is None:
            return None
        used = self.room_temp_used + (now - self.room_temp_since if self.room_temp_since else timedelta(0))
        return timedelta(days=product.room_temp_allowance_days) - used

    def room_temp_window_end(self, product: Product | None = None) -> date | None:
        """The last day room-temperature storage is allowed where the label ties it to the manufacture date."""
        product = product or self.lot.product
        if product.room_temp_within_months is None:
            return None
        made = self.lot.manufacture_date(product)
        return add_months(made, product.room_temp_within_months) if made else None

    def compute_beyond_use_date(self) -> date:
        """The earliest of the lot's expiry, the end of the room-temperature allowance (while the
        clock runs) and, at room temperature, the end of the label's window from manufacture."""
        product = self.lot.product
        dates = [self.lot.expiry_date]
        deadline = self.room_temp_deadline(product)
        if deadline is not None:
            dates.append(timezone.localtime(deadline).date())
            window = self.room_temp_window_end(product)
            if window is not None:
                dates.append(window)
        return min(dates)

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


# --- the cold chain ------------------------------------------------------------------------------


class ReadingBatch(models.Model):
    """Readings recorded together: one API call, or one data logger's file."""

    class Source(models.TextChoices):
        API = "api"
        LOGGER_FILE = "logger_file", "data logger file"

    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="reading_batches")
    source = models.CharField(max_length=12, choices=Source.choices)
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the imported file")
    readings = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    history = history_records()

    class Meta:
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.readings} readings of {self.location.code}"


class TemperatureReading(models.Model):
    """One temperature of a storage location at one moment, in °C. Written once, never changed:
    who recorded it and when is on its batch."""

    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="readings")
    taken_at = models.DateTimeField()
    celsius = models.DecimalField(max_digits=5, decimal_places=2)
    batch = models.ForeignKey(ReadingBatch, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["location", "taken_at"]
        constraints = [
            # A logger file imported twice adds nothing; a second value for the same moment is refused.
            models.UniqueConstraint(fields=["location", "taken_at"], name="reading_unique_per_moment"),
        ]

    def __str__(self) -> str:
        return f"{self.location.code} {self.taken_at:%Y-%m-%d %H:%M} {self.celsius} °C"


class Excursion(models.Model):
    """Readings out of a location's range for longer than its grace period. Every vial that was in
    the location meanwhile is held (quarantined) until a pharmacist releases or wastes it."""

    class Status(models.TextChoices):
        OPEN = "open", "awaiting disposition"
        CLOSED = "closed", "disposed of"

    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="excursions")
    started_at = models.DateTimeField(help_text="First reading out of range")
    # First reading back in range; null: still out of range at the last reading.
    ended_at = models.DateTimeField(null=True, blank=True)
    lowest_c = models.DecimalField(max_digits=5, decimal_places=2)
    highest_c = models.DecimalField(max_digits=5, decimal_places=2)
    range_min_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    range_max_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    detected_at = models.DateTimeField(default=timezone.now)
    detected_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    history = history_records()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "started_at"], name="excursion_status_start"),
            models.Index(fields=["location", "started_at"], name="excursion_location_start"),
        ]

    def __str__(self) -> str:
        return f"excursion in {self.location.code} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def ongoing(self) -> bool:
        return self.ended_at is None

    def duration(self, now: datetime | None = None) -> timedelta:
        return (self.ended_at or now or timezone.now()) - self.started_at


class ExcursionVial(models.Model):
    """A vial that was in the location during an excursion, and what the pharmacist decided."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "awaiting disposition"
        RELEASED = "released"
        WASTED = "wasted"
        # Already dispensed, wasted or returned when the excursion was found: nothing to hold.
        NOT_HELD = "not_held", "no longer in stock when found"

    excursion = models.ForeignKey(Excursion, on_delete=models.PROTECT, related_name="vials")
    vial = models.ForeignKey(Vial, on_delete=models.PROTECT, related_name="excursions")
    exposed_from = models.DateTimeField()
    exposed_until = models.DateTimeField(null=True, blank=True, help_text="Null while the excursion goes on")
    status_when_found = models.CharField(max_length=12, choices=Vial.Status.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    # Released against the room-temperature allowance: how much of it the excursion used, and the
    # beyond-use date before and after.
    allowance_used = models.DurationField(null=True, blank=True)
    beyond_use_before = models.DateField(null=True, blank=True)
    beyond_use_after = models.DateField(null=True, blank=True)
    decided_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    history = history_records()

    class Meta:
        ordering = ["excursion", "vial"]
        constraints = [models.UniqueConstraint(fields=["excursion", "vial"], name="excursion_vial_once")]

    def __str__(self) -> str:
        return f"vial {self.vial_id} in excursion {self.excursion_id} ({self.outcome})"

    def exposure(self, now: datetime | None = None) -> timedelta:
        return (self.exposed_until or now or timezone.now()) - self.exposed_from
