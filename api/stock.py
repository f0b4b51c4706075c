"""Stock reports."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.inventory_out import VialOut
from api.permissions import InventoryPermission
from api.serializers import validated
from inventory.selectors import expiring_stock


class ExpiringIn(serializers.Serializer):
    within_days = serializers.IntegerField(min_value=0, max_value=3650, default=30)


class BrandTotal(serializers.Serializer):
    brand = serializers.CharField()
    grams = serializers.DecimalField(max_digits=10, decimal_places=2)
    vials = serializers.IntegerField()


class ExpiringOut(serializers.Serializer):
    within_days = serializers.IntegerField()
    by_brand = BrandTotal(many=True)
    vials = VialOut(many=True)


class ExpiringStock(APIView):
    """Vials on the shelf reaching their beyond-use date within N days, first to expire first,
    with on-hand grams by brand."""

    permission_classes = [InventoryPermission]

    @extend_schema(parameters=[OpenApiParameter("within_days", int)], responses={200: ExpiringOut})
    def get(self, request):
        data = validated(ExpiringIn, request.query_params)
        vials, totals = expiring_stock(within_days=data["within_days"])
        return Response({"within_days": data["within_days"], "by_brand": BrandTotal(totals, many=True).data,
                         "vials": VialOut(vials, many=True).data})


urlpatterns = [path("stock/expiring", ExpiringStock.as_view(), name="stock-expiring")]
