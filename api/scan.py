"""The two calls a scanner drives: what is this carton (scan), and receive these cartons (receipts)."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.inventory_out import LotOut, PresentationOut, VialOut
from api.permissions import InventoryAccess, ScanAccess, effective_roles
from api.serializers import validated
from inventory.selectors import scan_lookup, vial_queryset
from inventory.services import location_by_code, receipt_create


class ScanIn(serializers.Serializer):
    barcode = serializers.CharField(trim_whitespace=False, max_length=512)


class WarningOut(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["red", "amber"])
    detail = serializers.CharField()


class ScanOut(serializers.Serializer):
    gtin = serializers.CharField(source="scan.gtin")
    lot = serializers.CharField(source="scan.lot", allow_null=True)
    expiry = serializers.DateField(source="scan.expiry", allow_null=True)
    serial = serializers.CharField(source="scan.serial", allow_null=True)
    symbology = serializers.CharField(source="scan.symbology", allow_null=True)
    product = serializers.SerializerMethodField()
    lot_record = LotOut(source="lot", allow_null=True)
    vial = VialOut(allow_null=True)
    warnings = WarningOut(many=True)
    actions = serializers.ListField(child=serializers.CharField())

    def get_product(self, result) -> dict | None:
        return PresentationOut(result.presentation).data if result.presentation else None


class Scan(APIView):
    """Identify a scanned carton: product, lot and vial where known, warnings and allowed actions."""

    permission_classes = [ScanAccess]

    @extend_schema(request=ScanIn, responses={200: ScanOut})
    def post(self, request):
        data = validated(ScanIn, request.data)
        result = scan_lookup(data["barcode"], roles=effective_roles(request.user))
        return Response(ScanOut(result).data)


class ReceiptIn(serializers.Serializer):
    location = serializers.CharField(help_text="Code of the location receiving the vials")
    scans = serializers.ListField(child=serializers.CharField(trim_whitespace=False, max_length=512),
                                  allow_empty=False, max_length=1000)


class ReceiptOut(serializers.Serializer):
    received = serializers.IntegerField()
    vials = VialOut(many=True)


class ReceiptCreate(APIView):
    """Receive a delivery: every scan becomes a vial in the location, or nothing is received."""

    permission_classes = [InventoryAccess]

    @extend_schema(request=ReceiptIn, responses={201: ReceiptOut})
    def post(self, request):
        data = validated(ReceiptIn, request.data)
        vials = receipt_create(location=location_by_code(data["location"]), scans=data["scans"], actor=request.user)
        fresh = {v.pk: v for v in vial_queryset().filter(pk__in=[v.pk for v in vials])}
        return Response({"received": len(vials), "vials": VialOut([fresh[v.pk] for v in vials], many=True).data},
                        status=201)


urlpatterns = [
    path("scan", Scan.as_view(), name="scan"),
    path("receipts", ReceiptCreate.as_view(), name="receipts"),
]
