"""Retention: history and access logs are kept forever unless AUDIT_RETENTION_DAYS says otherwise,
and even then only purge_history deletes them, with a reason it records."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import HistoryPurge, PatientAccess, Seal
from audit.services import checkpoint_create, history_purge, patient_access_record
from audit.verify import verify_history
from core.errors import ApplicationError
from core.history import audited_save
from inventory.models import Vial
from tests.audit.helpers import build_world


@pytest.fixture
def world(db):
    return build_world()


def test_history_is_kept_forever_by_default_and_the_command_refuses(world, settings):
    settings.AUDIT_RETENTION_DAYS = None
    rows = Vial.history.count()

    with pytest.raises(CommandError, match="kept forever"):
        call_command("purge_history", reason="disk full")

    assert Vial.history.count() == rows and not HistoryPurge.objects.exists()


def test_a_purge_needs_a_reason(world, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    checkpoint_create(trigger="command")
    rows = Vial.history.count()

    with pytest.raises(ApplicationError) as refused:
        history_purge(reason="  ", operator="ops", now=timezone.now() + timedelta(days=31))

    assert refused.value.code == "reason_required"
    assert Vial.history.count() == rows and not HistoryPurge.objects.exists()


def test_nothing_younger_than_the_retention_is_purged(world, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    checkpoint_create(trigger="command")

    with pytest.raises(ApplicationError) as refused:
        history_purge(reason="yearly", operator="ops")

    assert refused.value.code == "nothing_to_purge"


def test_a_purge_deletes_what_passed_the_retention_records_why_and_the_rest_still_verifies(world, settings, auditor):
    settings.AUDIT_RETENTION_DAYS = 30
    patient_access_record(user=auditor, patient_ids=[world.patient.pk], via="test")
    old = checkpoint_create(trigger="command")
    vial = world.vial
    vial.status = Vial.Status.QUARANTINED
    audited_save(vial, actor=auditor, reason="kept: after the checkpoint")

    purge = history_purge(reason="retention policy 2026", operator="ops", now=timezone.now() + timedelta(days=31))

    assert purge.up_to_seal == old.last_seal and purge.reason == "retention policy 2026"
    assert list(Vial.history.values_list("history_change_reason", flat=True)) == ["kept: after the checkpoint"]
    assert not PatientAccess.objects.exists()
    assert not Seal.objects.filter(id__lte=old.last_seal).exists()
    assert purge.history.get().history_change_reason == "retention purge: retention policy 2026"
    report = verify_history()
    assert report.ok, [p.text for p in report.problems]
