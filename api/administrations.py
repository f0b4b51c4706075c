"""The administration record and home use: what nurses record at the bedside (start, rate steps,
pauses, reactions, the end with each vial's fate) and the home infusions a patient reports.
Nurses and pharmacists record; technicians and auditors read."""

import django_filters
from django.shortcuts import get_object_or_404
from django.urls import include, path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.access import LogsPatientAccess, record_patient_access
from api.filters import IdFilter
from api.permissions import capability_permission
from api.routers import OptionalSlashRouter
from core.roles import SCOPE_UPCOMING, effective_roles, patient_scope, roles_may
from api.serializers import DateTimeField, IdField, validated
from api.sessions import (
    DispenseOut,
    ReactionIn,
    ReactionOut,
    SessionPatientOut,
    UsernameField,
    one_to_one,
)
from traceability.infusion import (
    administration_finish,
    administration_pause,
    administration_rate,
    administration_resume,
    administration_start,
    home_infusion_report,
)
from traceability.models import Administration, AdministrationStep, HomeInfusion, InfusionSession, VialFate
from traceability.selectors import (
    administration_queryset,
    home_infusion_queryset,
    infusion_worklist,
    reaction_queryset,
    upcoming_sessions,
)
from traceability.services import reaction_record

InfusionPermission = capability_permission("InfusionPermission", read="infusions.read", write="infusions.record")


# --- output ------------------------------------------------------------------------------------


class StepOut(serializers.ModelSerializer):
    recorded_by = UsernameField(read_only=True)
    at = DateTimeField(help_text="In the site's time zone")

    class Meta:
        model = AdministrationStep
        fields = ["id", "kind", "at", "rate_ml_per_h", "rate_ml_per_kg_per_h", "reason", "recorded_by", "recorded_at"]


class FateOut(serializers.ModelSerializer):
    recorded_by = UsernameField(read_only=True)
    serial = serializers.CharField(source="dispense.vial.serial")
    lot_number = serializers.CharField(source="dispense.vial.lot.lot_number")
    brand = serializers.CharField(source="dispense.vial.presentation.product.brand")

    class Meta:
        model = VialFate
        fields = ["dispense", "serial", "lot_number", "brand", "fate", "volume_left_ml", "recorded_by", "recorded_at"]


class RateOut(serializers.Serializer):
    ml_per_h = serializers.DecimalField(max_digits=6, decimal_places=1)
    ml_per_kg_per_h = serializers.DecimalField(max_digits=7, decimal_places=3, allow_null=True)


class AdministrationOut(serializers.ModelSerializer):
    """An administration with its steps, fates and reactions, all from administration_queryset()'s
    prefetches."""

    patient = SessionPatientOut(source="session.patient", read_only=True)
    scheduled_date = serializers.DateField(source="session.scheduled_date", read_only=True)
    started_at = DateTimeField(read_only=True)
    ended_at = DateTimeField(read_only=True)
    started_by = UsernameField(read_only=True)
    ended_by = UsernameField(read_only=True, allow_null=True)
    rate = serializers.SerializerMethodField(help_text="The rate running now: null when paused or ended")
    steps = StepOut(many=True, read_only=True)
    fates = FateOut(many=True, read_only=True)
    reactions = ReactionOut(many=True, read_only=True)

    class Meta:
        model = Administration
        fields = [
            "id", "session", "patient", "scheduled_date", "status", "started_at", "started_by", "ended_at", "ended_by",
            "stop_reason", "premedication", "weight_kg", "rate", "steps", "fates", "reactions",
        ]

    @extend_schema_field(RateOut(allow_null=True))
    def get_rate(self, administration: Administration):
        if administration.status != Administration.Status.RUNNING:
            return None
        rated = [s for s in administration.steps.all() if s.kind in AdministrationStep.RATED]
        if not rated:
            return None
        return RateOut({"ml_per_h": rated[-1].rate_ml_per_h, "ml_per_kg_per_h": rated[-1].rate_ml_per_kg_per_h}).data


class WorklistPatientOut(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    name = serializers.CharField()
    date_of_birth = serializers.DateField()
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, allow_null=True)
    allergy_notes = serializers.CharField()


class WorklistOut(serializers.Serializer):
    """A session to give today: the patient to identify, the vials dispensed, the infusion so far."""

    session = serializers.IntegerField(source="pk")
    patient = WorklistPatientOut()
    scheduled_date = serializers.DateField()
    route = serializers.CharField()
    site = serializers.CharField()
    ordered_grams = serializers.DecimalField(max_digits=7, decimal_places=2)
    status = serializers.CharField()
    dispenses = DispenseOut(many=True, source="dispense_list")
    administration = serializers.SerializerMethodField()
    open_flags = serializers.SerializerMethodField()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_administration(self, session: InfusionSession):
        administration = one_to_one(session, "administration")
        return administration.pk if administration is not None else None

    def get_open_flags(self, session: InfusionSession) -> list[str]:
        """Brand switches still open: the first infusion of a new brand starts at the initial rate."""
        return [f"{f.from_product.brand} → {f.to_product.brand}" for f in session.flag_list if f.status == "open"]


class HomeVialOut(serializers.Serializer):
    dispense = serializers.IntegerField(source="dispense_id")
    serial = serializers.CharField(source="dispense.vial.serial")
    lot_number = serializers.CharField(source="dispense.vial.lot.lot_number")
    brand = serializers.CharField(source="dispense.vial.presentation.product.brand")


class HomeInfusionOut(serializers.ModelSerializer):
    patient = SessionPatientOut(source="session.patient", read_only=True)
    recorded_by = UsernameField(read_only=True)
    vials = HomeVialOut(many=True, read_only=True)
    reactions = ReactionOut(many=True, read_only=True)

    class Meta:
        model = HomeInfusion
        fields = ["id", "session", "patient", "infused_on", "sites", "reported_by_text", "notes", "vials", "reactions",
                  "recorded_by", "recorded_at"]


# --- input -------------------------------------------------------------------------------------


class RateIn(serializers.Serializer):
    rate_ml_per_h = serializers.DecimalField(max_digits=7, decimal_places=1, required=False, allow_null=True)
    rate_ml_per_kg_per_h = serializers.DecimalField(max_digits=7, decimal_places=3, required=False, allow_null=True)
    at = DateTimeField(required=False, allow_null=True,
                       help_text="When it was done (default now); without an offset, the site's local time")


class StartIn(RateIn):
    session = IdField()
    premedication = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class PauseIn(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, max_length=2000)
    at = DateTimeField(required=False, allow_null=True)


class FateIn(serializers.Serializer):
    dispense = IdField()
    fate = serializers.ChoiceField(choices=VialFate.Fate.choices)
    volume_left_ml = serializers.DecimalField(max_digits=7, decimal_places=1, required=False, allow_null=True,
                                              help_text="Left in a part-infused vial (wasted)")


class FinishIn(serializers.Serializer):
    fates = serializers.ListField(child=FateIn(), required=False, default=list, max_length=200,
                                  help_text="The fate of each vial given (one returned to stock needs none)")
    at = DateTimeField(required=False, allow_null=True)


class StopIn(FinishIn):
    reason = serializers.CharField(max_length=2000, help_text="Why the infusion is stopped before the dose ran")


class HomeVialIn(serializers.Serializer):
    lot = serializers.CharField(max_length=20, help_text="The lot number on the vials used")
    count = serializers.IntegerField(min_value=1, max_value=100)


class HomeInfusionIn(serializers.Serializer):
    session = IdField(help_text="The home supply (a session with setting=home)")
    infused_on = serializers.DateField()
    sites = serializers.IntegerField(min_value=0, max_value=100)
    vials = serializers.ListField(child=HomeVialIn(), max_length=50)
    reported_by_text = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


# --- views -------------------------------------------------------------------------------------


class AdministrationFilter(django_filters.FilterSet):
    session = IdFilter(field_name="session_id")
    patient = IdFilter(field_name="session__patient_id")
    date = django_filters.DateFilter(field_name="session__scheduled_date")

    class Meta:
        model = Administration
        fields = ["session", "patient", "status", "date"]


def _rates(data: dict) -> dict:
    return {"rate_ml_per_h": data.get("rate_ml_per_h"), "rate_ml_per_kg_per_h": data.get("rate_ml_per_kg_per_h"),
            "at": data.get("at")}


def in_reach(queryset, user):
    """The administration record names patients: a technician (who gives no infusion) reads it only
    for the sessions of the coming days, as the sessions themselves; nurses, pharmacists and
    auditors read it whole."""
    if patient_scope(user) == SCOPE_UPCOMING and not roles_may(effective_roles(user), "infusions.record"):
        return queryset.filter(session_id__in=upcoming_sessions().values("pk"))
    return queryset


class AdministrationViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                            viewsets.GenericViewSet):
    permission_classes = [InfusionPermission]
    patient_id_of = "session.patient_id"
    lookup_value_regex = r"[0-9]+"
    serializer_class = AdministrationOut
    filterset_class = AdministrationFilter

    def get_queryset(self):
        return in_reach(administration_queryset(), self.request.user).order_by("-started_at", "-id")

    def _administration(self, pk) -> Administration:
        return get_object_or_404(Administration, pk=pk)

    def _out(self, pk, code=status.HTTP_200_OK) -> Response:
        return Response(AdministrationOut(administration_queryset().get(pk=pk)).data, status=code)

    @extend_schema(responses={200: WorklistOut(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def worklist(self, request):
        """Sessions to give today (vials dispensed, or an infusion still running), by patient name."""
        sessions = list(infusion_worklist())
        record_patient_access(request, [s.patient_id for s in sessions])
        return Response(WorklistOut(sessions, many=True).data)

    @extend_schema(request=StartIn, responses={201: AdministrationOut})
    def create(self, request):
        """Start the infusion of a session at its first rate (mL/h, or mL/kg/h of the patient's weight)."""
        data = validated(StartIn, request.data)
        session = get_object_or_404(InfusionSession, pk=data["session"])
        administration = administration_start(session=session, actor=request.user,
                                              premedication=data["premedication"], **_rates(data))
        return self._out(administration.pk, status.HTTP_201_CREATED)

    @extend_schema(request=RateIn, responses={200: AdministrationOut})
    @action(detail=True, methods=["post"])
    def rate(self, request, pk=None):
        """Step the rate of a running infusion."""
        data = validated(RateIn, request.data)
        administration_rate(administration=self._administration(pk), actor=request.user, **_rates(data))
        return self._out(pk)

    @extend_schema(request=PauseIn, responses={200: AdministrationOut})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Pause the infusion (reason required)."""
        data = validated(PauseIn, request.data)
        administration_pause(administration=self._administration(pk), actor=request.user, reason=data["reason"],
                             at=data.get("at"))
        return self._out(pk)

    @extend_schema(request=RateIn, responses={200: AdministrationOut})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume a paused infusion at a rate."""
        data = validated(RateIn, request.data)
        administration_resume(administration=self._administration(pk), actor=request.user, **_rates(data))
        return self._out(pk)

    @extend_schema(request=FinishIn, responses={200: AdministrationOut})
    @action(detail=True, methods=["post"])
    def finish(self, request, pk=None):
        """Finish the infusion, with the fate of each vial given."""
        data = validated(FinishIn, request.data)
        administration_finish(administration=self._administration(pk), actor=request.user,
                              fates=[dict(f) for f in data["fates"]], at=data.get("at"))
        return self._out(pk)

    @extend_schema(request=StopIn, responses={200: AdministrationOut})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        """Stop the infusion before the dose ran (reason required), with the fate of each vial."""
        data = validated(StopIn, request.data)
        administration_finish(administration=self._administration(pk), actor=request.user,
                              fates=[dict(f) for f in data["fates"]], at=data.get("at"),
                              stop_reason=data["reason"])
        return self._out(pk)

    @extend_schema(request=ReactionIn, responses={201: ReactionOut})
    @action(detail=True, methods=["post"])
    def reactions(self, request, pk=None):
        """Record a reaction in this infusion: linked to it, with the rate running at onset."""
        data = validated(ReactionIn, request.data)
        administration = self._administration(pk)
        reaction = reaction_record(session=InfusionSession(pk=administration.session_id), actor=request.user, **data)
        return Response(ReactionOut(reaction_queryset().get(pk=reaction.pk)).data, status=status.HTTP_201_CREATED)


class HomeInfusionFilter(django_filters.FilterSet):
    session = IdFilter(field_name="session_id")
    patient = IdFilter(field_name="session__patient_id")

    class Meta:
        model = HomeInfusion
        fields = ["session", "patient"]


class HomeInfusionViewSet(LogsPatientAccess, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    """Infusions patients gave at home from a home supply, as they reported them."""

    permission_classes = [InfusionPermission]
    patient_id_of = "session.patient_id"
    lookup_value_regex = r"[0-9]+"
    serializer_class = HomeInfusionOut
    filterset_class = HomeInfusionFilter

    def get_queryset(self):
        return in_reach(home_infusion_queryset(), self.request.user).order_by("-infused_on", "-id")

    @extend_schema(request=HomeInfusionIn, responses={201: HomeInfusionOut})
    def create(self, request):
        """Record a home infusion the patient reports: the day, the sites, the vials by lot."""
        data = validated(HomeInfusionIn, request.data)
        session = get_object_or_404(InfusionSession, pk=data["session"])
        home = home_infusion_report(
            session=session, infused_on=data["infused_on"], sites=data["sites"],
            vials=[dict(v) for v in data["vials"]], reported_by_text=data["reported_by_text"], notes=data["notes"],
            actor=request.user,
        )
        return Response(HomeInfusionOut(home_infusion_queryset().get(pk=home.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReactionIn, responses={201: ReactionOut})
    @action(detail=True, methods=["post"])
    def reactions(self, request, pk=None):
        """Record a reaction the patient reports after this home infusion."""
        data = validated(ReactionIn, request.data)
        home = get_object_or_404(HomeInfusion, pk=pk)
        reaction = reaction_record(session=InfusionSession(pk=home.session_id), home_infusion=home,
                                   actor=request.user, **data)
        return Response(ReactionOut(reaction_queryset().get(pk=reaction.pk)).data, status=status.HTTP_201_CREATED)


router = OptionalSlashRouter()
router.register("administrations", AdministrationViewSet, basename="administration")
router.register("home-infusions", HomeInfusionViewSet, basename="home-infusion")
urlpatterns = [path("", include(router.urls))]
