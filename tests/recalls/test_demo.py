"""The demo recall: one open recall on a demo lot both on a shelf and given to patients."""

import pytest

from tests.factories import UserFactory, VialFactory
from tests.recalls.test_scenario import build_scenario
from recalls import demo as recall_demo
from recalls.models import Recall

pytestmark = pytest.mark.django_db


def test_the_demo_recalls_a_lot_that_is_on_a_shelf_and_was_given_to_patients():
    scenario = build_scenario()
    admin = UserFactory(username="demo-admin")
    recall_demo.load(actor=admin)
    recall = Recall.objects.get()
    assert recall.status == Recall.Status.OPEN
    assert recall.reference == recall_demo.DEMO_REFERENCE
    assert list(recall.lots.all()) == [scenario.lots[0]]
    assert recall.notifications.count() == 4


def test_loading_the_demo_twice_creates_one_recall():
    build_scenario()
    admin = UserFactory(username="demo-admin")
    recall_demo.load(actor=admin)
    recall_demo.load(actor=admin)
    assert Recall.objects.count() == 1


def test_the_demo_skips_the_recall_when_no_lot_was_given_to_anyone():
    VialFactory()
    recall_demo.load(actor=UserFactory())
    assert not Recall.objects.exists()
