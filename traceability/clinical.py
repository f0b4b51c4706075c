"""The clinical checks a dispense and the pick make: whether this product may be given to this
patient in this session, read from the catalog's product data and the patient's clinical profile.

Each check is a contraindication (the dispense is refused, with a stable code, until a pharmacist
overrides it for this session and product, with a reason) or a caution (shown, and acknowledged
by the technician at the dispense). A rule reads product properties (IgA content, excipient,
concentration, route), never a brand name. The facts come from product labelling: US prescribing
information sections 4 (Contraindications) and 5 (Warnings and Precautions) and EU SmPCs 4.3/4.4;
each rule names its source. Labels change: review these with each catalog update.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core.text import grams_text
from inventory.models import Product
from traceability.models import AdverseReaction, Dispense, InfusionSession, Patient

CONTRAINDICATION, CAUTION = "contraindication", "caution"

# What a patient was given: a vial returned unopened to stock was not.
_GIVEN = (Dispense.Status.DISPENSED, Dispense.Status.WASTED)


@dataclass(frozen=True)
class ClinicalFinding:
    check: str  # stable: iga_content, proline, fructose, maltose_glucose, renal_sucrose, ...
    kind: str  # CONTRAINDICATION or CAUTION
    message: str
    source: str

    @property
    def code(self) -> str:
        """The error code a refusal on this check carries."""
        return f"contraindicated_{self.check}"

    def as_dict(self) -> dict:
        return {"check": self.check, "kind": self.kind, "detail": self.message, "source": self.source}


def _excipient(product: Product) -> str:
    return (product.excipient or "").lower()


def iga_limit() -> Decimal:
    """The highest IgA content (µg/mL) given to a patient with antibodies against IgA; the pharmacy
    sets it (CLINICAL_IGA_LIMIT_UG_PER_ML). Low-IgA products are labelled for them: Gammagard S/D
    < 1 µg/mL in a 5% solution, Gammaplex 10% < 20 µg/mL, Gammagard Liquid 37 µg/mL on average."""
    return Decimal(str(settings.CLINICAL_IGA_LIMIT_UG_PER_ML))


def _iga(patient: Patient, product: Product) -> ClinicalFinding | None:
    # Every IVIG/SCIG label, section 4: contraindicated in IgA-deficient patients with antibodies
    # against IgA and a history of hypersensitivity (e.g. Gammagard Liquid PI 4; Privigen PI 4;
    # Octagam 10% PI 4). Without antibodies it is a warning (section 5.1, hypersensitivity).
    if not patient.iga_deficient:
        return None
    source = "Labels, section 4: IgA-deficient patients with antibodies against IgA"
    if patient.anti_iga_antibodies:
        limit = iga_limit()
        if product.iga_ug_per_ml is None:
            return ClinicalFinding(
                "iga_content", CONTRAINDICATION,
                f"{patient.name} has antibodies against IgA; the IgA content of {product.brand} is not on record. "
                f"Only products with at most {grams_text(limit)} µg/mL of IgA may be given.",
                source,
            )
        if product.iga_ug_per_ml > limit:
            return ClinicalFinding(
                "iga_content", CONTRAINDICATION,
                f"{patient.name} has antibodies against IgA; {product.brand} holds up to "
                f"{grams_text(product.iga_ug_per_ml)} µg/mL of IgA (limit {grams_text(limit)} µg/mL).",
                source,
            )
        return None
    return ClinicalFinding(
        "iga_deficiency", CAUTION,
        f"{patient.name} is IgA deficient: watch for hypersensitivity through the infusion.",
        "Labels, section 5: hypersensitivity in IgA-deficient patients",
    )


def _proline(patient: Patient, product: Product) -> ClinicalFinding | None:
    # Privigen and Hizentra PI section 4: contraindicated in hyperprolinaemia type I or II
    # (L-proline stabiliser).
    if patient.hyperprolinaemia and "proline" in _excipient(product):
        return ClinicalFinding(
            "proline", CONTRAINDICATION,
            f"{product.brand} is stabilised with L-proline; {patient.name} has hyperprolinaemia.",
            "L-proline-stabilised products' labels, section 4: hyperprolinaemia",
        )
    return None


def _fructose(patient: Patient, product: Product) -> ClinicalFinding | None:
    # Flebogamma DIF SmPC 4.3 (D-sorbitol) and Gammaplex 5% SmPC 4.3: contraindicated in hereditary
    # fructose intolerance; sucrose is a source of fructose as well (EU excipient guideline).
    excipient = _excipient(product)
    found = next((sugar for sugar in ("sorbitol", "sucrose", "fructose") if sugar in excipient), None)
    if patient.hereditary_fructose_intolerance and found:
        return ClinicalFinding(
            "fructose", CONTRAINDICATION,
            f"{product.brand} contains {found}; {patient.name} has hereditary fructose intolerance.",
            "Sorbitol-containing products' SmPC 4.3: hereditary fructose intolerance",
        )
    return None


def _maltose(patient: Patient, product: Product) -> ClinicalFinding | None:
    # Octagam PI section 5 and FDA public health notification (2005, 2009): maltose reads as glucose
    # on GDH-PQQ and glucose-dye-oxidoreductase meters; falsely high readings can hide hypoglycaemia.
    if patient.maltose_sensitive_glucose_monitoring and "maltose" in _excipient(product):
        return ClinicalFinding(
            "maltose_glucose", CAUTION,
            f"{product.brand} contains maltose: {patient.name}'s glucose meter may read falsely high. "
            "Use a glucose-specific method during and after the infusion.",
            "Maltose-containing products' labels, section 5; FDA notification on GDH-PQQ meters",
        )
    return None


def _renal(patient: Patient, product: Product) -> list[ClinicalFinding]:
    # Class boxed warning (thrombosis, renal dysfunction and acute renal failure): sucrose-stabilised
    # IV products account for a disproportionate share of renal failure reports; in predisposed
    # patients give the minimum concentration and rate practicable.
    if not patient.renal_impairment:
        return []
    found = []
    if "sucrose" in _excipient(product):
        found.append(ClinicalFinding(
            "renal_sucrose", CONTRAINDICATION,
            f"{product.brand} is stabilised with sucrose; {patient.name} has renal impairment.",
            "Class boxed warning: renal dysfunction, most reports with sucrose-stabilised products",
        ))
    limit = Decimal(str(settings.CLINICAL_RENAL_MAX_CONCENTRATION_PCT))
    if product.concentration_pct is not None and product.concentration_pct > limit:
        found.append(ClinicalFinding(
            "renal_concentration", CAUTION,
            f"{patient.name} has renal impairment and {product.brand} is {grams_text(product.concentration_pct)}%: "
            "hydrate, and infuse at the minimum rate practicable.",
            "Class boxed warning: minimum concentration and rate in patients at risk of renal failure",
        ))
    return found


def _thrombosis(patient: Patient, product: Product) -> ClinicalFinding | None:
    # Class boxed warning: thrombosis may occur with all immune globulin products; in patients at
    # risk give the minimum dose and rate practicable and ensure hydration.
    if patient.thrombosis_risk:
        return ClinicalFinding(
            "thrombosis", CAUTION,
            f"{patient.name} has thrombosis risk factors: hydrate, and infuse at the minimum rate practicable.",
            "Class boxed warning: thrombosis",
        )
    return None


def _route(session: InfusionSession, product: Product) -> ClinicalFinding | None:
    # Route of administration on the label: an SC-only product is not given intravenously, nor an
    # IV-only product subcutaneously.
    if product.route in (product.Route.IV_SC, session.route):
        return None
    return ClinicalFinding(
        "route", CONTRAINDICATION,
        f"{product.brand} is for {product.get_route_display()} use only; session {session.pk} is "
        f"{session.get_route_display()}.",
        "Route of administration on the label",
    )


def _previous_reaction(patient: Patient, product: Product, *, exclude: InfusionSession | None) -> ClinicalFinding | None:
    # The patient's own record: a moderate reaction to this brand is a caution; a severe or
    # life-threatening one a contraindication until a pharmacist decides.
    # The patient's moderate or worse reactions in other sessions where the product was given
    # (EXISTS, not a join: a session of several vials of it reads each reaction once).
    # Note: plain SQL (the same on PostgreSQL and SQLite): every dispense runs it, and compiling
    # the ORM's form cost several times the query.
    reaction_table, session_table, dispense_table = (
        m._meta.db_table for m in (AdverseReaction, InfusionSession, Dispense))
    severities = [str(s) for s in (AdverseReaction.Severity.MODERATE, AdverseReaction.Severity.SEVERE,
                                   AdverseReaction.Severity.LIFE_THREATENING)]
    given = [str(s) for s in _GIVEN]
    other, params = "", []
    if exclude is not None and exclude.pk:
        other, params = "AND r.session_id <> %s", [exclude.pk]
    reactions = AdverseReaction.objects.raw(
        f"SELECT r.* FROM {reaction_table} r JOIN {session_table} s ON s.id = r.session_id "
        f"WHERE s.patient_id = %s AND r.severity IN (%s, %s, %s) {other} "
        f"AND EXISTS (SELECT 1 FROM {dispense_table} d WHERE d.session_id = r.session_id AND d.product_id = %s "
        f"AND d.status IN (%s, %s)) ORDER BY r.onset_at, r.id",
        [patient.pk, *severities, *params, product.pk, *given],
    )
    worst = None
    for reaction in reactions:
        if worst is None or _SEVERITY_ORDER[reaction.severity] > _SEVERITY_ORDER[worst.severity]:
            worst = reaction
    if worst is None:
        return None
    when = f"{worst.onset_at:%Y-%m-%d}"
    what = f"{worst.get_type_display()} ({worst.get_severity_display()}) on {when}"
    if worst.severity == AdverseReaction.Severity.MODERATE:
        return ClinicalFinding(
            "previous_reaction", CAUTION,
            f"{patient.name} had a reaction to {product.brand}: {what}. Start at the initial rate.",
            "The patient's own record",
        )
    return ClinicalFinding(
        "previous_severe_reaction", CONTRAINDICATION,
        f"{patient.name} had a severe reaction to {product.brand}: {what}.",
        "The patient's own record",
    )


_SEVERITY_ORDER = {
    AdverseReaction.Severity.MILD: 0,
    AdverseReaction.Severity.MODERATE: 1,
    AdverseReaction.Severity.SEVERE: 2,
    AdverseReaction.Severity.LIFE_THREATENING: 3,
}


def clinical_findings(*, session: InfusionSession, product: Product) -> list[ClinicalFinding]:
    """Every clinical check this product fails for the session's patient, contraindications first."""
    patient = session.patient
    found = [
        _route(session, product),
        _iga(patient, product),
        _proline(patient, product),
        _fructose(patient, product),
        *_renal(patient, product),
        _previous_reaction(patient, product, exclude=session),
        _maltose(patient, product),
        _thrombosis(patient, product),
    ]
    found = [f for f in found if f is not None]
    return sorted(found, key=lambda f: f.kind != CONTRAINDICATION)


def contraindicated_products(*, session: InfusionSession, products: list[Product]) -> dict[int, list[ClinicalFinding]]:
    """For the pick: the products among these that a contraindication rules out for this session
    (product id → its contraindications)."""
    out = {}
    for product in products:
        blocking = [f for f in clinical_findings(session=session, product=product) if f.kind == CONTRAINDICATION]
        if blocking:
            out[product.pk] = blocking
    return out
