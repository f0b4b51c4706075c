"""Audit history: a cursor-paginated JSON list, an Excel export, and background export jobs; and
the access log of patient data (who saw which patient, when, through which route).

Auditors (and superusers) only. The same filters everywhere: since, until, lot, vial, patient
(MRN), user (username), model (one of the sheet keys; without it, all models merged by time).
"""

import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import django_filters
from django.conf import settings
from django.core import signing
from django.http import FileResponse
from django.urls import path, reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import Cursor as DrfCursor, CursorPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from api.access import record_patient_access
from api.pagination import MAX_PAGE_SIZE, PageSizeSchema, checked_page_size
from api.permissions import HistoryPermission
from api.schema import ErrorOut
from api.serializers import IdField, ModelSerializer, validated
from core.text import BARCODE_MAX_LENGTH
from audit.exceptions import ExportFailed, ExportNotFound, ExportNotReady, InvalidCursor
from audit.models import ExportEvent, ExportJob, PatientAccess
from audit.registry import audited_models
from audit.selectors import (
    Cursor,
    export_job_for,
    export_counts,
    history_page,
    nothing_matched,
    parse_filters,
    patient_access_list,
)
from audit.services import export_job_create, history_export

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class FiltersInput(serializers.Serializer):
    since = serializers.CharField(required=False, allow_blank=True, max_length=40,
                                  help_text="YYYY-MM-DD (local day) or ISO date-time")
    until = serializers.CharField(required=False, allow_blank=True, max_length=40,
                                  help_text="YYYY-MM-DD (whole day) or ISO date-time")
    lot = serializers.CharField(
        required=False, allow_blank=True, max_length=BARCODE_MAX_LENGTH,
        help_text="lot number or a scanned carton, matched as the recall look-up does",
    )
    lot_match = serializers.ChoiceField(choices=["exact", "prefix"], required=False, help_text="exact (default) or prefix")
    vial = IdField(required=False, help_text="vial id")
    patient = serializers.CharField(required=False, allow_blank=True, max_length=32, help_text="patient MRN")
    user = serializers.CharField(required=False, allow_blank=True, max_length=150,
                                 help_text="username of who made the change")
    model = serializers.ChoiceField(choices=[], required=False, allow_blank=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = list(audited_models())


def _filters(request):
    return parse_filters(**validated(FiltersInput, request.query_params))


def _jsonable(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class ChangeOut(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField(help_text="the field as people name it")
    old = serializers.JSONField()
    new = serializers.JSONField()
    text = serializers.CharField(help_text="old → new, related records by label")


class HistoryEntryOut(serializers.Serializer):
    model = serializers.CharField()
    record = serializers.CharField(help_text="the kind of record, in words")
    history_id = serializers.IntegerField()
    when = serializers.DateTimeField()
    who = serializers.CharField()
    role = serializers.CharField()
    action = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    reason = serializers.CharField()
    object_id = serializers.IntegerField()
    object = serializers.CharField()
    changes = ChangeOut(many=True)
    changes_text = serializers.CharField()
    snapshot = serializers.DictField(child=serializers.JSONField())


class HistoryPageOut(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = HistoryEntryOut(many=True)


def _entry_json(entry: dict) -> dict:
    return {
        **entry,
        "when": timezone.localtime(entry["when"]).isoformat(),
        "changes": [{**c, "old": _jsonable(c["old"]), "new": _jsonable(c["new"])} for c in entry["changes"]],
        "snapshot": {key: _jsonable(value) for key, value in entry["snapshot"].items()},
    }


def _patient_shown(entry: dict) -> int | None:
    """The patient a history entry names (a patient's own record; a session or a notification shows
    the patient's MRN), for the access log."""
    if entry["model"] == "patients":
        return entry["object_id"]
    if entry["model"] in ("sessions", "notifications"):
        return entry["snapshot"].get("patient_id")
    return None


class HistoryList(APIView):
    """History records, newest first; every selected model merged by time unless `model` picks one."""

    permission_classes = [HistoryPermission]

    class PageInput(serializers.Serializer):
        cursor = serializers.CharField(required=False, max_length=512)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=50)

    @extend_schema(
        parameters=[
            FiltersInput,
            OpenApiParameter("cursor", str, description="from `next` or `previous`"),
            OpenApiParameter("page_size", int, description="1 to 500, default 50"),
        ],
        responses={200: HistoryPageOut},
    )
    def get(self, request):
        filters = _filters(request)
        paging = validated(self.PageInput, request.query_params)
        cursor = Cursor.decode(paging["cursor"]) if paging.get("cursor") else None
        page = history_page(filters, cursor=cursor, page_size=paging["page_size"])
        record_patient_access(request, [_patient_shown(entry) for entry in page.entries])
        url = request.build_absolute_uri()
        return Response(
            {
                "next": replace_query_param(url, "cursor", page.next.encode()) if page.next else None,
                "previous": replace_query_param(url, "cursor", page.previous.encode()) if page.previous else None,
                "results": [_entry_json(entry) for entry in page.entries],
            }
        )


class ExportJobOut(ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username")
    status = serializers.CharField(help_text="queued, running, done or failed")
    progress = serializers.FloatField(help_text="0 to 1")
    url = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "url",
            "status",
            "rows_done",
            "rows_total",
            "progress",
            "filters",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "download",
        ]

    def _absolute(self, name: str, job: ExportJob) -> str:
        location = reverse(name, args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(location) if request else location

    def get_url(self, job: ExportJob) -> str:
        return self._absolute("audit-export-job", job)

    def get_download(self, job: ExportJob) -> str | None:
        return self._absolute("audit-export-download", job) if job.status == ExportJob.Status.DONE else None


class FirstRenderer(BaseContentNegotiation):
    """These views answer with a file or JSON whatever the Accept header says."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _download_name() -> str:
    return f"history-{timezone.localtime().strftime('%Y%m%d-%H%M%S')}.xlsx"


class HistoryExport(APIView):
    """The history workbook. Up to AUDIT_EXPORT_SYNC_MAX_ROWS rows: the file itself; above: 202 and a job.
    Filters that match nothing: 404 `nothing_matched`; a lot, patient, user or vial that does not
    exist: 404 (`lot_not_found`, …) with close `suggestions`."""

    permission_classes = [HistoryPermission]
    content_negotiation_class = FirstRenderer

    @extend_schema(
        parameters=[FiltersInput],
        responses={
            (200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="the workbook"),
            202: OpenApiResponse(ExportJobOut, description="too many rows for a direct download: a job"),
            404: OpenApiResponse(ErrorOut, description="nothing matched, or the lot / patient / user / vial is unknown"),
        },
    )
    def get(self, request):
        filters = _filters(request)
        counts, access = export_counts(filters)
        total = sum(counts.values())
        if not total and not access:
            raise nothing_matched(filters)
        if total + access > settings.AUDIT_EXPORT_SYNC_MAX_ROWS:
            job = export_job_create(filters=filters, actor=request.user, rows_total=total)
            body = ExportJobOut(job, context={"request": request}).data
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
        name = _download_name()
        # An anonymous temporary file: on disk, not in memory, and gone once the response is sent.
        spool = tempfile.TemporaryFile(suffix=".xlsx")
        try:
            history_export(
                filters=filters, path=spool, channel=ExportEvent.Channel.API, actor=request.user, file_name=name
            )
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return FileResponse(spool, as_attachment=True, filename=name, content_type=XLSX)


class ExportJobDetail(APIView):
    """Status and progress of one of your export jobs."""

    permission_classes = [HistoryPermission]

    @extend_schema(responses={200: ExportJobOut})
    def get(self, request, job_id: int):
        job = export_job_for(user=request.user, job_id=job_id)
        return Response(ExportJobOut(job, context={"request": request}).data)


class ExportJobDownload(APIView):
    """The workbook of a finished export job; only for the user who asked for it (or a superuser)."""

    permission_classes = [HistoryPermission]
    content_negotiation_class = FirstRenderer

    @extend_schema(responses={(200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="the workbook")})
    def get(self, request, job_id: int):
        job = export_job_for(user=request.user, job_id=job_id)
        if job.status == ExportJob.Status.FAILED:
            raise ExportFailed(f"Export {job.pk} failed: {job.error}")
        if job.status != ExportJob.Status.DONE or not job.file:
            raise ExportNotReady(f"Export {job.pk} is {job.status} ({job.rows_done} of {job.rows_total} rows).")
        if not job.file.storage.exists(job.file.name):
            raise ExportNotFound(f"The file of export {job.pk} is no longer kept; export again.", code="export_file_gone")
        return FileResponse(job.file.open("rb"), as_attachment=True, filename=Path(job.file.name).name, content_type=XLSX)


class AccessPatientOut(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    name = serializers.CharField()


class AccessOut(ModelSerializer):
    user = serializers.CharField(source="user.username")
    patient = AccessPatientOut()

    class Meta:
        model = PatientAccess
        fields = ["id", "at", "user", "patient", "via", "method", "path"]


class AccessFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(field_name="patient__mrn", label="patient MRN")
    user = django_filters.CharFilter(field_name="user__username", label="username of who saw the data")
    since = django_filters.CharFilter(method="filter_moment", label="YYYY-MM-DD (local day) or ISO date-time")
    until = django_filters.CharFilter(method="filter_moment", label="YYYY-MM-DD (whole day) or ISO date-time")

    class Meta:
        model = PatientAccess
        fields = ["patient", "user", "since", "until"]

    def filter_moment(self, queryset, name, value):
        # The history's reading of dates: a bare date is the whole local day, `until` is exclusive.
        moment = getattr(parse_filters(**{name: value}), name)
        return queryset.filter(at__gte=moment) if name == "since" else queryset.filter(at__lt=moment)


class AccessPagination(PageSizeSchema, CursorPagination):
    # Note: ids follow insertion, and one request's rows share one `at`; the id is the unique order.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return checked_page_size(request, self.page_size_query_param, self.page_size)

    # Signed, as the history's cursors are: DRF's own are plain base64, and a forged position such
    # as `p=abc` reached the query (a 500).
    SALT = "audit.access.cursor"

    def encode_cursor(self, cursor: DrfCursor) -> str:
        token = signing.dumps([cursor.offset, int(cursor.reverse), cursor.position], salt=self.SALT)
        return replace_query_param(self.base_url, self.cursor_query_param, token)

    def decode_cursor(self, request) -> DrfCursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            offset, reverse, position = signing.loads(encoded, salt=self.SALT)
            return DrfCursor(offset=int(offset), reverse=bool(reverse), position=position)
        except (signing.BadSignature, ValueError, TypeError):
            raise InvalidCursor("The cursor is not valid; start again from the first page.") from None


class AccessList(generics.ListAPIView):
    """The access log of patient data, newest first: who saw which patient, when, through which route."""

    permission_classes = [HistoryPermission]
    serializer_class = AccessOut
    filterset_class = AccessFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = AccessPagination

    def get_queryset(self):
        return patient_access_list()


urlpatterns = [
    path("audit/history/", HistoryList.as_view(), name="audit-history"),
    path("audit/access/", AccessList.as_view(), name="audit-access"),
    path("audit/export.xlsx", HistoryExport.as_view(), name="audit-export"),
    path("audit/exports/<int:job_id>", ExportJobDetail.as_view(), name="audit-export-job"),
    path("audit/exports/<int:job_id>/download", ExportJobDownload.as_view(), name="audit-export-download"),
]
