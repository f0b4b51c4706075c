"""Overrides of a refused clinical or dose check: a technician asks, a pharmacist grants or
declines with a reason. Everyone who reads dispenses reads them."""

import django_filters
from django.shortcuts import get_object_or_404
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import LogsPatientAccess
from api.filters import IdFilter
from api.inventory_out import ProductBrief
from api.permissions import OverrideDecisionPermission, OverridePermission
from api.routers import OptionalSlashRouter
from api.serializers import validated
from api.sessions import SessionPatientOut, _session, _user, vial_from
from core.roles import patient_scope
from traceability.models import DispenseOverride, InfusionSession
from traceability.selectors import override_queryset, sessions_in_scope
from traceability.services import override_decide, override_request


class OverrideOut(serializers.ModelSerializer):
    product = ProductBrief(read_only=True, allow_null=True)
    patient = SessionPatientOut(source="session.patient", read_only=True)
    scheduled_date = serializers.DateField(source="session.scheduled_date", read_only=True)
    requested_by = _user()
    decided_by = _user()

    class Meta:
        model = DispenseOverride
        fields = [
            "id", "session", "patient", "scheduled_date", "product", "check_code", "detail", "status",
            "requested_by", "requested_at", "request_note", "decided_by", "decided_at", "decision_reason",
        ]


class OverrideRequestIn(serializers.Serializer):
    session = serializers.IntegerField(min_value=1)
    barcode = serializers.CharField(required=False, trim_whitespace=False, max_length=512)
    vial = serializers.IntegerField(required=False, min_value=1)
    check = serializers.CharField(max_length=40, help_text="The check that refused, e.g. iga_content or dose_excess")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate(self, data):
        if ("barcode" in data) == ("vial" in data):
            raise serializers.ValidationError("Send either a barcode or a vial id.")
        return data


class DecisionIn(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, max_length=2000, help_text="Why: kept with the decision")


class OverrideFilter(django_filters.FilterSet):
    session = IdFilter(field_name="session_id")
    status = django_filters.ChoiceFilter(choices=DispenseOverride.Status.choices)

    class Meta:
        model = DispenseOverride
        fields = ["session", "status"]


class OverrideViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [OverridePermission]
    patient_id_of = "session.patient_id"
    lookup_value_regex = r"[0-9]+"
    serializer_class = OverrideOut
    filterset_class = OverrideFilter

    def get_queryset(self):
        # Overrides name the patient: a technician sees those of the coming days' sessions.
        scope = patient_scope(self.request.user)
        return override_queryset().filter(session__in=sessions_in_scope(InfusionSession.objects.all(), scope))

    @extend_schema(request=OverrideRequestIn, responses={201: OverrideOut})
    def create(self, request):
        """Ask a pharmacist to decide on a refused check for this session and the scanned vial's product."""
        data = validated(OverrideRequestIn, request.data)
        session = _session(request, data["session"])
        vial = vial_from(data, request)
        override = override_request(session=session, vial=vial, check=data["check"], note=data["note"], actor=request.user)
        return Response(OverrideOut(override_queryset().get(pk=override.pk)).data, status=status.HTTP_201_CREATED)

    def _decide(self, request, pk, *, grant: bool):
        data = validated(DecisionIn, request.data)
        override = get_object_or_404(DispenseOverride, pk=pk)
        override = override_decide(override=override, grant=grant, reason=data["reason"], actor=request.user)
        return Response(OverrideOut(override_queryset().get(pk=override.pk)).data)

    @extend_schema(request=DecisionIn, responses={200: OverrideOut})
    @action(detail=True, methods=["post"], permission_classes=[OverrideDecisionPermission])
    def grant(self, request, pk=None):
        """A pharmacist lets the refused check pass for this session and product, saying why."""
        return self._decide(request, pk, grant=True)

    @extend_schema(request=DecisionIn, responses={200: OverrideOut})
    @action(detail=True, methods=["post"], permission_classes=[OverrideDecisionPermission])
    def decline(self, request, pk=None):
        """A pharmacist keeps the refusal, saying why."""
        return self._decide(request, pk, grant=False)


router = OptionalSlashRouter()
router.register("overrides", OverrideViewSet, basename="override")
urlpatterns = [path("", include(router.urls))]
