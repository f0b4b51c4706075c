"""Treatment authorisations: pharmacists record and revoke them, pharmacists and auditors read them
and their reports (ending soon; vials given outside or without one). The dose calculator gives the
dosing weight, the grams of a dose and the vials from stock that make it up with the least waste."""

import django_filters
from django.conf import settings
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import include, path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from api.access import LogsPatientAccess, record_patient_access
from api.filters import IdFilter
from api.inventory_out import ProductBrief, VialOut
from api.permissions import AuthorisationPermission, DoseCalculatorPermission
from api.routers import OptionalSlashRouter
from api.serializers import IdField, ModelSerializer, ReasonField, note_field, validated
from api.sessions import SessionPatientOut, _user
from core.errors import ApplicationError, InvalidInput
from core.text import grams_text
from inventory.models import Presentation, Product, local_today
from traceability.authorisations import (
    authorisation_create,
    authorisation_revoke,
    authorised_grams,
    discrepancy_reconcile,
    smallest_cover,
    state_on,
)
from traceability.models import Dispense, DispenseOverride, InfusionSession, Patient, TreatmentAuthorisation
from traceability.picking import pick_for_dose
from traceability.selectors import authorisation_discrepancies, authorisation_queryset, expiring_authorisations

MAX_EXPIRY_DAYS = 366


# --- output ------------------------------------------------------------------------------------


class DosingWeightOut(serializers.Serializer):
    basis = serializers.CharField(help_text="actual, ideal or adjusted")
    actual_kg = serializers.CharField()
    ideal_kg = serializers.CharField(allow_null=True, help_text="Devine: 50 kg (men) or 45.5 kg (women) + 2.3 kg per inch over 5 ft")
    adjusted_kg = serializers.CharField(allow_null=True, help_text="IBW + 0.4 × (actual − IBW)")
    dosing_kg = serializers.CharField(help_text="The weight the dose is worked out from")
    note = serializers.CharField()


class AuthorisationOut(ModelSerializer):
    """An authorisation with the doses used so far (annotated by authorisation_queryset) and what
    that leaves, its state today, and the grams of one dose for the patient as recorded now."""

    patient = SessionPatientOut(read_only=True)
    product = ProductBrief(read_only=True, allow_null=True)
    created_by = _user()
    revoked_by = _user()
    doses_used = serializers.IntegerField(read_only=True)
    doses_remaining = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField(
        help_text="current, expired, not_yet_valid, used_up or revoked, as of today")
    days_left = serializers.SerializerMethodField(help_text="Days from today to valid_until (negative once ended)")
    grams_per_dose = serializers.SerializerMethodField(
        help_text="One dose in grams for the patient as recorded now (null when the weight, height or sex it needs is missing)")

    class Meta:
        model = TreatmentAuthorisation
        fields = [
            "id", "patient", "indication", "indication_other", "product", "route", "dose_grams", "dose_g_per_kg",
            "weight_basis", "grams_per_dose", "interval_days", "doses", "doses_used", "doses_remaining", "valid_from",
            "valid_until", "days_left", "state", "prescriber", "approver", "payer_reference", "notes", "status",
            "revoked_reason", "revoked_by", "revoked_at", "created_by", "created_at",
        ]

    def get_doses_remaining(self, a: TreatmentAuthorisation) -> int:
        return max(a.doses - a.doses_used, 0)

    def get_state(self, a: TreatmentAuthorisation) -> str:
        return state_on(a, local_today(), a.doses_used)

    def get_days_left(self, a: TreatmentAuthorisation) -> int:
        return (a.valid_until - local_today()).days

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_grams_per_dose(self, a: TreatmentAuthorisation):
        try:
            return grams_text(authorised_grams(a, a.patient)[0])
        except ApplicationError:
            return None


class AuthorisationBrief(serializers.Serializer):
    id = serializers.IntegerField()
    payer_reference = serializers.CharField()
    valid_until = serializers.DateField()
    status = serializers.CharField()


class OverriddenCheckOut(serializers.Serializer):
    check = serializers.CharField(help_text="authorisation_missing, authorisation_dose, ...")
    detail = serializers.CharField()
    override = serializers.IntegerField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True)
    decision_reason = serializers.CharField(allow_null=True)


class DiscrepancyOut(serializers.Serializer):
    dispense = serializers.IntegerField()
    dispensed_at = serializers.DateTimeField()
    dispensed_by = serializers.CharField()
    session = serializers.IntegerField()
    scheduled_date = serializers.DateField()
    patient = SessionPatientOut()
    brand = serializers.CharField()
    grams = serializers.DecimalField(max_digits=6, decimal_places=2)
    lot_number = serializers.CharField()
    serial = serializers.CharField()
    authorisation = AuthorisationBrief(allow_null=True)
    reason = serializers.CharField(
        help_text="no_authorisation: the session had none; override: a pharmacist overrode a check of it")
    checks = OverriddenCheckOut(many=True)
    reconciled_at = serializers.DateTimeField(allow_null=True)
    reconciled_by = serializers.CharField(allow_null=True)
    reconciliation = serializers.CharField(help_text="How it was settled with the payer, once reconciled")


class DiscrepanciesIn(serializers.Serializer):
    state = serializers.ChoiceField(choices=["open", "reconciled", "all"], required=False, default="open",
                                    help_text="open (default): not yet reconciled")


class ReconcileIn(serializers.Serializer):
    note = ReasonField(help_text="How it was settled with the payer: e.g. retrospective approval BS-20261130-7")


class DoseCalculationOut(serializers.Serializer):
    patient = SessionPatientOut()
    authorisation = serializers.IntegerField()
    dosing_weight = DosingWeightOut(allow_null=True, help_text="For a dose in g/kg")
    dose_g_per_kg = serializers.CharField(allow_null=True)
    grams = serializers.CharField(help_text="One dose in grams")
    grams_in_whole_vials = serializers.CharField(
        allow_null=True, help_text="The smallest total whole vials of the products concerned make; a dispense may reach it")
    vials = VialOut(many=True, help_text="From stock: the vials that make up the dose wasting least")
    total_grams = serializers.CharField()
    overfill_grams = serializers.CharField()
    brands = serializers.ListField(child=serializers.CharField())


# --- input -------------------------------------------------------------------------------------


class AuthorisationIn(serializers.Serializer):
    patient = IdField()
    indication = serializers.ChoiceField(choices=InfusionSession.Indication.choices)
    indication_other = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    product = IdField(required=False, allow_null=True, default=None, help_text="One brand; leave out for any brand of the route")
    route = serializers.ChoiceField(choices=InfusionSession.Route.choices, default=InfusionSession.Route.IV)
    dose_grams = serializers.DecimalField(max_digits=7, decimal_places=2, required=False, allow_null=True, default=None)
    dose_g_per_kg = serializers.DecimalField(max_digits=5, decimal_places=3, required=False, allow_null=True, default=None)
    weight_basis = serializers.ChoiceField(choices=TreatmentAuthorisation.WeightBasis.choices,
                                           default=TreatmentAuthorisation.WeightBasis.ACTUAL)
    interval_days = serializers.IntegerField(min_value=0, max_value=366)
    doses = serializers.IntegerField(min_value=1, max_value=100)
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    prescriber = serializers.CharField(max_length=120)
    approver = serializers.CharField(max_length=120)
    payer_reference = serializers.CharField(required=False, allow_blank=True, default="", max_length=60)
    notes = note_field(default="")


class RevokeIn(serializers.Serializer):
    reason = ReasonField()


class ExpiringIn(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=0, max_value=MAX_EXPIRY_DAYS)


class DoseIn(serializers.Serializer):
    patient = IdField()
    authorisation = IdField()


# --- views -------------------------------------------------------------------------------------


class AuthorisationFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    mrn = django_filters.CharFilter(field_name="patient__mrn")
    status = django_filters.ChoiceFilter(choices=TreatmentAuthorisation.Status.choices)
    current = django_filters.BooleanFilter(method="filter_current", label="Active and within its dates today (true)")

    class Meta:
        model = TreatmentAuthorisation
        fields = ["patient", "mrn", "status", "current"]

    def filter_current(self, queryset, name, value):
        today = local_today()
        now = Q(status=TreatmentAuthorisation.Status.ACTIVE, valid_from__lte=today, valid_until__gte=today)
        return queryset.filter(now) if value else queryset.exclude(now)


def _product(product_id: int | None) -> Product | None:
    if product_id is None:
        return None
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise InvalidInput(f"No product {product_id}.", code="unknown_product")
    return product


def _discrepancy_rows(dispenses) -> list[dict]:
    """The rows of a page of the queue, with the overrides they relied on (one query for the page)."""
    override_ids = {c.get("override") for d in dispenses for c in d.checks if c.get("kind") == "authorisation"}
    overrides = {o.pk: o for o in DispenseOverride.objects.filter(pk__in=override_ids - {None}).select_related("decided_by")}
    rows = []
    for d in dispenses:
        checks = []
        for c in d.checks:
            if c.get("kind") != "authorisation":
                continue
            o = overrides.get(c.get("override"))
            checks.append({"check": c["check"], "detail": c.get("detail", ""), "override": c.get("override"),
                           "decided_by": o.decided_by.get_username() if o and o.decided_by else None,
                           "decision_reason": o.decision_reason if o else None})
        rows.append({
            "dispense": d.pk, "dispensed_at": d.dispensed_at, "dispensed_by": d.dispensed_by.get_username(),
            "session": d.session_id, "scheduled_date": d.session.scheduled_date, "patient": d.session.patient,
            "brand": d.product.brand, "grams": d.grams, "lot_number": d.vial.lot.lot_number, "serial": d.vial.serial,
            "authorisation": d.authorisation, "reason": "override" if d.authorisation_id else "no_authorisation",
            "checks": checks,
            "reconciled_at": d.authorisation_reconciled_at,
            "reconciled_by": d.authorisation_reconciled_by.get_username() if d.authorisation_reconciled_by else None,
            "reconciliation": d.authorisation_reconciliation,
        })
    return rows


class AuthorisationViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [AuthorisationPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = AuthorisationOut
    filterset_class = AuthorisationFilter
    ordering_fields = ["valid_until", "valid_from", "id"]

    def get_queryset(self):
        return authorisation_queryset().order_by("valid_until", "pk")

    def _out(self, pk) -> dict:
        return AuthorisationOut(authorisation_queryset().get(pk=pk)).data

    @extend_schema(request=AuthorisationIn, responses={201: AuthorisationOut})
    def create(self, request):
        """Record an approved treatment authorisation: the dose in grams, or in g/kg of the actual,
        ideal (Devine) or adjusted body weight."""
        data = validated(AuthorisationIn, request.data)
        patient = get_object_or_404(Patient, pk=data.pop("patient"))
        product = _product(data.pop("product"))
        authorisation = authorisation_create(patient=patient, product=product, actor=request.user, **data)
        return Response(self._out(authorisation.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=RevokeIn, responses={200: AuthorisationOut})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """End the authorisation early, saying why: no vial is dispensed under it after this."""
        data = validated(RevokeIn, request.data)
        authorisation = authorisation_revoke(
            authorisation=get_object_or_404(TreatmentAuthorisation, pk=pk), reason=data["reason"], actor=request.user)
        return Response(self._out(authorisation.pk))

    @extend_schema(parameters=[ExpiringIn], responses={200: AuthorisationOut(many=True)}, filters=False)
    @action(detail=False, methods=["get"], filter_backends=[])
    def expiring(self, request):
        """Active authorisations ending within `days` (default AUTHORISATION_EXPIRY_WARNING_DAYS),
        soonest first: the renewals to ask for."""
        days = validated(ExpiringIn, request.query_params).get("days", settings.AUTHORISATION_EXPIRY_WARNING_DAYS)
        page = self.paginate_queryset(expiring_authorisations(days=days))
        return self.get_paginated_response(AuthorisationOut(page, many=True).data)

    @extend_schema(parameters=[DiscrepanciesIn], responses={200: DiscrepancyOut(many=True)}, filters=False)
    @action(detail=False, methods=["get"], filter_backends=[])
    def discrepancies(self, request):
        """Vials given outside their session's authorisation (with the pharmacist's override and
        reason) or without one, newest first: the queue to reconcile with the payer (`state`: open,
        reconciled or all)."""
        state = validated(DiscrepanciesIn, request.query_params)["state"]
        page = self.paginator.paginate_queryset(authorisation_discrepancies(state), request, view=self)
        record_patient_access(request, [d.session.patient_id for d in page])
        return self.get_paginated_response(DiscrepancyOut(_discrepancy_rows(page), many=True).data)

    @extend_schema(request=ReconcileIn, responses={200: DiscrepancyOut})
    @action(detail=False, methods=["post"], url_path=r"discrepancies/(?P<dispense>[0-9]+)/reconcile")
    def reconcile(self, request, dispense=None):
        """Close a vial of the discrepancy queue, saying how it was settled with the payer."""
        data = validated(ReconcileIn, request.data)
        reconciled = discrepancy_reconcile(dispense=get_object_or_404(Dispense, pk=dispense), note=data["note"],
                                           actor=request.user)
        row = authorisation_discrepancies("all").get(pk=reconciled.pk)
        return Response(DiscrepancyOut(_discrepancy_rows([row])[0]).data)


class DoseCalculator(APIView):
    """POST /api/dose: for a patient and one of the patient's authorisations, the dosing weight (by
    the authorisation's basis), the grams of a dose, the grams whole vials make, and the vials
    from stock that make it up wasting least (the pick's rules). Changes nothing."""

    permission_classes = [DoseCalculatorPermission]

    @extend_schema(request=DoseIn, responses={200: DoseCalculationOut})
    def post(self, request):
        data = validated(DoseIn, request.data)
        patient = get_object_or_404(Patient, pk=data["patient"])
        authorisation = get_object_or_404(
            TreatmentAuthorisation.objects.select_related("product"), pk=data["authorisation"], patient=patient)
        grams, weight = authorised_grams(authorisation, patient)
        pick = pick_for_dose(patient=patient, authorisation=authorisation, grams=grams)
        sizes = Presentation.objects.filter(product__in=pick.products).values_list("grams", flat=True)
        whole = smallest_cover(list(sizes), grams)
        record_patient_access(request, [patient.pk])
        body = {
            "patient": patient, "authorisation": authorisation.pk,
            "dosing_weight": weight.as_dict() if weight is not None else None,
            "dose_g_per_kg": grams_text(authorisation.dose_g_per_kg) if authorisation.dose_g_per_kg is not None else None,
            "grams": grams_text(grams), "grams_in_whole_vials": grams_text(whole) if whole is not None else None,
            "vials": pick.vials, "total_grams": grams_text(pick.total_grams),
            "overfill_grams": grams_text(pick.overfill_grams), "brands": [p.brand for p in pick.products],
        }
        return Response(DoseCalculationOut(body).data)


router = OptionalSlashRouter()
router.register("authorisations", AuthorisationViewSet, basename="authorisation")
urlpatterns = [path("", include(router.urls)), path("dose", DoseCalculator.as_view(), name="dose")]
