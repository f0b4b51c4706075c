"""Demo stock for `make run`: locations and received vials of real catalog products. Idempotent."""

from datetime import timedelta

from django.db import transaction

from core.history import audited_save
from inventory.models import Presentation, StorageLocation, Vial, local_today
from inventory.services import receipt_create
from labels.gs1 import element_string

LOCATIONS = [
    ("Main pharmacy fridge A", "FRIDGE-A", StorageLocation.Kind.REFRIGERATOR),
    ("Main pharmacy fridge B", "FRIDGE-B", StorageLocation.Kind.REFRIGERATOR),
    ("Infusion centre room-temperature shelf", "RT-SHELF-1", StorageLocation.Kind.ROOM_TEMPERATURE),
    ("Quarantine cabinet", "QUAR-1", StorageLocation.Kind.QUARANTINE),
]

# (brand, grams, lot, months to expiry, serial prefix, how many, location)
STOCK = [
    ("Gammagard Liquid", "10", "LE12A045", 14, "GGL10A", 8, "FRIDGE-A"),
    ("Gammagard Liquid", "5", "LE12A046", 14, "GGL05A", 6, "FRIDGE-A"),
    ("Gammagard Liquid", "20", "LE12B101", 20, "GGL20B", 4, "FRIDGE-B"),
    ("Octagam 5%", "10", "M110A8431", 18, "OCT5-10", 6, "RT-SHELF-1"),
    ("Octagam 10%", "10", "M245B8541", 11, "OCT10", 6, "FRIDGE-B"),
    ("Octagam 10%", "20", "M245B8542", 11, "OCT20", 3, "FRIDGE-B"),
    ("Panzyga", "10", "N3210A", 16, "PZG10", 6, "FRIDGE-A"),
    ("Panzyga", "20", "N3211A", 16, "PZG20", 3, "FRIDGE-A"),
    ("Gamunex-C", "10", "B03J077152", 9, "GMX10", 6, "FRIDGE-B"),
    ("Gamunex-C", "5", "B01J100623", 1, "GMX05", 3, "FRIDGE-B"),
    ("Asceniv", "5", "239825", 10, "ASC05", 4, "FRIDGE-B"),
    ("Cutaquig", "4", "K200C8601", 12, "CTQ04", 5, "FRIDGE-A"),
]


def _presentation(brand: str, grams: str) -> Presentation | None:
    return Presentation.objects.filter(product__brand=brand, grams=grams).select_related("product").first()


@transaction.atomic
def load(*, actor) -> dict:
    created = {"locations": 0, "vials": 0}
    for name, code, kind in LOCATIONS:
        if not StorageLocation.objects.filter(code=code).exists():
            audited_save(StorageLocation(name=name, code=code, kind=kind), actor=actor, reason="demo set-up")
            created["locations"] += 1
    today = local_today()
    for brand, grams, lot, months, prefix, count, location_code in STOCK:
        presentation = _presentation(brand, grams)
        if presentation is None:
            continue
        expiry = today + timedelta(days=31 * months)
        scans = [
            element_string(gtin=presentation.gtin, expiry=expiry, lot=lot, serial=f"{prefix}{n:04d}")
            for n in range(1, count + 1)
        ]
        if Vial.objects.filter(presentation=presentation, serial__startswith=prefix).exists():
            continue
        location = StorageLocation.objects.get(code=location_code)
        created["vials"] += len(receipt_create(location=location, scans=scans, actor=actor))
    return created
