"""The cold chain: temperatures of a storage location, the excursions found in them, and the
pharmacist's disposition of the vials an excursion holds."""

from collections import OrderedDict

import django_filters
from django.urls import include, path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from api.filters import IdFilter
from api.inventory_out import LocationOut
from api.permissions import ExcursionPermission, ReadingPermission
from api.routers import OptionalSlashRouter
from api.serializers import DateTimeField, IdField, ModelSerializer, ReasonField, validated
from api.sessions import _user
from inventory.coldchain import (
    MAX_READINGS_PER_REQUEST,
    RELEASE,
    WASTE,
    ReadingIn,
    release_refusal,
    excursion_by_id,
    excursion_dispose,
    fahrenheit_to_celsius,
    readings_record,
)
from inventory.exceptions import UnknownLocation, UnknownProduct
from inventory.models import Excursion, ExcursionVial, Product, StorageLocation, TemperatureReading
from inventory.selectors import excursion_entries, excursion_queryset, location_readings

MAX_VIALS_PER_DECISION = 500


def _location(location_id: int) -> StorageLocation:
    try:
        return StorageLocation.objects.get(pk=location_id)
    except StorageLocation.DoesNotExist:
        raise UnknownLocation(f"No storage location has id {location_id}.") from None


class ReadingItemIn(serializers.Serializer):
    taken_at = DateTimeField(help_text="When the temperature was read (with its time zone, or the site's)")
    temperature = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=-1000, max_value=1000)
    unit = serializers.ChoiceField(choices=["C", "F"], default="C")


class ReadingsIn(serializers.Serializer):
    readings = serializers.ListField(child=ReadingItemIn(), min_length=1, max_length=MAX_READINGS_PER_REQUEST)


class ExcursionBrief(ModelSerializer):
    class Meta:
        model = Excursion
        fields = ["id", "started_at", "ended_at", "lowest_c", "highest_c", "status"]


class ReadingsOut(serializers.Serializer):
    recorded = serializers.IntegerField()
    already_recorded = serializers.IntegerField()
    excursions = ExcursionBrief(many=True)


class ReadingOut(ModelSerializer):
    class Meta:
        model = TemperatureReading
        fields = ["taken_at", "celsius"]


class ReadingsFilterIn(serializers.Serializer):
    taken_from = DateTimeField(required=False)
    taken_to = DateTimeField(required=False)


class LocationReadings(ListAPIView):
    """A location's temperatures, newest first (GET); record one or many (POST, at most
    MAX_READINGS_PER_REQUEST; all or none). Readings out of the location's range for longer than
    its grace period open an excursion that holds the vials that were there."""

    permission_classes = [ReadingPermission]
    serializer_class = ReadingOut
    filter_backends = []

    def get_queryset(self):
        location = _location(self.kwargs["id"])
        filters = validated(ReadingsFilterIn, self.request.query_params)
        readings = location_readings(location.pk)
        if "taken_from" in filters:
            readings = readings.filter(taken_at__gte=filters["taken_from"])
        if "taken_to" in filters:
            readings = readings.filter(taken_at__lte=filters["taken_to"])
        return readings

    @extend_schema(request=ReadingsIn, responses={201: ReadingsOut})
    def post(self, request, id: int):  # noqa: A002 (the path names it id)
        data = validated(ReadingsIn, request.data)
        readings = [
            ReadingIn(
                taken_at=item["taken_at"],
                celsius=fahrenheit_to_celsius(item["temperature"]) if item["unit"] == "F" else item["temperature"],
                where=f"reading {index + 1}",
            )
            for index, item in enumerate(data["readings"])
        ]
        result = readings_record(location=_location(id), readings=readings, actor=request.user)
        return Response(ReadingsOut({"recorded": result.recorded, "already_recorded": result.already_recorded,
                                     "excursions": result.excursions}).data, status=201)


class ExcursionOut(ModelSerializer):
    location = LocationOut(read_only=True)
    vials_reached = serializers.IntegerField(read_only=True)
    vials_pending = serializers.IntegerField(read_only=True)
    detected_by = _user()

    class Meta:
        model = Excursion
        fields = ["id", "location", "started_at", "ended_at", "lowest_c", "highest_c", "range_min_c", "range_max_c",
                  "status", "vials_reached", "vials_pending", "detected_at", "detected_by"]


class ExcursionVialOut(ModelSerializer):
    vial_id = serializers.IntegerField(read_only=True)
    serial = serializers.CharField(source="vial.serial", read_only=True)
    brand = serializers.CharField(source="vial.presentation.product.brand", read_only=True)
    product_id = serializers.IntegerField(source="vial.presentation.product_id", read_only=True)
    lot_number = serializers.CharField(source="vial.lot.lot_number", read_only=True)
    vial_status = serializers.CharField(source="vial.status", read_only=True)
    location = serializers.CharField(source="vial.location.code", read_only=True, allow_null=True)
    beyond_use_date = serializers.DateField(source="vial.beyond_use_date", read_only=True)
    decided_by = _user()

    class Meta:
        model = ExcursionVial
        fields = ["vial_id", "serial", "brand", "product_id", "lot_number", "vial_status", "location",
                  "beyond_use_date", "exposed_from", "exposed_until", "status_when_found", "outcome",
                  "allowance_used", "beyond_use_before", "beyond_use_after", "decided_by", "decided_at", "reason"]


class ProductDecisionOut(serializers.Serializer):
    product_id = serializers.IntegerField()
    brand = serializers.CharField()
    pending = serializers.IntegerField()
    room_temp_allowance_days = serializers.IntegerField(allow_null=True)
    room_temp_max_c = serializers.DecimalField(max_digits=4, decimal_places=1)
    release_refusal = serializers.CharField(allow_null=True, help_text="Why the label does not allow a release, or null")


class ExcursionDetailOut(ExcursionOut):
    products = serializers.SerializerMethodField()
    vials = serializers.SerializerMethodField()

    class Meta(ExcursionOut.Meta):
        fields = [*ExcursionOut.Meta.fields, "products", "vials"]

    def _entries(self, excursion):
        cached = getattr(excursion, "_entries", None)
        if cached is None:
            cached = excursion._entries = list(excursion_entries(excursion.pk))
        return cached

    @extend_schema_field(ExcursionVialOut(many=True))
    def get_vials(self, excursion) -> list[dict]:
        return ExcursionVialOut(self._entries(excursion), many=True).data

    @extend_schema_field(ProductDecisionOut(many=True))
    def get_products(self, excursion) -> list[dict]:
        products: "OrderedDict[int, dict]" = OrderedDict()
        for entry in self._entries(excursion):
            product = entry.vial.presentation.product
            row = products.setdefault(product.pk, {"product": product, "pending": 0})
            row["pending"] += entry.outcome == ExcursionVial.Outcome.PENDING
        out = []
        for row in products.values():
            product = row["product"]
            refusal = release_refusal(excursion, product)
            out.append({"product_id": product.pk, "brand": product.brand, "pending": row["pending"],
                        "room_temp_allowance_days": product.room_temp_allowance_days,
                        "room_temp_max_c": product.room_temp_max_c,
                        "release_refusal": refusal.message if refusal else None})
        return ProductDecisionOut(out, many=True).data


class DispositionIn(serializers.Serializer):
    product = IdField(help_text="The product whose held vials are decided")
    decision = serializers.ChoiceField(choices=[RELEASE, WASTE])
    reason = ReasonField()
    vials = serializers.ListField(child=IdField(), required=False, max_length=MAX_VIALS_PER_DECISION,
                                  help_text="Only these vials (ids); default: every held vial of the product")


class ExcursionFilter(django_filters.FilterSet):
    location = django_filters.CharFilter(field_name="location__code", max_length=40)
    location_id = IdFilter(field_name="location_id")

    class Meta:
        model = Excursion
        fields = ["status", "location", "location_id"]


class ExcursionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Excursions, newest first, with how many vials each holds for a decision; a pharmacist
    releases (against the label's room-temperature allowance) or wastes them, product by product."""

    permission_classes = [ExcursionPermission]
    lookup_value_regex = r"[0-9]+"
    filterset_class = ExcursionFilter

    def get_queryset(self):
        return excursion_queryset()

    def get_serializer_class(self):
        return ExcursionDetailOut if self.action == "retrieve" else ExcursionOut

    @extend_schema(request=DispositionIn, responses={200: ExcursionDetailOut})
    @action(detail=True, methods=["post"])
    def dispositions(self, request, pk=None):
        """Release or waste the vials of one product held by this excursion (all or none)."""
        data = validated(DispositionIn, request.data)
        excursion = excursion_by_id(pk)
        product = Product.objects.filter(pk=data["product"]).first()
        if product is None:
            raise UnknownProduct(f"No product has id {data['product']}.", code="unknown_product")
        excursion_dispose(excursion=excursion, product=product, decision=data["decision"], reason=data["reason"],
                          actor=request.user, vial_ids=data.get("vials"))
        return Response(ExcursionDetailOut(excursion_queryset().get(pk=excursion.pk)).data)


router = OptionalSlashRouter()
router.register("excursions", ExcursionViewSet, basename="excursion")
urlpatterns = [
    path("locations/<int:id>/readings", LocationReadings.as_view(), name="location-readings"),
    path("", include(router.urls)),
]
