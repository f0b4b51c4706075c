"""Recall services: create (lots recalled, shelf stock quarantined, one task per patient), create
from pasted text, notification outcomes, close, bulk disposal. Refusals change nothing."""

from datetime import date

import pytest
from django.db.models import Q

from core.errors import ApplicationError
from inventory.models import Lot, Vial
from inventory.rules import dispense_refusal
from tests.factories import InfusionSessionFactory, LotFactory, ProductFactory, VialFactory
from tests.recalls.test_scenario import build_scenario
from recalls.models import NotificationTask, Recall, RecallLot
from recalls.selectors import recall_progress
from recalls.services import (
    lot_numbers_from_text,
    notification_update,
    recall_bulk_dispose,
    recall_close,
    recall_create,
    recall_create_from_text,
)
from traceability.services import vial_dispense

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario():
    return build_scenario()


@pytest.fixture
def rita(recall_coordinator):
    return recall_coordinator


def create(actor, lots, **fields):
    values = {
        "reference": "FDA-2025-1207",
        "source": Recall.Source.REGULATOR,
        "recall_class": Recall.RecallClass.I,
        "reason": "Thromboembolic events reported",
        "lots": lots,
        "actor": actor,
    }
    values.update(fields)
    return recall_create(**values)


def snapshot():
    """Everything a recall may change, to show that a refusal changed nothing."""
    return {
        "recalls": list(Recall.objects.values_list("pk", "status", "closed_at")),
        "recall_lots": RecallLot.objects.count(),
        "lots": list(Lot.objects.order_by("pk").values_list("pk", "status")),
        "vials": list(Vial.objects.order_by("pk").values_list("pk", "status", "location_id")),
        "tasks": list(NotificationTask.objects.order_by("pk").values_list("pk", "status", "note", "updated_by")),
        "history": (
            Lot.history.count(), Vial.history.count(), Recall.history.count(), RecallLot.history.count(),
            NotificationTask.history.count(),
        ),
    }


def tasks_by_patient(recall):
    return {
        t.patient.mrn: {v.serial for v in t.vials.all()}
        for t in NotificationTask.objects.filter(recall=recall).prefetch_related("vials").select_related("patient")
    }


def expected_tasks(s):
    return {s.patients[key].mrn: serials for key, serials in s.expected_tasks.items()}


# Creating a recall ---------------------------------------------------------------------------


def test_recall_create_recalls_every_lot_it_names(scenario, rita):
    recall = create(rita, scenario.lots)
    scenario.refresh()
    assert [lot.status for lot in scenario.lots] == [Lot.Status.RECALLED, Lot.Status.RECALLED]
    assert set(recall.lots.all()) == set(scenario.lots)
    assert recall.status == Recall.Status.OPEN
    assert recall.created_by == rita


def test_recall_create_quarantines_stock_on_hand_where_it_stands(scenario, rita):
    before = {key: vial.location_id for key, vial in scenario.vials.items()}
    create(rita, scenario.lots)
    scenario.refresh()
    v = scenario.vials
    for key in ("a1", "a2", "a3", "a14", "b10"):
        assert v[key].status == Vial.Status.QUARANTINED, key
        assert v[key].location_id == before[key] is not None
    assert v["a4"].status == Vial.Status.DISPENSED
    assert v["a7"].status == Vial.Status.WASTED
    assert v["a8"].status == Vial.Status.WASTED
    assert v["a9"].status == Vial.Status.RETURNED


def test_recall_create_opens_one_task_per_patient_listing_all_their_vials(scenario, rita):
    recall = create(rita, scenario.lots)
    assert tasks_by_patient(recall) == expected_tasks(scenario)
    assert NotificationTask.objects.filter(recall=recall, status=NotificationTask.Status.PENDING).count() == 4


def test_a_vial_returned_to_stock_and_dispensed_again_counts_for_both_patients(scenario, rita):
    recall = create(rita, scenario.lots)
    tasks = tasks_by_patient(recall)
    assert "A0006" in tasks[scenario.patients["ben"].mrn]
    assert "A0006" in tasks[scenario.patients["cat"].mrn]


def test_a_vial_opened_and_partly_used_counts_for_its_patient(scenario, rita):
    recall = create(rita, scenario.lots)
    assert tasks_by_patient(recall)[scenario.patients["dan"].mrn] == {"A0007"}


def test_lots_and_patients_outside_the_recall_are_untouched(scenario, rita):
    recall = create(rita, scenario.lots)
    scenario.refresh()
    assert scenario.other_lot.status == Lot.Status.RELEASED
    assert scenario.vials["c13"].status == Vial.Status.IN_STOCK
    assert scenario.patients["eve"].mrn not in tasks_by_patient(recall)


def test_recall_create_leaves_history_rows_with_user_and_reason(scenario, rita):
    recall = create(rita, scenario.lots)
    reason = "recall FDA-2025-1207"
    assert recall.history.get().history_user == rita
    assert recall.history.get().history_change_reason == reason
    lot_rows = Lot.history.filter(id__in=[lot.pk for lot in scenario.lots], status=Lot.Status.RECALLED)
    assert {(r.history_user, r.history_change_reason) for r in lot_rows} == {(rita, reason)}
    assert lot_rows.count() == 2
    vial_rows = Vial.history.filter(status=Vial.Status.QUARANTINED, history_user=rita)
    assert {r.serial for r in vial_rows} == {"A0001", "A0002", "A0003", "A0014", "B0010"}
    assert {r.history_change_reason for r in vial_rows} == {reason}
    assert RecallLot.history.filter(history_user=rita, history_change_reason=reason).count() == 2
    assert NotificationTask.history.filter(history_user=rita, history_change_reason=reason).count() == 4


def test_dispensing_a_vial_of_a_recalled_lot_is_refused_from_that_moment(scenario, rita):
    create(rita, scenario.lots)
    vial = Vial.objects.select_related("lot").get(pk=scenario.vials["a1"].pk)
    session = InfusionSessionFactory(patient=scenario.patients["eve"])
    with pytest.raises(ApplicationError) as refused:
        vial_dispense(session=session, vial=vial, actor=scenario.technician)
    assert refused.value.code == "lot_recalled"
    vial.refresh_from_db()
    assert vial.status == Vial.Status.QUARANTINED
    assert not session.dispenses.exists()


def test_a_vial_of_a_recalled_lot_back_on_a_shelf_is_still_refused(scenario, rita):
    create(rita, scenario.lots)
    vial = Vial.objects.select_related("lot").get(pk=scenario.vials["a1"].pk)
    vial.status = Vial.Status.IN_STOCK  # as if someone put it back: the lot still says no
    assert dispense_refusal(vial).code == "lot_recalled"


def test_recall_create_takes_lot_ids_and_lot_numbers(scenario, rita):
    la1, la2 = scenario.lots
    recall = create(rita, [la1.pk, " P100264 "])
    assert set(recall.lots.all()) == {la1, la2}


def test_recall_create_refuses_an_unknown_lot_number_and_changes_nothing(scenario, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        create(rita, ["P100263", "p100264", "ZZ-NOPE"])
    assert refused.value.code == "unknown_lots"
    assert refused.value.status == 400
    assert refused.value.extra["unknown_lots"] == ["p100264", "ZZ-NOPE"]
    assert "P100264" in refused.value.extra["suggestions"]["p100264"]
    assert snapshot() == before


def test_recall_create_refuses_an_unknown_lot_id_and_changes_nothing(scenario, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        create(rita, [scenario.lots[0].pk, 999_999])
    assert refused.value.code == "unknown_lots"
    assert refused.value.extra["unknown_lots"] == [999_999]
    assert snapshot() == before


def test_allow_unknown_creates_with_the_known_lots_and_keeps_the_unknown_ones(scenario, rita):
    recall = create(rita, ["P100263", "ZZ-NOPE"], allow_unknown=True)
    assert list(recall.lots.all()) == [scenario.lots[0]]
    assert recall.unmatched_lot_numbers == ["ZZ-NOPE"]


def test_a_recall_naming_no_known_lot_is_refused_even_with_allow_unknown(scenario, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        create(rita, ["ZZ-NOPE"], allow_unknown=True)
    assert refused.value.code == "no_lots"
    assert snapshot() == before


def test_a_lot_number_shared_by_two_brands_is_refused_unless_the_brand_is_given(scenario, rita):
    twin = LotFactory(product=ProductFactory(brand="Gamunex-C"), lot_number="P100263")
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        create(rita, ["P100263"])
    assert refused.value.code == "ambiguous_lots"
    assert refused.value.extra["ambiguous_lots"] == {"P100263": ["Gamunex-C", "Privigen"]}
    assert snapshot() == before
    recall = create(rita, ["P100263"], brand="privigen")
    assert list(recall.lots.all()) == [scenario.lots[0]]
    twin.refresh_from_db()
    assert twin.status == Lot.Status.RELEASED


def test_a_second_recall_with_the_same_reference_is_a_conflict_and_changes_nothing(scenario, rita):
    create(rita, [scenario.lots[0]])
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        create(rita, [scenario.lots[1]])
    assert (refused.value.status, refused.value.code) == (409, "recall_reference_exists")
    assert snapshot() == before


@pytest.mark.parametrize(
    "field, value, code",
    [
        ("reason", "  ", "reason_required"),
        ("reference", "", "reference_required"),
        ("recall_class", "IV", "invalid_recall_class"),
        ("source", "rumour", "invalid_source"),
    ],
)
def test_a_recall_without_required_facts_is_refused_and_changes_nothing(scenario, rita, field, value, code):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        create(rita, scenario.lots, **{field: value})
    assert refused.value.code == code
    assert snapshot() == before


def test_a_lot_already_recalled_can_be_named_by_another_recall(scenario, rita):
    first = create(rita, [scenario.lots[0]])
    second = create(rita, [scenario.lots[0]], reference="MFR-77")
    assert tasks_by_patient(second) == tasks_by_patient(first)
    assert Lot.history.filter(id=scenario.lots[0].pk, status=Lot.Status.RECALLED).count() == 1


def test_recall_create_is_all_or_nothing(scenario, rita, monkeypatch):
    import recalls.services as recalls

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    before = snapshot()
    monkeypatch.setattr(recalls, "patients_from", fail)
    with pytest.raises(RuntimeError):
        create(rita, scenario.lots)
    assert snapshot() == before


def test_a_recall_of_a_lot_nobody_received_opens_no_task(rita):
    vial = VialFactory()
    recall = create(rita, [vial.lot])
    vial.refresh_from_db()
    assert vial.status == Vial.Status.QUARANTINED
    assert recall.notifications.count() == 0


def test_a_quarantined_lot_becomes_recalled(rita):
    vial = VialFactory(lot__status=Lot.Status.QUARANTINED, status=Vial.Status.QUARANTINED)
    create(rita, [vial.lot])
    vial.lot.refresh_from_db()
    assert vial.lot.status == Lot.Status.RECALLED


def test_recall_create_takes_the_recall_date_given(scenario, rita):
    recall = create(rita, scenario.lots, recall_date=date(2025, 12, 7))
    assert recall.recall_date == date(2025, 12, 7)


# From pasted text ----------------------------------------------------------------------------


def test_pasted_lot_numbers_are_trimmed_blank_lines_skipped_and_duplicates_dropped():
    text = "  P100263 \n\n\tP100264\r\nP100263\n   \nabc\nABC\n"
    assert lot_numbers_from_text(text) == ["P100263", "P100264", "abc", "ABC"]


def test_recall_create_from_text_names_the_pasted_lots(scenario, rita):
    recall = recall_create_from_text(
        reference="FDA-1", source="regulator", recall_class="II", reason="Particulates",
        lots_text="P100263\n\n P100264 \nP100263\n", actor=rita,
    )
    assert set(recall.lots.all()) == set(scenario.lots)
    assert tasks_by_patient(recall) == expected_tasks(scenario)


def test_recall_create_from_text_reports_unknown_lot_numbers_and_creates_nothing(scenario, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        recall_create_from_text(
            reference="FDA-1", source="regulator", recall_class="II", reason="Particulates",
            lots_text="P100263\nP10026\nX1\n", actor=rita,
        )
    assert refused.value.code == "unknown_lots"
    assert refused.value.extra["unknown_lots"] == ["P10026", "X1"]
    assert set(refused.value.extra["suggestions"]["P10026"]) >= {"P100263", "P100264"}
    assert snapshot() == before


def test_recall_create_from_empty_text_is_refused(rita):
    with pytest.raises(ApplicationError) as refused:
        recall_create_from_text(
            reference="FDA-1", source="regulator", recall_class="II", reason="x", lots_text="\n  \n", actor=rita
        )
    assert refused.value.code == "no_lots"
    assert not Recall.objects.exists()


# Notifications -------------------------------------------------------------------------------


@pytest.fixture
def recall(scenario, rita):
    return create(rita, scenario.lots)


def task_of(recall, patient):
    return NotificationTask.objects.get(recall=recall, patient=patient)


def test_notification_update_records_outcome_note_who_and_when(scenario, recall, pharmacist):
    task = notification_update(
        task=task_of(recall, scenario.patients["ann"]), status="contacted", note="Phoned, no symptoms", actor=pharmacist
    )
    task.refresh_from_db()
    assert (task.status, task.note, task.updated_by) == ("contacted", "Phoned, no symptoms", pharmacist)
    assert task.updated_at is not None
    row = task.history.first()
    assert row.history_user == pharmacist
    assert row.history_change_reason == "recall FDA-2025-1207: patient MRN0001 contacted"


def test_notification_update_without_a_note_keeps_the_previous_note(scenario, recall, rita):
    task = task_of(recall, scenario.patients["ann"])
    notification_update(task=task, status="unreachable", note="No answer twice", actor=rita)
    notification_update(task=task, status="contacted", actor=rita)
    task.refresh_from_db()
    assert (task.status, task.note) == ("contacted", "No answer twice")


def test_not_required_needs_a_note_and_a_refusal_changes_nothing(scenario, recall, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        notification_update(task=task_of(recall, scenario.patients["ben"]), status="not_required", note=" ", actor=rita)
    assert refused.value.code == "note_required"
    assert snapshot() == before


def test_an_unknown_notification_status_is_refused(scenario, recall, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        notification_update(task=task_of(recall, scenario.patients["ben"]), status="emailed", actor=rita)
    assert refused.value.code == "invalid_status"
    assert snapshot() == before


def test_the_recall_shows_its_notification_progress(scenario, recall, rita):
    p = scenario.patients
    notification_update(task=task_of(recall, p["ann"]), status="contacted", actor=rita)
    notification_update(task=task_of(recall, p["ben"]), status="not_required", note="vials returned unopened", actor=rita)
    notification_update(task=task_of(recall, p["cat"]), status="unreachable", note="no answer", actor=rita)
    assert recall_progress(recall) == {
        "total": 4, "pending": 1, "overdue": 0, "contacted": 1, "unreachable": 1, "not_required": 1, "notified": 3,
    }


# Closing -------------------------------------------------------------------------------------


def settle_all(recall, actor):
    for task in recall.notifications.all():
        notification_update(task=task, status="contacted", note="informed", actor=actor)


def test_recall_close_records_who_when_and_why(recall, rita):
    settle_all(recall, rita)
    closed = recall_close(recall=recall, reason="All patients informed; stock returned", actor=rita)
    closed.refresh_from_db()
    assert closed.status == Recall.Status.CLOSED
    assert (closed.closed_by, closed.close_reason) == (rita, "All patients informed; stock returned")
    assert closed.closed_at is not None
    row = closed.history.first()
    assert (row.history_user, row.history_change_reason) == (
        rita, "close recall FDA-2025-1207: All patients informed; stock returned"
    )


def test_recall_close_needs_a_reason(recall, rita):
    settle_all(recall, rita)
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        recall_close(recall=recall, reason="  ", actor=rita)
    assert refused.value.code == "reason_required"
    assert snapshot() == before


def test_recall_close_is_refused_while_a_patient_is_still_to_be_notified(scenario, recall, rita):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        recall_close(recall=recall, reason="done", actor=rita)
    assert (refused.value.status, refused.value.code, refused.value.extra) == (409, "notifications_pending", {"pending": 4})
    assert snapshot() == before


def test_closing_a_closed_recall_is_refused_and_changes_nothing(recall, rita, pharmacist):
    settle_all(recall, rita)
    recall_close(recall=recall, reason="done", actor=rita)
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        recall_close(recall=recall, reason="again", actor=pharmacist)
    assert (refused.value.status, refused.value.code) == (409, "recall_closed")
    assert snapshot() == before


def test_notifications_of_a_closed_recall_are_final(scenario, recall, rita):
    settle_all(recall, rita)
    recall_close(recall=recall, reason="done", actor=rita)
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        notification_update(task=task_of(recall, scenario.patients["ann"]), status="pending", actor=rita)
    assert refused.value.code == "recall_closed"
    assert snapshot() == before


def test_closing_a_recall_keeps_its_lots_recalled(scenario, recall, rita):
    settle_all(recall, rita)
    recall_close(recall=recall, reason="done", actor=rita)
    scenario.refresh()
    assert {lot.status for lot in scenario.lots} == {Lot.Status.RECALLED}


# Disposing of the stock ------------------------------------------------------------------------


ON_HAND_SERIALS = {"A0001", "A0002", "A0003", "A0014", "B0010"}


@pytest.mark.parametrize("action, status", [("return", Vial.Status.RETURNED), ("waste", Vial.Status.WASTED)])
def test_bulk_dispose_takes_every_vial_on_hand_out_of_stock(scenario, recall, rita, action, status):
    vials = recall_bulk_dispose(recall=recall, action=action, reason="RA-5521", actor=rita)
    assert {v.serial for v in vials} == ON_HAND_SERIALS
    disposed = Vial.objects.filter(serial__in=ON_HAND_SERIALS)
    assert set(disposed.values_list("status", flat=True)) == {status}
    assert set(disposed.values_list("location", flat=True)) == {None}
    label = {"return": "return to supplier", "waste": "waste"}[action]
    rows = Vial.history.filter(serial__in=ON_HAND_SERIALS, status=status)
    assert rows.count() == 5
    assert {(r.history_user, r.history_change_reason) for r in rows} == {(rita, f"recall FDA-2025-1207: {label}: RA-5521")}
    assert Vial.objects.get(serial="C0013").status == Vial.Status.IN_STOCK


def test_bulk_dispose_is_allowed_after_the_recall_is_closed(recall, rita):
    settle_all(recall, rita)
    recall_close(recall=recall, reason="done", actor=rita)
    assert len(recall_bulk_dispose(recall=recall, action="return", reason="RA-1", actor=rita)) == 5


def test_bulk_dispose_also_takes_a_vial_put_back_in_stock_after_the_recall(recall, rita):
    vial = Vial.objects.get(serial="A0001")
    vial.status = Vial.Status.IN_STOCK
    vial.save()
    serials = {v.serial for v in recall_bulk_dispose(recall=recall, action="waste", reason="x", actor=rita)}
    assert "A0001" in serials


@pytest.mark.parametrize(
    "action, reason, code", [("burn", "x", "invalid_action"), ("return", "  ", "reason_required")]
)
def test_bulk_dispose_refusals_change_nothing(recall, rita, action, reason, code):
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        recall_bulk_dispose(recall=recall, action=action, reason=reason, actor=rita)
    assert refused.value.code == code
    assert snapshot() == before


def test_bulk_dispose_with_nothing_on_hand_is_a_conflict(recall, rita):
    recall_bulk_dispose(recall=recall, action="return", reason="RA-1", actor=rita)
    before = snapshot()
    with pytest.raises(ApplicationError) as refused:
        recall_bulk_dispose(recall=recall, action="waste", reason="again", actor=rita)
    assert (refused.value.status, refused.value.code) == (409, "nothing_to_dispose")
    assert snapshot() == before


def test_bulk_dispose_is_all_or_nothing(recall, rita, monkeypatch):
    import recalls.services as recalls

    real = recalls.audited_bulk_update

    def half_then_fail(model, objs, fields, **kwargs):
        real(model, objs[:2], fields, **kwargs)
        raise RuntimeError("connection lost")

    before = snapshot()
    monkeypatch.setattr(recalls, "audited_bulk_update", half_then_fail)
    with pytest.raises(RuntimeError):
        recall_bulk_dispose(recall=recall, action="return", reason="RA-1", actor=rita)
    assert snapshot() == before
    assert not Vial.objects.filter(Q(status=Vial.Status.RETURNED) & ~Q(serial="A0009")).exists()
