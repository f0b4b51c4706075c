"""A recall lands while technicians are dispensing vials of the same lot: every vial ends either
quarantined, or dispensed to a patient who has a notification task. Nobody slips through.

This needs real row locks and concurrent connections, so it runs on PostgreSQL only."""

import threading

import pytest
from django.db import connection

from core.errors import ApplicationError
from inventory.models import Vial
from tests.factories import InfusionSessionFactory, LotFactory, PresentationFactory, UserFactory, VialFactory
from traceability.models import Dispense
from recalls.models import NotificationTask, Recall
from recalls.services import recall_create
from traceability.services import vial_dispense

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

DISPENSERS = 6



def test_a_recall_racing_dispenses_of_its_lot_misses_no_patient():
    presentation = PresentationFactory()
    lot = LotFactory(product=presentation.product)
    vials = [VialFactory(presentation=presentation, lot=lot) for _ in range(DISPENSERS)]
    sessions = [InfusionSessionFactory() for _ in range(DISPENSERS)]
    tech, coordinator = UserFactory(username="tess"), UserFactory(username="rita")
    barrier = threading.Barrier(DISPENSERS + 1)
    outcomes: dict[str, object] = {}

    def dispense(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            vial_dispense(session=sessions[i], vial=vials[i], actor=tech)
            outcomes[f"d{i}"] = "dispensed"
        except ApplicationError as refused:
            outcomes[f"d{i}"] = refused.code
        finally:
            connection.close()

    def recall() -> None:
        try:
            barrier.wait(timeout=30)
            recall_create(
                reference="RACE-1", source="manufacturer", recall_class="I", reason="x", lots=[lot], actor=coordinator
            )
            outcomes["recall"] = "created"
        finally:
            connection.close()

    threads = [threading.Thread(target=dispense, args=(i,)) for i in range(DISPENSERS)]
    threads.append(threading.Thread(target=recall))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes["recall"] == "created"
    assert set(outcomes.values()) <= {"created", "dispensed", "lot_recalled", "lot_quarantined"}
    recall = Recall.objects.get(reference="RACE-1")
    dispensed = Dispense.objects.filter(vial__lot=lot).select_related("session")
    notified = set(NotificationTask.objects.filter(recall=recall).values_list("patient_id", flat=True))
    assert {d.session.patient_id for d in dispensed} == notified
    statuses = {v.pk: v.status for v in Vial.objects.filter(lot=lot)}
    assert set(statuses.values()) <= {Vial.Status.DISPENSED, Vial.Status.QUARANTINED}
    assert sum(1 for s in statuses.values() if s == Vial.Status.DISPENSED) == dispensed.count()
