"""Storage locations: everyone reads; pharmacists set them up (codes are printed on shelf labels)."""

import django_filters
from django.urls import include, path
from rest_framework import mixins, viewsets

from api.catalog import CatalogWrites
from api.routers import OptionalSlashRouter
from api.inventory_out import LocationOut
from api.permissions import CatalogPermission
from inventory.models import StorageLocation


class LocationFilter(django_filters.FilterSet):
    class Meta:
        model = StorageLocation
        fields = ["kind", "active", "code"]


class LocationViewSet(CatalogWrites, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    permission_classes = [CatalogPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = LocationOut
    filterset_class = LocationFilter
    queryset = StorageLocation.objects.all()


router = OptionalSlashRouter()
router.register("locations", LocationViewSet, basename="location")
urlpatterns = [path("", include(router.urls))]
