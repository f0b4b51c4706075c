"""Recalls: look up any lot, record a recall (quarantine what is on hand, one notification task per
patient who received it), track notifications, close, dispose of the stock, export the lookback.

Pharmacists and recall coordinators manage recalls; auditors read them; technicians do neither.
The look-up shows patient data, so it admits the same readers.
"""

import json

import django_filters
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.urls import include, path, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from api.routers import OptionalSlashRouter
from rest_framework.views import APIView

from api.inventory_out import LocationOut, LotBrief, ProductBrief, VialOut
from api.access import LogsPatientAccess, record_patient_access
from api.audit import FirstRenderer
from api.sessions import one_to_one
from api.permissions import RecallPermission
from api.pagination import MAX_PAGE_SIZE, Pagination
from api.renderers import JSONRenderer
from api.serializers import MAX_ID, ModelSerializer, ReasonField, barcode_field, note_field, validated
from core.text import NOTE_MAX_LENGTH, REASON_MAX_LENGTH, SEARCH_MAX_LENGTH
from inventory.models import Vial
from recalls.models import NotificationTask, Recall, RecallLot
from recalls.export import XLSX_CONTENT_TYPE, recall_workbook, recall_workbook_filename
from recalls.selectors import (
    MatchMode,
    lot_lookup,
    notification_list,
    notification_overdue,
    recall_list,
    recall_lookback,
    recall_notifications,
    recall_progress,
    with_vial_lines,
)
from recalls.services import (
    DISPOSE_ACTIONS,
    MAX_RECALL_LOTS,
    notification_update,
    recall_bulk_dispose,
    recall_classify,
    recall_close,
    recall_create,
    recall_create_from_text,
)

# Output ------------------------------------------------------------------------------------------


class PatientBrief(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    name = serializers.CharField()

    def to_representation(self, patient) -> dict:
        # Note: written out for speed, as the serialisers below (a lookback holds thousands of
        # lines); tests/api/test_recalls.py checks each gives what DRF gives from the fields.
        return {"id": patient.id, "mrn": patient.mrn, "name": patient.name}


class SessionBrief(serializers.Serializer):
    id = serializers.IntegerField()
    scheduled_date = serializers.DateField()
    status = serializers.CharField()
    site = serializers.CharField()

    def to_representation(self, session) -> dict:
        return {"id": session.id, "scheduled_date": _date(session.scheduled_date), "status": session.status,
                "site": session.site}


def _date(value) -> str | None:
    return value.isoformat() if value is not None else None


class RecallBrief(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    scheme = serializers.CharField()
    recall_class = serializers.CharField()
    class_text = serializers.CharField(help_text='e.g. "MHRA class 2: action within 48 hours"')
    action_due = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()


class LookbackVialOut(serializers.Serializer):
    id = serializers.IntegerField()
    serial = serializers.CharField()
    gtin = serializers.CharField(source="presentation.gtin")
    grams = serializers.DecimalField(source="presentation.grams", max_digits=6, decimal_places=2)
    status = serializers.CharField()
    beyond_use_date = serializers.DateField()

    def to_representation(self, vial) -> dict:
        return {"id": vial.id, "serial": vial.serial, "gtin": vial.presentation.gtin,
                "grams": self.fields["grams"].to_representation(vial.presentation.grams), "status": vial.status,
                "beyond_use_date": _date(vial.beyond_use_date)}


class InfusionTimesOut(serializers.Serializer):
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class DispenseLineOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="dispensed, wasted (opened, partly used) or returned_to_stock (unopened)")
    vial = LookbackVialOut()
    brand = serializers.CharField(source="vial.lot.product.brand")
    lot_number = serializers.CharField(source="vial.lot.lot_number")
    patient = PatientBrief(source="session.patient")
    session = SessionBrief()
    grams = serializers.DecimalField(max_digits=6, decimal_places=2)
    dispensed_at = serializers.DateTimeField()
    dispensed_by = serializers.CharField(source="dispensed_by.username")
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_reason = serializers.CharField()
    setting = serializers.CharField(source="session.setting", help_text="clinic (given here) or home (supplied)")
    infusion = serializers.SerializerMethodField(help_text="When the infusion ran, as the nurse recorded it")
    fate = serializers.SerializerMethodField(help_text="infused, partial or not_opened, once recorded")
    volume_left_ml = serializers.SerializerMethodField()
    used_at_home_on = serializers.SerializerMethodField(help_text="The day the patient reported using it at home")

    @extend_schema_field(InfusionTimesOut(allow_null=True))
    def get_infusion(self, dispense):
        administration = one_to_one(dispense.session, "administration")
        return InfusionTimesOut(administration).data if administration is not None else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_fate(self, dispense):
        fate = one_to_one(dispense, "fate")
        return fate.fate if fate is not None else None

    @extend_schema_field(serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True))
    def get_volume_left_ml(self, dispense):
        fate = one_to_one(dispense, "fate")
        return str(fate.volume_left_ml) if fate is not None and fate.volume_left_ml is not None else None

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_used_at_home_on(self, dispense):
        use = one_to_one(dispense, "home_use")
        return use.home_infusion.infused_on.isoformat() if use is not None else None

    def to_representation(self, dispense) -> dict:
        # A dispense shows in its lot's list and again under its patient: it is serialised once
        # per response and the same line used in both places. A lookback holds thousands of lines,
        # so each is written out here, reading the relations the selector loaded, with the
        # sessions, patients and vial sizes they share formatted once (tests/api/test_recalls.py
        # checks each line against what DRF's fields give).
        lines = self.context.setdefault("_dispense_lines", {})
        line = lines.get(dispense.pk)
        if line is None:
            parts = self.context.get("_line_parts")
            if parts is None:
                parts = self.context["_line_parts"] = _LineParts(self.fields)
            line = lines[dispense.pk] = parts.line(dispense)
        return line


class _LineParts:
    """What the lines of one response share, formatted once: sessions, patients, infusions, users,
    grams; and the response's time zone, read once."""

    def __init__(self, fields):
        self.fields = fields
        self.zone = timezone.get_current_timezone()
        self.sessions: dict[int, tuple] = {}
        self.grams: dict = {}
        self.vial_grams: dict = {}

    def when(self, value) -> str | None:
        # What DRF's DateTimeField gives: local time in ISO 8601, "Z" for UTC.
        if value is None:
            return None
        text = value.astimezone(self.zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def decimal(self, cache: dict, field, value) -> str | None:
        if value is None:
            return None
        text = cache.get(value)
        if text is None:
            text = cache[value] = field.to_representation(value)
        return text

    def session(self, session) -> tuple:
        """(patient, session, infusion) for a session, built once and shared by its lines."""
        parts = self.sessions.get(session.pk)
        if parts is None:
            patient = _related(session, "patient")
            administration = _related(session, "administration")
            parts = self.sessions[session.pk] = (
                {"id": patient.id, "mrn": patient.mrn, "name": patient.name},
                {"id": session.id, "scheduled_date": _date(session.scheduled_date), "status": session.status,
                 "site": session.site},
                None if administration is None else {
                    "status": administration.status, "started_at": self.when(administration.started_at),
                    "ended_at": self.when(administration.ended_at)},
            )
        return parts

    def line(self, dispense) -> dict:
        vial = _related(dispense, "vial")
        presentation = _related(vial, "presentation")
        lot = _related(vial, "lot")
        session = _related(dispense, "session")
        patient, session_out, infusion = self.session(session)
        fate = _related(dispense, "fate")
        use = _related(dispense, "home_use")
        return {
            "id": dispense.id,
            "status": dispense.status,
            "vial": {"id": vial.id, "serial": vial.serial, "gtin": presentation.gtin,
                     "grams": self.decimal(self.vial_grams, self.fields["vial"].fields["grams"], presentation.grams),
                     "status": vial.status, "beyond_use_date": _date(vial.beyond_use_date)},
            "brand": lot.product.brand,
            "lot_number": lot.lot_number,
            "patient": patient,
            "session": session_out,
            "grams": self.decimal(self.grams, self.fields["grams"], dispense.grams),
            "dispensed_at": self.when(dispense.dispensed_at),
            "dispensed_by": _related(dispense, "dispensed_by").username,
            "closed_at": self.when(dispense.closed_at),
            "closed_reason": dispense.closed_reason,
            "setting": session.setting,
            "infusion": infusion,
            "fate": fate.fate if fate is not None else None,
            "volume_left_ml": str(fate.volume_left_ml) if fate is not None and fate.volume_left_ml is not None else None,
            "used_at_home_on": _related(use, "home_infusion").infused_on.isoformat() if use is not None else None,
        }


def _related(obj, name: str):
    """A relation the selector loaded (from the instance's cache, without the descriptor's
    machinery), or read as usual; a missing reverse one-to-one is None."""
    cache = obj._state.fields_cache
    if name in cache:
        return cache[name]
    return one_to_one(obj, name)


class LocationStockOut(serializers.Serializer):
    location = LocationOut(allow_null=True)
    count = serializers.IntegerField()
    vials = LookbackVialOut(many=True)


class PatientExposureOut(serializers.Serializer):
    patient = PatientBrief()
    received = serializers.BooleanField(help_text="False when every vial went back to stock unopened")
    vials = serializers.IntegerField(source="vial_count", help_text="Distinct vials given to this patient")
    dispenses = DispenseLineOut(many=True)


class LotExcursionOut(serializers.Serializer):
    excursion_id = serializers.IntegerField(source="excursion.id")
    location = serializers.CharField(source="excursion.location.code")
    started_at = serializers.DateTimeField(source="excursion.started_at")
    ended_at = serializers.DateTimeField(source="excursion.ended_at", allow_null=True)
    highest_c = serializers.DecimalField(source="excursion.highest_c", max_digits=5, decimal_places=2)
    serial = serializers.CharField(source="vial.serial")
    vial_status = serializers.CharField(source="vial.status")
    outcome = serializers.CharField()


class LotLookbackOut(serializers.Serializer):
    lot = LotBrief()
    product = ProductBrief(source="lot.product")
    recalls = RecallBrief(many=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    on_hand = LocationStockOut(source="on_hand_by_location", many=True)
    dispenses = DispenseLineOut(many=True)
    patients = PatientExposureOut(many=True)
    wasted = LookbackVialOut(many=True)
    returned = LookbackVialOut(many=True, help_text="Returned to the supplier")
    excursions = LotExcursionOut(many=True, help_text="Vials of the lot that cold-chain excursions reached")


# A lot given to thousands of patients is shown a page of patients at a time (by name); its counts,
# stock and the Excel lookback are always whole.
LOOKBACK_PAGE_SIZE = 50
PATIENTS_COUNT_HELP = "Patients given a vial of these lots, in all (each lot's `counts` has its own)"
NEXT_HELP = "The next page of patients (same lots, counts and stock), or null on the last page"
PREVIOUS_HELP = "The previous page of patients, or null on the first"


class LookbackPageIn(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, help_text="Page of patients, by name (1: the first)")
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False,
                                         help_text=f"Patients per page (default {LOOKBACK_PAGE_SIZE})")


class LookbackPagination(Pagination):
    page_size = LOOKBACK_PAGE_SIZE


class LookupOut(serializers.Serializer):
    lot_number = serializers.CharField()
    match = serializers.CharField()
    gtin = serializers.CharField(allow_null=True)
    brand = serializers.CharField(allow_null=True)
    truncated = serializers.BooleanField(help_text="More lots matched than are listed: type more of the lot number")
    patients_count = serializers.IntegerField(help_text=PATIENTS_COUNT_HELP)
    next = serializers.URLField(allow_null=True, help_text=NEXT_HELP)
    previous = serializers.URLField(allow_null=True, help_text=PREVIOUS_HELP)
    results = LotLookbackOut(many=True, help_text="Each lot, with the dispenses of this page's patients")


class ProgressOut(serializers.Serializer):
    total = serializers.IntegerField()
    notified = serializers.IntegerField(help_text="contacted + unreachable + not required")
    pending = serializers.IntegerField()
    overdue = serializers.IntegerField(help_text="Pending after the action deadline")
    contacted = serializers.IntegerField()
    unreachable = serializers.IntegerField()
    not_required = serializers.IntegerField()


class RecallLotOut(serializers.Serializer):
    id = serializers.IntegerField(source="lot.id")
    lot_number = serializers.CharField(source="lot.lot_number")
    brand = serializers.CharField(source="lot.product.brand")
    expiry_date = serializers.DateField(source="lot.expiry_date")
    status = serializers.CharField(source="lot.status")


class RecallOut(ModelSerializer):
    class_text = serializers.CharField(read_only=True, help_text='e.g. "MHRA class 2: action within 48 hours"')
    created_by = serializers.CharField(source="created_by.username")
    closed_by = serializers.CharField(source="closed_by.username", allow_null=True, default=None)
    lots = RecallLotOut(source="recall_lots", many=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Recall
        fields = [
            "id", "reference", "source", "scheme", "recall_class", "class_text", "action_due", "reason", "recall_date",
            "status", "lots",
            "unmatched_lot_numbers", "progress", "created_by", "created_at", "closed_by", "closed_at", "close_reason",
        ]

    @extend_schema_field(ProgressOut)
    def get_progress(self, recall: Recall) -> dict:
        return recall_progress(recall)


class NotificationVialOut(serializers.Serializer):
    id = serializers.IntegerField()
    serial = serializers.CharField()
    gtin = serializers.CharField(source="presentation.gtin")
    brand = serializers.CharField(source="lot.product.brand")
    lot_number = serializers.CharField(source="lot.lot_number")


class NotificationOut(ModelSerializer):
    recall_reference = serializers.CharField(source="recall.reference")
    patient = PatientBrief()
    vials = serializers.SerializerMethodField()
    due = serializers.DateTimeField(source="recall.action_due", allow_null=True, help_text="The recall's action deadline")
    overdue = serializers.SerializerMethodField(help_text="Still pending after the action deadline")
    updated_by = serializers.CharField(source="updated_by.username", allow_null=True, default=None)

    class Meta:
        model = NotificationTask
        fields = ["id", "recall", "recall_reference", "patient", "vials", "status", "due", "overdue", "note",
                  "updated_by", "updated_at"]

    def get_overdue(self, task: NotificationTask) -> bool:
        return notification_overdue(task)

    @extend_schema_field(NotificationVialOut(many=True))
    def get_vials(self, task: NotificationTask) -> list[dict]:
        # A page's vials come as plain lines (with_vial_lines); one task shows its prefetched vials.
        lines = getattr(task, "vial_lines", None)
        return lines if lines is not None else NotificationVialOut(task.vials.all(), many=True).data


class LookbackOut(serializers.Serializer):
    recall = RecallBrief()
    patients_count = serializers.IntegerField(help_text=PATIENTS_COUNT_HELP)
    next = serializers.URLField(allow_null=True, help_text=NEXT_HELP)
    previous = serializers.URLField(allow_null=True, help_text=PREVIOUS_HELP)
    lots = LotLookbackOut(many=True, help_text="Each lot, with the dispenses of this page's patients")
    patients = PatientExposureOut(many=True, help_text="This page's patients, by name, each once across the lots")


class PatientPages:
    """The page of patients a lookback shows, from every patient exposed (one paginator per
    response): `choose` is what the selectors call, the rest what the response says of the page."""

    def __init__(self, request, view):
        self.request, self.view = request, view
        self.pages = LookbackPagination()
        self.count = 0

    def choose(self, everyone: list[int]) -> list[int]:
        # A page that does not exist is a 404 here, before any dispense is read or access logged.
        page = self.pages.paginate_queryset(everyone, self.request, view=self.view)
        self.count = self.pages.page.paginator.count
        return page

    def links(self) -> dict:
        if not hasattr(self.pages, "page"):  # no lot had to be paged (none matched)
            return {"patients_count": 0, "next": None, "previous": None}
        return {"patients_count": self.count, "next": self.pages.get_next_link(),
                "previous": self.pages.get_previous_link()}


class DisposeOut(serializers.Serializer):
    recall = serializers.IntegerField()
    action = serializers.CharField()
    count = serializers.IntegerField()
    vials = VialOut(many=True)


# Input -------------------------------------------------------------------------------------------


# A lot number is at most 20 characters (GS1 AI 10); a pasted line may carry spaces around it.
LOT_REF_MAX_LENGTH = 40
LOTS_TEXT_MAX_LENGTH = MAX_RECALL_LOTS * (LOT_REF_MAX_LENGTH + 2)  # each line and its CR LF


@extend_schema_field(
    {"oneOf": [{"type": "integer", "description": "lot id", "minimum": 1, "maximum": MAX_ID},
               {"type": "string", "description": "lot number", "minLength": 1, "maxLength": LOT_REF_MAX_LENGTH}]}
)
class LotRefField(serializers.Field):
    """A JSON number is a lot id; a JSON string is a lot number (lot numbers may be all digits)."""

    default_error_messages = {"invalid": "A lot is an id (number) or a lot number (text of at most 40 characters)."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int) and 1 <= data <= MAX_ID:
            return data
        if isinstance(data, str) and data.strip() and len(data) <= LOT_REF_MAX_LENGTH:
            return data.strip()
        self.fail("invalid")

    def to_representation(self, value):
        return value


class RecallCreateIn(serializers.Serializer):
    reference = serializers.CharField(max_length=80, help_text="The manufacturer's or regulator's recall number")
    source = serializers.ChoiceField(choices=Recall.Source.choices)
    scheme = serializers.ChoiceField(choices=Recall.Scheme.choices, default=Recall.Scheme.FDA,
                                     help_text="Whose classes the notice uses: fda (default) or mhra")
    recall_class = serializers.ChoiceField(
        choices=Recall.RecallClass.choices,
        help_text="FDA: I, II, III, market_withdrawal; MHRA: 1, 2, 3, 4; either: unclassified",
    )
    action_due = serializers.DateTimeField(
        required=False,
        help_text="The notice's deadline; by default the class's (MHRA 1 immediately, 2 within 48 h, 3 within 5 days)",
    )
    reason = serializers.CharField(max_length=NOTE_MAX_LENGTH)
    recall_date = serializers.DateField(required=False, help_text="Defaults to today")
    lots = serializers.ListField(child=LotRefField(), required=False, allow_empty=False, max_length=MAX_RECALL_LOTS)
    lots_text = serializers.CharField(
        required=False, trim_whitespace=False, max_length=LOTS_TEXT_MAX_LENGTH,
        help_text=f"Lot numbers pasted from the notice, one per line (at most {MAX_RECALL_LOTS})",
    )
    brand = serializers.CharField(required=False, max_length=80, help_text="Narrows lot numbers to this brand")
    allow_unknown = serializers.BooleanField(
        default=False,
        help_text="Create the recall with the lots found and keep unknown lot numbers on it "
        "(unmatched_lot_numbers); by default unknown lot numbers refuse the recall (400 unknown_lots).",
    )

    def validate(self, data):
        if ("lots" in data) == ("lots_text" in data):
            raise serializers.ValidationError("Give either lots (ids or lot numbers) or lots_text, not both.")
        return data


class ClassifyIn(serializers.Serializer):
    scheme = serializers.ChoiceField(choices=Recall.Scheme.choices)
    recall_class = serializers.ChoiceField(choices=Recall.RecallClass.choices)
    action_due = serializers.DateTimeField(required=False)
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=REASON_MAX_LENGTH,
                                   help_text="Where the class comes from, e.g. the regulator's update")


class CloseIn(serializers.Serializer):
    reason = ReasonField()


class DisposeIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(DISPOSE_ACTIONS), help_text="return (to supplier) or waste")
    reason = ReasonField()


class NotificationIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=NotificationTask.Status.choices)
    note = note_field(default="")


class LookupIn(LookbackPageIn):
    q = barcode_field(required=False,
                      help_text="What was typed or scanned: a scan is read as a barcode, anything else as a lot number")
    lot = serializers.CharField(required=False, trim_whitespace=False, max_length=SEARCH_MAX_LENGTH,
                                help_text="Lot number (exact, case sensitive)")
    barcode = barcode_field(required=False, help_text="A raw GS1 scan of a carton")
    gtin = serializers.CharField(required=False, max_length=14, help_text="Narrow to the product of this GTIN")
    brand = serializers.CharField(required=False, max_length=80, help_text="Narrow to this brand")
    match = serializers.ChoiceField(choices=MatchMode.CHOICES, default=MatchMode.EXACT)

    def validate(self, data):
        if not data.get("q") and not data.get("lot") and not data.get("barcode"):
            raise serializers.ValidationError("Give q (what was typed or scanned), lot (a lot number) or barcode (a scan).")
        return data


# Views -------------------------------------------------------------------------------------------


class RecallFilter(django_filters.FilterSet):
    reference = django_filters.CharFilter(field_name="reference", lookup_expr="icontains")
    lot_number = django_filters.CharFilter(method="filter_lot_number")
    brand = django_filters.CharFilter(method="filter_brand")
    date_from = django_filters.DateFilter(field_name="recall_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="recall_date", lookup_expr="lte")

    class Meta:
        model = Recall
        fields = ["status", "source", "scheme", "recall_class", "reference", "lot_number", "brand", "date_from", "date_to"]

    # Subqueries rather than joins: a join would repeat a recall once per matching lot.
    def filter_lot_number(self, queryset, name, value):
        lots = RecallLot.objects.filter(lot__lot_number=value.strip())
        return queryset.filter(Q(pk__in=lots.values("recall_id")))

    def filter_brand(self, queryset, name, value):
        lots = RecallLot.objects.filter(lot__product__brand__iexact=value.strip())
        return queryset.filter(Q(pk__in=lots.values("recall_id")))


class XlsxRenderer(BaseRenderer):
    media_type = XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only refusals reach here (the workbook is an HttpResponse of its own): keep them JSON.
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class RecallViewSet(viewsets.ReadOnlyModelViewSet):
    """Recalls with their lots and notification progress."""

    permission_classes = [RecallPermission]
    lookup_value_regex = r"[0-9]+"
    serializer_class = RecallOut
    filterset_class = RecallFilter
    ordering_fields = ["recall_date", "reference"]

    def get_queryset(self):
        return recall_list()

    def _recall(self, pk) -> Recall:
        return get_object_or_404(Recall, pk=pk)

    def _out(self, recall: Recall) -> dict:
        return RecallOut(recall_list().get(pk=recall.pk)).data

    @extend_schema(request=RecallCreateIn, responses={201: RecallOut})
    def create(self, request):
        """Record a recall: its lots become recalled, their vials on hand are quarantined, and one
        notification task is opened per patient who was given one of their vials."""
        data = validated(RecallCreateIn, request.data)
        fields = {
            "reference": data["reference"],
            "source": data["source"],
            "scheme": data["scheme"],
            "recall_class": data["recall_class"],
            "action_due": data.get("action_due"),
            "reason": data["reason"],
            "recall_date": data.get("recall_date"),
            "brand": data.get("brand"),
            "allow_unknown": data["allow_unknown"],
            "actor": request.user,
        }
        if "lots_text" in data:
            recall = recall_create_from_text(lots_text=data["lots_text"], **fields)
        else:
            recall = recall_create(lots=data["lots"], **fields)
        return Response(self._out(recall), status=status.HTTP_201_CREATED)

    @extend_schema(request=ClassifyIn, responses={200: RecallOut})
    @action(detail=True, methods=["post"])
    def classify(self, request, pk=None):
        """Record the class a notice was given later, or a corrected one (reason required); the
        deadline the new class implies counts from now unless action_due gives the notice's."""
        data = validated(ClassifyIn, request.data)
        recall = recall_classify(
            recall=self._recall(pk), scheme=data["scheme"], recall_class=data["recall_class"],
            action_due=data.get("action_due"), reason=data["reason"], actor=request.user,
        )
        return Response(self._out(recall))

    @extend_schema(request=CloseIn, responses={200: RecallOut})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close a recall (reason required). Refused when closed already or notifications are pending."""
        data = validated(CloseIn, request.data)
        recall = recall_close(recall=self._recall(pk), reason=data["reason"], actor=request.user)
        return Response(self._out(recall))

    @extend_schema(request=DisposeIn, responses={200: DisposeOut})
    @action(detail=True, methods=["post"])
    def dispose(self, request, pk=None):
        """Return to supplier or waste every vial of the recall's lots still on hand, all or nothing."""
        data = validated(DisposeIn, request.data)
        recall = self._recall(pk)
        vials = recall_bulk_dispose(recall=recall, action=data["action"], reason=data["reason"], actor=request.user)
        rows = Vial.objects.filter(pk__in=[v.pk for v in vials]).select_related(
            "presentation__product", "lot", "location"
        ).order_by("pk")
        return Response(
            {"recall": recall.pk, "action": data["action"], "count": len(vials), "vials": VialOut(rows, many=True).data}
        )

    @extend_schema(parameters=[LookbackPageIn], responses={200: LookbackOut})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def lookback(self, request, pk=None):
        """Every vial of the recall's lots and every patient who was given one (each patient once),
        a page of patients at a time (`page`, `page_size`; counts and stock always whole)."""
        validated(LookbackPageIn, request.query_params)
        recall = self._recall(pk)
        pages = PatientPages(request, self)
        lookback = recall_lookback(recall, patients=pages.choose)
        record_patient_access(request, [d.session.patient_id for d in lookback.dispenses])
        return Response(LookbackOut({"recall": recall, **pages.links(), "lots": lookback.lots,
                                     "patients": lookback.patients}).data)

    @extend_schema(responses={(200, XLSX_CONTENT_TYPE): OpenApiTypes.BINARY})
    @action(
        detail=True,
        methods=["get"],
        url_path="export.xlsx",
        url_name="export",
        renderer_classes=[JSONRenderer, XlsxRenderer],
        # The workbook is a response of its own; what is rendered is a refusal, always JSON.
        content_negotiation_class=FirstRenderer,
        filter_backends=[],
        pagination_class=None,
    )
    def export(self, request, pk=None):
        """The lookback as an Excel workbook: recall, on hand, patients, notifications."""
        recall = get_object_or_404(Recall.objects.select_related("created_by", "closed_by"), pk=pk)
        lookback, tasks = recall_lookback(recall), recall_notifications(recall)
        workbook = recall_workbook(recall, lookback=lookback, tasks=tasks)
        seen = [d.session.patient_id for d in lookback.dispenses] + [t.patient_id for t in tasks]
        record_patient_access(request, seen)
        response = HttpResponse(workbook, content_type=XLSX_CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{recall_workbook_filename(recall)}"'
        return response


class RecallLookup(APIView):
    """Every vial of a lot: on hand by location, given to patients (who, when, by whom), wasted or
    returned, a page of patients at a time (`page`, `page_size`; counts and stock always whole).
    Works whether or not a recall exists. 404 lot_not_found carries `suggestions`."""

    permission_classes = [RecallPermission]

    @extend_schema(parameters=[LookupIn], responses={200: LookupOut})
    def get(self, request):
        data = validated(LookupIn, request.query_params)
        pages = PatientPages(request, self)
        result = lot_lookup(
            query=data.get("q"),
            lot=data.get("lot"),
            barcode=data.get("barcode"),
            gtin=data.get("gtin"),
            brand=data.get("brand"),
            match=data["match"],
            patients=pages.choose,
        )
        record_patient_access(request, [d.session.patient_id for lot in result.results for d in lot.dispenses])
        return Response(LookupOut({**result.__dict__, **pages.links()}).data)


class NotificationFilter(django_filters.FilterSet):
    class Meta:
        model = NotificationTask
        fields = ["status"]


class RecallNotificationList(LogsPatientAccess, generics.ListAPIView):
    """The patients to notify for a recall, with their vials and where each notification stands."""

    permission_classes = [RecallPermission]
    serializer_class = NotificationOut
    filterset_class = NotificationFilter
    ordering_fields = ["status", "updated_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NotificationTask.objects.none()
        recall = get_object_or_404(Recall, pk=self.kwargs["pk"])
        return notification_list(recall=recall, vials=False)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return with_vial_lines(page) if page is not None else page


class NotificationDetail(APIView):
    """One patient's notification; PATCH or POST records the outcome (who and when are recorded)."""

    permission_classes = [RecallPermission]

    def _task(self, pk) -> NotificationTask:
        return get_object_or_404(NotificationTask, pk=pk)

    def _out(self, task: NotificationTask) -> dict:
        return NotificationOut(notification_list().get(pk=task.pk)).data

    @extend_schema(responses={200: NotificationOut})
    def get(self, request, pk):
        task = self._task(pk)
        record_patient_access(request, [task.patient_id])
        return Response(self._out(task))

    @extend_schema(request=NotificationIn, responses={200: NotificationOut})
    def patch(self, request, pk):
        data = validated(NotificationIn, request.data)
        task = notification_update(task=self._task(pk), status=data["status"], note=data["note"], actor=request.user)
        return Response(self._out(task))

    @extend_schema(request=NotificationIn, responses={200: NotificationOut})
    def post(self, request, pk):
        return self.patch(request, pk)



router = OptionalSlashRouter()
router.register("recalls", RecallViewSet, basename="recall")

urlpatterns = [
    re_path(r"^recalls/lookup/?$", RecallLookup.as_view(), name="recall-lookup"),
    re_path(r"^recalls/(?P<pk>\d+)/notifications/?$", RecallNotificationList.as_view(), name="recall-notifications"),
    re_path(r"^notifications/(?P<pk>\d+)/?$", NotificationDetail.as_view(), name="notification-detail"),
    path("", include(router.urls)),
]
