"""The output serialisers' faster `to_representation` (api.serializers.PlainOutput) gives exactly
what DRF's own gives from the same fields, for every model serialiser of the API, on rows with
their optional parts filled and left empty."""

import pytest
from rest_framework import serializers

from api.audit import AccessOut
from api.inventory_out import LocationOut, LotBrief, LotOut, PresentationOut, ProductBrief, ProductOut, VialOut
from api.patients import PatientOut
from api.recalls import NotificationOut, RecallOut
from api.serializers import PlainOutput
from api.sessions import DispenseOut, FlagOut, ReactionOut, SessionOut, SessionPatientOut
from audit.selectors import patient_access_list
from audit.services import patient_access_record
from inventory.selectors import lot_queryset, product_queryset, vial_queryset
from recalls.selectors import notification_list, recall_list, with_vial_lines
from recalls.services import notification_update, recall_create
from tests.recalls.test_scenario import build_scenario
from traceability.selectors import dispense_queryset, flag_queryset, session_queryset
from tests.factories import AdverseReactionFactory, BrandSwitchFlagFactory, LotFactory

pytestmark = pytest.mark.django_db


def same_as_drf(serializer_class, instances) -> None:
    instances = list(instances)
    assert instances, serializer_class.__name__
    for instance in instances:
        serializer = serializer_class()
        assert isinstance(serializer, PlainOutput)
        assert serializer.to_representation(instance) == serializers.Serializer.to_representation(serializer, instance)


def test_every_model_serialiser_gives_what_drf_gives(recall_coordinator):
    scenario = build_scenario()
    recall = recall_create(reference="R-OUT", source="regulator", recall_class="II", reason="x", lots=scenario.lots,
                           actor=recall_coordinator)
    task = recall.notifications.order_by("pk").first()
    notification_update(task=task, status="contacted", note="Phoned", actor=recall_coordinator)
    session = scenario.patients["ann"].sessions.order_by("pk").first()
    BrandSwitchFlagFactory(session=session)
    AdverseReactionFactory(session=session)
    patient_access_record(user=recall_coordinator, patient_ids=[scenario.patients["ann"].pk], via="test")
    LotFactory()  # a lot without vials

    same_as_drf(VialOut, vial_queryset())  # on shelves, quarantined, and dispensed (no location)
    same_as_drf(LotOut, lot_queryset())
    same_as_drf(LotOut, LotFactory._meta.model.objects.all())  # without the vials-in-stock count: left out
    same_as_drf(LotBrief, LotFactory._meta.model.objects.all())
    same_as_drf(ProductOut, product_queryset())
    same_as_drf(ProductBrief, product_queryset())
    same_as_drf(PresentationOut, scenario.lots[0].product.presentations.select_related("product__manufacturer"))
    same_as_drf(LocationOut, {v.location for v in vial_queryset() if v.location})
    same_as_drf(DispenseOut, dispense_queryset())
    same_as_drf(SessionOut, session_queryset())
    same_as_drf(SessionPatientOut, [s.patient for s in session_queryset()])
    same_as_drf(PatientOut, [s.patient for s in session_queryset()])
    same_as_drf(FlagOut, flag_queryset())
    same_as_drf(ReactionOut, [r for s in session_queryset() for r in s.reactions.all()])
    same_as_drf(RecallOut, recall_list())
    same_as_drf(NotificationOut, notification_list(recall=recall))
    # A page's vials read as plain lines show what the prefetched vials show.
    lines = with_vial_lines(list(notification_list(recall=recall, vials=False)))
    assert [NotificationOut(t).data for t in lines] == [NotificationOut(t).data for t in notification_list(recall=recall)]
    assert all(t.vial_lines for t in lines)
    same_as_drf(AccessOut, patient_access_list().select_related("user", "patient"))


def test_a_kept_serialiser_gives_each_row_what_a_new_one_gives():
    from api.scan import ScanOut, scan_actions
    from api.serializers import rendered
    from inventory.selectors import scan_lookup
    from labels.gs1 import element_string

    build_scenario()
    vials = list(vial_queryset().order_by("pk")[:4])
    assert len({v.location_id for v in vials}) >= 1
    for vial in vials * 2:  # the kept instance serves each row in turn, none leaking into the next
        assert rendered(VialOut, vial) == VialOut(vial).data
        result = scan_lookup(element_string(gtin=vial.presentation.gtin, expiry=vial.lot.expiry_date,
                                            lot=vial.lot.lot_number, serial=vial.serial))
        result.kind, result.location, result.patient, result.sessions = "carton", None, None, []
        result.actions = scan_actions(result, {"technician"})
        assert rendered(ScanOut, result) == ScanOut(result).data
        assert rendered(ScanOut, result)["vial"]["serial"] == vial.serial


def test_the_kept_session_dispense_and_flag_serialisers_give_each_row_what_new_ones_give():
    from api.serializers import rendered

    build_scenario()
    BrandSwitchFlagFactory()
    dispenses, flags = list(dispense_queryset().order_by("pk")), list(flag_queryset().order_by("pk"))
    sessions = list(session_queryset().order_by("pk"))
    assert len(dispenses) >= 2 and flags and any(s.dispense_list for s in sessions)
    for session in sessions * 2:
        assert rendered(SessionOut, session) == SessionOut(session).data
    for dispense in dispenses * 2:
        assert rendered(DispenseOut, dispense) == DispenseOut(dispense).data
    for flag in flags * 2:
        assert rendered(FlagOut, flag) == FlagOut(flag).data
