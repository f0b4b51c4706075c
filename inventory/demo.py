"""Demo stock for `make run`: locations and received vials of real catalog products. Idempotent."""

from datetime import timedelta

from django.db import transaction

from core.history import audited_save
from inventory.models import Lot, Presentation, StorageLocation, Vial, local_today
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


# --- the cold chain: a ward fridge whose logger shows a warm afternoon three days ago ----------------

COLD_FRIDGE = ("Ward fridge C (logger EL-C)", "FRIDGE-C")
# (brand, grams, lot, months to expiry, serial prefix, how many): stock that stood in the fridge then.
COLD_STOCK = [
    ("Gamunex-C", "10", "B03J077190", 10, "GMXC10", 3),
    ("Privigen", "10", "P100C2231", 20, "PRVC10", 2),
    ("Asceniv", "5", "239840", 10, "ASCC05", 2),
]


def load_cold_chain(*, actor) -> int:
    """FRIDGE-C, its stock received ten days ago, and a logger's readings for the last four days
    with two and a half hours at 9-11 °C three days ago: an excursion awaiting a pharmacist."""
    from decimal import Decimal

    from django.utils import timezone

    from inventory.coldchain import ReadingIn, readings_record

    name, code = COLD_FRIDGE
    location = StorageLocation.objects.filter(code=code).first()
    if location is not None and location.excursions.exists():
        return 0
    if location is None:
        location = audited_save(StorageLocation(name=name, code=code, kind=StorageLocation.Kind.REFRIGERATOR),
                                actor=actor, reason="demo set-up")
    now = timezone.now().replace(second=0, microsecond=0)
    received = now - timedelta(days=10)
    today = local_today()
    for brand, grams, lot_number, months, prefix, count in COLD_STOCK:
        presentation = _presentation(brand, grams)
        if presentation is None or Vial.objects.filter(presentation=presentation, serial__startswith=prefix).exists():
            continue
        lot = Lot.objects.filter(product=presentation.product, lot_number=lot_number).first()
        if lot is None:
            lot = audited_save(Lot(product=presentation.product, lot_number=lot_number,
                                   expiry_date=today + timedelta(days=31 * months)), actor=actor, reason="demo set-up")
        for n in range(1, count + 1):
            vial = Vial(presentation=presentation, lot=lot, serial=f"{prefix}{n:04d}", location=location,
                        beyond_use_date=lot.expiry_date, received_at=received)
            # The vial's history says it has stood in FRIDGE-C since it was received.
            vial._history_date = received
            audited_save(vial, actor=actor, reason=f"received into {code}")
    start = now - timedelta(days=4)
    warm_from, warm_to = now - timedelta(days=3, hours=-14), now - timedelta(days=3, hours=-16, minutes=-30)
    readings, moment = [], start
    while moment <= now - timedelta(minutes=15):
        if warm_from <= moment < warm_to:
            celsius = Decimal("9.0") + Decimal((moment - warm_from).seconds // 900 % 3)
        else:
            celsius = Decimal("4.5") + Decimal((moment.hour % 4)) / 4
        readings.append(ReadingIn(taken_at=moment, celsius=celsius, where=f"reading {len(readings) + 1}"))
        moment += timedelta(minutes=15)
    return len(readings_record(location=location, readings=readings, actor=actor, limit=len(readings)).excursions)
