"""The two calls a scanner drives: what is this carton (scan), and receive these cartons (receipts)."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.inventory_out import LotOut, PresentationOut, VialOut
from api.permissions import InventoryPermission, ScanPermission
from api.serializers import validated
from core.roles import effective_roles, roles_may
from inventory.models import Lot
from inventory.selectors import ScanResult, scan_lookup, vial_queryset
from inventory.services import location_by_code, receipt_create
from recalls.selectors import latest_recall_reference


def scan_actions(result: ScanResult, roles) -> list[str]:
    """What a user holding `roles` may do with what was scanned, dispense first when it may be."""
    actions: list[str] = []
    if roles_may(roles, "stock.change"):
        if result.vial is None:
            if result.receivable:
                actions.append("receive")
        else:
            if result.dispensable:
                actions.append("dispense")
            if result.on_shelf:
                actions += ["move", "waste", "return_to_supplier"]
            if result.dispensed:
                actions += ["return_to_stock", "waste_dispensed"]
    if result.vial is not None and roles_may(roles, "lots.decide"):
        if result.lot.status == Lot.Status.RELEASED:
            actions.append("quarantine_lot")
        elif result.lot.status == Lot.Status.QUARANTINED:
            actions.append("release_lot")
    return actions


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
    actions = serializers.SerializerMethodField()

    def get_actions(self, result) -> list[str]:
        return scan_actions(result, self.context["roles"])

    def get_product(self, result) -> dict | None:
        return PresentationOut(result.presentation).data if result.presentation else None


class Scan(APIView):
    """Identify a scanned carton: product, lot and vial where known, warnings and allowed actions."""

    permission_classes = [ScanPermission]

    @extend_schema(request=ScanIn, responses={200: ScanOut})
    def post(self, request):
        data = validated(ScanIn, request.data)
        result = scan_lookup(data["barcode"], recall_reference=latest_recall_reference)
        return Response(ScanOut(result, context={"roles": effective_roles(request.user)}).data)


class ReceiptIn(serializers.Serializer):
    location = serializers.CharField(help_text="Code of the location receiving the vials")
    scans = serializers.ListField(child=serializers.CharField(trim_whitespace=False, max_length=512),
                                  allow_empty=False, max_length=1000)


class ReceiptOut(serializers.Serializer):
    received = serializers.IntegerField()
    vials = VialOut(many=True)


class ReceiptCreate(APIView):
    """Receive a delivery: every scan becomes a vial in the location, or nothing is received."""

    permission_classes = [InventoryPermission]

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
