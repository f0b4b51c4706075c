"""Treatment authorisations: the dosing weight, the authorised dose, and the checks a dispense
makes against the session's authorisation. Also the services that record and revoke them.

Immunoglobulin is rationed: each patient's treatment is approved for an indication, a product, a
dose, an interval and a number of doses, between two dates (Australia: BloodSTAR, where "the
dispenser is responsible for every vial"; England: the regional immunoglobulin assessment panels).
A dispense outside the authorisation is refused with a stable code naming what it breaks, until a
pharmacist overrides that check for the session, with a reason (the same DispenseOverride as a
contraindication); the dispense then joins the discrepancy queue.

Dosing weight, as the UK Clinical Guidelines for Immunoglobulin Use (2nd ed., 2011) and its dose
calculator define it:
- ideal body weight (IBW, Devine 1974): men 50 kg, women 45.5 kg, plus 2.3 kg per inch of height
  over 5 feet (1 inch = 2.54 cm);
- adjusted body weight: IBW + 0.4 × (actual − IBW), for patients well above their IBW;
- where the actual weight is below the IBW, the actual weight is the dosing weight whatever the
  basis: a dose is never worked out from more kilograms than the patient has.
Weights are rounded to 0.1 kg at each step (IBW first, then the adjusted weight from it), grams to
0.01 g, half up, so that the figures agree with what a pharmacist works out by hand.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from math import gcd

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from core.errors import Conflict, InvalidInput
from core.history import audited_create, audited_save
from core.text import grams_text
from inventory.models import Presentation, Product, local_today
from inventory.services import require_reason
from traceability.clinical import CONTRAINDICATION, ClinicalFinding
from traceability.exceptions import WeightUnknown
from traceability.models import Dispense, InfusionSession, Patient, TreatmentAuthorisation

KG = Decimal("0.1")
GRAMS = Decimal("0.01")
CM_PER_INCH = Decimal("2.54")
DEVINE_BASE_KG = {"male": Decimal("50"), "female": Decimal("45.5")}
DEVINE_KG_PER_INCH = Decimal("2.3")
ADJUSTED_FRACTION = Decimal("0.4")

GIVEN = (Dispense.Status.DISPENSED, Dispense.Status.WASTED)
DOSED = (InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED)

# The checks, each a stable error code; all but the product's hold for the whole session.
MISSING = "authorisation_missing"
REVOKED = "authorisation_revoked"
EXPIRED = "authorisation_expired"
NOT_YET_VALID = "authorisation_not_yet_valid"
PRODUCT = "authorisation_product"
DOSE = "authorisation_dose"
INTERVAL = "authorisation_interval"
DOSES_USED = "authorisation_doses_used"
CHECKS = (MISSING, REVOKED, EXPIRED, NOT_YET_VALID, PRODUCT, DOSE, INTERVAL, DOSES_USED)
AUTHORISATION = "authorisation"  # the kind of these findings, beside contraindication and caution

SOURCE = "The patient's treatment authorisation"


class HeightOrSexUnknown(InvalidInput):
    """The ideal or adjusted body weight needs the patient's height and sex."""

    code = "height_or_sex_unknown"


class AuthorisationMismatch(InvalidInput):
    """The authorisation named does not cover this session (another patient, indication or route)."""

    code = "authorisation_mismatch"


class NotAuthorised(Conflict):
    """The dispense falls outside the session's authorisation; the code names the check."""

    code = "not_authorised"


class AuthorisationStateConflict(Conflict):
    code = "authorisation_state_conflict"


class NotADiscrepancy(Conflict):
    code = "not_a_discrepancy"


class DiscrepancyReconciled(Conflict):
    code = "discrepancy_already_reconciled"


@dataclass(frozen=True)
class AuthorisationFinding(ClinicalFinding):
    """A check of the authorisation that refuses. `per_product`: the override is for the product
    (a brand outside the authorisation); otherwise for the session."""

    per_product: bool = False

    @property
    def code(self) -> str:
        return self.check


def _finding(check: str, message: str, *, per_product: bool = False) -> AuthorisationFinding:
    return AuthorisationFinding(check, CONTRAINDICATION, message, SOURCE, per_product=per_product)


# --- the dosing weight -------------------------------------------------------------------------


def ideal_body_weight(*, height_cm: Decimal, sex: str) -> Decimal:
    """Devine: 50 kg (men) or 45.5 kg (women) + 2.3 kg per inch over 5 ft, to 0.1 kg."""
    inches_over_five_feet = Decimal(height_cm) / CM_PER_INCH - 60
    return (DEVINE_BASE_KG[sex] + DEVINE_KG_PER_INCH * inches_over_five_feet).quantize(KG, rounding=ROUND_HALF_UP)


def adjusted_body_weight(*, actual_kg: Decimal, ideal_kg: Decimal) -> Decimal:
    """IBW + 0.4 × (actual − IBW), to 0.1 kg."""
    return (ideal_kg + ADJUSTED_FRACTION * (Decimal(actual_kg) - ideal_kg)).quantize(KG, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class DosingWeight:
    basis: str
    actual_kg: Decimal
    ideal_kg: Decimal | None
    adjusted_kg: Decimal | None
    kg: Decimal  # the weight the dose is worked out from
    note: str

    def as_dict(self) -> dict:
        def kg(value):
            return grams_text(value) if value is not None else None

        return {"basis": self.basis, "actual_kg": kg(self.actual_kg), "ideal_kg": kg(self.ideal_kg),
                "adjusted_kg": kg(self.adjusted_kg), "dosing_kg": kg(self.kg), "note": self.note}


def dosing_weight(patient: Patient, basis: str) -> DosingWeight:
    """The weight a g/kg dose is worked out from, by the authorisation's basis. Refused when the
    weight (or, for ideal and adjusted, the height or sex) is not on record."""
    if patient.weight_kg is None:
        raise WeightUnknown(f"{patient} has no recorded weight: record it to work out a dose per kg.",
                            extra={"patient": patient.pk})
    actual = Decimal(patient.weight_kg)
    if basis == TreatmentAuthorisation.WeightBasis.ACTUAL:
        return DosingWeight(basis, actual, None, None, actual, "actual body weight")
    if patient.height_cm is None or patient.sex not in DEVINE_BASE_KG:
        raise HeightOrSexUnknown(
            f"{patient} needs a height and sex on record for the {basis} body weight.", extra={"patient": patient.pk})
    ideal = ideal_body_weight(height_cm=patient.height_cm, sex=patient.sex)
    if ideal <= 0:
        raise HeightOrSexUnknown(f"The ideal body weight formula does not apply at {grams_text(patient.height_cm)} cm.",
                                 extra={"patient": patient.pk})
    adjusted = adjusted_body_weight(actual_kg=actual, ideal_kg=ideal)
    if actual < ideal:
        return DosingWeight(basis, actual, ideal, adjusted, actual,
                            f"actual weight {grams_text(actual)} kg is below the ideal {grams_text(ideal)} kg: dosed on actual")
    if basis == TreatmentAuthorisation.WeightBasis.IDEAL:
        return DosingWeight(basis, actual, ideal, adjusted, ideal, "ideal body weight (Devine)")
    return DosingWeight(basis, actual, ideal, adjusted, adjusted, "adjusted body weight: IBW + 0.4 × (actual − IBW)")


def authorised_grams(authorisation: TreatmentAuthorisation, patient: Patient | None = None) -> tuple[Decimal, DosingWeight | None]:
    """The grams of one dose under the authorisation, and the dosing weight it came from (g/kg)."""
    if authorisation.dose_grams is not None:
        return Decimal(authorisation.dose_grams), None
    weight = dosing_weight(patient or authorisation.patient, authorisation.weight_basis)
    return (Decimal(authorisation.dose_g_per_kg) * weight.kg).quantize(GRAMS, rounding=ROUND_HALF_UP), weight


def smallest_cover(sizes, grams: Decimal) -> Decimal | None:
    """The smallest total that whole vials of these sizes make reaching `grams` (vial rounding:
    a dose of 32.5 g from 5, 10 and 20 g vials is 35 g). None without sizes."""
    centigrams = sorted({int((Decimal(s) * 100).to_integral_value()) for s in sizes if s and Decimal(s) > 0})
    if not centigrams:
        return None
    unit = 0
    for c in centigrams:
        unit = gcd(unit, c)
    steps = [c // unit for c in centigrams]
    need = int((Decimal(grams) * 100 / unit).to_integral_value(rounding=ROUND_CEILING))
    if need <= 0:
        return Decimal("0")
    limit = need + max(steps) - 1
    reach = bytearray(limit + 1)
    reach[0] = 1
    for total in range(1, limit + 1):
        reach[total] = any(total >= s and reach[total - s] for s in steps)
        if total >= need and reach[total]:
            return (Decimal(total * unit) / 100).quantize(GRAMS)
    return None  # unreachable: the largest size alone passes `need` within `limit`


# --- what has been given under it --------------------------------------------------------------


def dosed_sessions(authorisation: TreatmentAuthorisation) -> QuerySet[InfusionSession]:
    """The sessions that used a dose of the authorisation: something was given in them."""
    return InfusionSession.objects.filter(
        authorisation=authorisation, status__in=DOSED, dispenses__status__in=GIVEN).distinct()


def _dosed_days(authorisation: TreatmentAuthorisation, *, exclude: InfusionSession) -> list[date]:
    """The days of dosed_sessions() but `exclude`, latest first: one read gives both the doses
    used and the last of them (an authorisation has at most MAX_DOSES doses, so a few rows).

    Note: plain SQL (the same on PostgreSQL and SQLite): every dispense reads it, and compiling the
    ORM's form cost several times the query."""
    session_table, dispense_table = InfusionSession._meta.db_table, Dispense._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.scheduled_date FROM {session_table} s WHERE s.authorisation_id = %s AND s.id <> %s "
            f"AND s.status IN (%s, %s) AND EXISTS (SELECT 1 FROM {dispense_table} d WHERE d.session_id = s.id "
            f"AND d.status IN (%s, %s)) ORDER BY s.scheduled_date DESC, s.id DESC",
            [authorisation.pk, exclude.pk or 0, *[str(x) for x in DOSED], *[str(x) for x in GIVEN]],
        )
        days = [row[0] for row in cursor.fetchall()]
    to_date = InfusionSession._meta.get_field("scheduled_date").to_python  # SQLite: text
    return [to_date(day) for day in days]


def with_doses_used(queryset: QuerySet[TreatmentAuthorisation]) -> QuerySet[TreatmentAuthorisation]:
    """Each authorisation with `doses_used` annotated (one query for a page, whatever its length)."""
    return queryset.annotate(doses_used=Count(
        "sessions", distinct=True,
        filter=Q(sessions__status__in=DOSED, sessions__dispenses__status__in=GIVEN)))


def state_on(authorisation: TreatmentAuthorisation, day: date, doses_used: int) -> str:
    if authorisation.status == TreatmentAuthorisation.Status.REVOKED:
        return "revoked"
    if day < authorisation.valid_from:
        return "not_yet_valid"
    if day > authorisation.valid_until:
        return "expired"
    if doses_used >= authorisation.doses:
        return "used_up"
    return "current"


@dataclass(frozen=True)
class AuthorisationStanding:
    """Where a session stands against its authorisation, for the scan card."""

    authorisation: TreatmentAuthorisation | None
    doses_used_before: int  # by other sessions
    this_session_dosed: bool
    day: date

    @property
    def remaining_after_this(self) -> int | None:
        if self.authorisation is None:
            return None
        return max(self.authorisation.doses - self.doses_used_before - 1, 0)

    @property
    def days_left(self) -> int | None:
        if self.authorisation is None:
            return None
        return (self.authorisation.valid_until - local_today()).days

    def as_dict(self) -> dict | None:
        a = self.authorisation
        if a is None:
            return None
        return {
            "id": a.pk, "payer_reference": a.payer_reference, "status": a.status,
            "state": state_on(a, self.day, self.doses_used_before), "product": a.product.brand if a.product_id else None,
            "route": a.route, "valid_from": a.valid_from.isoformat(), "valid_until": a.valid_until.isoformat(),
            "days_left": self.days_left, "doses": a.doses, "dose_number": self.doses_used_before + 1,
            "doses_remaining_after_this": self.remaining_after_this, "interval_days": a.interval_days,
        }


def infusion_day(session: InfusionSession) -> date:
    """The day the authorisation must be current on: the later of today and the scheduled date."""
    return max(local_today(), session.scheduled_date)


def standing(session: InfusionSession) -> AuthorisationStanding:
    a = session.authorisation
    if a is None:
        return AuthorisationStanding(None, 0, False, infusion_day(session))
    used = dosed_sessions(a).exclude(pk=session.pk)
    this = Dispense.objects.filter(session=session, status__in=GIVEN).exists()
    return AuthorisationStanding(a, used.count(), this, infusion_day(session))


def authorisation_findings(*, session: InfusionSession, product: Product, grams_after: Decimal,
                           given_product_ids: set[int] | None = None) -> list[AuthorisationFinding]:
    """Every authorisation check that giving `product` to the session, bringing it to `grams_after`
    grams given, fails. `given_product_ids`: the products already given in the session, when the
    caller has read them."""
    a = session.authorisation
    if a is None:
        if not settings.AUTHORISATION_REQUIRED:
            return []
        return [_finding(MISSING, f"Session {session.pk} has no treatment authorisation.")]
    found = []
    ref = a.payer_reference or f"#{a.pk}"
    day = infusion_day(session)
    if a.status == TreatmentAuthorisation.Status.REVOKED:
        found.append(_finding(REVOKED, f"Authorisation {ref} was revoked: {a.revoked_reason}"))
    elif day > a.valid_until:
        found.append(_finding(EXPIRED, f"Authorisation {ref} ended on {a.valid_until:%Y-%m-%d}."))
    elif day < a.valid_from:
        found.append(_finding(NOT_YET_VALID, f"Authorisation {ref} starts on {a.valid_from:%Y-%m-%d}."))
    if a.product_id is not None and a.product_id != product.pk:
        found.append(_finding(PRODUCT, f"Authorisation {ref} is for {a.product.brand}, not {product.brand}.",
                              per_product=True))
    elif not authorised_product(a, product):
        found.append(_finding(PRODUCT, f"Authorisation {ref} is for {a.get_route_display()} immunoglobulin; "
                                       f"{product.brand} is {product.get_route_display()}.", per_product=True))
    # This session's dose is the one after every other session's given under it (so the vials of
    # a dose already begun count once, and a dose past the last stays outside for all its vials).
    dosed = _dosed_days(a, exclude=session)
    used = len(dosed)
    if used >= a.doses:
        found.append(_finding(DOSES_USED, f"All {a.doses} doses of authorisation {ref} have been given."))
    last = next((day for day in dosed if day <= session.scheduled_date), None)
    if last is not None and (session.scheduled_date - last).days < a.interval_days:
        due = last + timedelta(days=a.interval_days)
        found.append(_finding(INTERVAL, f"Authorisation {ref} allows a dose every {a.interval_days} days: the last "
                                        f"was on {last:%Y-%m-%d}, the next is due on {due:%Y-%m-%d}."))
    found += _dose_findings(a, session=session, product=product, grams_after=grams_after, ref=ref,
                            given_product_ids=given_product_ids)
    return found


def authorised_product(authorisation: TreatmentAuthorisation, product: Product) -> bool:
    """Whether the authorisation covers this product: its brand, or any brand of its route."""
    if authorisation.product_id is not None:
        return authorisation.product_id == product.pk
    return product.route in (Product.Route.IV_SC, authorisation.route)


def _dose_findings(a, *, session, product, grams_after, ref, given_product_ids=None) -> list[AuthorisationFinding]:
    try:
        grams, _weight = authorised_grams(a, session.patient)
    except (WeightUnknown, HeightOrSexUnknown) as unknown:
        return [_finding(DOSE, f"The dose authorised ({a.dose_g_per_kg} g/kg, {a.get_weight_basis_display()}) "
                               f"cannot be worked out: {unknown.message}")]
    if a.product_id is not None:
        product_ids = {a.product_id}
    elif given_product_ids is not None:
        product_ids = {product.pk} | set(given_product_ids)
    else:
        product_ids = {product.pk} | set(
            Dispense.objects.filter(session=session, status__in=GIVEN).values_list("product_id", flat=True))
    sizes = Presentation.objects.filter(product_id__in=product_ids).values_list("grams", flat=True)
    allowed = smallest_cover(list(sizes), grams) or grams
    if grams_after > allowed:
        return [_finding(DOSE, f"Session {session.pk} would be given {grams_text(grams_after)} g; authorisation {ref} "
                               f"allows {grams_text(grams)} g a dose ({grams_text(allowed)} g in whole vials).")]
    return []


def check_covers(*, authorisation: TreatmentAuthorisation, patient: Patient, indication: str, route: str,
                 scheduled_date: date, ordered_grams: Decimal | None) -> None:
    """Refuse an order (or attaching an authorisation to one) that the authorisation does not cover."""
    ref = authorisation.payer_reference or f"#{authorisation.pk}"
    if authorisation.patient_id != patient.pk:
        raise AuthorisationMismatch(f"Authorisation {ref} is another patient's.", extra={"authorisation": authorisation.pk})
    if authorisation.indication != indication:
        raise AuthorisationMismatch(
            f"Authorisation {ref} is for {authorisation.get_indication_display()}, not this indication.",
            extra={"authorisation": authorisation.pk})
    if authorisation.route != route:
        raise AuthorisationMismatch(f"Authorisation {ref} is for {authorisation.get_route_display()} use.",
                                    extra={"authorisation": authorisation.pk})
    if authorisation.status == TreatmentAuthorisation.Status.REVOKED:
        raise NotAuthorised(f"Authorisation {ref} was revoked.", code=REVOKED)
    if scheduled_date > authorisation.valid_until:
        raise NotAuthorised(f"Authorisation {ref} ends on {authorisation.valid_until:%Y-%m-%d}, before "
                            f"{scheduled_date:%Y-%m-%d}.", code=EXPIRED)
    if scheduled_date < authorisation.valid_from:
        raise NotAuthorised(f"Authorisation {ref} starts on {authorisation.valid_from:%Y-%m-%d}.", code=NOT_YET_VALID)
    if ordered_grams is not None:
        grams, _ = authorised_grams(authorisation, patient)
        if ordered_grams > grams:
            raise NotAuthorised(f"{grams_text(ordered_grams)} g is more than the {grams_text(grams)} g a dose that "
                                f"authorisation {ref} allows.", code=DOSE)


# --- recording them ----------------------------------------------------------------------------

MAX_DOSES = 100
MAX_DOSE_GRAMS = Decimal("2000")
MAX_G_PER_KG = Decimal("3")
MAX_INTERVAL_DAYS = 366
MAX_YEARS = 3


@transaction.atomic
def authorisation_create(
    *,
    patient: Patient,
    indication: str,
    route: str,
    interval_days: int,
    doses: int,
    valid_from: date,
    valid_until: date,
    prescriber: str,
    approver: str,
    product: Product | None = None,
    dose_grams: Decimal | None = None,
    dose_g_per_kg: Decimal | None = None,
    weight_basis: str = TreatmentAuthorisation.WeightBasis.ACTUAL,
    indication_other: str = "",
    payer_reference: str = "",
    notes: str = "",
    actor,
) -> TreatmentAuthorisation:
    """Record an approved authorisation. A g/kg dose must be workable now (weight, and height and
    sex for ideal or adjusted), so that the first dispense is not the first to find out."""
    if indication not in InfusionSession.Indication.values:
        raise InvalidInput(f"Unknown indication {indication!r}.", code="invalid_indication")
    if indication == InfusionSession.Indication.OTHER and not (indication_other or "").strip():
        raise InvalidInput("Name the indication when it is 'other'.", code="indication_other_required")
    if route not in InfusionSession.Route.values:
        raise InvalidInput(f"Unknown route {route!r}; use IV or SC.", code="invalid_route")
    if weight_basis not in TreatmentAuthorisation.WeightBasis.values:
        raise InvalidInput(f"Unknown weight basis {weight_basis!r}.", code="invalid_weight_basis")
    if (dose_grams is None) == (dose_g_per_kg is None):
        raise InvalidInput("Give the dose either in grams or in g/kg (one of the two).", code="invalid_dose")
    if dose_grams is not None and not (0 < dose_grams <= MAX_DOSE_GRAMS):
        raise InvalidInput(f"A dose of {grams_text(dose_grams)} g is not possible.", code="invalid_dose")
    if dose_g_per_kg is not None and not (0 < dose_g_per_kg <= MAX_G_PER_KG):
        raise InvalidInput(f"A dose of {grams_text(dose_g_per_kg)} g/kg is not possible.", code="invalid_dose")
    if not (1 <= doses <= MAX_DOSES):
        raise InvalidInput(f"Between 1 and {MAX_DOSES} doses.", code="invalid_doses")
    if not (0 <= interval_days <= MAX_INTERVAL_DAYS):
        raise InvalidInput(f"An interval of 0 to {MAX_INTERVAL_DAYS} days.", code="invalid_interval")
    today = local_today()
    if valid_until < valid_from or valid_until - valid_from > timedelta(days=366 * MAX_YEARS) \
            or abs((valid_from - today).days) > 366 * MAX_YEARS:
        raise InvalidInput(f"Valid from {valid_from:%Y-%m-%d} until {valid_until:%Y-%m-%d} is not possible.",
                           code="invalid_dates")
    if product is not None and product.route not in (Product.Route.IV_SC, route):
        raise AuthorisationMismatch(f"{product.brand} is {product.get_route_display()}, not {route}.")
    prescriber, approver = (prescriber or "").strip(), (approver or "").strip()
    if not prescriber or not approver:
        raise InvalidInput("Name the prescriber and who approved it.", code="prescriber_and_approver_required")
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if dose_g_per_kg is not None:
        dosing_weight(patient, weight_basis)
    return audited_create(
        TreatmentAuthorisation, actor=actor, reason=f"treatment authorisation recorded for {patient.mrn}",
        patient=patient, indication=indication, indication_other=(indication_other or "").strip(), product=product,
        route=route, dose_grams=dose_grams, dose_g_per_kg=dose_g_per_kg, weight_basis=weight_basis,
        interval_days=interval_days, doses=doses, valid_from=valid_from, valid_until=valid_until,
        prescriber=prescriber, approver=approver, payer_reference=(payer_reference or "").strip(),
        notes=notes or "", created_by=actor,
    )


@transaction.atomic
def authorisation_revoke(*, authorisation: TreatmentAuthorisation, reason: str, actor) -> TreatmentAuthorisation:
    """End an authorisation early (withdrawn by the panel, treatment stopped), saying why."""
    reason = require_reason(reason)
    authorisation = TreatmentAuthorisation.objects.select_for_update().get(pk=authorisation.pk)
    if authorisation.status == TreatmentAuthorisation.Status.REVOKED:
        raise AuthorisationStateConflict(f"Authorisation {authorisation.pk} was already revoked.",
                                         extra={"authorisation": authorisation.pk})
    authorisation.status = TreatmentAuthorisation.Status.REVOKED
    authorisation.revoked_reason = reason
    authorisation.revoked_by = actor
    authorisation.revoked_at = timezone.now()
    return audited_save(authorisation, actor=actor, reason=f"authorisation revoked: {reason}")


@transaction.atomic
def discrepancy_reconcile(*, dispense: Dispense, note: str, actor) -> Dispense:
    """Close a vial of the discrepancy queue: the pharmacist says how it was settled with the payer
    (a retrospective approval and its reference, an amended request, a write-off). The dispense keeps
    what it was; the reconciliation is added to it, with history."""
    note = require_reason(note)
    dispense = Dispense.objects.select_for_update(of=("self",)).get(pk=dispense.pk)
    if not dispense.outside_authorisation or dispense.status not in (Dispense.Status.DISPENSED, Dispense.Status.WASTED):
        raise NotADiscrepancy(
            f"Dispense {dispense.pk} was given under its authorisation (or not given at all): nothing to reconcile.",
            extra={"dispense": dispense.pk})
    if dispense.authorisation_reconciled_at is not None:
        raise DiscrepancyReconciled(
            f"Dispense {dispense.pk} was already reconciled on {timezone.localtime(dispense.authorisation_reconciled_at):%Y-%m-%d %H:%M}.",
            extra={"dispense": dispense.pk})
    dispense.authorisation_reconciliation = note
    dispense.authorisation_reconciled_by = actor
    dispense.authorisation_reconciled_at = timezone.now()
    return audited_save(dispense, actor=actor, reason=f"authorisation discrepancy reconciled: {note}")
