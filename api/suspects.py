"""Suspect products: a scan naming a vial we hold by GTIN and serial on another lot or expiry is
put before a pharmacist. Everyone who reads inventory reads them; pharmacists resolve them."""

from django.shortcuts import get_object_or_404
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.inventory_out import VialOut
from api.permissions import LotDecisionPermission
from api.routers import OptionalSlashRouter
from api.serializers import validated
from api.sessions import _user
from inventory.models import SuspectScan
from inventory.selectors import suspect_scan_queryset
from inventory.services import suspect_scan_resolve


class SuspectScanOut(serializers.ModelSerializer):
    vial = VialOut(read_only=True)
    reported_by = _user()
    resolved_by = _user()

    class Meta:
        model = SuspectScan
        fields = ["id", "vial", "raw", "scanned_lot", "scanned_expiry", "reported_by", "reported_at", "status",
                  "resolution", "resolved_by", "resolved_at"]


class ResolveIn(serializers.Serializer):
    resolution = serializers.CharField(allow_blank=True, max_length=2000,
                                       help_text="What was found and done (e.g. reported to the manufacturer)")


class SuspectScanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [LotDecisionPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = SuspectScanOut
    filterset_fields = ["status"]

    def get_queryset(self):
        return suspect_scan_queryset()

    @extend_schema(request=ResolveIn, responses={200: SuspectScanOut})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close the report, saying what was found and done."""
        data = validated(ResolveIn, request.data)
        report = suspect_scan_resolve(report=get_object_or_404(SuspectScan, pk=pk), resolution=data["resolution"],
                                      actor=request.user)
        return Response(SuspectScanOut(suspect_scan_queryset().get(pk=report.pk)).data)


router = OptionalSlashRouter()
router.register("suspect-scans", SuspectScanViewSet, basename="suspect-scan")
urlpatterns = [path("", include(router.urls))]
