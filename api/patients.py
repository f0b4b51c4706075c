"""Patients: technicians, pharmacists, recall coordinators and auditors read; pharmacists register
and update them. A user in no role sees nothing."""

import django_filters
from django.db.models import Q
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from api.routers import OptionalSlashRouter

from api.access import LogsPatientAccess
from api.permissions import PatientPermission
from api.serializers import ModelSerializer, validated
from api.sessions import SessionOut
from traceability.models import Patient
from traceability.selectors import patient_history, patient_queryset
from traceability.services import patient_create, patient_update


class PatientOut(ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "name", "date_of_birth", "weight_kg", "iga_deficient", "allergy_notes"]


class PatientIn(serializers.Serializer):
    mrn = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=120)
    date_of_birth = serializers.DateField()
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, required=False, allow_null=True, default=None)
    iga_deficient = serializers.BooleanField(required=False, default=False)
    allergy_notes = serializers.CharField(required=False, allow_blank=True, default="")


class PatientUpdateIn(serializers.Serializer):
    mrn = serializers.CharField(max_length=32, required=False)
    name = serializers.CharField(max_length=120, required=False)
    date_of_birth = serializers.DateField(required=False)
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, required=False, allow_null=True)
    iga_deficient = serializers.BooleanField(required=False)
    allergy_notes = serializers.CharField(required=False, allow_blank=True)


class PatientHistoryOut(serializers.Serializer):
    patient = PatientOut()
    infusions = SessionOut(many=True, help_text="Every infusion session, newest first")


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
        return patient_queryset().order_by("name", "mrn")

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

    @extend_schema(responses={200: PatientHistoryOut})
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """Every infusion of the patient, newest first, with the brands, lots and vials given."""
        patient = self.get_object()
        body = {"patient": patient, "infusions": list(patient_history(patient))}
        return Response(PatientHistoryOut(body).data)


router = OptionalSlashRouter()
# Accept paths with and without the trailing slash (`/sessions/1/dispenses` as in the docs).
router.register("patients", PatientViewSet, basename="patient")
urlpatterns = [path("", include(router.urls))]
