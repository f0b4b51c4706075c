"""The dispensing workflow: patients, infusion sessions, dispenses, brand-switch flags, reactions.

Every function is atomic, locks the rows it changes and leaves history rows naming who and why.
Lock order, everywhere in this module: session, then its treatment authorisation, then vial, then
dispense or flag. Inventory
services lock lot before vials; nothing here locks a lot, so the two cannot deadlock.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.compiled import CompiledQuery
from core.history import audited_create, audited_save, history_batch
from core.errors import InvalidInput
from core.text import grams_text
from inventory.exceptions import AlreadyDispensed
from inventory.models import Lot, Product, StorageLocation, Vial, local_today
from inventory.rules import ensure_dispensable
from inventory.services import lock_vial, place_vial, require_reason
from labels.gs1 import has_valid_check_digit as is_valid_gtin_like
from traceability.clinical import CAUTION, CONTRAINDICATION, ClinicalFinding, clinical_findings
from traceability.authorisations import (
    AUTHORISATION,
    AuthorisationFinding,
    NotAuthorised,
    authorisation_findings,
    authorised_grams,
    check_covers,
)
from traceability.infusion import rate_at
from traceability.exceptions import (
    LotOutOfUseInSession,
    CautionsToAcknowledge,
    Contraindicated,
    DoseDiscrepancy,
    DoseExceeded,
    OverrideStateConflict,
    PatientMismatch,
    DispenseClosed,
    DuplicateMrn,
    FlagAlreadyAcknowledged,
    InvalidDose,
    InvalidFlagReason,
    NoInfusion,
    NothingDispensed,
    OnsetBeforeStart,
    VialFateConflict,
    OpenBrandSwitchFlag,
    ReasonTextRequired,
    SessionHasLiveDispenses,
    SessionNotOpen,
    SessionStateConflict,
    WeightUnknown,
)
from traceability.models import (
    AdverseReaction,
    Administration,
    BrandSwitchFlag,
    Dispense,
    DispenseOverride,
    HomeInfusion,
    InfusionSession,
    Patient,
    TreatmentAuthorisation,
    VialFate,
)
from traceability.selectors import (
    GIVEN_STATUSES,
    DoseReconciliation,
    baseline_of,
    by_grams,
    dose_reconciliation,
    dose_tolerance,
    lots_out_of_use_in,
)

GRAMS = Decimal("0.01")
MAX_ORDERED_GRAMS = Decimal("99999.99")

# What a pharmacist compares when a patient changes brand: each is a known source of new reactions.
SWITCH_FIELDS = ("excipient", "iga_ug_per_ml", "concentration_pct", "route")


# --- patients ----------------------------------------------------------------------------------

CLINICAL_PROFILE = (
    "iga_deficient", "anti_iga_antibodies", "renal_impairment", "thrombosis_risk", "hyperprolinaemia",
    "hereditary_fructose_intolerance", "maltose_sensitive_glucose_monitoring",
)
PATIENT_FIELDS = ("mrn", "name", "date_of_birth", "weight_kg", "height_cm", "sex", *CLINICAL_PROFILE, "allergy_notes",
                  "gsrn")
SEXES = ("male", "female")


def _check_patient_fields(fields: dict) -> None:
    if "mrn" in fields and not (fields["mrn"] or "").strip():
        raise InvalidInput("A medical record number is required.", code="mrn_required")
    if "name" in fields and not (fields["name"] or "").strip():
        raise InvalidInput("A name is required.", code="name_required")
    weight = fields.get("weight_kg")
    if weight is not None and weight <= 0:
        raise InvalidInput("Weight must be more than 0 kg.", code="invalid_weight")
    height = fields.get("height_cm")
    if height is not None and not (Decimal("30") <= height <= Decimal("250")):
        raise InvalidInput(f"A height of {height} cm is not possible.", code="invalid_height")
    if fields.get("sex") not in (None, "", *SEXES):
        raise InvalidInput(f"Sex is one of {', '.join(SEXES)} (or left blank).", code="invalid_sex")
    gsrn = fields.get("gsrn")
    if gsrn and not (len(gsrn) == 18 and gsrn.isascii() and gsrn.isdigit() and is_valid_gtin_like(gsrn)):
        raise InvalidInput(f"{gsrn!r} is not a GSRN (18 digits with a GS1 check digit).", code="invalid_gsrn")
    born = fields.get("date_of_birth")
    if born is not None and not (EARLIEST_BIRTH <= born <= local_today()):
        raise InvalidInput(
            f"A date of birth of {born:%Y-%m-%d} is not possible.", code="invalid_date_of_birth"
        )


# Orders are for the near future; back-entry of past infusions reaches a few years at most. A date
# outside these bounds is a typing slip (9999, 0026) that would sort the patient's history wrongly.
EARLIEST_BIRTH = date(1900, 1, 1)
SCHEDULE_YEARS_BACK, SCHEDULE_YEARS_AHEAD = 5, 2


def _check_scheduled_date(scheduled_date: date) -> None:
    today = local_today()
    earliest = today - timedelta(days=365 * SCHEDULE_YEARS_BACK)
    latest = today + timedelta(days=365 * SCHEDULE_YEARS_AHEAD)
    if not (earliest <= scheduled_date <= latest):
        raise InvalidInput(
            f"A session scheduled on {scheduled_date:%Y-%m-%d} is out of range "
            f"({earliest:%Y-%m-%d} to {latest:%Y-%m-%d}).",
            code="invalid_scheduled_date",
        )


def _save_patient(patient: Patient, *, actor, reason: str) -> Patient:
    # The unique index is the last word when two pharmacists register the same MRN at once.
    try:
        with transaction.atomic():
            return audited_save(patient, actor=actor, reason=reason)
    except IntegrityError:
        raise DuplicateMrn(f"A patient with MRN {patient.mrn} already exists.", extra={"mrn": patient.mrn}) from None


@transaction.atomic
def patient_create(
    *,
    mrn: str,
    name: str,
    date_of_birth: date,
    weight_kg: Decimal | None = None,
    height_cm: Decimal | None = None,
    sex: str = "",
    allergy_notes: str = "",
    gsrn: str = "",
    actor,
    **profile: bool,
) -> Patient:
    unknown = set(profile) - set(CLINICAL_PROFILE)
    if unknown:
        raise InvalidInput(f"Unknown patient field(s): {', '.join(sorted(unknown))}.")
    fields = dict(
        mrn=mrn.strip(),
        name=name.strip(),
        date_of_birth=date_of_birth,
        weight_kg=weight_kg,
        height_cm=height_cm,
        sex=sex or "",
        allergy_notes=allergy_notes,
        gsrn=(gsrn or "").strip(),
        **profile,
    )
    _check_patient_fields(fields)
    if Patient.objects.filter(mrn=fields["mrn"]).exists():
        raise DuplicateMrn(f"A patient with MRN {fields['mrn']} already exists.", extra={"mrn": fields["mrn"]})
    return _save_patient(Patient(**fields), actor=actor, reason="patient registered")


@transaction.atomic
def patient_update(*, patient: Patient, actor, **changes) -> Patient:
    """Change any of PATIENT_FIELDS. The weight of sessions already ordered is not touched: their
    ordered dose was fixed when they were ordered."""
    unknown = set(changes) - set(PATIENT_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown patient field(s): {', '.join(sorted(unknown))}.")
    if "mrn" in changes:
        changes["mrn"] = (changes["mrn"] or "").strip()
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
    if "gsrn" in changes:
        changes["gsrn"] = (changes["gsrn"] or "").strip()
    _check_patient_fields(changes)
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    changed = [name for name, value in changes.items() if getattr(patient, name) != value]
    if not changed:
        return patient
    if "mrn" in changed and Patient.objects.filter(mrn=changes["mrn"]).exclude(pk=patient.pk).exists():
        raise DuplicateMrn(f"A patient with MRN {changes['mrn']} already exists.", extra={"mrn": changes["mrn"]})
    for name in changed:
        setattr(patient, name, changes[name])
    return _save_patient(patient, actor=actor, reason=f"patient updated: {', '.join(changed)}")


# --- sessions ----------------------------------------------------------------------------------


def _lock_session(session: InfusionSession) -> InfusionSession:
    # of=("self",): lock the session row only, not the patient row joined for messages.
    return InfusionSession.objects.select_for_update(of=("self",)).select_related(
        "patient", "authorisation__product").get(pk=session.pk)


def ensure_session_open(session: InfusionSession) -> None:
    if not session.is_open:
        raise SessionNotOpen(
            f"Session {session.pk} is {session.get_status_display()}: it takes no more vials.",
            extra={"session": session.pk, "status": session.status},
        )


@transaction.atomic
def session_create(
    *,
    patient: Patient,
    scheduled_date: date,
    indication: str,
    ordered_grams: Decimal | None = None,
    dose_g_per_kg: Decimal | None = None,
    site: str = "",
    indication_other: str = "",
    notes: str = "",
    route: str = InfusionSession.Route.IV,
    setting: str = InfusionSession.Setting.CLINIC,
    authorisation: TreatmentAuthorisation | None = None,
    actor,
) -> InfusionSession:
    """Order an infusion (`setting="home"`: a supply the patient infuses at home). The dose is
    given in grams, or in g/kg and then multiplied by the patient's weight now: a later change of
    weight does not change an order already made.

    Under an `authorisation` (the patient's, for this indication and route, current on the day),
    the dose may be left out: the authorised dose is ordered; a dose above it is refused. An order
    without one is taken (an urgent order whose authorisation follows: session_authorise), and
    its dispenses are refused or queued as AUTHORISATION_REQUIRED says."""
    if authorisation is not None and ordered_grams is None and dose_g_per_kg is None:
        ordered_grams = authorised_grams(authorisation, Patient.objects.get(pk=patient.pk))[0]
    if (ordered_grams is None) == (dose_g_per_kg is None):
        raise InvalidDose("Give the dose either in grams or in g/kg (one of the two).")
    if indication not in InfusionSession.Indication.values:
        raise InvalidInput(f"Unknown indication {indication!r}.", code="invalid_indication")
    if route not in InfusionSession.Route.values:
        raise InvalidInput(f"Unknown route {route!r}; use IV or SC.", code="invalid_route")
    if setting not in InfusionSession.Setting.values:
        raise InvalidInput(f"Unknown setting {setting!r}; use clinic or home.", code="invalid_setting")
    _check_scheduled_date(scheduled_date)
    if indication == InfusionSession.Indication.OTHER and not indication_other.strip():
        raise InvalidInput("Name the indication when it is 'other'.", code="indication_other_required")
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if dose_g_per_kg is not None:
        if dose_g_per_kg <= 0:
            raise InvalidDose("The dose in g/kg must be more than 0.")
        if patient.weight_kg is None:
            raise WeightUnknown(
                f"{patient} has no recorded weight: record it first, or order the dose in grams.",
                extra={"patient": patient.pk},
            )
        ordered_grams = (dose_g_per_kg * patient.weight_kg).quantize(GRAMS, rounding=ROUND_HALF_UP)
    if ordered_grams <= 0 or ordered_grams > MAX_ORDERED_GRAMS:
        raise InvalidDose(f"An ordered dose of {ordered_grams} g is not possible.")
    if authorisation is not None:
        check_covers(authorisation=authorisation, patient=patient, indication=indication, route=route,
                     scheduled_date=scheduled_date, ordered_grams=ordered_grams)
    return audited_create(
        InfusionSession,
        actor=actor,
        reason=f"infusion ordered for {patient.mrn}",
        patient=patient,
        scheduled_date=scheduled_date,
        site=site,
        indication=indication,
        indication_other=indication_other.strip(),
        dose_g_per_kg=dose_g_per_kg,
        ordered_grams=ordered_grams,
        notes=notes,
        route=route,
        setting=setting,
        authorisation=authorisation,
    )


@transaction.atomic
def session_authorise(*, session: InfusionSession, authorisation: TreatmentAuthorisation, actor) -> InfusionSession:
    """Put an open session under an authorisation (an urgent order whose approval came after it,
    or a renewal). The authorisation must cover the session as an order under it would."""
    session = _lock_session(session)
    ensure_session_open(session)
    authorisation = TreatmentAuthorisation.objects.get(pk=authorisation.pk)
    check_covers(authorisation=authorisation, patient=session.patient, indication=session.indication,
                 route=session.route, scheduled_date=session.scheduled_date, ordered_grams=session.ordered_grams)
    if session.authorisation_id == authorisation.pk:
        return session
    session.authorisation = authorisation
    ref = authorisation.payer_reference or f"#{authorisation.pk}"
    return audited_save(session, actor=actor, reason=f"given under authorisation {ref}")


@transaction.atomic
def session_start(*, session: InfusionSession, actor) -> InfusionSession:
    session = _lock_session(session)
    if session.status != InfusionSession.Status.SCHEDULED:
        raise SessionStateConflict(
            f"Session {session.pk} is {session.get_status_display()}; only a scheduled session can start.",
            extra={"session": session.pk, "status": session.status},
        )
    session.status = InfusionSession.Status.IN_PROGRESS
    return audited_save(session, actor=actor, reason="infusion started")


@transaction.atomic
def session_cancel(*, session: InfusionSession, reason: str, actor) -> InfusionSession:
    reason = require_reason(reason)
    session = _lock_session(session)
    ensure_session_open(session)
    live = list(session.dispenses.filter(status=Dispense.Status.DISPENSED).values_list("pk", flat=True))
    if live:
        raise SessionHasLiveDispenses(
            f"Session {session.pk} has {len(live)} vial(s) dispensed to it: return them to stock or waste them first.",
            extra={"dispenses": live},
        )
    given = list(session.dispenses.filter(status=Dispense.Status.WASTED).values_list("pk", flat=True))
    if given:
        # A vial opened for the patient was given, even in part: the infusion happened, its
        # reactions and brand must stay on the record, so the session is completed, not cancelled.
        raise SessionStateConflict(
            f"Session {session.pk} gave the patient {len(given)} opened vial(s): complete it (with the reason "
            "the dose differs) instead of cancelling it.",
            code="session_has_given_vials", extra={"dispenses": given},
        )
    session.status = InfusionSession.Status.CANCELLED
    return audited_save(session, actor=actor, reason=f"cancelled: {reason}")


@transaction.atomic
def session_complete(*, session: InfusionSession, actor, discrepancy_reason: str = "") -> InfusionSession:
    """Close the infusion, recording the grams given against the grams ordered. A brand switch
    must have been reviewed by a pharmacist first, and a dose that differs from the order by more
    than the tolerance (dose_tolerance) needs its reason."""
    session = _lock_session(session)
    if session.status == InfusionSession.Status.SCHEDULED:
        raise NothingDispensed(f"Session {session.pk} has not started: no vial was dispensed to it.")
    ensure_session_open(session)
    running = Administration.objects.filter(session=session).exclude(status__in=Administration.ENDED).first()
    if running is not None:
        raise SessionStateConflict(
            f"The infusion of session {session.pk} is {running.get_status_display()}: the nurse finishes or stops it first.",
            code="infusion_running", extra={"administration": running.pk},
        )
    open_flags = list(
        session.flags.filter(status=BrandSwitchFlag.Status.OPEN, kind__in=BrandSwitchFlag.BLOCKING_KINDS)
        .select_related("from_product", "to_product")
        .order_by("pk")
    )
    if open_flags:
        switches = ", ".join(f"{f.from_product.brand} → {f.to_product.brand}" for f in open_flags)
        raise OpenBrandSwitchFlag(
            f"A pharmacist must acknowledge the brand switch ({switches}) before the session is completed.",
            extra={"flags": [f.pk for f in open_flags]},
        )
    undecided = lots_out_of_use_in(session)
    if undecided:
        listing = ", ".join(f"{d.vial.serial} (lot {d.vial.lot.lot_number}, {d.vial.lot.status})" for d in undecided)
        raise LotOutOfUseInSession(
            f"Session {session.pk} holds vial(s) whose lot was taken out of use after they were dispensed: "
            f"{listing}. Return or waste each, or a pharmacist records that it was given.",
            extra={"dispenses": [d.pk for d in undecided]},
        )
    dose = dose_reconciliation(session)
    if not dose.given:
        raise NothingDispensed(f"Session {session.pk} has no vial dispensed to it: cancel it instead.")
    discrepancy_reason = (discrepancy_reason or "").strip()
    if not dose.within_tolerance and not discrepancy_reason:
        raise DoseDiscrepancy(
            f"Session {session.pk}: {dose.describe()}. Say why to complete it.",
            extra={"ordered_grams": grams_text(dose.ordered), "given_grams": grams_text(dose.given),
                   "returned_grams": grams_text(dose.returned), "tolerance_grams": grams_text(dose.tolerance)},
        )
    session.grams_dispensed = dose.given.quantize(GRAMS)
    session.status = InfusionSession.Status.COMPLETED
    session.completed_at = timezone.now()
    session.completed_by = actor
    if not dose.within_tolerance:
        session.discrepancy_reason = discrepancy_reason
    why = f"; dose differs: {discrepancy_reason}" if not dose.within_tolerance else ""
    return audited_save(
        session,
        actor=actor,
        reason=f"completed: {grams_text(dose.given)} g dispensed of {grams_text(session.ordered_grams)} g ordered{why}",
    )


# --- dispensing --------------------------------------------------------------------------------


def _override_product(finding: ClinicalFinding, product: Product) -> Product | None:
    """The product an override of this finding is kept for: the product for a contraindication or
    a brand outside the authorisation, none for a check of the whole session."""
    if isinstance(finding, AuthorisationFinding) and not finding.per_product:
        return None
    return product


def _granted(session: InfusionSession, product: Product | None, check: str) -> DispenseOverride | None:
    return DispenseOverride.objects.filter(
        session=session, product=product, check_code=check, status=DispenseOverride.Status.GRANTED
    ).first()


_UNREAD = object()


@dataclass
class DispenseCheck:
    """What giving this vial to this session would meet, before anything is changed: the
    contraindications (each with the override that lets it pass, if any), the cautions to
    acknowledge, and the dose after it."""

    contraindications: list[tuple[ClinicalFinding, DispenseOverride | None]]
    cautions: list[ClinicalFinding]
    dose_after: DoseReconciliation
    # The checks of the session's treatment authorisation that refuse, each with its override.
    authorisation: list[tuple[AuthorisationFinding, DispenseOverride | None]]
    session: InfusionSession
    # The session's dispenses before this one (all statuses), oldest first, with their products.
    dispenses: list[Dispense]
    _dose_override: object = _UNREAD

    @property
    def dose_override(self) -> DispenseOverride | None:
        """The pharmacist's override of the dose check, read when first asked (a dispense within
        its order never asks)."""
        if self._dose_override is _UNREAD:
            self._dose_override = _granted(self.session, None, DispenseOverride.DOSE_EXCESS)
        return self._dose_override

    @property
    def exceeds_dose(self) -> bool:
        return self.dose_after.exceeds

    @property
    def blocking(self) -> list[ClinicalFinding]:
        return [finding for finding, granted in self.contraindications if granted is None]

    @property
    def unauthorised(self) -> list[AuthorisationFinding]:
        return [finding for finding, granted in self.authorisation if granted is None]


_session_dispenses = CompiledQuery(
    lambda pk: Dispense.objects.filter(session_id=pk).select_related("product__manufacturer").order_by("dispensed_at", "pk"),
    int,
)


def dispense_check(*, session: InfusionSession, vial: Vial) -> DispenseCheck:
    """The clinical checks and the dose check of one vial for one session (no locks, no writes):
    the scan station shows them on the card before F6, and vial_dispense enforces them."""
    product = vial.presentation.product
    findings = clinical_findings(session=session, product=product)
    # One read of what the session was given so far serves the dose, the authorisation's vial sizes
    # and, once dispensed, the brand-switch flags.
    dispenses = _session_dispenses(session.pk)
    given = sum((d.grams for d in dispenses if d.status in GIVEN_STATUSES), Decimal("0"))
    returned = sum((d.grams for d in dispenses if d.status == Dispense.Status.RETURNED_TO_STOCK), Decimal("0"))
    after = DoseReconciliation(
        ordered=session.ordered_grams, given=given + vial.presentation.grams, returned=returned,
        tolerance=lambda: dose_tolerance([product.pk]),
    )
    unauthorised = authorisation_findings(
        session=session, product=product, grams_after=after.given,
        given_product_ids={d.product_id for d in dispenses if d.status in GIVEN_STATUSES},
    )
    return DispenseCheck(
        contraindications=[(f, _granted(session, product, f.check)) for f in findings if f.kind == CONTRAINDICATION],
        cautions=[f for f in findings if f.kind == CAUTION],
        dose_after=after,
        authorisation=[(f, _granted(session, _override_product(f, product), f.check)) for f in unauthorised],
        session=session,
        dispenses=dispenses,
    )


def _enforce(check: DispenseCheck, *, session: InfusionSession, vial: Vial, acknowledged: set[str]) -> list[dict]:
    """Refuse what the checks refuse; return what the dispense record keeps of them."""
    product = vial.presentation.product
    if check.blocking:
        first = check.blocking[0]
        raise Contraindicated(
            f"{first.message} A pharmacist must decide before {product.brand} is given in session {session.pk}.",
            code=first.code,
            extra={"checks": [f.as_dict() for f in check.blocking], "session": session.pk, "product": product.pk},
        )
    if check.unauthorised:
        first = check.unauthorised[0]
        raise NotAuthorised(
            f"{first.message} Put the session under the patient's current authorisation, or ask a pharmacist to decide.",
            code=first.code,
            extra={"checks": [f.as_dict() for f in check.unauthorised], "session": session.pk, "product": product.pk},
        )
    if check.exceeds_dose and check.dose_override is None:
        after = check.dose_after
        raise DoseExceeded(
            f"Vial {vial.serial} ({grams_text(vial.presentation.grams)} g) would bring session {session.pk} to "
            f"{grams_text(after.given)} g of {grams_text(after.ordered)} g ordered: more than the smallest vial "
            f"({grams_text(after.tolerance)} g) over. Leave it on the shelf, or ask a pharmacist to allow it.",
            extra={"ordered_grams": grams_text(after.ordered), "grams_after": grams_text(after.given),
                   "tolerance_grams": grams_text(after.tolerance), "session": session.pk},
        )
    missing = [f for f in check.cautions if f.check not in acknowledged]
    if missing:
        raise CautionsToAcknowledge(
            " ".join(f.message for f in missing) + " Acknowledge to dispense.",
            extra={"cautions": [f.as_dict() for f in missing], "session": session.pk},
        )
    kept = [{**f.as_dict(), "override": granted.pk} for f, granted in check.contraindications]
    kept += [{**f.as_dict(), "kind": AUTHORISATION, "override": granted.pk} for f, granted in check.authorisation]
    kept += [{**f.as_dict(), "acknowledged": True} for f in check.cautions]
    if check.exceeds_dose:
        kept.append({"check": DispenseOverride.DOSE_EXCESS, "kind": CONTRAINDICATION,
                     "detail": check.dose_after.describe(), "override": check.dose_override.pk})
    return kept


@transaction.atomic
def vial_dispense(
    *,
    session: InfusionSession,
    vial: Vial,
    actor,
    acknowledged: set[str] | list[str] = (),
    patient_mrn: str | None = None,
) -> Dispense:
    """Give one vial to an open session. The flags this dispense raised are `dispense.flags`.

    Refused, changing nothing, when: the patient identified at the bench (`patient_mrn`, from the
    wristband or the card the technician confirmed) is not the session's; the vial may not be used
    on the infusion day (the later of today and the scheduled date); a contraindication has no
    pharmacist's override; the vial would overshoot the ordered dose by more than the smallest
    vial without an override; a caution is not in `acknowledged`.

    Two scans of the same vial at once: both wait on the vial's row lock; the second sees it
    dispensed and is refused with `already_dispensed`. The conditional unique constraint on
    Dispense is the backstop should a check ever be bypassed.

    The history rows it writes (vial, dispense, session when it starts, flags) are sealed together
    at the end, in the same transaction.
    """
    with history_batch():
        return _vial_dispense(session=session, vial=vial, actor=actor, acknowledged=acknowledged,
                              patient_mrn=patient_mrn)


# Every dispense locks them: compiled once (core.compiled).
_locked_session = CompiledQuery(
    lambda pk: InfusionSession.objects.select_for_update(of=("self",)).select_related("patient").filter(pk=pk).order_by(),
    int,
)
_locked_authorisation = CompiledQuery(
    lambda pk: TreatmentAuthorisation.objects.select_for_update(of=("self",)).select_related("product")
    .filter(pk=pk).order_by(),
    int,
)


def _vial_dispense(*, session, vial, actor, acknowledged, patient_mrn) -> Dispense:
    # The session locked with its patient; its authorisation is locked and read next, on its own.
    session = _locked_session.get(session.pk)
    ensure_session_open(session)
    if patient_mrn is not None and patient_mrn.strip() != session.patient.mrn:
        raise PatientMismatch(
            f"The patient identified ({patient_mrn.strip() or 'none'}) is not session {session.pk}'s patient "
            f"({session.patient.name}, {session.patient.mrn}). Check the wristband and the session.",
            extra={"session": session.pk},
        )
    if session.authorisation_id is not None:
        # Two sessions under one authorisation dispensed at once: the second waits here, then counts
        # the first's dose (and sees a revocation made meanwhile).
        session.authorisation = _locked_authorisation.get(session.authorisation_id)
    vial = lock_vial(vial.pk)
    ensure_dispensable(vial, on=session.scheduled_date)
    product = vial.presentation.product
    check = dispense_check(session=session, vial=vial)
    checks = _enforce(check, session=session, vial=vial, acknowledged=set(acknowledged))
    # Outside its authorisation: a pharmacist overrode one of its checks, or the session has none
    # (where the site does not require one). Either way the dispense joins the discrepancy queue.
    outside = bool(check.authorisation) or session.authorisation_id is None
    reason = f"dispense to session {session.pk}"

    vial.status = Vial.Status.DISPENSED
    vial.location = None
    audited_save(vial, actor=actor, reason=reason)
    try:
        with transaction.atomic():
            dispense = audited_create(
                Dispense,
                actor=actor,
                reason=reason,
                session=session,
                vial=vial,
                product=product,
                grams=vial.presentation.grams,
                dispensed_by=actor,
                checks=checks,
                authorisation_id=session.authorisation_id,
                outside_authorisation=outside,
            )
    except IntegrityError:
        raise AlreadyDispensed(f"Vial {vial.serial} (lot {vial.lot.lot_number}) was already dispensed.") from None
    # Just made: no fate at the bedside, no home infusion (the answer shows both, unread).
    for name in ("fate", "home_use"):
        getattr(Dispense, name).related.set_cached_value(dispense, None)

    if session.status == InfusionSession.Status.SCHEDULED:
        session.status = InfusionSession.Status.IN_PROGRESS
        audited_save(session, actor=actor, reason=f"infusion started: {reason}")
    given = [d for d in check.dispenses if d.status in GIVEN_STATUSES] + [dispense]
    given.sort(key=lambda d: (d.dispensed_at, d.pk))
    dispense.flags_raised = _raise_brand_switch_flags(session=session, dispense=dispense, actor=actor, given=given)
    return dispense


def product_differences(old: Product, new: Product) -> list[dict]:
    """What differs between two brands, as [{field, from, to}], for the fields in SWITCH_FIELDS."""

    def shown(value):
        return grams_text(value) if isinstance(value, Decimal) else value

    return [
        {"field": name, "from": shown(getattr(old, name)), "to": shown(getattr(new, name))}
        for name in SWITCH_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]


FlagKey = tuple[str, int, int]  # (kind, from product id, to product id)
RETURNING_AFTER_DAYS = 56


def _wanted_flags(session: InfusionSession, given: list[Dispense] | None = None) -> dict[FlagKey, tuple[Product, Product, list[dict]]]:
    """The flags what the session has given calls for now: a `switch` for each brand given that
    differs from the patient's last infusion (the last other session in which something was
    given, finished or not), a `route` flag for a brand given by another route than then, and a
    `mixed` flag for each brand given beside the first one of the session.

    `given`: the session's given dispenses with their products, in the order they were dispensed,
    when the caller holds them (the dispense does); read otherwise."""
    if given is None:
        given = list(
            Dispense.objects.filter(session=session, status__in=GIVEN_STATUSES)
            .select_related("product__manufacturer").order_by("dispensed_at", "pk")
        )
    first = given[0] if given else None
    given_products = by_grams(given)
    wanted: dict[FlagKey, tuple[Product, Product, list[dict]]] = {}
    baseline = baseline_of(session.patient, exclude=session)
    previous_ids = baseline.product_ids if baseline is not None else ()
    patients_brand = None
    for product in given_products:
        if previous_ids and product.pk not in previous_ids:
            # When the last infusion itself mixed brands, the one given in the largest amount is
            # the patient's brand (read only when it differs from a brand given now).
            if patients_brand is None:
                patients_brand = Product.objects.select_related("manufacturer").get(pk=previous_ids[0])
            wanted[(BrandSwitchFlag.Kind.SWITCH, patients_brand.pk, product.pk)] = (
                patients_brand, product, product_differences(patients_brand, product))
        elif baseline is not None and baseline.route != session.route:
            wanted[(BrandSwitchFlag.Kind.ROUTE, product.pk, product.pk)] = (
                product, product, [{"field": "route", "from": baseline.route, "to": session.route}])
    for product in given_products:
        if first is not None and product.pk != first.product_id:
            wanted[(BrandSwitchFlag.Kind.MIXED, first.product_id, product.pk)] = (
                first.product, product, product_differences(first.product, product))
    # Labels (section 5, hypersensitivity) ask to watch the whole first infusion and the hour after
    # for patients new to immunoglobulin and those returning after more than 8 weeks, as for a
    # switch of product.
    if first is not None and baseline is None:
        wanted[(BrandSwitchFlag.Kind.FIRST_INFUSION, first.product_id, first.product_id)] = (
            first.product, first.product, [])
    elif first is not None and (session.scheduled_date - baseline.scheduled_date).days > RETURNING_AFTER_DAYS:
        weeks = (session.scheduled_date - baseline.scheduled_date).days // 7
        wanted[(BrandSwitchFlag.Kind.RETURNING, first.product_id, first.product_id)] = (
            first.product, first.product,
            [{"field": "last infusion", "from": baseline.scheduled_date.isoformat(), "to": f"{weeks} weeks before"}])
    return wanted


def _raise_brand_switch_flags(*, session: InfusionSession, dispense: Dispense, actor,
                              given: list[Dispense] | None = None) -> list[BrandSwitchFlag]:
    """Raise the flags that what is now given calls for and that are not already raised (open or
    acknowledged). The session lock makes the check-then-create safe."""
    wanted = {key: value for key, value in _wanted_flags(session, given).items()
              if dispense.product_id == value[1].pk}
    if not wanted:
        return []
    standing = {
        (f.kind, f.from_product_id, f.to_product_id)
        for f in session.flags.exclude(status=BrandSwitchFlag.Status.WITHDRAWN)
    }
    raised = []
    for key, (from_product, to_product, differences) in wanted.items():
        if key in standing:
            continue
        kind = key[0]
        what = {
            BrandSwitchFlag.Kind.ROUTE: lambda: f"route {differences[0]['from']} → {differences[0]['to']} for {to_product.brand}",
            BrandSwitchFlag.Kind.FIRST_INFUSION: lambda: f"first immunoglobulin infusion ({to_product.brand})",
            BrandSwitchFlag.Kind.RETURNING: lambda: f"returning after more than 8 weeks ({to_product.brand})",
        }.get(kind, lambda: f"brand switch {from_product.brand} → {to_product.brand}")()
        raised.append(
            audited_create(
                BrandSwitchFlag,
                actor=actor,
                reason=f"{what} in session {session.pk}",
                session=session,
                kind=kind,
                from_product=from_product,
                to_product=to_product,
                differences=differences,
                raised_by=dispense,
            )
        )
    return raised


def _withdraw_stale_flags(*, session: InfusionSession, why: str, actor) -> list[BrandSwitchFlag]:
    """Open flags that what is given no longer calls for (a vial went back unopened) are withdrawn,
    with the reason; acknowledged ones stay as the pharmacist's record."""
    wanted = _wanted_flags(session)
    withdrawn = []
    for flag in session.flags.select_for_update(of=("self",)).filter(status=BrandSwitchFlag.Status.OPEN).order_by("pk"):
        if (flag.kind, flag.from_product_id, flag.to_product_id) in wanted:
            continue
        flag.status = BrandSwitchFlag.Status.WITHDRAWN
        flag.withdrawn_reason = why
        withdrawn.append(audited_save(flag, actor=actor, reason=f"flag withdrawn: {why}"))
    return withdrawn


WATCH = "watch the whole first infusion and the hour after"


def flag_advice(flag: BrandSwitchFlag) -> str:
    if flag.kind == BrandSwitchFlag.Kind.FIRST_INFUSION:
        return (f"First immunoglobulin infusion for this patient ({flag.to_product.brand}): start at the initial "
                f"(slowest) rate and {WATCH}.")
    if flag.kind == BrandSwitchFlag.Kind.RETURNING:
        since = flag.differences[0]["to"] if flag.differences else "more than 8 weeks before"
        return (f"The last infusion was {since}: start {flag.to_product.brand} at the initial (slowest) rate and "
                f"{WATCH}.")
    if flag.kind == BrandSwitchFlag.Kind.ROUTE:
        route = flag.differences[0] if flag.differences else {"from": "?", "to": "?"}
        return (
            f"{flag.to_product.brand} was given {route['from']} last time and is given {route['to']} now: "
            "watch the whole first infusion by this route and the hour after."
        )
    if flag.kind == BrandSwitchFlag.Kind.SWITCH:
        return (
            f"Start the first infusion of {flag.to_product.brand} at the initial (slowest) rate and {WATCH}; "
            f"the patient is switching from {flag.from_product.brand}."
        )
    return (
        f"This session mixes {flag.from_product.brand} and {flag.to_product.brand}; "
        "a pharmacist must acknowledge it before the session is completed."
    )


def dispense_advice(flags: list[BrandSwitchFlag]) -> str | None:
    """One sentence per flag raised, for the technician at the scan station; None when there is none."""
    return " ".join(flag_advice(flag) for flag in flags) or None


def _lock_live_dispense(dispense: Dispense) -> tuple[InfusionSession, Vial, Dispense]:
    session = _lock_session(InfusionSession(pk=dispense.session_id))
    ensure_session_open(session)
    vial = lock_vial(dispense.vial_id)
    dispense = Dispense.objects.select_for_update().get(pk=dispense.pk)
    if dispense.status != Dispense.Status.DISPENSED:
        raise DispenseClosed(
            f"Dispense {dispense.pk} was already {dispense.get_status_display()}.",
            extra={"dispense": dispense.pk, "status": dispense.status},
        )
    return session, vial, dispense


def _ensure_fate_allows(dispense: Dispense, wanted: str) -> None:
    """A vial the nurse recorded as opened does not go back on a shelf, and one recorded as not
    opened is not wasted as given (the session lock, held here, is what fate writers take first)."""
    fate = VialFate.objects.filter(dispense=dispense).first()
    if fate is None:
        return
    opened = fate.fate in (VialFate.Fate.INFUSED, VialFate.Fate.PARTIAL)
    if opened == (wanted == VialFate.Fate.PARTIAL):
        return
    raise VialFateConflict(
        f"Vial {dispense.vial.serial} was recorded at the bedside as {fate.get_fate_display()}: "
        + ("return it to stock unopened, and waste it from the shelf if it cannot be used." if not opened
           else "it cannot go back on a shelf; waste it."),
        extra={"dispense": dispense.pk, "fate": fate.fate},
    )


def _close(dispense: Dispense, *, status: str, reason: str, actor, history_reason: str) -> Dispense:
    dispense.status = status
    dispense.closed_reason = reason[:200]
    dispense.closed_by = actor
    dispense.closed_at = timezone.now()
    return audited_save(dispense, actor=actor, reason=history_reason)


@transaction.atomic
def dispense_return_to_stock(*, dispense: Dispense, location: StorageLocation, reason: str, actor) -> Dispense:
    """An unopened vial goes back on a shelf. The dispense stays, marked returned; the vial may be
    dispensed again. The storage rules of a move apply (room-temperature clock, no way back to the
    fridge where the label forbids it, a lot out of release only into quarantine)."""
    reason = require_reason(reason)
    session, vial, dispense = _lock_live_dispense(dispense)
    _ensure_fate_allows(dispense, VialFate.Fate.NOT_OPENED)
    history_reason = f"returned unopened from session {session.pk}: {reason}"
    vial.status = Vial.Status.IN_STOCK if vial.lot.status == Lot.Status.RELEASED else Vial.Status.QUARANTINED
    place_vial(vial, location, now=timezone.now())
    audited_save(vial, actor=actor, reason=history_reason)
    closed = _close(
        dispense, status=Dispense.Status.RETURNED_TO_STOCK, reason=reason, actor=actor, history_reason=history_reason
    )
    _withdraw_stale_flags(session=session, why=f"{vial.presentation.product.brand} vial {vial.serial} returned unopened",
                          actor=actor)
    return closed


@transaction.atomic
def dispense_waste(*, dispense: Dispense, reason: str, actor) -> Dispense:
    """An opened or partly used vial is wasted. The dispense stays, marked wasted: the patient was
    given (part of) this vial, so it still counts for the lookback of a recall."""
    reason = require_reason(reason)
    session, vial, dispense = _lock_live_dispense(dispense)
    _ensure_fate_allows(dispense, VialFate.Fate.PARTIAL)
    history_reason = f"wasted after opening in session {session.pk}: {reason}"
    vial.status = Vial.Status.WASTED
    vial.location = None
    audited_save(vial, actor=actor, reason=history_reason)
    return _close(dispense, status=Dispense.Status.WASTED, reason=reason, actor=actor, history_reason=history_reason)


@transaction.atomic
def dispense_lot_decision(*, dispense: Dispense, reason: str, actor) -> Dispense:
    """A pharmacist records that a vial whose lot was recalled or quarantined after it was
    dispensed was given all the same (e.g. the infusion had already run), so its session may be
    completed. The vial stays in the recall's lookback either way."""
    reason = require_reason(reason)
    session, vial, dispense = _lock_live_dispense(dispense)
    if vial.lot.status == Lot.Status.RELEASED and vial.status != Vial.Status.QUARANTINED:
        raise SessionStateConflict(f"Lot {vial.lot.lot_number} is released: there is nothing to decide.",
                                   code="lot_in_use")
    dispense.lot_decision_reason = reason
    dispense.lot_decision_by = actor
    dispense.lot_decision_at = timezone.now()
    return audited_save(dispense, actor=actor,
                        reason=f"given although lot {vial.lot.lot_number} is {vial.lot.status}: {reason}")


# --- flags and reactions -----------------------------------------------------------------------


@transaction.atomic
def flag_acknowledge(*, flag: BrandSwitchFlag, reason: str, reason_text: str = "", actor) -> BrandSwitchFlag:
    if reason not in BrandSwitchFlag.Reason.values:
        raise InvalidFlagReason(
            f"Unknown reason {reason!r}; use one of {', '.join(BrandSwitchFlag.Reason.values)}.",
            extra={"choices": list(BrandSwitchFlag.Reason.values)},
        )
    reason_text = (reason_text or "").strip()
    if reason == BrandSwitchFlag.Reason.OTHER and not reason_text:
        raise ReasonTextRequired("Say why in a few words when the reason is 'other'.")
    flag = BrandSwitchFlag.objects.select_for_update(of=("self",)).select_related("from_product", "to_product").get(
        pk=flag.pk
    )
    if flag.status == BrandSwitchFlag.Status.ACKNOWLEDGED:
        raise FlagAlreadyAcknowledged(
            f"This brand switch was already acknowledged by {flag.acknowledged_by} on "
            f"{timezone.localtime(flag.acknowledged_at):%Y-%m-%d %H:%M}.",
            extra={"flag": flag.pk},
        )
    flag.status = BrandSwitchFlag.Status.ACKNOWLEDGED
    flag.reason = reason
    flag.reason_text = reason_text
    flag.acknowledged_by = actor
    flag.acknowledged_at = timezone.now()
    text = f": {reason_text}" if reason_text else ""
    return audited_save(
        flag,
        actor=actor,
        reason=f"brand switch {flag.from_product.brand} → {flag.to_product.brand} acknowledged ({reason}{text})",
    )


@transaction.atomic
def reaction_record(
    *,
    session: InfusionSession,
    type: str,
    severity: str,
    onset_at: datetime,
    type_other: str = "",
    notes: str = "",
    home_infusion: HomeInfusion | None = None,
    actor,
) -> AdverseReaction:
    """Record an adverse reaction in a session's infusion. Where the nurse keeps an administration
    record, the reaction is linked to it with the rate running at onset (0 while paused, none
    after the end), and an onset before the infusion started is refused. A reaction to a home
    supply names the home infusion it followed."""
    if type not in AdverseReaction.Type.values:
        raise InvalidInput(f"Unknown reaction type {type!r}.", code="invalid_reaction_type")
    if severity not in AdverseReaction.Severity.values:
        raise InvalidInput(f"Unknown severity {severity!r}.", code="invalid_severity")
    type_other = (type_other or "").strip()
    if type == AdverseReaction.Type.OTHER and not type_other:
        raise InvalidInput("Name the reaction when its type is 'other'.", code="type_other_required")
    if timezone.is_naive(onset_at):
        onset_at = timezone.make_aware(onset_at)  # the site's local time
    if onset_at > timezone.now():
        raise InvalidInput("The onset of a reaction cannot be in the future.", code="invalid_onset")
    session = _lock_session(session)
    if timezone.localtime(onset_at).date() < session.scheduled_date - timedelta(days=1):
        raise InvalidInput(
            f"The onset {timezone.localtime(onset_at):%Y-%m-%d %H:%M} is before session {session.pk} "
            f"({session.scheduled_date:%Y-%m-%d}).",
            code="invalid_onset",
        )
    if session.status not in (InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED):
        raise NoInfusion(
            f"Session {session.pk} is {session.get_status_display()}: no infusion was given in it.",
            extra={"session": session.pk, "status": session.status},
        )
    administration = Administration.objects.filter(session=session).first()
    rate = None
    if session.setting == InfusionSession.Setting.HOME:
        if home_infusion is None or home_infusion.session_id != session.pk:
            raise InvalidInput(
                f"Session {session.pk} is a home supply: name the home infusion the reaction followed.",
                code="home_infusion_required",
            )
        if timezone.localtime(onset_at).date() < home_infusion.infused_on:
            raise OnsetBeforeStart(
                f"The onset {timezone.localtime(onset_at):%Y-%m-%d %H:%M} is before the home infusion of "
                f"{home_infusion.infused_on:%Y-%m-%d}."
            )
    elif home_infusion is not None:
        raise InvalidInput(f"Session {session.pk} was given here, not at home.", code="not_a_home_supply")
    elif administration is not None:
        if onset_at < administration.started_at:
            raise OnsetBeforeStart(
                f"The onset {timezone.localtime(onset_at):%Y-%m-%d %H:%M} is before the infusion started "
                f"({timezone.localtime(administration.started_at):%Y-%m-%d %H:%M}).",
                extra={"started_at": administration.started_at.isoformat()},
            )
        rate = rate_at(administration, onset_at)
    return audited_create(
        AdverseReaction,
        actor=actor,
        reason=f"adverse reaction recorded in session {session.pk}",
        session=session,
        administration=administration,
        home_infusion=home_infusion,
        rate_at_onset_ml_per_h=rate[0] if rate else None,
        rate_at_onset_ml_per_kg_per_h=rate[1] if rate else None,
        type=type,
        type_other=type_other,
        severity=severity,
        onset_at=onset_at,
        notes=notes,
        recorded_by=actor,
    )


# --- overrides ---------------------------------------------------------------------------------


def _override_subject(session: InfusionSession, vial: Vial | None, check: str) -> tuple[Product | None, str]:
    """The product an override is for and what the check says now, read from the check itself so
    that nobody can ask to override a check that does not refuse."""
    if vial is None:
        raise InvalidInput("Name the vial the override is for.", code="vial_required")
    found = dispense_check(session=session, vial=vial)
    if check == DispenseOverride.DOSE_EXCESS:
        if not found.exceeds_dose:
            raise OverrideStateConflict(f"Vial {vial.serial} does not take session {session.pk} past its dose.")
        return None, found.dose_after.describe()
    for finding, _granted_already in found.contraindications:
        if finding.check == check:
            return vial.presentation.product, finding.message
    for finding, _granted_already in found.authorisation:
        if finding.check == check:
            return _override_product(finding, vial.presentation.product), finding.message
    raise OverrideStateConflict(
        f"No contraindication {check!r} applies to {vial.presentation.product.brand} in session {session.pk}.",
        extra={"check": check},
    )


@transaction.atomic
def override_request(*, session: InfusionSession, vial: Vial, check: str, note: str = "", actor) -> DispenseOverride:
    """A technician asks a pharmacist to decide on a refused check for this session and product."""
    session = _lock_session(session)
    ensure_session_open(session)
    product, detail = _override_subject(session, vial, check)
    existing = DispenseOverride.objects.filter(session=session, product=product, check_code=check).exclude(
        status=DispenseOverride.Status.DECLINED).first()
    if existing is not None:
        return existing
    return audited_create(
        DispenseOverride, actor=actor, reason=f"override of {check} asked for session {session.pk}",
        session=session, product=product, check_code=check, detail=detail, requested_by=actor,
        request_note=(note or "").strip(),
    )


@transaction.atomic
def override_decide(*, override: DispenseOverride, grant: bool, reason: str, actor) -> DispenseOverride:
    """A pharmacist grants or declines a requested override, saying why (the reason is kept)."""
    reason = require_reason(reason)
    session = _lock_session(InfusionSession(pk=override.session_id))
    override = DispenseOverride.objects.select_for_update(of=("self",)).select_related("product").get(pk=override.pk)
    if override.status != DispenseOverride.Status.REQUESTED:
        decided = timezone.localtime(override.decided_at)
        raise OverrideStateConflict(
            f"This override was already {override.status} by {override.decided_by} on {decided:%Y-%m-%d %H:%M}.",
            extra={"override": override.pk},
        )
    ensure_session_open(session)
    override.status = DispenseOverride.Status.GRANTED if grant else DispenseOverride.Status.DECLINED
    override.decided_by = actor
    override.decided_at = timezone.now()
    override.decision_reason = reason
    verb = "granted" if grant else "declined"
    return audited_save(override, actor=actor,
                        reason=f"override of {override.check_code} {verb} for session {session.pk}: {reason}")


@transaction.atomic
def override_grant(*, session: InfusionSession, vial: Vial, check: str, reason: str, actor) -> DispenseOverride:
    """A pharmacist at the bench decides at once: ask and grant in one act."""
    requested = override_request(session=session, vial=vial, check=check, actor=actor)
    if requested.status == DispenseOverride.Status.GRANTED:
        return requested
    return override_decide(override=requested, grant=True, reason=reason, actor=actor)
