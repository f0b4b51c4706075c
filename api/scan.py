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
from inventory.selectors import ScanResult, scan_lookup
from core.text import grams_text
from inventory.services import location_by_code, receipt_check, receipt_create
from recalls.selectors import latest_recall_reference
from traceability.selectors import live_dispense_id


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
    live_dispense = serializers.SerializerMethodField(
        help_text="The dispense a dispensed vial is out on: return or waste it through this id")

    def get_live_dispense(self, result) -> int | None:
        return live_dispense_id(result.vial.pk) if result.dispensed else None

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
        # The vials as the service wrote them, with their presentation, product, lot and location:
        # nothing is read back.
        return Response({"received": len(vials), "vials": VialOut(vials, many=True).data}, status=201)


class ProblemOut(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField(source="message")


class CheckedLineOut(serializers.Serializer):
    index = serializers.IntegerField()
    gtin = serializers.CharField(source="line.scan.gtin", default=None, allow_null=True)
    brand = serializers.CharField(source="line.presentation.product.brand", default=None, allow_null=True)
    grams = serializers.SerializerMethodField()
    lot = serializers.CharField(source="line.scan.lot", default=None, allow_null=True)
    expiry = serializers.DateField(source="line.scan.expiry", default=None, allow_null=True)
    serial = serializers.CharField(source="line.scan.serial", default=None, allow_null=True)
    problem = ProblemOut(allow_null=True)
    cautions = serializers.ListField(child=serializers.CharField())

    def get_grams(self, item) -> str | None:
        return grams_text(item.line.presentation.grams) if item.line is not None else None


class LotTotalOut(serializers.Serializer):
    brand = serializers.CharField()
    lot = serializers.CharField()
    vials = serializers.IntegerField()
    grams = serializers.CharField(help_text="Exact grams as text, e.g. \"12.5\"")


class ReceiptCheckIn(serializers.Serializer):
    scans = serializers.ListField(child=serializers.CharField(trim_whitespace=False, max_length=512),
                                  allow_empty=True, max_length=1000)


class ReceiptCheckOut(serializers.Serializer):
    lines = CheckedLineOut(many=True)
    totals = LotTotalOut(many=True)
    cartons = serializers.IntegerField()
    ready = serializers.BooleanField(help_text="Every line may be received")


class ReceiptCheck(APIView):
    """What receiving these scans would do, line by line, changing nothing: the problem of each
    scan, its cautions (short-dated), repeats within the case, and exact totals by lot."""

    permission_classes = [InventoryPermission]

    @extend_schema(request=ReceiptCheckIn, responses={200: ReceiptCheckOut})
    def post(self, request):
        data = validated(ReceiptCheckIn, request.data)
        check = receipt_check(scans=data["scans"])
        totals = [
            {"brand": brand, "lot": lot, "vials": vials, "grams": grams_text(grams)}
            for (brand, lot), (vials, grams) in check.totals.items()
        ]
        return Response(ReceiptCheckOut(
            {"lines": check.lines, "totals": totals, "cartons": len(check.lines), "ready": check.ready}
        ).data)


urlpatterns = [
    path("receipts/check", ReceiptCheck.as_view(), name="receipt-check"),
    path("scan", Scan.as_view(), name="scan"),
    path("receipts", ReceiptCreate.as_view(), name="receipts"),
]
