"""Patients: technicians, pharmacists, recall coordinators and auditors read; pharmacists register
and update them. A user in no role sees nothing."""

import django_filters
from django.db.models import Q
from django.urls import include, path
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from api.routers import OptionalSlashRouter

from api.access import LogsPatientAccess, record_patient_access
from api.labels import LabelNegotiation
from labels.wristband import WRISTBAND_FORMATS, render_wristband
from api.pagination import COUNT_EXACT_HELP, MAX_PAGE_SIZE, Pagination
from api.permissions import PatientPermission
from api.serializers import ModelSerializer, note_field, rendered, validated
from api.sessions import SessionOut
from traceability.models import Patient
from core.roles import patient_scope
from traceability.selectors import patient_history, patient_queryset, patients_in_scope, sessions_in_scope
from traceability.services import CLINICAL_PROFILE, patient_create, patient_update


HISTORY_PAGE_SIZE = 20


class PatientOut(ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "name", "date_of_birth", "weight_kg", "height_cm", "sex", *CLINICAL_PROFILE,
                  "allergy_notes", "gsrn"]


class PatientIn(serializers.Serializer):
    mrn = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=120)
    date_of_birth = serializers.DateField()
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, required=False, allow_null=True, default=None)
    height_cm = serializers.DecimalField(max_digits=4, decimal_places=1, required=False, allow_null=True, default=None,
                                         help_text="For the ideal and adjusted body weight of weight-based doses")
    sex = serializers.ChoiceField(choices=["male", "female", ""], required=False, default="",
                                  help_text="For the ideal body weight formula (Devine)")
    iga_deficient = serializers.BooleanField(required=False, default=False)
    anti_iga_antibodies = serializers.BooleanField(required=False, default=False)
    renal_impairment = serializers.BooleanField(required=False, default=False)
    thrombosis_risk = serializers.BooleanField(required=False, default=False)
    hyperprolinaemia = serializers.BooleanField(required=False, default=False)
    hereditary_fructose_intolerance = serializers.BooleanField(required=False, default=False)
    maltose_sensitive_glucose_monitoring = serializers.BooleanField(required=False, default=False)
    allergy_notes = note_field(default="")
    gsrn = serializers.CharField(required=False, allow_blank=True, default="", max_length=18,
                                 help_text="The GS1 GSRN (AI 8018) printed on the patient's wristband, if the hospital issues them")


class PatientUpdateIn(serializers.Serializer):
    mrn = serializers.CharField(max_length=32, required=False)
    name = serializers.CharField(max_length=120, required=False)
    date_of_birth = serializers.DateField(required=False)
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, required=False, allow_null=True)
    height_cm = serializers.DecimalField(max_digits=4, decimal_places=1, required=False, allow_null=True)
    sex = serializers.ChoiceField(choices=["male", "female", ""], required=False)
    iga_deficient = serializers.BooleanField(required=False)
    anti_iga_antibodies = serializers.BooleanField(required=False)
    renal_impairment = serializers.BooleanField(required=False)
    thrombosis_risk = serializers.BooleanField(required=False)
    hyperprolinaemia = serializers.BooleanField(required=False)
    hereditary_fructose_intolerance = serializers.BooleanField(required=False)
    maltose_sensitive_glucose_monitoring = serializers.BooleanField(required=False)
    allergy_notes = note_field()
    gsrn = serializers.CharField(required=False, allow_blank=True, max_length=18)


class PatientHistoryOut(serializers.Serializer):
    patient = PatientOut()
    count = serializers.IntegerField(help_text="How many infusion sessions the patient has (that the reader sees)")
    count_exact = serializers.BooleanField(help_text=COUNT_EXACT_HELP)
    next = serializers.URLField(allow_null=True, help_text="The page of older infusions")
    previous = serializers.URLField(allow_null=True, help_text="The page of newer infusions")
    infusions = SessionOut(many=True, help_text="A page of the infusion sessions, newest first")


class HistoryPageIn(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, help_text="1: the newest infusions")
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False,
                                         help_text=f"Infusions per page (default {HISTORY_PAGE_SIZE})")


class HistoryPagination(Pagination):
    """A patient's infusions a page at a time, newest first: years of infusions every three weeks
    are a hundred sessions with all their vials; the newest ones answer most questions at once."""

    page_size = HISTORY_PAGE_SIZE


class PatientFilter(django_filters.FilterSet):
    mrn = django_filters.CharFilter(field_name="mrn", lookup_expr="iexact")
    name = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
    search = django_filters.CharFilter(method="filter_search", label="Part of the name or the MRN")

    class Meta:
        model = Patient
        fields = ["mrn", "name", "search"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(mrn__icontains=value))


class PatientViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [PatientPermission]
    patient_id_of = "pk"
    lookup_value_regex = r"[0-9]+"
    serializer_class = PatientOut
    filterset_class = PatientFilter
    ordering_fields = ["name", "mrn", "date_of_birth"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return patients_in_scope(patient_queryset(), patient_scope(self.request.user)).order_by("name", "mrn")

    @extend_schema(request=PatientIn, responses={201: PatientOut})
    def create(self, request):
        data = validated(PatientIn, request.data)
        patient = patient_create(actor=request.user, **data)
        return Response(PatientOut(patient).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PatientUpdateIn, responses={200: PatientOut})
    def partial_update(self, request, pk=None):
        data = validated(PatientUpdateIn, request.data)
        patient = patient_update(patient=self.get_object(), actor=request.user, **data)
        return Response(PatientOut(patient).data)

    @extend_schema(parameters=[HistoryPageIn], responses={200: PatientHistoryOut})
    @action(detail=True, methods=["get"], filter_backends=[])
    def history(self, request, pk=None):
        """The patient's infusions, newest first, a page at a time (`page`, `page_size`), with the
        brands, lots and vials given (for a technician, the sessions of the coming days only, as
        GET /api/sessions/ shows them)."""
        validated(HistoryPageIn, request.query_params)
        # The patient, then the page (a page that does not exist is a 404), and only then the
        # access-log line: a refused request records nothing. The paginator itself, not
        # self.paginate_queryset, which would log the page's rows as patients.
        patient = super(LogsPatientAccess, self).get_object()
        infusions = sessions_in_scope(patient_history(patient), patient_scope(request.user))
        pages = HistoryPagination()
        page = pages.paginate_queryset(infusions, request, view=self)
        self._record([patient])
        counted = pages.page.paginator
        body = {"patient": patient, "count": counted.count, "count_exact": counted.count_exact,
                "next": pages.get_next_link(), "previous": pages.get_previous_link(), "infusions": page}
        # From one kept serialiser (api.serializers.rendered): a page of sessions nests five levels.
        return Response(rendered(PatientHistoryOut, body))


router = OptionalSlashRouter()
# Accept paths with and without the trailing slash (`/sessions/1/dispenses` as in the docs).
router.register("patients", PatientViewSet, basename="patient")
urlpatterns = [path("", include(router.urls))]


class WristbandFormatIn(serializers.Serializer):
    format = serializers.ChoiceField(choices=WRISTBAND_FORMATS, default="png")


class Wristband(APIView):
    """The patient's wristband label: a GS1-128 of the GSRN (AI 8018) where the hospital issues
    them, else a Code 128 of the MRN, with the name, MRN and date of birth in words. Scanning it at
    the scan station identifies the patient."""

    permission_classes = [PatientPermission]
    content_negotiation_class = LabelNegotiation

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(WRISTBAND_FORMATS), description="png (default), pdf or zpl")],
        responses={(200, "*/*"): OpenApiTypes.BINARY},
    )
    def get(self, request, pk: int):
        fmt = validated(WristbandFormatIn, request.query_params)["format"]
        patient = get_object_or_404(patients_in_scope(patient_queryset(), patient_scope(request.user)), pk=pk)
        record_patient_access(request, [patient.pk])
        content, content_type = render_wristband(
            mrn=patient.mrn, name=patient.name, date_of_birth=patient.date_of_birth, gsrn=patient.gsrn, fmt=fmt
        )
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="wristband-{patient.pk}.{fmt}"'
        return response


urlpatterns.append(path("patients/<int:pk>/wristband", Wristband.as_view(), name="patient-wristband"))
