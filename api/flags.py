"""Brand-switch flags: technicians, pharmacists and auditors read; only a pharmacist acknowledges."""

import django_filters
from django.shortcuts import get_object_or_404
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from api.routers import OptionalSlashRouter

from api.filters import IdFilter
from api.access import LogsPatientAccess
from api.permissions import FlagPermission
from api.serializers import note_field, validated
from api.sessions import FlagOut, SessionPatientOut
from traceability.models import BrandSwitchFlag
from core.roles import patient_scope
from traceability.selectors import flag_queryset, flags_in_scope
from traceability.services import flag_acknowledge


class FlagListOut(FlagOut):
    patient = SessionPatientOut(source="session.patient", read_only=True)
    scheduled_date = serializers.DateField(source="session.scheduled_date", read_only=True)

    class Meta(FlagOut.Meta):
        fields = [*FlagOut.Meta.fields, "patient", "scheduled_date"]


class AcknowledgeIn(serializers.Serializer):
    reason = serializers.CharField(max_length=40, help_text=f"One of: {', '.join(BrandSwitchFlag.Reason.values)}")
    reason_text = note_field(default="", help_text="Required for 'other'")


class FlagFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(method="filter_open", label="Only open (true) or only acknowledged (false)")
    session = IdFilter(field_name="session_id")
    patient = IdFilter(field_name="session__patient_id")

    class Meta:
        model = BrandSwitchFlag
        fields = ["open", "session", "patient", "kind"]

    def filter_open(self, queryset, name, value):
        wanted = BrandSwitchFlag.Status.OPEN if value else BrandSwitchFlag.Status.ACKNOWLEDGED
        return queryset.filter(status=wanted)


class FlagViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [FlagPermission]
    patient_id_of = "session.patient_id"
    lookup_value_regex = r"[0-9]+"
    serializer_class = FlagListOut
    filterset_class = FlagFilter
    ordering_fields = ["raised_at", "id"]

    def get_queryset(self):
        return flags_in_scope(flag_queryset(), patient_scope(self.request.user)).order_by("-raised_at", "-id")

    @extend_schema(request=AcknowledgeIn, responses={200: FlagListOut})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Acknowledge a brand switch with a reason (pharmacists only)."""
        data = validated(AcknowledgeIn, request.data)
        flag = flag_acknowledge(
            flag=get_object_or_404(flags_in_scope(BrandSwitchFlag.objects.all(), patient_scope(request.user)), pk=pk),
            reason=data["reason"],
            reason_text=data["reason_text"],
            actor=request.user,
        )
        return Response(FlagListOut(flag_queryset().get(pk=flag.pk)).data)


router = OptionalSlashRouter()
# Accept paths with and without the trailing slash (`/sessions/1/dispenses` as in the docs).
router.register("flags", FlagViewSet, basename="flag")
urlpatterns = [path("", include(router.urls))]
