"""Infusion sessions and what happens in them: dispenses (scan per vial), vial picking, completion,
adverse reactions. Everyone with a need reads; technicians and pharmacists act."""

import django_filters
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import get_object_or_404
from django.urls import include, path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from api.routers import OptionalSlashRouter

from api.inventory_out import ProductBrief, VialOut
from api.access import LogsPatientAccess, record_patient_access
from api.permissions import (
    DispensePermission,
    OverrideDecisionPermission,
    ReactionPermission,
    SessionCompletePermission,
    SessionPermission,
)
from api.filters import IdFilter
from api.pagination import IdsFirstPagination
from api.serializers import DateTimeField, IdField, ModelSerializer, ReasonField, barcode_field, location_code_field, note_field, rendered, validated
from core.errors import InvalidInput
from core.text import grams_text
from inventory.rules import dispense_refusal
from inventory.exceptions import SuspectProduct
from inventory.selectors import vial_by_id, vial_from_scan
from inventory.services import suspect_scan_record
from inventory.services import location_by_code
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, DispenseOverride, InfusionSession, Patient
from traceability.picking import pick_vials
from traceability.authorisations import AuthorisationFinding, standing as authorisation_standing
from core.roles import patient_scope
from traceability.selectors import (
    GIVEN_STATUSES,
    dispense_queryset,
    reaction_queryset,
    session_queryset,
    sessions_by_ids,
    sessions_with_dose_discrepancy,
    sessions_in_scope,
)
from traceability.services import (
    dispense_check,
    dispense_lot_decision,
    dispense_advice,
    dispense_return_to_stock,
    dispense_waste,
    flag_advice,
    product_differences,
    reaction_record,
    session_cancel,
    session_complete,
    session_authorise,
    session_create,
    session_start,
    vial_dispense,
)
from traceability.models import TreatmentAuthorisation

# --- output ------------------------------------------------------------------------------------


class UsernameField(serializers.CharField):
    def to_representation(self, user) -> str:
        return user.get_username()


def _user() -> UsernameField:
    return UsernameField(read_only=True, allow_null=True)


class SessionPatientOut(ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "name"]


class FlagOut(ModelSerializer):
    from_product = ProductBrief(read_only=True)
    to_product = ProductBrief(read_only=True)
    acknowledged_by = _user()
    raised_by = serializers.IntegerField(source="raised_by_id", read_only=True, allow_null=True)
    advice = serializers.SerializerMethodField()

    class Meta:
        model = BrandSwitchFlag
        fields = [
            "id", "session", "kind", "from_product", "to_product", "differences", "status", "reason", "reason_text",
            "acknowledged_by", "acknowledged_at", "raised_by", "raised_at", "advice",
        ]

    def get_advice(self, flag: BrandSwitchFlag) -> str:
        return flag_advice(flag)


def one_to_one(obj, name: str):
    """A reverse one-to-one joined by the selector, or None where there is none."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


class VialFateOut(serializers.Serializer):
    fate = serializers.CharField(help_text="infused (whole), partial (the rest wasted) or not_opened (returned)")
    volume_left_ml = serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True)
    recorded_by = UsernameField()
    recorded_at = DateTimeField()


class DispenseOut(ModelSerializer):
    vial = VialOut(read_only=True)
    product = ProductBrief(read_only=True)
    dispensed_by = _user()
    closed_by = _user()
    lot_decision_by = _user()
    fate = serializers.SerializerMethodField(help_text="What became of the vial at the bedside, once recorded")
    used_at_home_on = serializers.SerializerMethodField(help_text="The day the patient reported using it at home")

    class Meta:
        model = Dispense
        fields = [
            "id", "session", "vial", "product", "grams", "status", "dispensed_by", "dispensed_at", "closed_reason",
            "closed_by", "closed_at", "checks", "lot_decision_reason", "lot_decision_by", "lot_decision_at",
            "fate", "used_at_home_on",
        ]

    @extend_schema_field(VialFateOut(allow_null=True))
    def get_fate(self, dispense: Dispense):
        fate = one_to_one(dispense, "fate")
        return rendered(VialFateOut, fate) if fate is not None else None

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_used_at_home_on(self, dispense: Dispense):
        use = one_to_one(dispense, "home_use")
        return use.home_infusion.infused_on.isoformat() if use is not None else None


class ReactionOut(ModelSerializer):
    recorded_by = _user()

    class Meta:
        model = AdverseReaction
        fields = ["id", "session", "administration", "home_infusion", "type", "type_other", "severity", "onset_at",
                  "rate_at_onset_ml_per_h", "rate_at_onset_ml_per_kg_per_h", "notes", "recorded_by", "recorded_at"]


class AdministrationTimesOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    started_at = DateTimeField(help_text="In the site's time zone")
    started_by = UsernameField()
    ended_at = DateTimeField(allow_null=True)
    ended_by = UsernameField(allow_null=True)
    stop_reason = serializers.CharField()
    premedication = serializers.CharField()


class SessionLotOut(serializers.Serializer):
    id = serializers.IntegerField()
    lot_number = serializers.CharField()
    expiry_date = serializers.DateField()
    status = serializers.CharField()
    brand = serializers.CharField()


class SessionAuthorisationOut(serializers.Serializer):
    id = serializers.IntegerField()
    payer_reference = serializers.CharField()
    status = serializers.CharField()
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    doses = serializers.IntegerField()
    interval_days = serializers.IntegerField()


class SessionOut(ModelSerializer):
    """A session with what was given in it. Everything nested comes from session_queryset()'s
    prefetches, so a page costs the same few queries whatever its length."""

    patient = SessionPatientOut(read_only=True)
    completed_by = _user()
    brands = serializers.SerializerMethodField()
    lots = serializers.SerializerMethodField()
    open_flags = serializers.SerializerMethodField()
    dispenses = DispenseOut(many=True, read_only=True, source="dispense_list")
    flags = FlagOut(many=True, read_only=True, source="flag_list")
    reactions = ReactionOut(many=True, read_only=True, source="reaction_list")
    administration = serializers.SerializerMethodField(
        help_text="The infusion as the nurse recorded it (times; steps at /api/administrations/{id})")
    authorisation = SessionAuthorisationOut(read_only=True, allow_null=True,
                                            help_text="The treatment authorisation it is given under")

    class Meta:
        model = InfusionSession
        fields = [
            "id", "patient", "scheduled_date", "site", "indication", "indication_other", "dose_g_per_kg",
            "ordered_grams", "grams_dispensed", "route", "setting", "status", "completed_at", "completed_by", "notes",
            "discrepancy_reason", "created_at", "brands", "lots", "open_flags", "administration", "dispenses", "flags",
            "reactions", "authorisation",
        ]

    @extend_schema_field(AdministrationTimesOut(allow_null=True))
    def get_administration(self, session: InfusionSession):
        administration = one_to_one(session, "administration")
        return rendered(AdministrationTimesOut, administration) if administration is not None else None

    @staticmethod
    def _given(session: InfusionSession) -> list[Dispense]:
        return [d for d in session.dispense_list if d.status in GIVEN_STATUSES]

    def get_brands(self, session: InfusionSession) -> list[str]:
        """The brands the patient was given in this session (vials returned unopened do not count)."""
        return sorted({d.product.brand for d in self._given(session)})

    @extend_schema_field(SessionLotOut(many=True))
    def get_lots(self, session: InfusionSession):
        # Plain values, as SessionLotOut would give them: a serialiser built per session of a
        # page (or of a patient's 100 sessions) costs more than the rest of the session.
        lots = {}
        for d in self._given(session):
            lot = d.vial.lot
            lots[lot.pk] = {
                "id": lot.pk, "lot_number": lot.lot_number, "expiry_date": lot.expiry_date.isoformat(),
                "status": lot.status, "brand": d.product.brand,
            }
        return sorted(lots.values(), key=lambda row: row["lot_number"])

    def get_open_flags(self, session: InfusionSession) -> int:
        return sum(1 for flag in session.flag_list if flag.status == BrandSwitchFlag.Status.OPEN)


class DispenseResultOut(serializers.Serializer):
    dispense = DispenseOut()
    flags_raised = FlagOut(many=True)
    advice = serializers.CharField(allow_null=True, help_text="Say it to the technician when a flag was raised")


class BrandSwitchOut(serializers.Serializer):
    from_product = ProductBrief()
    to_product = ProductBrief()
    differences = serializers.ListField(child=serializers.DictField())
    advice = serializers.CharField()


class PickOut(serializers.Serializer):
    session = serializers.IntegerField()
    needed_grams = serializers.DecimalField(max_digits=9, decimal_places=2)
    already_dispensed_grams = serializers.DecimalField(max_digits=9, decimal_places=2)
    total_grams = serializers.DecimalField(max_digits=9, decimal_places=2)
    overfill_grams = serializers.DecimalField(max_digits=9, decimal_places=2)
    vials = VialOut(many=True)
    brands = serializers.ListField(child=serializers.CharField())
    mixes_brands = serializers.BooleanField()
    brand_switch = BrandSwitchOut(allow_null=True)


# --- input -------------------------------------------------------------------------------------


class SessionIn(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all())
    scheduled_date = serializers.DateField()
    indication = serializers.ChoiceField(choices=InfusionSession.Indication.choices)
    indication_other = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    site = serializers.CharField(required=False, allow_blank=True, default="", max_length=80)
    notes = note_field(default="")
    ordered_grams = serializers.DecimalField(max_digits=7, decimal_places=2, required=False, allow_null=True)
    dose_g_per_kg = serializers.DecimalField(max_digits=5, decimal_places=3, required=False, allow_null=True)
    route = serializers.ChoiceField(choices=InfusionSession.Route.choices, default=InfusionSession.Route.IV)
    setting = serializers.ChoiceField(
        choices=InfusionSession.Setting.choices, default=InfusionSession.Setting.CLINIC,
        help_text="home: a supply the patient infuses at home and reports (POST /api/home-infusions/)")
    authorisation = IdField(
        required=False, allow_null=True, default=None,
        help_text="The patient's treatment authorisation; with it the dose may be left out (the authorised dose)")


class SessionAuthoriseIn(serializers.Serializer):
    authorisation = IdField()


class SessionReasonIn(serializers.Serializer):
    reason = ReasonField()


class VialRefIn(serializers.Serializer):
    barcode = barcode_field(required=False, help_text="The raw scan")
    vial = serializers.IntegerField(required=False, min_value=1, help_text="A vial id, when it was picked rather than scanned")

    def validate(self, data):
        if ("barcode" in data) == ("vial" in data):
            raise serializers.ValidationError("Send either a barcode or a vial id.")
        return data


class DispenseIn(VialRefIn):
    acknowledge = serializers.ListField(
        child=serializers.CharField(max_length=40), required=False, default=list, max_length=20,
        help_text="The checks of the cautions the technician saw and acknowledged (dispense-check lists them)")
    patient_mrn = serializers.CharField(
        required=False, max_length=32,
        help_text="The MRN of the patient identified at the bench (wristband or confirmed card); must be the session's")


class CompleteIn(serializers.Serializer):
    discrepancy_reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000,
        help_text="Why the grams given differ from the order beyond tolerance (required then)")


class CheckFindingOut(serializers.Serializer):
    check = serializers.CharField()
    code = serializers.CharField(help_text="The error code a dispense refused on this check carries")
    kind = serializers.ChoiceField(choices=["contraindication", "caution"])
    detail = serializers.CharField()
    source = serializers.CharField()
    override = serializers.DictField(allow_null=True, help_text="{id, status} of the override for it, if any")


class AuthorisationStandingOut(serializers.Serializer):
    id = serializers.IntegerField()
    payer_reference = serializers.CharField()
    status = serializers.CharField()
    state = serializers.CharField(help_text="current, expired, not_yet_valid, used_up or revoked on the infusion day")
    product = serializers.CharField(allow_null=True, help_text="The brand authorised; null: any brand of the route")
    route = serializers.CharField()
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    days_left = serializers.IntegerField(help_text="Days from today to valid_until")
    doses = serializers.IntegerField()
    dose_number = serializers.IntegerField(help_text="This session's dose, counting the sessions given before it")
    doses_remaining_after_this = serializers.IntegerField()
    interval_days = serializers.IntegerField()


class DoseOut(serializers.Serializer):
    ordered_grams = serializers.CharField()
    given_grams = serializers.CharField(help_text="Given after this vial, for a check; given so far, for a session")
    returned_grams = serializers.CharField()
    tolerance_grams = serializers.CharField()
    within_tolerance = serializers.BooleanField()
    exceeds = serializers.BooleanField(help_text="More than the tolerance over the order")
    override = serializers.DictField(allow_null=True)


class DoseDiscrepancyOut(serializers.Serializer):
    session = serializers.IntegerField()
    patient = SessionPatientOut()
    scheduled_date = serializers.DateField()
    dose = DoseOut()


class DispenseCheckOut(serializers.Serializer):
    session = serializers.IntegerField()
    patient = serializers.DictField(help_text="id, mrn, name, date_of_birth: confirm before dispensing")
    vial = VialOut()
    refusal = serializers.DictField(allow_null=True, help_text="{code, detail} when the vial itself may not be given")
    contraindications = CheckFindingOut(many=True)
    cautions = CheckFindingOut(many=True)
    dose = DoseOut()
    authorisation = AuthorisationStandingOut(allow_null=True, help_text="The session's treatment authorisation")
    authorisation_checks = CheckFindingOut(
        many=True, help_text="The checks of the authorisation this vial fails, each overridable by a pharmacist")
    ready = serializers.BooleanField(help_text="Dispensable now, once the cautions are acknowledged")


class ReturnIn(serializers.Serializer):
    location = location_code_field(help_text="The scannable code of the shelf it goes back to")
    reason = ReasonField()


class ReactionIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=AdverseReaction.Type.choices)
    type_other = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    severity = serializers.ChoiceField(choices=AdverseReaction.Severity.choices)
    onset_at = DateTimeField()
    notes = note_field(default="")


# --- views -------------------------------------------------------------------------------------


class SessionFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    mrn = django_filters.CharFilter(field_name="patient__mrn")
    date_from = django_filters.DateFilter(field_name="scheduled_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="scheduled_date", lookup_expr="lte")
    status = django_filters.MultipleChoiceFilter(choices=InfusionSession.Status.choices)
    brand = django_filters.CharFilter(method="filter_brand", label="Sessions in which this brand was given")

    class Meta:
        model = InfusionSession
        fields = ["patient", "mrn", "date_from", "date_to", "status", "brand"]

    def filter_brand(self, queryset, name, value):
        # Exists, not a join: a session with several vials of the brand is listed once.
        given = Dispense.objects.filter(
            session=OuterRef("pk"), product__brand__iexact=value, status__in=GIVEN_STATUSES
        )
        return queryset.filter(Exists(given))


def vial_from(data: dict, request):
    """The vial a request names, by id or by its scan. A scan naming a vial we hold on another
    lot is put before a pharmacist (a suspect product), then refused."""
    if "barcode" not in data:
        return vial_by_id(data["vial"])
    try:
        return vial_from_scan(data["barcode"])
    except SuspectProduct as suspect:
        suspect_scan_record(raw=data["barcode"], suspect=suspect, actor=request.user)
        raise


def _override_ref(override) -> dict | None:
    return {"id": override.pk, "status": override.status} if override is not None else None


def _dose_body(dose, *, exceeds: bool | None = None, override=None) -> dict:
    return {
        "ordered_grams": grams_text(dose.ordered), "given_grams": grams_text(dose.given),
        "returned_grams": grams_text(dose.returned), "tolerance_grams": grams_text(dose.tolerance),
        "within_tolerance": dose.within_tolerance,
        "exceeds": dose.difference > dose.tolerance if exceeds is None else exceeds,
        "override": _override_ref(override),
    }


def dispense_check_body(session: InfusionSession, vial) -> dict:
    check = dispense_check(session=session, vial=vial)
    refusal = dispense_refusal(vial, on=session.scheduled_date)
    pending = {
        (o.product_id, o.check_code): o
        for o in DispenseOverride.objects.filter(session=session).exclude(status=DispenseOverride.Status.DECLINED)
    }

    def finding(f, granted=None):
        product_id = vial.presentation.product_id
        if isinstance(f, AuthorisationFinding) and not f.per_product:
            product_id = None
        override = granted or pending.get((product_id, f.check))
        return {"check": f.check, "code": f.code, "kind": f.kind, "detail": f.message, "source": f.source,
                "override": _override_ref(override)}

    dose = check.dose_after
    dose_override = check.dose_override or pending.get((None, DispenseOverride.DOSE_EXCESS))
    patient = session.patient
    return {
        "session": session.pk,
        "patient": {"id": patient.pk, "mrn": patient.mrn, "name": patient.name,
                    "date_of_birth": patient.date_of_birth.isoformat()},
        "vial": vial,
        "refusal": {"code": refusal.code, "detail": refusal.message} if refusal else None,
        "contraindications": [finding(f, granted) for f, granted in check.contraindications],
        "cautions": [finding(f) for f in check.cautions],
        "dose": _dose_body(dose, exceeds=check.exceeds_dose, override=dose_override),
        "authorisation": authorisation_standing(session).as_dict(),
        "authorisation_checks": [finding(f, granted) for f, granted in check.authorisation],
        "ready": refusal is None and not check.blocking and not check.unauthorised
        and not (check.exceeds_dose and check.dose_override is None),
    }


def _authorisation(pk: int | None) -> TreatmentAuthorisation | None:
    """The authorisation a request names (the service refuses one that does not cover the order)."""
    if pk is None:
        return None
    authorisation = TreatmentAuthorisation.objects.select_related("product").filter(pk=pk).first()
    if authorisation is None:
        raise InvalidInput(f"No treatment authorisation {pk}.", code="unknown_authorisation")
    return authorisation


def _session(request, pk) -> InfusionSession:
    """The session, if the caller may see it: a technician's are those of the coming days."""
    sessions = sessions_in_scope(InfusionSession.objects.select_related("patient"), patient_scope(request.user))
    return get_object_or_404(sessions, pk=pk)


def _session_ref(request, pk) -> InfusionSession:
    """The session, if the caller may see it, as its id only: for a service that reads and locks
    the row itself (the dispense)."""
    sessions = sessions_in_scope(InfusionSession.objects.only("pk"), patient_scope(request.user))
    return get_object_or_404(sessions, pk=pk)


def _session_out(pk) -> dict:
    return SessionOut(session_queryset().get(pk=pk)).data


class SessionViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [SessionPermission]
    pagination_class = IdsFirstPagination
    lookup_value_regex = r"[0-9]+"
    serializer_class = SessionOut
    filterset_class = SessionFilter
    ordering_fields = ["scheduled_date", "created_at", "id"]

    def get_queryset(self):
        return sessions_in_scope(session_queryset(), patient_scope(self.request.user)).order_by("-scheduled_date", "-id")

    def list(self, request, *args, **kwargs):
        # The page from one kept serialiser (api.serializers.rendered): DRF would build a session's
        # nested serialisers' fields again on every request.
        # The page's rows by key from a query compiled once (the keys come from the filtered list).
        self.paginator.rows_by_ids = sessions_by_ids
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response([rendered(SessionOut, session) for session in page])

    @extend_schema(request=SessionIn, responses={201: SessionOut})
    def create(self, request):
        """Order an infusion: `ordered_grams`, or `dose_g_per_kg` times the patient's weight."""
        data = validated(SessionIn, request.data)
        session = session_create(
            patient=data["patient"],
            scheduled_date=data["scheduled_date"],
            indication=data["indication"],
            indication_other=data["indication_other"],
            site=data["site"],
            notes=data["notes"],
            ordered_grams=data.get("ordered_grams"),
            dose_g_per_kg=data.get("dose_g_per_kg"),
            route=data["route"],
            setting=data["setting"],
            authorisation=_authorisation(data["authorisation"]),
            actor=request.user,
        )
        return Response(_session_out(session.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=SessionAuthoriseIn, responses={200: SessionOut})
    @action(detail=True, methods=["post"])
    def authorisation(self, request, pk=None):
        """Put an open session under one of the patient's treatment authorisations (an urgent order
        whose approval came after it, or a renewal)."""
        data = validated(SessionAuthoriseIn, request.data)
        session = _session(request, pk)
        authorisation = _authorisation(data["authorisation"])
        session = session_authorise(session=session, authorisation=authorisation, actor=request.user)
        return Response(_session_out(session.pk))

    @extend_schema(request=None, responses={200: SessionOut})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a scheduled infusion (the first dispense also starts it)."""
        session = session_start(session=_session(request, pk), actor=request.user)
        return Response(_session_out(session.pk))

    @extend_schema(request=SessionReasonIn, responses={200: SessionOut})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel an open session (reason required); refused while vials are dispensed to it."""
        data = validated(SessionReasonIn, request.data)
        session = session_cancel(session=_session(request, pk), reason=data["reason"], actor=request.user)
        return Response(_session_out(session.pk))

    @extend_schema(request=CompleteIn, responses={200: SessionOut})
    @action(detail=True, methods=["post"], permission_classes=[SessionCompletePermission])
    def complete(self, request, pk=None):
        """Complete the infusion, recording grams dispensed against grams ordered. Refused while a
        brand-switch flag is open, and when the grams given differ from the order beyond tolerance
        without a `discrepancy_reason`."""
        data = validated(CompleteIn, request.data)
        session = session_complete(session=_session(request, pk), actor=request.user,
                                   discrepancy_reason=data["discrepancy_reason"])
        return Response(_session_out(session.pk))

    @extend_schema(responses={200: DoseDiscrepancyOut(many=True)})
    @action(detail=False, methods=["get"], url_path="dose-discrepancies", pagination_class=None, filterset_class=None)
    def dose_discrepancies(self, request):
        """Sessions in progress whose grams given differ from the order beyond tolerance, oldest
        first, for the pharmacist's review."""
        visible = set(sessions_in_scope(InfusionSession.objects.all(), patient_scope(request.user)).values_list("pk", flat=True))
        found = [(session, dose) for session, dose in sessions_with_dose_discrepancy() if session.pk in visible]
        record_patient_access(request, [session.patient_id for session, _ in found])
        body = [{"session": session.pk, "patient": session.patient, "scheduled_date": session.scheduled_date,
                 "dose": _dose_body(dose)} for session, dose in found]
        return Response(DoseDiscrepancyOut(body, many=True).data)

    @extend_schema(request=VialRefIn, responses={200: DispenseCheckOut})
    @action(detail=True, methods=["post"], url_path="dispense-check", permission_classes=[DispensePermission])
    def dispense_check(self, request, pk=None):
        """What dispensing this vial to the session would meet, changing nothing: the patient to
        confirm, the vial's own refusal if any, contraindications (with their overrides), cautions
        to acknowledge, and the dose after it."""
        data = validated(VialRefIn, request.data)
        session = _session(request, pk)
        vial = vial_from(data, request)
        record_patient_access(request, [session.patient_id])
        return Response(DispenseCheckOut(dispense_check_body(session, vial)).data)

    @extend_schema(request=DispenseIn, responses={201: DispenseResultOut})
    @action(detail=True, methods=["post"], permission_classes=[DispensePermission])
    def dispenses(self, request, pk=None):
        """Dispense one vial to the session, by its raw scan or its id."""
        data = validated(DispenseIn, request.data)
        session = _session_ref(request, pk)
        vial = vial_from(data, request)
        dispense = vial_dispense(session=session, vial=vial, actor=request.user, acknowledged=data["acknowledge"],
                                 patient_mrn=data.get("patient_mrn"))
        flags = dispense.flags_raised
        body = {
            # The service's own objects: the locked vial brings lot, product and maker, the user is
            # the caller, the flags are those it raised (in order); nothing is read again to answer.
            "dispense": rendered(DispenseOut, dispense),
            "flags_raised": [rendered(FlagOut, flag) for flag in flags],
            "advice": dispense_advice(flags),
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: PickOut})
    @action(detail=True, methods=["post"], permission_classes=[DispensePermission])
    def pick(self, request, pk=None):
        """Propose the vials to take from the shelf for the rest of the dose. Changes nothing."""
        session = _session(request, pk)
        pick = pick_vials(session=session)
        switch = None
        if pick.brand_switch is not None:
            old, new = pick.brand_switch
            switch = {
                "from_product": old,
                "to_product": new,
                "differences": product_differences(old, new),
                "advice": flag_advice(BrandSwitchFlag(kind=BrandSwitchFlag.Kind.SWITCH, from_product=old, to_product=new)),
            }
        body = {
            "session": session.pk,
            "needed_grams": pick.needed_grams,
            "already_dispensed_grams": pick.already_dispensed_grams,
            "total_grams": pick.total_grams,
            "overfill_grams": pick.overfill_grams,
            "vials": pick.vials,
            "brands": [p.brand for p in pick.products],
            "mixes_brands": pick.mixes_brands,
            "brand_switch": switch,
        }
        return Response(PickOut(body).data)

    @extend_schema(methods=["GET"], responses={200: ReactionOut(many=True)}, filters=False)
    @extend_schema(methods=["POST"], request=ReactionIn, responses={201: ReactionOut})
    @action(detail=True, methods=["get", "post"], permission_classes=[ReactionPermission], filter_backends=[])
    def reactions(self, request, pk=None):
        """The adverse reactions recorded in the session, a page at a time; POST records one
        (pharmacists)."""
        session = _session(request, pk)
        if request.method == "GET":
            reactions = reaction_queryset().filter(session=session).order_by("onset_at", "pk")
            page = self.paginator.paginate_queryset(reactions, request, view=self)
            # The reactions are the session's patient's: logged as a read of that patient.
            record_patient_access(request, [session.patient_id])
            return self.get_paginated_response(ReactionOut(page, many=True).data)
        data = validated(ReactionIn, request.data)
        reaction = reaction_record(session=session, actor=request.user, **data)
        return Response(ReactionOut(reaction_queryset().get(pk=reaction.pk)).data, status=status.HTTP_201_CREATED)


class DispenseFilter(django_filters.FilterSet):
    vial = IdFilter(field_name="vial_id")
    session = IdFilter(field_name="session_id")
    lot_out_of_use = django_filters.BooleanFilter(
        method="filter_lot_out_of_use",
        label="Vials still out to a session whose lot was recalled or quarantined since, undecided (true)")

    class Meta:
        model = Dispense
        fields = ["vial", "session", "status", "lot_out_of_use"]

    def filter_lot_out_of_use(self, queryset, name, value):
        out = Q(status=Dispense.Status.DISPENSED, lot_decision_at__isnull=True) & ~Q(vial__lot__status="released")
        return queryset.filter(out) if value else queryset.exclude(out)


class DispenseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A dispense is never deleted: an unopened vial is returned to stock, an opened one wasted.
    The list answers "which dispense holds this vial now?" (`?vial=<id>&status=dispensed`)."""

    permission_classes = [DispensePermission]
    lookup_value_regex = r"[0-9]+"
    pagination_class = IdsFirstPagination
    serializer_class = DispenseOut
    filterset_class = DispenseFilter
    ordering_fields = ["dispensed_at"]

    def get_queryset(self):
        return dispense_queryset().order_by("-dispensed_at", "-pk")

    def _dispense(self, pk) -> Dispense:
        return get_object_or_404(Dispense, pk=pk)

    @extend_schema(request=ReturnIn, responses={200: DispenseOut})
    @action(detail=True, methods=["post"], url_path="return")
    def return_to_stock(self, request, pk=None):
        """Return an unopened vial to a shelf (reason required)."""
        data = validated(ReturnIn, request.data)
        dispense = dispense_return_to_stock(
            dispense=self._dispense(pk),
            location=location_by_code(data["location"]),
            reason=data["reason"],
            actor=request.user,
        )
        return Response(DispenseOut(dispense_queryset().get(pk=dispense.pk)).data)

    @extend_schema(request=SessionReasonIn, responses={200: DispenseOut})
    @action(detail=True, methods=["post"], url_path="lot-decision", permission_classes=[OverrideDecisionPermission])
    def lot_decision(self, request, pk=None):
        """A pharmacist records that a vial whose lot was recalled or quarantined after it was
        dispensed was given all the same, so its session may be completed (reason required)."""
        data = validated(SessionReasonIn, request.data)
        dispense = dispense_lot_decision(dispense=self._dispense(pk), reason=data["reason"], actor=request.user)
        return Response(DispenseOut(dispense_queryset().get(pk=dispense.pk)).data)

    @extend_schema(request=SessionReasonIn, responses={200: DispenseOut})
    @action(detail=True, methods=["post"])
    def waste(self, request, pk=None):
        """Waste an opened or partly used vial (reason required)."""
        data = validated(SessionReasonIn, request.data)
        dispense = dispense_waste(dispense=self._dispense(pk), reason=data["reason"], actor=request.user)
        return Response(DispenseOut(dispense_queryset().get(pk=dispense.pk)).data)


router = OptionalSlashRouter()
# Accept paths with and without the trailing slash (`/sessions/1/dispenses` as in the docs).
router.register("sessions", SessionViewSet, basename="session")
router.register("dispenses", DispenseViewSet, basename="dispense")
urlpatterns = [path("", include(router.urls))]
