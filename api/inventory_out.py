"""Output serializers for inventory objects, shared by the inventory resource modules."""

from rest_framework import serializers

from api.serializers import ModelSerializer
from core.text import NOTE_MAX_LENGTH
from inventory.models import Lot, Manufacturer, Presentation, Product, StorageLocation, Vial


class PresentationBrief(ModelSerializer):
    class Meta:
        model = Presentation
        fields = ["id", "gtin", "grams", "volume_ml", "ndc"]


class ProductOut(ModelSerializer):
    manufacturer = serializers.CharField(source="manufacturer.name", read_only=True)
    manufacturer_id = serializers.PrimaryKeyRelatedField(
        source="manufacturer", queryset=Manufacturer.objects.all(), write_only=True
    )
    presentations = PresentationBrief(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id", "brand", "manufacturer", "manufacturer_id", "route", "concentration_pct", "excipient",
            "iga_ug_per_ml", "iga_note", "fridge_min_c", "fridge_max_c", "room_temp_allowance_days",
            "may_return_to_fridge", "room_temp_max_c", "shelf_life_months", "room_temp_within_months",
            "storage_notes", "source_notes", "presentations",
        ]
        extra_kwargs = {"storage_notes": {"max_length": NOTE_MAX_LENGTH}, "source_notes": {"max_length": NOTE_MAX_LENGTH}}


class ProductBrief(ModelSerializer):
    manufacturer = serializers.CharField(source="manufacturer.name", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "brand", "manufacturer", "route", "concentration_pct", "excipient", "iga_ug_per_ml"]


class PresentationOut(ModelSerializer):
    product = ProductBrief(read_only=True)
    product_id = serializers.PrimaryKeyRelatedField(source="product", queryset=Product.objects.all(), write_only=True)

    class Meta:
        model = Presentation
        fields = ["id", "gtin", "grams", "volume_ml", "ndc", "product", "product_id"]


class LocationOut(ModelSerializer):
    class Meta:
        model = StorageLocation
        fields = ["id", "name", "code", "kind", "active", "min_c", "max_c", "excursion_grace_minutes"]
        extra_kwargs = {"excursion_grace_minutes": {"max_value": 7 * 24 * 60},
                        "min_c": {"min_value": -100, "max_value": 100}, "max_c": {"min_value": -100, "max_value": 100}}

    def validate(self, attrs):
        low = attrs.get("min_c", getattr(self.instance, "min_c", None))
        high = attrs.get("max_c", getattr(self.instance, "max_c", None))
        if low is not None and high is not None and low >= high:
            raise serializers.ValidationError({"max_c": "The highest temperature must be above the lowest."})
        return attrs


class LotOut(ModelSerializer):
    product = ProductBrief(read_only=True)
    expired = serializers.SerializerMethodField()
    vials_in_stock = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Lot
        fields = ["id", "lot_number", "expiry_date", "status", "expired", "product", "vials_in_stock"]

    def get_expired(self, lot: Lot) -> bool:
        return lot.is_expired()


class LotBrief(ModelSerializer):
    class Meta:
        model = Lot
        fields = ["id", "lot_number", "expiry_date", "status"]


class VialOut(ModelSerializer):
    gtin = serializers.CharField(source="presentation.gtin", read_only=True)
    brand = serializers.CharField(source="presentation.product.brand", read_only=True)
    product_id = serializers.IntegerField(source="presentation.product_id", read_only=True)
    grams = serializers.DecimalField(source="presentation.grams", max_digits=6, decimal_places=2, read_only=True)
    lot = LotBrief(read_only=True)
    location = LocationOut(read_only=True, allow_null=True)

    class Meta:
        model = Vial
        fields = [
            "id", "gtin", "brand", "product_id", "grams", "serial", "serial_is_internal", "lot", "location", "status",
            "room_temp_since", "room_temp_used", "cold_chain_hold", "beyond_use_date", "received_at",
        ]
