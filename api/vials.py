"""Vials: everyone reads; technicians and pharmacists move, waste and return them."""

import django_filters
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.filters import IdFilter
from api.routers import OptionalSlashRouter
from api.inventory_out import VialOut
from api.lots import ReasonIn
from api.pagination import IdsFirstPagination
from api.permissions import InventoryPermission
from api.serializers import location_code_field, validated
from inventory.models import Vial
from inventory.selectors import vial_by_id, vial_queryset
from inventory.services import location_by_code, vial_move, vial_return_to_supplier, vial_waste


class VialFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="presentation__product__brand", lookup_expr="iexact")
    gtin = django_filters.CharFilter(field_name="presentation__gtin")
    lot_number = django_filters.CharFilter(field_name="lot__lot_number")
    lot = IdFilter(field_name="lot_id")
    location = django_filters.CharFilter(field_name="location__code")
    expiry_from = django_filters.DateFilter(field_name="lot__expiry_date", lookup_expr="gte")
    expiry_to = django_filters.DateFilter(field_name="lot__expiry_date", lookup_expr="lte")
    beyond_use_to = django_filters.DateFilter(field_name="beyond_use_date", lookup_expr="lte")
    serial = django_filters.CharFilter(field_name="serial")

    class Meta:
        model = Vial
        fields = ["brand", "gtin", "status", "lot_number", "lot", "location", "expiry_from", "expiry_to",
                  "beyond_use_to", "serial"]


class MoveIn(serializers.Serializer):
    location = location_code_field()


class VialViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [InventoryPermission]
    pagination_class = IdsFirstPagination
    lookup_value_regex = r"[0-9]+"
    serializer_class = VialOut
    filterset_class = VialFilter
    ordering_fields = ["beyond_use_date", "received_at", "serial"]

    def get_queryset(self):
        return vial_queryset().order_by("beyond_use_date", "pk")

    @extend_schema(request=MoveIn, responses={200: VialOut})
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move a vial to another location (starts the room-temperature clock where it applies)."""
        data = validated(MoveIn, request.data)
        vial = vial_move(vial=vial_by_id(pk), location=location_by_code(data["location"]), actor=request.user)
        return Response(VialOut(vial_by_id(vial.pk)).data)

    @extend_schema(request=ReasonIn, responses={200: VialOut})
    @action(detail=True, methods=["post"])
    def waste(self, request, pk=None):
        """Waste a vial from the shelf (reason required)."""
        data = validated(ReasonIn, request.data)
        vial = vial_waste(vial=vial_by_id(pk), reason=data["reason"], actor=request.user)
        return Response(VialOut(vial_by_id(vial.pk)).data)

    @extend_schema(request=ReasonIn, responses={200: VialOut})
    @action(detail=True, methods=["post"], url_path="return")
    def return_to_supplier(self, request, pk=None):
        """Return a vial to the supplier (reason required)."""
        data = validated(ReasonIn, request.data)
        vial = vial_return_to_supplier(vial=vial_by_id(pk), reason=data["reason"], actor=request.user)
        return Response(VialOut(vial_by_id(vial.pk)).data)


router = OptionalSlashRouter()
router.register("vials", VialViewSet, basename="vial")
urlpatterns = [path("", include(router.urls))]
