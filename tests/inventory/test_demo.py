"""The demo stock for `make run`: received through the receiving service, and safe to load twice."""

from datetime import timedelta

import pytest

from inventory import demo
from inventory.catalog.loader import load_catalog
from inventory.models import Lot, StorageLocation, Vial
from tests.factories import UserFactory
from tests.inventory.helpers import freeze_now, stock_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor():
    load_catalog()
    return UserFactory(username="pharm", role="pharmacist")


def test_the_demo_sets_up_every_kind_of_location_and_receives_its_stock_audited(actor):
    created = demo.load(actor=actor)

    assert created["locations"] == len(demo.LOCATIONS)
    assert created["vials"] == Vial.objects.count() > 0
    assert set(StorageLocation.objects.values_list("kind", flat=True)) == set(StorageLocation.Kind.values)
    assert not Vial.objects.exclude(status=Vial.Status.IN_STOCK).exists()
    assert set(Vial.history.values_list("history_user", flat=True)) == {actor.pk}
    assert set(Vial.history.values_list("history_change_reason", flat=True)) <= {
        f"received into {code}" for _, code, _ in demo.LOCATIONS
    }


def test_loading_the_demo_twice_changes_nothing(actor):
    demo.load(actor=actor)
    before = stock_state()

    assert demo.load(actor=actor) == {"locations": 0, "vials": 0}
    assert stock_state() == before


def test_loading_the_demo_again_months_later_changes_nothing(monkeypatch, actor):
    from django.utils import timezone

    demo.load(actor=actor)
    before = stock_state()
    freeze_now(monkeypatch, timezone.now() + timedelta(days=75))

    assert demo.load(actor=actor) == {"locations": 0, "vials": 0}
    assert stock_state() == before
    assert Lot.objects.count() == len({row[2] for row in demo.STOCK})
