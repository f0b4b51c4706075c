"""The lot-level reaction signal for the recall coordinator: lots whose reactions per 1,000
infusions stand out from the rest of their brand, with the patients and reactions behind them."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from api.access import record_patient_access
from api.inventory_out import LotBrief, ProductBrief
from api.permissions import capability_permission
from api.serializers import DateTimeField, validated
from recalls.signals import lot_signals

SignalPermission = capability_permission("SignalPermission", read="signals.read", write="signals.read")


class SignalPatientOut(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    name = serializers.CharField()


class SignalReactionOut(serializers.Serializer):
    id = serializers.IntegerField()
    session = serializers.IntegerField(source="session_id")
    patient = SignalPatientOut(source="session.patient")
    type = serializers.CharField()
    type_other = serializers.CharField()
    severity = serializers.CharField()
    onset_at = DateTimeField()
    rate_at_onset_ml_per_h = serializers.DecimalField(max_digits=6, decimal_places=1, allow_null=True)
    home_infusion = serializers.IntegerField(source="home_infusion_id", allow_null=True)


class LotSignalOut(serializers.Serializer):
    lot = LotBrief()
    product = ProductBrief(source="lot.product")
    infusions = serializers.IntegerField(help_text="Sessions given here and home infusions with a vial of the lot")
    reactions = serializers.IntegerField()
    rate_per_1000 = serializers.FloatField(help_text="Reactions per 1,000 infusions of the lot")
    brand_infusions = serializers.IntegerField()
    brand_reactions = serializers.IntegerField()
    brand_rate_per_1000 = serializers.FloatField(help_text="The brand's, over all its lots")
    rest_infusions = serializers.IntegerField()
    rest_reactions = serializers.IntegerField()
    rest_rate_per_1000 = serializers.FloatField(help_text="The brand's other lots', which the test compares with")
    p_value = serializers.FloatField(allow_null=True, help_text="Exact one-sided test; null with no other lot")
    signal = serializers.BooleanField()
    patients = SignalPatientOut(many=True)
    reaction_list = SignalReactionOut(many=True)


class SignalsIn(serializers.Serializer):
    all = serializers.BooleanField(required=False, default=False, help_text="Every lot with an infusion, not only signals")


class LotSignals(APIView):
    permission_classes = [SignalPermission]

    @extend_schema(parameters=[OpenApiParameter("all", bool)], responses={200: LotSignalOut(many=True)})
    def get(self, request):
        """Lots over the signal threshold (LOT_SIGNAL_ALPHA, LOT_SIGNAL_MIN_REACTIONS), most
        significant first; `all=true` lists every lot with an infusion and its figures."""
        data = validated(SignalsIn, request.query_params)
        signals = lot_signals(include_all=data["all"])
        record_patient_access(request, [p.pk for s in signals for p in s.patients])
        return Response(LotSignalOut(signals, many=True).data)


urlpatterns = [path("signals/lots", LotSignals.as_view(), name="lot-signals")]
