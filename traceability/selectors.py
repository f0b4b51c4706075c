"""Reads for patients, sessions and flags, written once with their joins so query counts stay flat."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Exists, Min, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.query import ModelIterable

from core.compiled import CompiledQuery, Ids
from core.roles import SCOPE_ALL, SCOPE_UPCOMING, UPCOMING_DAYS
from core.text import grams_text
from inventory.models import Manufacturer, Presentation, Product, StorageLocation, Vial, local_today
from inventory.selectors import without_product_notes
from labels.gs1 import gsrn_from_scan
from traceability.models import (
    AdverseReaction,
    Administration,
    AdministrationStep,
    BrandSwitchFlag,
    Dispense,
    DispenseOverride,
    HomeInfusion,
    HomeInfusionVial,
    InfusionSession,
    Patient,
    TreatmentAuthorisation,
    VialFate,
)
from traceability.authorisations import with_doses_used

# What a patient was given: a vial returned unopened to stock was not.
GIVEN_STATUSES = (Dispense.Status.DISPENSED, Dispense.Status.WASTED)


def patient_queryset() -> QuerySet[Patient]:
    return Patient.objects.all()


def dispense_queryset() -> QuerySet[Dispense]:
    """Dispenses with their vial, lot and product, and what became of the vial: its fate at the
    bedside and the home infusion it was used in (one-to-one joins, no further query)."""
    return without_product_notes(
        Dispense.objects.select_related(
            "vial__lot",
            "vial__presentation__product",
            "vial__location",
            "product__manufacturer",
            "dispensed_by",
            "closed_by",
            "fate",
            "home_use__home_infusion",
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


def override_queryset() -> QuerySet[DispenseOverride]:
    return DispenseOverride.objects.select_related(
        "session__patient", "product__manufacturer", "requested_by", "decided_by"
    ).order_by("-requested_at", "-id")


def reaction_queryset() -> QuerySet[AdverseReaction]:
    return AdverseReaction.objects.select_related("recorded_by")


def step_queryset() -> QuerySet[AdministrationStep]:
    return AdministrationStep.objects.select_related("recorded_by").order_by("at", "id")


def administration_queryset() -> QuerySet[Administration]:
    """Administrations with their session and patient, steps, fates (with the vial and lot) and
    reactions: four queries for a page of any length."""
    return Administration.objects.select_related("session__patient", "started_by", "ended_by").prefetch_related(
        Prefetch("steps", queryset=step_queryset()),
        Prefetch("fates", queryset=VialFate.objects.select_related(
            "dispense__vial__lot", "dispense__vial__presentation__product", "recorded_by").order_by("dispense_id")),
        Prefetch("reactions", queryset=reaction_queryset().order_by("onset_at", "id")),
    )


def home_infusion_queryset() -> QuerySet[HomeInfusion]:
    """Reported home infusions with their session, patient, vials (lot, product) and reactions:
    three queries for a page of any length."""
    return HomeInfusion.objects.select_related("session__patient", "recorded_by").prefetch_related(
        Prefetch("vials", queryset=HomeInfusionVial.objects.select_related(
            "dispense__vial__lot", "dispense__vial__presentation__product").order_by("dispense_id")),
        Prefetch("reactions", queryset=reaction_queryset().order_by("onset_at", "id")),
    )


class SessionQuerySet(QuerySet):
    """Sessions whose every fetch also gives each session its dispenses, flags and reactions as
    lists (`dispense_list`, `flag_list`, `reaction_list`, oldest first): three reads for a page
    of any length, as a prefetch, but compiled once (core.compiled) instead of built and compiled
    again for each page, which was half the time of a page of 50 sessions. `.iterator()` and
    `.values()` give plain rows without them."""

    def _fetch_all(self):
        fetched = self._result_cache is None
        super()._fetch_all()
        if fetched and self._iterable_class is ModelIterable:
            attach_session_lists(self._result_cache)


# A page's dispenses name a few products, presentations, locations and users: one instance each.
CATALOG = (Presentation, Product, Manufacturer, StorageLocation, User)
_dispenses_of_sessions = CompiledQuery(
    lambda ids: dispense_queryset().filter(session_id__in_ids=ids).order_by("dispensed_at", "id"), Ids, shared=CATALOG
)
_flags_of_sessions = CompiledQuery(
    lambda ids: without_product_notes(
        BrandSwitchFlag.objects.select_related("from_product__manufacturer", "to_product__manufacturer", "acknowledged_by"),
        "from_product", "to_product",
    ).filter(session_id__in_ids=ids).order_by("raised_at", "id"),
    Ids,
    shared=CATALOG,
)
_reactions_of_sessions = CompiledQuery(
    lambda ids: reaction_queryset().filter(session_id__in_ids=ids).order_by("onset_at", "id"), Ids
)
SESSION_LISTS = (
    ("dispense_list", _dispenses_of_sessions), ("flag_list", _flags_of_sessions), ("reaction_list", _reactions_of_sessions),
)


def attach_session_lists(sessions: list[InfusionSession]) -> None:
    """Give each session its dispenses, flags and reactions, each row pointing back at its session
    as a prefetch leaves it."""
    by_pk: dict[int, list[InfusionSession]] = {}
    for session in sessions:
        by_pk.setdefault(session.pk, []).append(session)
        for attr, _ in SESSION_LISTS:
            setattr(session, attr, [])
    if not by_pk:
        return
    ids = list(by_pk)
    for attr, read in SESSION_LISTS:
        for row in read(ids):
            for session in by_pk[row.session_id]:
                row.session = session
                getattr(session, attr).append(row)


_sessions_by_ids = CompiledQuery(lambda ids: session_queryset().filter(pk__in_ids=ids).order_by(), Ids)


def sessions_by_ids(ids: list[int]) -> list[InfusionSession]:
    """The sessions of these ids (in no order), as session_queryset() gives them."""
    sessions = _sessions_by_ids(ids)
    attach_session_lists(sessions)
    return sessions


def session_queryset() -> QuerySet[InfusionSession]:
    """Sessions with their dispenses (vial, lot, product, the vial's fate and home use), flags,
    reactions (SessionQuerySet) and the administration record's times (joined): five queries for
    a page of any length. The administration's steps are read with administration_queryset()."""
    return SessionQuerySet(InfusionSession).select_related(
        "patient", "completed_by", "administration__started_by", "administration__ended_by", "authorisation",
    )


def live_dispense_id(vial_id: int) -> int | None:
    """The dispense a vial is still out on (neither returned nor wasted), if any."""
    return (
        Dispense.objects.filter(vial_id=vial_id, status=Dispense.Status.DISPENSED).values_list("pk", flat=True).first()
    )


def patient_for_wristband(raw: str) -> Patient | None:
    """The patient a wristband names: its GS1 GSRN (AI 8018), or the MRN printed as a Code 128."""
    gsrn = gsrn_from_scan(raw)
    if gsrn is not None:
        return Patient.objects.filter(gsrn=gsrn).first()
    mrn = (raw or "").strip()
    return Patient.objects.filter(mrn=mrn).first() if mrn else None


def open_sessions_of(patient: Patient, *, days_ahead: int = 7) -> QuerySet[InfusionSession]:
    """The patient's open sessions up to a week ahead (today's first), for the scan station."""
    today = local_today()
    return (
        InfusionSession.objects.filter(patient=patient, status__in=InfusionSession.OPEN_STATUSES,
                                       scheduled_date__lte=today + timedelta(days=days_ahead))
        .select_related("patient")
        .order_by("scheduled_date", "pk")
    )


def dose_tolerance(product_ids) -> Decimal:
    """How far the grams given may stray from the grams ordered: the smallest vial of these
    products on a shelf now (the smallest step a dose can be made up in), or, with none on a
    shelf, the smallest in the catalog."""
    # EXISTS per presentation (a product has a few), not a join over every vial ever received of it:
    # one probe of the in-stock index each (inventory's vial_in_stock_presentation).
    on_shelf = Vial.objects.filter(presentation=OuterRef("pk"), status=Vial.Status.IN_STOCK)
    in_stock = (
        Presentation.objects.filter(Exists(on_shelf), product_id__in=product_ids)
        .aggregate(smallest=Min("grams"))["smallest"]
    )
    if in_stock is not None:
        return in_stock
    return Presentation.objects.filter(product_id__in=product_ids).aggregate(smallest=Min("grams"))["smallest"] or Decimal("0")


class DoseReconciliation:
    """Grams ordered, given and returned unopened, and the tolerance. The tolerance may be given as
    a function, called when it is first read: it reads the shelves (dose_tolerance), which a dose
    that does not exceed its order never needs."""

    __slots__ = ("ordered", "given", "returned", "_tolerance")

    def __init__(self, *, ordered: Decimal, given: Decimal, returned: Decimal, tolerance):
        self.ordered = ordered
        self.given = given
        self.returned = returned
        self._tolerance = tolerance

    @property
    def tolerance(self) -> Decimal:
        if callable(self._tolerance):
            self._tolerance = self._tolerance()
        return self._tolerance

    def __eq__(self, other) -> bool:
        if not isinstance(other, DoseReconciliation):
            return NotImplemented
        return (self.ordered, self.given, self.returned, self.tolerance) == (
            other.ordered, other.given, other.returned, other.tolerance)

    def __repr__(self) -> str:
        return (f"DoseReconciliation(ordered={self.ordered!r}, given={self.given!r}, returned={self.returned!r}, "
                f"tolerance={self._tolerance!r})")

    @property
    def difference(self) -> Decimal:
        return self.given - self.ordered

    @property
    def exceeds(self) -> bool:
        """More given than ordered by more than the tolerance (never negative, so a dose within
        its order needs no tolerance)."""
        difference = self.difference
        return difference > 0 and difference > self.tolerance

    @property
    def within_tolerance(self) -> bool:
        return abs(self.difference) <= self.tolerance

    def describe(self) -> str:
        gap = self.difference
        word = "more" if gap > 0 else "less"
        return (
            f"{grams_text(self.given)} g given of {grams_text(self.ordered)} g ordered "
            f"({grams_text(abs(gap))} g {word}; tolerance {grams_text(self.tolerance)} g"
            + (f"; {grams_text(self.returned)} g returned unopened)" if self.returned else ")")
        )


def dose_reconciliation(session: InfusionSession) -> DoseReconciliation:
    """Ordered against given (dispensed, or wasted after opening) and returned unopened."""
    totals = dict(
        session.dispenses.order_by().values_list("status").annotate(total=Sum("grams"))
    )
    given = sum((totals.get(status) or Decimal("0") for status in GIVEN_STATUSES), Decimal("0"))

    def tolerance() -> Decimal:
        products = set(session.dispenses.filter(status__in=GIVEN_STATUSES).values_list("product_id", flat=True))
        return dose_tolerance(products) if products else Decimal("0")

    return DoseReconciliation(
        ordered=session.ordered_grams,
        given=given,
        returned=totals.get(Dispense.Status.RETURNED_TO_STOCK) or Decimal("0"),
        tolerance=tolerance,
    )


def sessions_with_dose_discrepancy() -> list[tuple[InfusionSession, DoseReconciliation]]:
    """Sessions in progress up to today whose grams given differ from the order beyond tolerance,
    oldest first: the pharmacist's review list (each settles at completion with a reason)."""
    sessions = (
        InfusionSession.objects.filter(status=InfusionSession.Status.IN_PROGRESS, scheduled_date__lte=local_today())
        .select_related("patient")
        .order_by("scheduled_date", "pk")
    )
    found = []
    for session in sessions:
        dose = dose_reconciliation(session)
        if not dose.within_tolerance:
            found.append((session, dose))
    return found


def infusion_worklist() -> QuerySet[InfusionSession]:
    """What the nurses give today: sessions given here, scheduled up to today, in progress (vials
    dispensed) or whose infusion is still running, and today's finished ones, by patient name."""
    today = local_today()
    return (
        session_queryset()
        .filter(setting=InfusionSession.Setting.CLINIC, scheduled_date__lte=today)
        .filter(
            Q(status=InfusionSession.Status.IN_PROGRESS, scheduled_date__gte=today - timedelta(days=1))
            | Q(administration__status__in=[Administration.Status.RUNNING, Administration.Status.PAUSED])
            | Q(scheduled_date=today, administration__isnull=False)
        )
        .order_by("patient__name", "pk")
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


def baseline_session(patient: Patient, *, exclude: InfusionSession | None = None) -> InfusionSession | None:
    """The patient's last infusion before this one: the latest other session in which something
    was given (completed, or still in progress), which is what a switch is measured against."""
    sessions = InfusionSession.objects.filter(
        patient=patient,
        status__in=[InfusionSession.Status.COMPLETED, InfusionSession.Status.IN_PROGRESS],
        dispenses__status__in=GIVEN_STATUSES,
    )
    if exclude is not None and exclude.pk:
        sessions = sessions.exclude(pk=exclude.pk)
        # Only what came before: a session ordered later does not set this one's baseline.
        sessions = sessions.filter(scheduled_date__lte=exclude.scheduled_date).exclude(
            scheduled_date=exclude.scheduled_date, pk__gt=exclude.pk)
    return sessions.distinct().order_by("-scheduled_date", "-id").first()


@dataclass(frozen=True)
class Baseline:
    """The patient's last infusion before a session (baseline_session()), as a switch is measured
    against it: when and by which route, and its brands, most grams first (then by brand)."""

    session_id: int
    scheduled_date: date
    route: str
    product_ids: tuple[int, ...]


def baseline_of(patient: Patient, *, exclude: InfusionSession) -> Baseline | None:
    """baseline_session() and the brands given in it (products_given()), in one query of a few
    columns: the given dispenses of the baseline session (a baseline session has at least one).

    Note: plain SQL (the same on PostgreSQL and SQLite), not the ORM: every dispense reads it, and
    compiling the ORM's subquery cost more than the query itself (2.5 ms against 0.2 ms)."""
    dispense, session, product = (m._meta.db_table for m in (Dispense, InfusionSession, Product))
    given = ", ".join(["%s"] * len(GIVEN_STATUSES))
    before, params = "", []
    if exclude.pk:
        # Only what came before: a session ordered later does not set this one's baseline.
        before = "AND s.id <> %s AND s.scheduled_date <= %s AND NOT (s.scheduled_date = %s AND s.id > %s)"
        params = [exclude.pk, exclude.scheduled_date, exclude.scheduled_date, exclude.pk]
    sql = (
        f"SELECT d.session_id, b.scheduled_date, b.route, d.product_id, p.brand, d.grams "
        f"FROM {dispense} d JOIN {session} b ON b.id = d.session_id JOIN {product} p ON p.id = d.product_id "
        f"WHERE d.status IN ({given}) AND d.session_id = ("
        f"SELECT s.id FROM {session} s WHERE s.patient_id = %s AND s.status IN (%s, %s) {before} "
        f"AND EXISTS (SELECT 1 FROM {dispense} g WHERE g.session_id = s.id AND g.status IN ({given})) "
        f"ORDER BY s.scheduled_date DESC, s.id DESC LIMIT 1)"
    )
    statuses = [str(status) for status in GIVEN_STATUSES]
    params = [*statuses, patient.pk, str(InfusionSession.Status.COMPLETED), str(InfusionSession.Status.IN_PROGRESS),
              *params, *statuses]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    grams: dict[int, Decimal] = defaultdict(Decimal)
    brands: dict[int, str] = {}
    for _, _, _, product_id, brand, amount in rows:
        grams[product_id] += Decimal(str(amount))  # SQLite hands back a number, PostgreSQL a Decimal
        brands[product_id] = brand
    session_id, day, route = rows[0][:3]
    day = InfusionSession._meta.get_field("scheduled_date").to_python(day)  # SQLite: text
    return Baseline(session_id, day, route, tuple(sorted(grams, key=lambda pk: (-grams[pk], brands[pk]))))


def lots_out_of_use_in(session: InfusionSession) -> list[Dispense]:
    """Vials still dispensed to the session (not returned, not wasted) whose lot has been recalled
    or quarantined since, or that were set aside themselves, without a pharmacist's decision."""
    return list(
        Dispense.objects.filter(session=session, status=Dispense.Status.DISPENSED, lot_decision_at__isnull=True)
        .exclude(vial__lot__status="released")
        .select_related("vial__lot")
        .order_by("pk")
    )


def products_given(session: InfusionSession) -> list[Product]:
    """The products the session's patient received in it, most grams first (then by brand), so the
    first one is the brand the patient is "on"."""
    return by_grams(
        Dispense.objects.filter(session=session, status__in=GIVEN_STATUSES).select_related("product__manufacturer")
    )


def by_grams(dispenses) -> list[Product]:
    grams: dict[int, Decimal] = defaultdict(Decimal)
    products: dict[int, Product] = {}
    for dispense in dispenses:
        grams[dispense.product_id] += dispense.grams
        products[dispense.product_id] = dispense.product
    return sorted(products.values(), key=lambda p: (-grams[p.pk], p.brand))


def current_products(patient: Patient, *, exclude: InfusionSession | None = None) -> list[Product]:
    """The brand(s) of the patient's last infusion (baseline_session); empty for a first infusion."""
    last = baseline_session(patient, exclude=exclude)
    return products_given(last) if last is not None else []


# --- who sees which patients (core.roles.patient_scope) -----------------------------------------


def upcoming_filter() -> Q:
    """Open sessions from yesterday to UPCOMING_DAYS ahead: what a technician works on."""
    today = local_today()
    return Q(
        status__in=InfusionSession.OPEN_STATUSES,
        scheduled_date__gte=today - timedelta(days=1),
        scheduled_date__lte=today + timedelta(days=UPCOMING_DAYS),
    )


def upcoming_sessions() -> QuerySet[InfusionSession]:
    """Open sessions from yesterday to UPCOMING_DAYS ahead: what a technician works on."""
    return InfusionSession.objects.filter(upcoming_filter())


def patients_in_scope(queryset: QuerySet[Patient], scope: str | None) -> QuerySet[Patient]:
    if scope == SCOPE_ALL:
        return queryset
    if scope == SCOPE_UPCOMING:
        return queryset.filter(pk__in=upcoming_sessions().values("patient_id"))
    return queryset.none()


def sessions_in_scope(queryset: QuerySet[InfusionSession], scope: str | None) -> QuerySet[InfusionSession]:
    if scope == SCOPE_ALL:
        return queryset
    if scope == SCOPE_UPCOMING:
        # The same filters on the list's own rows, not `pk IN (subquery)`: the list then reads
        # session_open_order backwards and stops at the page.
        return queryset.filter(upcoming_filter())
    return queryset.none()


def flags_in_scope(queryset: QuerySet[BrandSwitchFlag], scope: str | None) -> QuerySet[BrandSwitchFlag]:
    """Flags name the patient: a technician sees those of the sessions in the coming days."""
    if scope == SCOPE_ALL:
        return queryset
    if scope == SCOPE_UPCOMING:
        return queryset.filter(session_id__in=upcoming_sessions().values("pk"))
    return queryset.none()


# --- reads for FHIR (api.fhir and the export_fhir command) ----------------------------------------
# Each takes the patient and a half-open time range [since, until) and costs a fixed number of
# queries whatever it returns; the export pages through them by primary key.


def dispenses_for_fhir() -> QuerySet[Dispense]:
    """Dispenses with the patient, the vial's product, lot and maker, and the flag each raised."""
    return dispense_queryset().select_related("session__patient", "vial__presentation__product__manufacturer") \
        .prefetch_related(Prefetch("flags", queryset=BrandSwitchFlag.objects.select_related(
            "from_product", "to_product", "acknowledged_by").order_by("pk")))


def _given_dispenses(to_attr: str = "given_dispenses") -> Prefetch:
    return Prefetch(
        "session__dispenses",
        queryset=dispense_queryset().select_related("vial__presentation__product__manufacturer")
        .filter(status__in=GIVEN_STATUSES).order_by("pk"),
        to_attr=to_attr,
    )


def administrations_for_fhir() -> QuerySet[Administration]:
    """Administrations with their steps, fates and the vials given in their session."""
    return administration_queryset().prefetch_related(_given_dispenses())


def reactions_for_fhir() -> QuerySet[AdverseReaction]:
    """Reactions with the patient and the vials suspected: those given in the session, or those of
    the home infusion the reaction followed."""
    return AdverseReaction.objects.select_related(
        "session__patient", "recorded_by", "administration", "home_infusion",
    ).prefetch_related(
        _given_dispenses(),
        Prefetch("home_infusion__vials", queryset=HomeInfusionVial.objects.select_related(
            "dispense__vial__lot", "dispense__vial__presentation__product__manufacturer").order_by("dispense_id")),
    )


# --- treatment authorisations -----------------------------------------------------------------


def authorisation_queryset() -> QuerySet[TreatmentAuthorisation]:
    """Authorisations with their patient, product and people, and the doses used (annotated): one
    query for a page of any length."""
    return with_doses_used(TreatmentAuthorisation.objects.select_related(
        "patient", "product__manufacturer", "created_by", "revoked_by"))


def expiring_authorisations(*, days: int) -> QuerySet[TreatmentAuthorisation]:
    """Active authorisations ending between today and `days` from today, soonest first: renewals to
    ask for before a patient's next dose is refused."""
    today = local_today()
    return authorisation_queryset().filter(
        status=TreatmentAuthorisation.Status.ACTIVE, valid_until__gte=today,
        valid_until__lte=today + timedelta(days=days),
    ).order_by("valid_until", "pk")


def authorisation_discrepancies(state: str = "open") -> QuerySet[Dispense]:
    """Vials given outside their session's authorisation (a pharmacist overrode one of its checks)
    or without one, newest first: the pharmacy's discrepancy queue for the payer's reconciliation.
    Vials returned unopened were not given and drop out; `state` is open (not yet reconciled),
    reconciled or all."""
    dispenses = Dispense.objects.filter(outside_authorisation=True, status__in=GIVEN_STATUSES)
    if state != "all":
        dispenses = dispenses.filter(authorisation_reconciled_at__isnull=(state == "open"))
    return without_product_notes(
        dispenses.select_related(
            "session__patient", "vial__lot", "product__manufacturer", "authorisation", "dispensed_by",
            "authorisation_reconciled_by"),
        "product",
    ).order_by("-dispensed_at", "-pk")
