"""The two calls a scanner drives: what is this carton (scan), and receive these cartons (receipts)."""

from datetime import timedelta

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.access import record_patient_access
from api.inventory_out import LocationOut, LotOut, PresentationOut, VialOut
from api.permissions import InventoryPermission, ScanPermission
from api.serializers import barcode_field, location_code_field, rendered, validated
from core.roles import effective_roles, patient_scope, roles_may
from inventory.models import Lot
from labels.exceptions import InvalidBarcode
from inventory.selectors import ScanResult, location_for_scan, scan_lookup
from core.text import grams_text
from inventory.services import location_by_code, receipt_check, receipt_create, suspect_scan_record
from recalls.selectors import latest_recall_reference
from traceability.models import Patient
from traceability.selectors import live_dispense_id, open_sessions_of, patient_for_wristband, patients_in_scope


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
    barcode = barcode_field()


class WarningOut(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["red", "amber"])
    detail = serializers.CharField()


class ScanPatientOut(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    name = serializers.CharField()
    date_of_birth = serializers.DateField()


class ScanSessionOut(serializers.Serializer):
    id = serializers.IntegerField()
    scheduled_date = serializers.DateField()
    route = serializers.CharField()
    status = serializers.CharField()
    ordered_grams = serializers.DecimalField(max_digits=7, decimal_places=2)


class ColdChainOut(serializers.Serializer):
    """A vial's cold chain on the scan card: its room-temperature clock and any excursion hold."""

    allowance_days = serializers.IntegerField(allow_null=True, help_text="The label's room-temperature allowance")
    used_hours = serializers.FloatField()
    remaining_hours = serializers.FloatField(allow_null=True, help_text="Negative once the allowance is used up")
    clock_running = serializers.BooleanField()
    held_by_excursion = serializers.IntegerField(allow_null=True)


def cold_chain_of(vial) -> dict | None:
    if vial is None:
        return None
    now = timezone.now()
    product = vial.lot.product
    remaining = vial.room_temp_remaining(now, product)
    used = vial.room_temp_used + (now - vial.room_temp_since if vial.room_temp_since else timedelta(0))
    return {"allowance_days": product.room_temp_allowance_days, "used_hours": round(used.total_seconds() / 3600, 1),
            "remaining_hours": round(remaining.total_seconds() / 3600, 1) if remaining is not None else None,
            "clock_running": vial.room_temp_since is not None, "held_by_excursion": vial.cold_chain_hold_id}


class ScanOut(serializers.Serializer):
    """What a scan is. `kind` says which: a carton (the GS1 fields, product, lot, vial, warnings,
    actions), a shelf label (`location`) or a patient's wristband (`patient` and their open
    sessions for the coming week; only for roles that may see patients)."""

    kind = serializers.ChoiceField(choices=["carton", "location", "patient"])
    gtin = serializers.CharField(source="scan.gtin", allow_null=True)
    lot = serializers.CharField(source="scan.lot", allow_null=True)
    expiry = serializers.DateField(source="scan.expiry", allow_null=True)
    serial = serializers.CharField(source="scan.serial", allow_null=True)
    symbology = serializers.CharField(source="scan.symbology", allow_null=True)
    product = serializers.SerializerMethodField()
    lot_record = LotOut(source="lot", allow_null=True)
    vial = VialOut(allow_null=True)
    warnings = WarningOut(many=True)
    actions = serializers.ListField(child=serializers.CharField(),
                                    help_text="What the caller's roles allow with what was scanned, dispense first")
    live_dispense = serializers.SerializerMethodField(
        help_text="The dispense a dispensed vial is out on: return or waste it through this id")
    location = LocationOut(allow_null=True)
    patient = ScanPatientOut(allow_null=True)
    sessions = ScanSessionOut(many=True)
    cold_chain = serializers.SerializerMethodField()

    @extend_schema_field(ColdChainOut(allow_null=True))
    def get_cold_chain(self, result) -> dict | None:
        return cold_chain_of(result.vial)

    def get_live_dispense(self, result) -> int | None:
        return live_dispense_id(result.vial.pk) if result.dispensed else None

    def get_product(self, result) -> dict | None:
        return rendered(PresentationOut, result.presentation) if result.presentation else None


_NOT_A_CARTON = {
    "gtin": None, "lot": None, "expiry": None, "serial": None, "symbology": None, "product": None,
    "lot_record": None, "vial": None, "warnings": [], "actions": [], "live_dispense": None, "cold_chain": None,
}


class Scan(APIView):
    """What was scanned: a carton (product, lot and vial where known, warnings and the actions the
    role allows), a shelf label, or a patient's wristband."""

    permission_classes = [ScanPermission]

    @extend_schema(request=ScanIn, responses={200: ScanOut})
    def post(self, request):
        data = validated(ScanIn, request.data)
        raw = data["barcode"]
        roles = effective_roles(request.user)
        # A carton first: it is what the bench scans all day, and it costs one query. What no GS1
        # reading makes sense of may be a shelf label or a wristband.
        try:
            result = scan_lookup(raw, recall_reference=latest_recall_reference)
        except InvalidBarcode:
            answer = self._label_or_wristband(request, raw)
            if answer is None:
                raise
            return answer
        if result.suspect is not None:
            suspect_scan_record(raw=raw, suspect=result.suspect, actor=request.user)
        result.kind, result.location, result.patient, result.sessions = "carton", None, None, []
        result.actions = scan_actions(result, roles)
        return Response(rendered(ScanOut, result))

    def _label_or_wristband(self, request, raw: str) -> Response | None:
        location = location_for_scan(raw)
        if location is not None:
            return Response({"kind": "location", **_NOT_A_CARTON, "location": LocationOut(location).data,
                             "patient": None, "sessions": []})
        # A wristband names a patient only to those who may see that patient (technicians: the
        # patients of the coming days' sessions).
        scope = patient_scope(request.user)
        patient = patient_for_wristband(raw) if scope else None
        if patient is not None and not patients_in_scope(Patient.objects.filter(pk=patient.pk), scope).exists():
            patient = None
        if patient is None:
            return None
        sessions = list(open_sessions_of(patient))
        record_patient_access(request, [patient.pk], via="scan-wristband")
        return Response({"kind": "patient", **_NOT_A_CARTON, "location": None,
                         "patient": ScanPatientOut(patient).data,
                         "sessions": ScanSessionOut(sessions, many=True).data})


class ReceiptIn(serializers.Serializer):
    location = location_code_field(help_text="Code of the location receiving the vials")
    scans = serializers.ListField(child=barcode_field(), allow_empty=False, max_length=1000)


class ScanCautionOut(serializers.Serializer):
    scan_index = serializers.IntegerField()
    code = serializers.CharField(help_text="short_dated or expiry_day_00")
    detail = serializers.CharField()


class ReceiptOut(serializers.Serializer):
    received = serializers.IntegerField()
    vials = VialOut(many=True)
    cautions = ScanCautionOut(many=True, help_text="Received, but worth a look (amber)")


class ReceiptCreate(APIView):
    """Receive a delivery: every scan becomes a vial in the location, or nothing is received."""

    permission_classes = [InventoryPermission]

    @extend_schema(request=ReceiptIn, responses={201: ReceiptOut})
    def post(self, request):
        data = validated(ReceiptIn, request.data)
        vials = receipt_create(location=location_by_code(data["location"]), scans=data["scans"], actor=request.user)
        # The vials as the service wrote them, with their presentation, product, lot and location:
        # nothing is read back.
        return Response(
            ReceiptOut({"received": len(vials), "vials": list(vials), "cautions": vials.cautions}).data, status=201
        )


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
    scans = serializers.ListField(child=barcode_field(), allow_empty=True, max_length=1000)


class ReceiptCheckOut(serializers.Serializer):
    lines = CheckedLineOut(many=True)
    totals = LotTotalOut(many=True)
    cartons = serializers.IntegerField()
    ready = serializers.BooleanField(help_text="Every line may be received")


class ReceiptCheck(APIView):
    """What receiving these scans would do, line by line, changing nothing: the problem of each
    scan, its cautions (short-dated, an expiry printed with day 00), repeats within the case, and
    exact totals by lot."""

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
