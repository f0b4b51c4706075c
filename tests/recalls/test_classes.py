"""Recall classes as regulators use them: FDA I/II/III and market withdrawal, MHRA 1-4, not yet
classified; the action deadline each implies; notifications overdue past it (service, list, API,
Excel); a class given later. Refusals change nothing."""

import io
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from openpyxl import load_workbook

from core.errors import ApplicationError
from recalls.export import recall_workbook
from recalls.models import NotificationTask, Recall, class_text
from recalls.selectors import notification_list, notification_overdue, recall_list, recall_progress
from recalls.services import notification_update, recall_classify, recall_close, recall_create
from tests.factories import RecallFactory
from tests.recalls.test_scenario import build_scenario
from tests.recalls.test_services import snapshot

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=dt_timezone.utc)


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves: clock.now is what timezone.now() answers."""

    class Clock:
        now = T0

        def advance(self, delta: timedelta) -> None:
            self.now += delta

    c = Clock()
    monkeypatch.setattr(timezone, "now", lambda: c.now)
    return c


@pytest.fixture
def scenario():
    return build_scenario()


def create(actor, lots, **fields):
    values = {"reference": "MHRA-EL(26)A/07", "source": Recall.Source.REGULATOR, "scheme": Recall.Scheme.MHRA,
              "recall_class": Recall.RecallClass.CLASS_2, "reason": "Out of specification", "lots": lots,
              "actor": actor}
    values.update(fields)
    return recall_create(**values)


@pytest.mark.parametrize(
    "scheme, recall_class, within",
    [
        ("mhra", "1", timedelta(0)),
        ("mhra", "2", timedelta(hours=48)),
        ("mhra", "3", timedelta(days=5)),
        ("mhra", "4", None),
        ("mhra", "unclassified", None),
        ("fda", "I", None),
        ("fda", "II", None),
        ("fda", "III", None),
        ("fda", "market_withdrawal", None),
        ("fda", "unclassified", None),
    ],
)
def test_each_class_sets_the_action_deadline_it_implies(scenario, recall_coordinator, clock, scheme, recall_class, within):
    recall = create(recall_coordinator, scenario.lots, scheme=scheme, recall_class=recall_class)

    assert (recall.scheme, recall.recall_class) == (scheme, recall_class)
    assert recall.action_due == (T0 + within if within is not None else None)
    assert Recall.objects.get(pk=recall.pk).action_due == recall.action_due


def test_the_notices_own_deadline_wins_over_the_class(scenario, recall_coordinator, clock):
    due = T0 + timedelta(hours=6)

    recall = create(recall_coordinator, scenario.lots, scheme="fda", recall_class="I", action_due=due)

    assert recall.action_due == due


@pytest.mark.parametrize(
    "scheme, recall_class, text",
    [
        ("mhra", "1", "MHRA class 1: action immediately"),
        ("mhra", "2", "MHRA class 2: action within 48 hours"),
        ("mhra", "3", "MHRA class 3: action within 5 days"),
        ("mhra", "4", "MHRA class 4: caution in use"),
        ("fda", "market_withdrawal", "FDA market withdrawal: removed for a minor or no violation"),
        ("fda", "unclassified", "FDA, not yet classified"),
    ],
)
def test_the_class_reads_as_the_notice_states_it(scheme, recall_class, text):
    assert class_text(scheme, recall_class) == text


@pytest.mark.parametrize(
    "scheme, recall_class, code",
    [("mhra", "II", "invalid_recall_class"), ("fda", "2", "invalid_recall_class"), ("fda", "market withdrawal",
     "invalid_recall_class"), ("ema", "I", "invalid_scheme")],
)
def test_a_class_of_another_scheme_is_refused_and_nothing_changes(scenario, recall_coordinator, scheme, recall_class, code):
    before = snapshot()

    with pytest.raises(ApplicationError) as refused:
        create(recall_coordinator, scenario.lots, scheme=scheme, recall_class=recall_class)

    assert refused.value.code == code
    assert snapshot() == before


def test_a_naive_deadline_is_refused_and_nothing_changes(scenario, recall_coordinator):
    before = snapshot()

    with pytest.raises(ApplicationError) as refused:
        create(recall_coordinator, scenario.lots, action_due=datetime(2026, 3, 4, 12, 0))

    assert refused.value.code == "invalid_action_due"
    assert snapshot() == before


def test_the_database_refuses_a_class_of_another_scheme():
    with pytest.raises(IntegrityError), transaction.atomic():
        RecallFactory(scheme="mhra", recall_class="II")


# Overdue ---------------------------------------------------------------------------------------


def test_pending_notifications_become_overdue_after_an_mhra_class_2_deadline(scenario, recall_coordinator, clock):
    recall = create(recall_coordinator, scenario.lots, recall_class="2")
    ann = NotificationTask.objects.get(recall=recall, patient=scenario.patients["ann"])
    notification_update(task=ann, status="contacted", actor=recall_coordinator)
    total = recall.notifications.count()

    clock.advance(timedelta(hours=47, minutes=59))
    assert recall_progress(recall)["overdue"] == 0
    assert not any(notification_overdue(t) for t in notification_list(recall=recall))

    clock.advance(timedelta(minutes=2))
    assert recall_progress(recall)["overdue"] == total - 1
    assert recall_progress(recall_list(now=clock.now).get(pk=recall.pk))["overdue"] == total - 1
    overdue = {t.patient.mrn: notification_overdue(t) for t in notification_list(recall=recall)}
    assert overdue.pop(scenario.patients["ann"].mrn) is False
    assert set(overdue.values()) == {True}


def test_an_mhra_class_1_recall_is_overdue_as_soon_as_anyone_is_left_to_notify(scenario, recall_coordinator, clock):
    recall = create(recall_coordinator, scenario.lots, recall_class="1")

    clock.advance(timedelta(minutes=1))

    assert recall_progress(recall)["overdue"] == recall.notifications.count() > 0


@pytest.mark.parametrize("recall_class", ["4", "unclassified"])
def test_a_class_without_a_deadline_never_makes_anything_overdue(scenario, recall_coordinator, clock, recall_class):
    recall = create(recall_coordinator, scenario.lots, recall_class=recall_class)

    clock.advance(timedelta(days=400))

    assert recall_progress(recall)["overdue"] == 0


def test_the_api_shows_the_deadline_and_the_overdue_notifications(scenario, recall_coordinator, recall_client, clock):
    recall = create(recall_coordinator, scenario.lots, recall_class="3")
    clock.advance(timedelta(days=5, seconds=1))

    detail = recall_client.get(f"/api/recalls/{recall.pk}").json()
    tasks = recall_client.get(f"/api/recalls/{recall.pk}/notifications").json()["results"]

    assert (detail["scheme"], detail["recall_class"]) == ("mhra", "3")
    assert detail["class_text"] == "MHRA class 3: action within 5 days"
    assert detail["action_due"] == "2026-03-07T04:30:00-05:00"  # T0 + 5 days, in the site's zone
    assert detail["progress"]["overdue"] == len(tasks) > 0
    assert {(t["overdue"], t["due"]) for t in tasks} == {(True, detail["action_due"])}


def test_the_excel_lookback_lists_the_deadline_and_which_notifications_are_overdue(scenario, recall_coordinator, clock):
    recall = create(recall_coordinator, scenario.lots, recall_class="2")
    ann = NotificationTask.objects.get(recall=recall, patient=scenario.patients["ann"])
    notification_update(task=ann, status="contacted", actor=recall_coordinator)
    clock.advance(timedelta(days=3))

    wb = load_workbook(io.BytesIO(recall_workbook(recall)))

    facts = {row[0]: row[1] for row in wb["Recall"].iter_rows(values_only=True)}
    assert facts["Scheme"] == "MHRA"
    assert facts["Class"] == "MHRA class 2: action within 48 hours"
    assert facts["Action due"] == timezone.localtime(T0 + timedelta(hours=48)).replace(tzinfo=None)
    assert facts["Notifications overdue"] == recall.notifications.count() - 1
    header, *body = list(wb["Notifications"].iter_rows(values_only=True))
    rows = [dict(zip(header, row)) for row in body]
    assert {r["MRN"]: r["Overdue"] for r in rows}[scenario.patients["ann"].mrn] is None
    assert {r["Overdue"] for r in rows if r["MRN"] != scenario.patients["ann"].mrn} == {"overdue"}


def test_the_excel_lookback_states_the_retention_period_from_the_setting(scenario, recall_coordinator, settings):
    settings.RECORD_RETENTION_YEARS = 11
    recall = create(recall_coordinator, scenario.lots)

    wb = load_workbook(io.BytesIO(recall_workbook(recall)))

    facts = {row[0]: row[1] for row in wb["Recall"].iter_rows(values_only=True)}
    assert facts["Retention"] == (
        "Dispense and recall records, this lookback included, are kept 11 years after the recall is closed "
        "(setting RECORD_RETENTION_YEARS)."
    )


def test_a_closed_recall_states_until_when_it_is_kept(scenario, recall_coordinator, clock, settings):
    settings.RECORD_RETENTION_YEARS = 30
    recall = create(recall_coordinator, scenario.lots)
    for task in recall.notifications.all():
        notification_update(task=task, status="contacted", actor=recall_coordinator)
    recall_close(recall=recall, reason="all patients told", actor=recall_coordinator)

    wb = load_workbook(io.BytesIO(recall_workbook(Recall.objects.get(pk=recall.pk))))

    facts = {row[0]: row[1] for row in wb["Recall"].iter_rows(values_only=True)}
    assert "kept 30 years until at least 2056-03-02" in facts["Retention"]


# A class given later -----------------------------------------------------------------------------


def test_a_recall_classified_later_takes_the_deadline_of_its_class_from_then(scenario, recall_coordinator, clock):
    recall = create(recall_coordinator, scenario.lots, recall_class="unclassified")
    clock.advance(timedelta(days=1))

    classified = recall_classify(recall=recall, scheme="mhra", recall_class="2", reason="MHRA alert EL(26)A/07",
                                 actor=recall_coordinator)

    assert (classified.recall_class, classified.action_due) == ("2", T0 + timedelta(days=1, hours=48))
    row = classified.history.first()
    assert row.history_change_reason.startswith("recall MHRA-EL(26)A/07 classified MHRA class 2")
    assert row.history_user == recall_coordinator


def test_classifying_through_the_api_answers_the_new_class(scenario, recall_coordinator, recall_client, clock):
    recall = create(recall_coordinator, scenario.lots, scheme="fda", recall_class="unclassified")

    reason = "FDA recalls page, 'immune globulin lots with increased reports of hypersensitivity', 2025-03-11"
    response = recall_client.post(f"/api/recalls/{recall.pk}/classify",
                                  {"scheme": "fda", "recall_class": "market_withdrawal", "reason": reason})

    assert response.status_code == 200, response.content
    assert response.json()["class_text"] == "FDA market withdrawal: removed for a minor or no violation"
    # The history keeps the start of a long reason (its field holds 100 characters).
    change = Recall.objects.get(pk=recall.pk).history.first().history_change_reason
    assert change.startswith("recall MHRA-EL(26)A/07 classified FDA market withdrawal: FDA recalls page") and len(change) == 100


@pytest.mark.parametrize(
    "change, code",
    [
        ({"scheme": "mhra", "recall_class": "2", "reason": "again"}, "nothing_to_change"),
        ({"scheme": "mhra", "recall_class": "I", "reason": "typo"}, "invalid_recall_class"),
        ({"scheme": "mhra", "recall_class": "1", "reason": " "}, "reason_required"),
    ],
)
def test_a_classification_that_changes_nothing_or_is_wrong_is_refused(scenario, recall_coordinator, clock, change, code):
    recall = create(recall_coordinator, scenario.lots, recall_class="2")
    clock.advance(timedelta(hours=1))
    before = snapshot(), Recall.objects.values_list("scheme", "recall_class", "action_due").get()

    with pytest.raises(ApplicationError) as refused:
        recall_classify(recall=recall, actor=recall_coordinator, **change)

    assert refused.value.code == code
    assert (snapshot(), Recall.objects.values_list("scheme", "recall_class", "action_due").get()) == before


def test_a_closed_recall_cannot_be_classified(scenario, recall_coordinator):
    recall = create(recall_coordinator, scenario.lots, recall_class="unclassified")
    for task in recall.notifications.all():
        notification_update(task=task, status="contacted", actor=recall_coordinator)
    recall_close(recall=recall, reason="done", actor=recall_coordinator)
    before = snapshot()

    with pytest.raises(ApplicationError) as refused:
        recall_classify(recall=recall, scheme="mhra", recall_class="3", reason="late", actor=recall_coordinator)

    assert refused.value.code == "recall_closed"
    assert snapshot() == before


def test_technicians_may_not_classify_a_recall(scenario, recall_coordinator, tech_client):
    recall = create(recall_coordinator, scenario.lots, recall_class="unclassified")

    response = tech_client.post(f"/api/recalls/{recall.pk}/classify",
                                {"scheme": "mhra", "recall_class": "1", "reason": "x"})

    assert response.status_code == 403
    assert Recall.objects.get(pk=recall.pk).recall_class == "unclassified"


def test_an_mhra_recall_is_opened_through_the_api_with_its_deadline(scenario, recall_client, clock):
    response = recall_client.post("/api/recalls/", {
        "reference": "MHRA-1", "source": "regulator", "scheme": "mhra", "recall_class": "2", "reason": "x",
        "lots": [lot.pk for lot in scenario.lots],
    }, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["scheme"], body["recall_class"]) == ("mhra", "2")
    assert body["action_due"] == "2026-03-04T04:30:00-05:00"


def test_an_api_recall_whose_class_is_not_of_its_scheme_is_a_400_that_changes_nothing(scenario, recall_client):
    before = snapshot()

    response = recall_client.post("/api/recalls/", {
        "reference": "MHRA-2", "source": "regulator", "scheme": "mhra", "recall_class": "II", "reason": "x",
        "lots": [lot.pk for lot in scenario.lots],
    }, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_recall_class")
    assert snapshot() == before
