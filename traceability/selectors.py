"""Reads for patients, sessions and flags, written once with their joins so query counts stay flat."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import Prefetch, QuerySet, Subquery

from inventory.models import Product, local_today
from inventory.selectors import without_product_notes
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient

# What a patient was given: a vial returned unopened to stock was not.
GIVEN_STATUSES = (Dispense.Status.DISPENSED, Dispense.Status.WASTED)


def patient_queryset() -> QuerySet[Patient]:
    return Patient.objects.all()


def dispense_queryset() -> QuerySet[Dispense]:
    return without_product_notes(
        Dispense.objects.select_related(
            "vial__lot",
            "vial__presentation__product",
            "vial__location",
            "product__manufacturer",
            "dispensed_by",
            "closed_by",
        ),
        "vial__presentation__product", "product",
    )


def flag_queryset() -> QuerySet[BrandSwitchFlag]:
    return without_product_notes(
        BrandSwitchFlag.objects.select_related(
            "session__patient",
            "from_product__manufacturer",
            "to_product__manufacturer",
            "acknowledged_by",
            "raised_by",
        ),
        "from_product", "to_product",
    )


def reaction_queryset() -> QuerySet[AdverseReaction]:
    return AdverseReaction.objects.select_related("recorded_by")


def session_queryset() -> QuerySet[InfusionSession]:
    """Sessions with their dispenses (vial, lot, product), flags and reactions: five queries for a
    page of any length."""
    return InfusionSession.objects.select_related("patient", "completed_by").prefetch_related(
        Prefetch("dispenses", queryset=dispense_queryset().order_by("dispensed_at", "id")),
        Prefetch(
            "flags",
            queryset=without_product_notes(
                BrandSwitchFlag.objects.select_related(
                    "from_product__manufacturer", "to_product__manufacturer", "acknowledged_by"
                ),
                "from_product", "to_product",
            ).order_by("raised_at", "id"),
        ),
        Prefetch("reactions", queryset=reaction_queryset().order_by("onset_at", "id")),
    )


def live_dispense_id(vial_id: int) -> int | None:
    """The dispense a vial is still out on (neither returned nor wasted), if any."""
    return (
        Dispense.objects.filter(vial_id=vial_id, status=Dispense.Status.DISPENSED).values_list("pk", flat=True).first()
    )


def todays_open_sessions() -> QuerySet[InfusionSession]:
    """Sessions scheduled today and still open, by patient name, for the scan station."""
    return (
        InfusionSession.objects.filter(scheduled_date=local_today(), status__in=InfusionSession.OPEN_STATUSES)
        .select_related("patient")
        .order_by("patient__name", "pk")
    )


def patient_history(patient: Patient) -> QuerySet[InfusionSession]:
    """Every infusion session of the patient, newest first, with brands, lots and vials."""
    return session_queryset().filter(patient=patient).order_by("-scheduled_date", "-id")


def last_completed_session(patient: Patient, *, exclude: InfusionSession | None = None) -> InfusionSession | None:
    sessions = InfusionSession.objects.filter(patient=patient, status=InfusionSession.Status.COMPLETED)
    if exclude is not None and exclude.pk:
        sessions = sessions.exclude(pk=exclude.pk)
    return sessions.order_by("-scheduled_date", "-completed_at", "-id").first()


def products_given(session: InfusionSession) -> list[Product]:
    """The products the session's patient received in it, most grams first (then by brand), so the
    first one is the brand the patient is "on"."""
    return _by_grams(
        Dispense.objects.filter(session=session, status__in=GIVEN_STATUSES).select_related("product__manufacturer")
    )


def _by_grams(dispenses) -> list[Product]:
    grams: dict[int, Decimal] = defaultdict(Decimal)
    products: dict[int, Product] = {}
    for dispense in dispenses:
        grams[dispense.product_id] += dispense.grams
        products[dispense.product_id] = dispense.product
    return sorted(products.values(), key=lambda p: (-grams[p.pk], p.brand))


def current_products(patient: Patient, *, exclude: InfusionSession | None = None) -> list[Product]:
    """The brand(s) of the patient's most recent completed infusion; empty for a first infusion.

    One query: the dispenses of that session, found by a subquery (see last_completed_session)."""
    sessions = InfusionSession.objects.filter(patient=patient, status=InfusionSession.Status.COMPLETED)
    if exclude is not None and exclude.pk:
        sessions = sessions.exclude(pk=exclude.pk)
    last = sessions.order_by("-scheduled_date", "-completed_at", "-id").values("pk")[:1]
    return _by_grams(
        Dispense.objects.filter(session_id=Subquery(last), status__in=GIVEN_STATUSES).select_related(
            "product__manufacturer"
        )
    )
