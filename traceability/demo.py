"""Demo patients and infusions for `make run`: a few patients with several past infusions of real
catalog brands, one reviewed brand switch, and today's sessions for the scan station, one of
them with a brand switch still waiting for a pharmacist; today's infusion of another recorded by
the nurse (rate steps, a reaction at the rate running, a pause, each vial's fate); a home supply
of SCIG with two infusions the patient reported; and a lot of one brand whose reactions stand
out from its other lots (the lot signal). Every demo patient is treated under an authorisation;
Maria Lopez's ends in under two weeks with today's dose its last, and Hana Sato's first home
supply went out before hers began (the discrepancy queue). Idempotent: a patient already there is left alone, so
a second run creates nothing.

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
from traceability.infusion import (
    administration_finish,
    administration_pause,
    administration_rate,
    administration_resume,
    administration_start,
    home_infusion_report,
)
from traceability.authorisations import NOT_YET_VALID as AUTHORISATION_NOT_YET_VALID, authorisation_create
from traceability.models import (
    AdverseReaction,
    BrandSwitchFlag,
    Dispense,
    DispenseOverride,
    InfusionSession,
    Patient,
    TreatmentAuthorisation,
)
from traceability.services import (
    dispense_check,
    product_differences,
    reaction_record,
    session_create,
    vial_dispense,
)

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
    height_cm: str = ""
    sex: str = ""
    # The treatment authorisation: g/kg on this weight basis, a dose every interval_days, this many
    # doses, from six months ago until this many days from today.
    weight_basis: str = TreatmentAuthorisation.WeightBasis.ACTUAL
    interval_days: int = 21
    doses: int = 13
    days_left: int = 180


PATIENTS = [
    Script(
        "DEMO-1001", "Maria Lopez", "1957-03-14", "68.0", "primary_immunodeficiency", "0.4",
        [Past("Gammagard Liquid", 12), Past("Gammagard Liquid", 8), Past("Gammagard Liquid", 4)],
        today_switch_to="Octagam 10%", height_cm="160", sex="female", doses=4, days_left=12,
    ),
    Script(
        "DEMO-1002", "James Carter", "1971-11-02", "82.0", "cidp", "0.5",
        [
            Past("Octagam 10%", 12),
            Past("Octagam 10%", 9),
            Past("Panzyga", 6, switch_reason="shortage"),
            Past("Panzyga", 3),
        ],
        height_cm="178", sex="male", weight_basis=TreatmentAuthorisation.WeightBasis.ADJUSTED,
    ),
    Script(
        "DEMO-1003", "Aiko Tanaka", "1989-06-21", "54.0", "primary_immunodeficiency", "0.4",
        [Past("Gammagard Liquid", 8), Past("Gammagard Liquid", 4, reaction=("headache", "mild"))],
        iga_deficient=True,
        profile={"anti_iga_antibodies": True},
        allergy_notes="IgA deficient with anti-IgA antibodies: low-IgA products only.",
        height_cm="158", sex="female",
    ),
    Script(
        "DEMO-1004", "Samuel Okafor", "1964-01-30", "75.0", "myasthenia_gravis", "0.4",
        [Past("Panzyga", 8), Past("Panzyga", 4, reaction=("fever_chills", "moderate"))],
        profile={"thrombosis_risk": True}, height_cm="183", sex="male",
    ),
    Script(
        "DEMO-1005", "Elena Petrova", "1948-09-09", "61.0", "itp", "0.4",
        [Past("Gamunex-C", 10), Past("Gamunex-C", 5)],
        profile={"renal_impairment": True},
        today=False, height_cm="163", sex="female",
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


def _authorise(patient: Patient, script: Script, *, route: str = InfusionSession.Route.IV,
               dose_grams: Decimal | None = None, valid_from=None, actor) -> TreatmentAuthorisation:
    """The patient's authorisation, valid from six months ago (or the one the patient has)."""
    existing = TreatmentAuthorisation.objects.filter(patient=patient).order_by("-valid_until", "-pk").first()
    if existing is not None:
        return existing
    return authorisation_create(
        patient=patient, indication=script.indication, route=route, interval_days=script.interval_days,
        doses=script.doses, valid_from=valid_from or local_today() - timedelta(weeks=26),
        valid_until=local_today() + timedelta(days=script.days_left),
        dose_grams=dose_grams, dose_g_per_kg=None if dose_grams is not None else Decimal(script.dose_g_per_kg),
        weight_basis=script.weight_basis, prescriber="Dr Nadia Rahman (clinical immunology)",
        approver="Regional immunoglobulin assessment panel", payer_reference=f"BS-{patient.mrn}", actor=actor,
    )


def _past_infusion(patient: Patient, script: Script, past: Past, previous: Past | None, *, actor) -> None:
    presentation = _presentation(past.brand)
    lot = _historic_lot(presentation, actor=actor)
    day = local_today() - timedelta(weeks=past.weeks_ago)
    dose = Decimal(script.dose_g_per_kg)
    ordered = (dose * patient.weight_kg).quantize(Decimal("0.01"))
    count = ceil(ordered / HISTORIC_VIAL_GRAMS)
    authorisation = TreatmentAuthorisation.objects.filter(patient=patient).first()
    session = audited_create(
        InfusionSession, actor=actor, reason=REASON, patient=patient, scheduled_date=day, site="Infusion centre",
        authorisation=authorisation,
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
                authorisation=authorisation,
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


def _shelf_vials(brand: str, grams: str, n: int) -> list[Vial]:
    candidates = (
        Vial.objects.filter(presentation__product__brand=brand, presentation__grams=Decimal(grams),
                            status=Vial.Status.IN_STOCK)
        .select_related("lot", "presentation__product")
        .order_by("beyond_use_date", "serial", "pk")
    )
    return [v for v in candidates if dispense_refusal(v) is None][:n]


def _dispense_acknowledged(session: InfusionSession, vials: list[Vial], *, actor) -> list[Dispense]:
    """Dispense as the technician would, having read and acknowledged the cautions on the card."""
    given = []
    for vial in vials:
        cautions = {finding.check for finding in dispense_check(session=session, vial=vial).cautions}
        given.append(vial_dispense(session=session, vial=vial, actor=actor, acknowledged=cautions))
    return given


def _this_morning(hours: float) -> datetime:
    """`hours` before now, but not before the start of today (the demo may be loaded at 1 a.m.)."""
    now = timezone.now()
    midnight = timezone.make_aware(datetime.combine(local_today(), time(0, 1)))
    return max(now - timedelta(hours=hours), midnight)


def _todays_infusions(*, actor, nurse) -> None:
    """Elena Petrova's infusion today, recorded by the nurse: started at 0.5 mL/kg/h, stepped up,
    fever and chills at 1 mL/kg/h, paused, resumed at the lower rate, finished with both vials
    infused. (Maria Lopez's vial is dispensed too, with its brand switch: hers waits for the nurse.)"""
    script = next(p for p in PATIENTS if p.mrn == "DEMO-1005")
    patient = Patient.objects.filter(mrn=script.mrn).first()
    if patient is None or InfusionSession.objects.filter(patient=patient, scheduled_date=local_today()).exists():
        return
    vials = _shelf_vials("Gamunex-C", "10", 2)
    if len(vials) < 2:
        return
    session = session_create(patient=patient, scheduled_date=local_today(), indication=script.indication,
                             site="Infusion centre", authorisation=_authorise(patient, script, actor=actor),
                             actor=actor)
    dispenses = _dispense_acknowledged(session, vials, actor=actor)
    t0 = _this_morning(3)
    span = timezone.now() - t0
    for dispense in dispenses:
        dispense.dispensed_at = t0
        audited_save(dispense, actor=actor, reason="demo set-up: dispensed this morning")
    at = lambda share: t0 + span * share  # noqa: E731
    administration = administration_start(
        session=session, actor=nurse, rate_ml_per_kg_per_h=Decimal("0.5"), at=at(0.1),
        premedication="paracetamol 1 g PO and cetirizine 10 mg PO, 30 minutes before")
    administration_rate(administration=administration, actor=nurse, rate_ml_per_kg_per_h=Decimal("1"), at=at(0.25))
    reaction_record(session=session, type="fever_chills", severity="moderate", onset_at=at(0.4), actor=nurse,
                    notes="Temperature 38.3 °C, rigors. Infusion paused, paracetamol given; settled in 30 minutes.")
    administration_pause(administration=administration, actor=nurse, reason="fever and rigors", at=at(0.4))
    administration_resume(administration=administration, actor=nurse, rate_ml_per_kg_per_h=Decimal("0.5"),
                          at=at(0.55))
    administration_finish(administration=administration, actor=nurse, at=at(0.95),
                          fates=[{"dispense": d.pk, "fate": "infused"} for d in dispenses])


# SCIG at home: a supply of Cuvitru dispensed ten days ago, two infusions reported since.
HOME = Script("DEMO-1006", "Hana Sato", "1992-02-17", "58.0", "primary_immunodeficiency", "0.1", [])
HOME_LOT = "CUV-HOME-1"


def _home_supply(*, actor, nurse) -> None:
    presentation = Presentation.objects.filter(product__brand="Cuvitru", grams=Decimal("4")).select_related(
        "product").first()
    if presentation is None or Patient.objects.filter(mrn=HOME.mrn).exists():
        return
    patient = audited_create(Patient, actor=actor, reason="demo set-up", mrn=HOME.mrn, name=HOME.name,
                             date_of_birth=HOME.born, weight_kg=Decimal(HOME.weight_kg), height_cm=Decimal("165"),
                             sex="female")
    # A supply of 16 g of Cuvitru a week. The panel approved it from 7 days ago; the first supply
    # went out 10 days ago on a pharmacist's override, so it sits in the discrepancy queue.
    authorisation = _authorise(patient, HOME, route=InfusionSession.Route.SC, dose_grams=Decimal("16"),
                               valid_from=local_today() - timedelta(days=7), actor=actor)
    day = local_today() - timedelta(days=10)
    lot = audited_create(Lot, actor=actor, reason=REASON, product=presentation.product, lot_number=HOME_LOT,
                         expiry_date=local_today() + timedelta(days=300))
    session = audited_create(
        InfusionSession, actor=actor, reason=REASON, patient=patient, scheduled_date=day, site="Home",
        indication=HOME.indication, ordered_grams=Decimal("16"), route=InfusionSession.Route.SC,
        setting=InfusionSession.Setting.HOME, status=InfusionSession.Status.IN_PROGRESS,
        created_at=_at(day - timedelta(days=3), 10), authorisation=authorisation,
    )
    early = f"Authorisation {authorisation.payer_reference} starts on {authorisation.valid_from:%Y-%m-%d}."
    override = audited_create(
        DispenseOverride, actor=actor, reason=REASON, session=session, product=None,
        check_code=AUTHORISATION_NOT_YET_VALID, detail=early, status=DispenseOverride.Status.GRANTED,
        requested_by=actor, requested_at=_at(day, 10, 30), decided_by=actor, decided_at=_at(day, 10, 45),
        decision_reason="Approved by the panel by phone; starts on the paperwork's date. Reconcile with the payer.",
    )
    checks = [{"check": AUTHORISATION_NOT_YET_VALID, "kind": "authorisation", "detail": early,
               "source": "The patient's treatment authorisation", "override": override.pk}]
    for n in range(1, 5):
        vial = audited_create(
            Vial, actor=actor, reason=REASON, presentation=presentation, lot=lot, serial=f"{HOME_LOT}-{n:02d}",
            location=None, status=Vial.Status.DISPENSED, beyond_use_date=lot.expiry_date,
            received_at=_at(day - timedelta(days=7), 9),
        )
        audited_create(Dispense, actor=actor, reason=REASON, session=session, vial=vial, product=presentation.product,
                       grams=presentation.grams, dispensed_by=actor, dispensed_at=_at(day, 11, n),
                       authorisation=authorisation, outside_authorisation=True, checks=checks)
    for days_ago in (7, 3):
        home_infusion_report(session=session, infused_on=local_today() - timedelta(days=days_ago), sites=2,
                             vials=[{"lot": HOME_LOT, "count": 2}], reported_by_text="patient, by phone", actor=nurse)


# The lot signal: Flebogamma DIF 5% given from three lots; one (FB-SIG-26) made 4 of its 6
# patients react where the other two lots saw 1 reaction in 24 infusions (p ≈ 0.007).
SIGNAL_BRAND = "Flebogamma DIF 5%"
SIGNAL_LOTS = [("FB-SIG-26", 6, 4), ("FB-A-26", 12, 1), ("FB-B-26", 12, 0)]  # (lot, infusions, reactions)
SIGNAL_NAMES = ["Ana Silva", "Ben Okoro", "Chloe Martin", "David Cohen", "Eva Novak", "Farid Haddad",
                "Grace Lee", "Hugo Weber", "Ines Costa", "Jonas Berg"]


def _signal_lots(*, actor) -> None:
    presentation = Presentation.objects.filter(product__brand=SIGNAL_BRAND, grams=HISTORIC_VIAL_GRAMS).select_related(
        "product").first()
    if presentation is None or Lot.objects.filter(product=presentation.product, lot_number=SIGNAL_LOTS[0][0]).exists():
        return
    patients = [
        audited_create(Patient, actor=actor, reason="demo set-up", mrn=f"DEMO-2{n:03d}", name=name,
                       date_of_birth=f"19{60 + n}-0{1 + n % 9}-1{n % 9}", weight_kg=Decimal("70.0"))
        for n, name in enumerate(SIGNAL_NAMES, start=1)
    ]
    signal_script = Script("", "", "", "70.0", InfusionSession.Indication.CIDP, "0.3", [], interval_days=7,
                           doses=52, days_left=200)
    authorisations = {p.pk: _authorise(p, signal_script, dose_grams=Decimal("20"), actor=actor) for p in patients}
    turn = 0
    for number, infusions, reactions in SIGNAL_LOTS:
        lot = audited_create(Lot, actor=actor, reason=REASON, product=presentation.product, lot_number=number,
                             expiry_date=local_today() + timedelta(days=240))
        for i in range(infusions):
            patient = patients[turn % len(patients)]
            day = local_today() - timedelta(days=7 + 3 * turn)
            turn += 1
            session = audited_create(
                InfusionSession, actor=actor, reason=REASON, patient=patient, scheduled_date=day,
                site="Infusion centre", indication=InfusionSession.Indication.CIDP, ordered_grams=Decimal("20"),
                authorisation=authorisations[patient.pk],
                status=InfusionSession.Status.COMPLETED, grams_dispensed=Decimal("20"), completed_at=_at(day, 15),
                completed_by=actor, created_at=_at(day - timedelta(days=7), 10),
            )
            for n in (1, 2):
                vial = audited_create(
                    Vial, actor=actor, reason=REASON, presentation=presentation, lot=lot,
                    serial=f"{number}-{i + 1:02d}-{n}", location=None, status=Vial.Status.DISPENSED,
                    beyond_use_date=lot.expiry_date, received_at=_at(day - timedelta(days=14), 9),
                )
                audited_create(Dispense, actor=actor, reason=REASON, session=session, vial=vial,
                               product=presentation.product, grams=presentation.grams, dispensed_by=actor,
                               dispensed_at=_at(day, 9, 30 + n), authorisation=authorisations[patient.pk])
            if i < reactions:
                audited_create(
                    AdverseReaction, actor=actor, reason=REASON, session=session,
                    type=AdverseReaction.Type.ALLERGIC if number == SIGNAL_LOTS[0][0] else AdverseReaction.Type.HEADACHE,
                    severity=AdverseReaction.Severity.MODERATE, onset_at=_at(day, 11, 10),
                    notes="Urticaria and flushing about an hour in; infusion stopped, antihistamine given.",
                    recorded_by=actor, recorded_at=_at(day, 11, 40),
                )


@transaction.atomic
def load(*, actor, nurse=None) -> None:
    _load_patients(actor=actor)
    nurse = nurse or actor
    _todays_infusions(actor=actor, nurse=nurse)
    _home_supply(actor=actor, nurse=nurse)
    _signal_lots(actor=actor)


def _load_patients(*, actor) -> None:
    for script in PATIENTS:
        if Patient.objects.filter(mrn=script.mrn).exists():
            continue
        if any(_presentation(brand) is None for brand in {p.brand for p in script.past}):
            continue  # a brand of this story is not in the catalog: leave the patient out
        patient = audited_create(
            Patient, actor=actor, reason="demo set-up", mrn=script.mrn, name=script.name,
            date_of_birth=script.born, weight_kg=Decimal(script.weight_kg), iga_deficient=script.iga_deficient,
            allergy_notes=script.allergy_notes, height_cm=Decimal(script.height_cm) if script.height_cm else None,
            sex=script.sex, **script.profile,
        )
        patient.refresh_from_db()
        authorisation = _authorise(patient, script, actor=actor)
        previous = None
        for past in sorted(script.past, key=lambda p: -p.weeks_ago):
            _past_infusion(patient, script, past, previous, actor=actor)
            previous = past
        if not script.today:
            continue
        session = session_create(
            patient=patient, scheduled_date=local_today(), indication=script.indication,
            site="Infusion centre", authorisation=authorisation, actor=actor,
        )
        if script.today_switch_to:
            vial = _shelf_vial(script.today_switch_to)
            if vial is not None:
                vial_dispense(session=session, vial=vial, actor=actor)
