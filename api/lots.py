"""Lots: everyone reads; a pharmacist quarantines and releases."""

import django_filters
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.routers import OptionalSlashRouter
from api.inventory_out import LotOut
from api.permissions import LotDecisionPermission
from api.serializers import ReasonField, validated
from inventory.models import Lot
from inventory.selectors import lot_by_id, lot_queryset
from inventory.services import lot_quarantine, lot_release


class LotFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="product__brand", lookup_expr="iexact")
    lot_number = django_filters.CharFilter(field_name="lot_number")
    expiry_from = django_filters.DateFilter(field_name="expiry_date", lookup_expr="gte")
    expiry_to = django_filters.DateFilter(field_name="expiry_date", lookup_expr="lte")
    gtin = django_filters.CharFilter(field_name="product__presentations__gtin", distinct=True)

    class Meta:
        model = Lot
        fields = ["brand", "status", "lot_number", "product", "expiry_from", "expiry_to", "gtin"]


class ReasonIn(serializers.Serializer):
    reason = ReasonField()


class LotViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [LotDecisionPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = LotOut
    filterset_class = LotFilter
    ordering_fields = ["expiry_date", "lot_number"]

    def get_queryset(self):
        return lot_queryset().order_by("expiry_date", "lot_number", "pk")

    def _decide(self, request, pk, service):
        lot = lot_by_id(pk)
        data = validated(ReasonIn, request.data)
        service(lot=lot, reason=data["reason"], actor=request.user)
        return Response(LotOut(lot_queryset().get(pk=lot.pk)).data)

    @extend_schema(request=ReasonIn, responses={200: LotOut})
    @action(detail=True, methods=["post"])
    def quarantine(self, request, pk=None):
        """Quarantine a lot: its vials on the shelf become quarantined until the lot is released."""
        return self._decide(request, pk, lot_quarantine)

    @extend_schema(request=ReasonIn, responses={200: LotOut})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Release a quarantined lot (not a recalled one)."""
        return self._decide(request, pk, lot_release)


router = OptionalSlashRouter()
router.register("lots", LotViewSet, basename="lot")
urlpatterns = [path("", include(router.urls))]
