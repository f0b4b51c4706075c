"""Stock reports."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from api.inventory_out import VialOut
from api.pagination import COUNT_EXACT_HELP, COUNT_HELP, MAX_PAGE_SIZE, IdsFirstPagination
from api.permissions import InventoryPermission
from api.serializers import validated
from inventory.selectors import expiring_stock


class ExpiringIn(serializers.Serializer):
    within_days = serializers.IntegerField(min_value=0, max_value=3650, default=30)


class BrandTotal(serializers.Serializer):
    brand = serializers.CharField()
    grams = serializers.DecimalField(max_digits=10, decimal_places=2)
    vials = serializers.IntegerField()


class ExpiringPageOut(serializers.Serializer):
    within_days = serializers.IntegerField()
    by_brand = BrandTotal(many=True, help_text="On-hand grams and vials by brand, of every page")
    count = serializers.IntegerField(help_text=COUNT_HELP)
    count_exact = serializers.BooleanField(help_text=COUNT_EXACT_HELP)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = VialOut(many=True)


class ExpiringStock(APIView):
    """Vials on the shelf reaching their beyond-use date within N days, first to expire first, a
    page at a time (`page`, `page_size`), with the on-hand grams by brand of all of them."""

    permission_classes = [InventoryPermission]
    pagination_class = IdsFirstPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("within_days", {"type": "integer", "minimum": 0, "maximum": 3650, "default": 30}),
            OpenApiParameter("page", int, description="A page number within the paginated result set."),
            OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                             description="Number of results to return per page (default 50)."),
        ],
        responses={200: ExpiringPageOut},
    )
    def get(self, request):
        data = validated(ExpiringIn, request.query_params)
        vials, totals = expiring_stock(within_days=data["within_days"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(vials, request, view=self)
        response = paginator.get_paginated_response(VialOut(page, many=True).data)
        response.data = {"within_days": data["within_days"], "by_brand": BrandTotal(totals, many=True).data,
                         **response.data}
        return response


urlpatterns = [path("stock/expiring", ExpiringStock.as_view(), name="stock-expiring")]
