"""Products and presentations: everyone reads; pharmacists maintain the catalog."""

import django_filters
from django.urls import include, path
from rest_framework import mixins, viewsets
from api.routers import OptionalSlashRouter

from api.inventory_out import PresentationOut, ProductOut
from api.permissions import CatalogPermission
from inventory.services import catalog_create, catalog_update
from inventory.models import Presentation, Product
from inventory.selectors import presentation_queryset, product_queryset



class ProductFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="brand", lookup_expr="icontains")
    manufacturer = django_filters.CharFilter(field_name="manufacturer__name", lookup_expr="icontains")

    class Meta:
        model = Product
        fields = ["brand", "route", "manufacturer"]


class PresentationFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="product__brand", lookup_expr="icontains")

    class Meta:
        model = Presentation
        fields = ["gtin", "brand", "product", "ndc"]


class CatalogWrites:
    """Catalog rows are master data, not clinical records: they are created and edited (audited,
    through inventory.services, as the admin does), never deleted, since lots and vials point at them."""

    def perform_create(self, serializer):
        serializer.instance = catalog_create(
            model=serializer.Meta.model, actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = catalog_update(obj=serializer.instance, actor=self.request.user, **serializer.validated_data)


class ProductViewSet(CatalogWrites, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = [CatalogPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = ProductOut
    filterset_class = ProductFilter
    ordering_fields = ["brand"]

    def get_queryset(self):
        return product_queryset()


class PresentationViewSet(CatalogWrites, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = [CatalogPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = PresentationOut
    filterset_class = PresentationFilter
    ordering_fields = ["gtin", "grams"]

    def get_queryset(self):
        return presentation_queryset()


router = OptionalSlashRouter()
router.register("products", ProductViewSet, basename="product")
router.register("presentations", PresentationViewSet, basename="presentation")
urlpatterns = [path("", include(router.urls))]
