"""Demo patients and infusions for `make run`: a few patients with several past infusions of real
catalog brands, one reviewed brand switch, and today's sessions for the scan station, one of
them with a brand switch still waiting for a pharmacist. Idempotent: a patient already there is
left alone, so a second run creates nothing.

Past infusions are entered as records of what was given (like an import of earlier charts),
with their real dates; today's work goes through the services as a technician's would.
"""

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from math import ceil

from django.db import transaction
from django.utils import timezone

from core.history import audited_create, audited_save
from inventory.models import Lot, Presentation, StorageLocation, Vial, local_today
from inventory.rules import dispense_refusal
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient
from traceability.services import product_differences, session_create, vial_dispense

REASON = "demo: past infusion"
HISTORIC_VIAL_GRAMS = Decimal("10")
# Vials of each historic lot still on the shelf, so a lot is both given and on hand (a recall
# of it then has patients to look back to and stock to quarantine).
HISTORIC_LEFT_ON_SHELF = 2


@dataclass
class Past:
    brand: str
    weeks_ago: int
    switch_reason: str = ""  # acknowledged brand switch from the previous infusion's brand
    reaction: tuple[str, str] | None = None  # (type, severity)


@dataclass
class Script:
    mrn: str
    name: str
    born: str
    weight_kg: str
    indication: str
    dose_g_per_kg: str
    past: list[Past]
    iga_deficient: bool = False
    profile: dict = field(default_factory=dict)  # the clinical profile's other conditions
    allergy_notes: str = ""
    today: bool = True
    today_switch_to: str = ""  # dispense one vial of this brand today: an open brand-switch flag


PATIENTS = [
    Script(
        "DEMO-1001", "Maria Lopez", "1957-03-14", "68.0", "primary_immunodeficiency", "0.4",
        [Past("Gammagard Liquid", 12), Past("Gammagard Liquid", 8), Past("Gammagard Liquid", 4)],
        today_switch_to="Octagam 10%",
    ),
    Script(
        "DEMO-1002", "James Carter", "1971-11-02", "82.0", "cidp", "0.5",
        [
            Past("Octagam 10%", 12),
            Past("Octagam 10%", 9),
            Past("Panzyga", 6, switch_reason="shortage"),
            Past("Panzyga", 3),
        ],
    ),
    Script(
        "DEMO-1003", "Aiko Tanaka", "1989-06-21", "54.0", "primary_immunodeficiency", "0.4",
        [Past("Gammagard Liquid", 8), Past("Gammagard Liquid", 4, reaction=("headache", "mild"))],
        iga_deficient=True,
        profile={"anti_iga_antibodies": True},
        allergy_notes="IgA deficient with anti-IgA antibodies: low-IgA products only.",
    ),
    Script(
        "DEMO-1004", "Samuel Okafor", "1964-01-30", "75.0", "myasthenia_gravis", "0.4",
        [Past("Panzyga", 8), Past("Panzyga", 4, reaction=("fever_chills", "moderate"))],
        profile={"thrombosis_risk": True},
    ),
    Script(
        "DEMO-1005", "Elena Petrova", "1948-09-09", "61.0", "itp", "0.4",
        [Past("Gamunex-C", 10), Past("Gamunex-C", 5)],
        profile={"renal_impairment": True},
        today=False,
    ),
]


def _presentation(brand: str) -> Presentation | None:
    return (
        Presentation.objects.filter(product__brand=brand, grams=HISTORIC_VIAL_GRAMS).select_related("product").first()
    )


def _at(day, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def _historic_lot(presentation: Presentation, *, actor) -> Lot:
    product = presentation.product
    number = f"H{product.pk:03d}{local_today():%y}01"
    lot = Lot.objects.filter(product=product, lot_number=number).first()
    if lot is None:
        lot = audited_create(
            Lot, actor=actor, reason=REASON, product=product, lot_number=number,
            expiry_date=local_today() + timedelta(days=330),
        )
        shelf = StorageLocation.objects.filter(kind=StorageLocation.Kind.REFRIGERATOR, active=True).order_by("code").first()
        if shelf is not None:
            for n in range(1, HISTORIC_LEFT_ON_SHELF + 1):
                audited_create(
                    Vial, actor=actor, reason="demo set-up", presentation=presentation, lot=lot,
                    serial=f"{number}-S{n:02d}", location=shelf, beyond_use_date=lot.expiry_date,
                )
    return lot


def _past_infusion(patient: Patient, script: Script, past: Past, previous: Past | None, *, actor) -> None:
    presentation = _presentation(past.brand)
    lot = _historic_lot(presentation, actor=actor)
    day = local_today() - timedelta(weeks=past.weeks_ago)
    dose = Decimal(script.dose_g_per_kg)
    ordered = (dose * patient.weight_kg).quantize(Decimal("0.01"))
    count = ceil(ordered / HISTORIC_VIAL_GRAMS)
    session = audited_create(
        InfusionSession, actor=actor, reason=REASON, patient=patient, scheduled_date=day, site="Infusion centre",
        indication=script.indication, dose_g_per_kg=dose, ordered_grams=ordered,
        status=InfusionSession.Status.COMPLETED, grams_dispensed=HISTORIC_VIAL_GRAMS * count,
        completed_at=_at(day, 15), completed_by=actor, created_at=_at(day - timedelta(days=7), 10),
    )
    dispenses = []
    for n in range(1, count + 1):
        vial = audited_create(
            Vial, actor=actor, reason=REASON, presentation=presentation, lot=lot,
            serial=f"{patient.mrn}-{past.weeks_ago:02d}-{n:02d}", location=None, status=Vial.Status.DISPENSED,
            beyond_use_date=lot.expiry_date, received_at=_at(day - timedelta(days=14), 9),
        )
        dispenses.append(
            audited_create(
                Dispense, actor=actor, reason=REASON, session=session, vial=vial, product=presentation.product,
                grams=presentation.grams, dispensed_by=actor, dispensed_at=_at(day, 9, 30 + n),
            )
        )
    if previous is not None and previous.brand != past.brand:
        old = _presentation(previous.brand).product
        flag = BrandSwitchFlag(
            session=session, kind=BrandSwitchFlag.Kind.SWITCH, from_product=old, to_product=presentation.product,
            differences=product_differences(old, presentation.product), raised_by=dispenses[0],
            raised_at=_at(day, 9, 31), status=BrandSwitchFlag.Status.ACKNOWLEDGED,
            reason=past.switch_reason or BrandSwitchFlag.Reason.FORMULARY, acknowledged_by=actor,
            acknowledged_at=_at(day, 11),
        )
        # audited_save, not audited_create: the flag has a field called `reason` of its own.
        audited_save(flag, actor=actor, reason=REASON)
    if past.reaction is not None:
        kind, severity = past.reaction
        audited_create(
            AdverseReaction, actor=actor, reason=REASON, session=session, type=kind, severity=severity,
            onset_at=_at(day, 12, 15), notes="Infusion rate halved; resolved within the hour.",
            recorded_by=actor, recorded_at=_at(day, 12, 40),
        )


def _shelf_vial(brand: str) -> Vial | None:
    candidates = (
        Vial.objects.filter(presentation__product__brand=brand, status=Vial.Status.IN_STOCK)
        .select_related("lot", "presentation__product")
        .order_by("beyond_use_date", "pk")
    )
    return next((v for v in candidates if dispense_refusal(v) is None), None)


@transaction.atomic
def load(*, actor) -> None:
    for script in PATIENTS:
        if Patient.objects.filter(mrn=script.mrn).exists():
            continue
        if any(_presentation(brand) is None for brand in {p.brand for p in script.past}):
            continue  # a brand of this story is not in the catalog: leave the patient out
        patient = audited_create(
            Patient, actor=actor, reason="demo set-up", mrn=script.mrn, name=script.name,
            date_of_birth=script.born, weight_kg=Decimal(script.weight_kg), iga_deficient=script.iga_deficient,
            allergy_notes=script.allergy_notes, **script.profile,
        )
        patient.refresh_from_db()
        previous = None
        for past in sorted(script.past, key=lambda p: -p.weeks_ago):
            _past_infusion(patient, script, past, previous, actor=actor)
            previous = past
        if not script.today:
            continue
        session = session_create(
            patient=patient, scheduled_date=local_today(), indication=script.indication,
            dose_g_per_kg=Decimal(script.dose_g_per_kg), site="Infusion centre", actor=actor,
        )
        if script.today_switch_to:
            vial = _shelf_vial(script.today_switch_to)
            if vial is not None:
                vial_dispense(session=session, vial=vial, actor=actor)
