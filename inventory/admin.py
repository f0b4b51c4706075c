"""The admin of the catalog, locations, lots and vials.

Catalog and locations are edited here through inventory.services, as the API edits them. Lots and
vials change only through their services (receive, move, quarantine, release, waste, return,
dispense): the admin shows them and their history and changes nothing.
"""

from django.contrib import admin

from core.admin import ReadOnlyAdmin, ServiceAdmin
from inventory.models import (
    CasePackage, Excursion, ExcursionVial, Lot, Manufacturer, Presentation, Product, ReadingBatch, StorageLocation,
    SuspectScan, TemperatureReading, Vial,
)
from inventory.services import catalog_create, catalog_update


class CatalogAdmin(ServiceAdmin):
    def save_with(self, *, obj, actor, changes: dict, creating: bool):
        if creating:
            return catalog_create(model=type(obj), actor=actor, **changes)
        return catalog_update(obj=obj, actor=actor, **changes)


@admin.register(Manufacturer)
class ManufacturerAdmin(CatalogAdmin):
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(CatalogAdmin):
    list_display = ["brand", "manufacturer", "route", "concentration_pct", "room_temp_allowance_days", "may_return_to_fridge"]
    list_filter = ["route", "manufacturer"]
    search_fields = ["brand"]


@admin.register(Presentation)
class PresentationAdmin(CatalogAdmin):
    list_display = ["gtin", "product", "grams", "volume_ml", "ndc"]
    list_select_related = ["product"]
    search_fields = ["gtin", "ndc", "product__brand"]


@admin.register(StorageLocation)
class StorageLocationAdmin(CatalogAdmin):
    list_display = ["name", "code", "kind", "active", "min_c", "max_c", "excursion_grace_minutes"]
    list_filter = ["kind", "active"]


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    """A lot's status changes by quarantine, release or recall, each with its reason, never here."""

    list_display = ["lot_number", "product", "expiry_date", "status"]
    list_filter = ["status", "product"]
    list_select_related = ["product"]
    search_fields = ["lot_number"]


@admin.register(Vial)
class VialAdmin(ReadOnlyAdmin):
    list_display = ["id", "presentation", "lot", "serial", "status", "location", "beyond_use_date"]
    list_filter = ["status", "location"]
    list_select_related = ["presentation__product", "lot", "location"]
    search_fields = ["serial", "lot__lot_number"]


@admin.register(CasePackage)
class CasePackageAdmin(ReadOnlyAdmin):
    # Case GTINs come with the catalog (load_catalog); shown here, changed there.
    list_display = ["gtin", "presentation", "units"]
    list_select_related = ["presentation__product"]


@admin.register(SuspectScan)
class SuspectScanAdmin(ReadOnlyAdmin):
    list_display = ["id", "vial", "scanned_lot", "status", "reported_by", "reported_at"]
    list_filter = ["status"]
    list_select_related = ["vial__presentation__product", "vial__lot", "reported_by"]


# --- the cold chain: readings and excursions change only through inventory.coldchain ------------


@admin.register(ReadingBatch)
class ReadingBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "location", "source", "filename", "readings", "first_at", "last_at", "recorded_by", "recorded_at"]
    list_filter = ["source", "location"]
    list_select_related = ["location", "recorded_by"]


@admin.register(TemperatureReading)
class TemperatureReadingAdmin(admin.ModelAdmin):
    """Readings are written once, by the API or a logger file's import, and never changed."""

    list_display = ["location", "taken_at", "celsius", "batch"]
    list_filter = ["location"]
    list_select_related = ["location", "batch"]
    date_hierarchy = "taken_at"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Excursion)
class ExcursionAdmin(ReadOnlyAdmin):
    list_display = ["id", "location", "started_at", "ended_at", "lowest_c", "highest_c", "status"]
    list_filter = ["status", "location"]
    list_select_related = ["location"]


@admin.register(ExcursionVial)
class ExcursionVialAdmin(ReadOnlyAdmin):
    list_display = ["excursion", "vial", "exposed_from", "exposed_until", "outcome", "allowance_used", "decided_by"]
    list_filter = ["outcome"]
    list_select_related = ["excursion__location", "vial__presentation__product", "vial__lot", "decided_by"]
