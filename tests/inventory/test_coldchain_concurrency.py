"""Two imports of overlapping readings for one fridge at once: they take turns on the location's
row lock, so the excursion they share is found once and each vial is held once. PostgreSQL only."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from inventory.coldchain import ReadingIn, readings_record
from inventory.models import Excursion, ExcursionVial, StorageLocation, TemperatureReading, Vial
from tests.factories import StorageLocationFactory, UserFactory, VialFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]



def test_two_imports_of_one_excursion_at_once_open_it_once_and_hold_each_vial_once():
    tech = UserFactory(username="tess", role="technician")
    fridge = StorageLocationFactory(kind=StorageLocation.Kind.REFRIGERATOR)
    vials = [VialFactory(location=fridge) for _ in range(3)]
    Vial.history.filter(id__in=[v.pk for v in vials]).update(history_date=timezone.now() - timedelta(days=2))
    start = timezone.now() - timedelta(hours=10)
    rows = [ReadingIn(taken_at=start + timedelta(minutes=15 * n), celsius=Decimal("12" if 4 <= n < 16 else "5"),
                      where=f"reading {n}") for n in range(24)]
    halves = [rows[:14], rows[10:]]  # overlapping: the same readings in both, the excursion across both
    barrier = threading.Barrier(2)
    errors = []

    def importer(readings):
        try:
            barrier.wait(timeout=30)
            readings_record(location=fridge, readings=readings, actor=tech)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=importer, args=(half,)) for half in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert TemperatureReading.objects.count() == 24
    (excursion,) = Excursion.objects.all()
    assert excursion.ended_at == start + timedelta(hours=4)
    assert sorted(ExcursionVial.objects.values_list("vial_id", flat=True)) == sorted(v.pk for v in vials)
