from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from inventory.models import Lot, Manufacturer, Presentation, Product, StorageLocation, Vial


@admin.register(Manufacturer)
class ManufacturerAdmin(SimpleHistoryAdmin):
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin):
    list_display = ["brand", "manufacturer", "route", "concentration_pct", "room_temp_allowance_days", "may_return_to_fridge"]
    list_filter = ["route", "manufacturer"]
    search_fields = ["brand"]


@admin.register(Presentation)
class PresentationAdmin(SimpleHistoryAdmin):
    list_display = ["gtin", "product", "grams", "volume_ml", "ndc"]
    list_select_related = ["product"]
    search_fields = ["gtin", "ndc", "product__brand"]


@admin.register(Lot)
class LotAdmin(SimpleHistoryAdmin):
    list_display = ["lot_number", "product", "expiry_date", "status"]
    list_filter = ["status", "product"]
    list_select_related = ["product"]
    search_fields = ["lot_number"]


@admin.register(StorageLocation)
class StorageLocationAdmin(SimpleHistoryAdmin):
    list_display = ["name", "code", "kind", "active"]
    list_filter = ["kind", "active"]


@admin.register(Vial)
class VialAdmin(SimpleHistoryAdmin):
    list_display = ["id", "presentation", "lot", "serial", "status", "location", "beyond_use_date"]
    list_filter = ["status", "location"]
    list_select_related = ["presentation__product", "lot", "location"]
    search_fields = ["serial", "lot__lot_number"]
    raw_id_fields = ["lot", "presentation"]
