"""Two technicians scan the same vial for two sessions at the same moment: exactly one wins.

This needs real row locks and concurrent connections, so it runs on PostgreSQL only."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from inventory.models import Vial
from tests.factories import InfusionSessionFactory, UserFactory
from tests.traceability.helpers import brand, stock
from traceability.models import Dispense

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip(
            f"needs PostgreSQL: {connection.vendor} has no row locks (SELECT … FOR UPDATE) and serialises writers"
        )


@pytest.mark.parametrize("same_session", [False, True], ids=["two sessions", "one session"])
def test_two_simultaneous_dispenses_of_one_vial_let_exactly_one_through(same_session):
    [vial] = stock(brand("Privigen"))
    first = InfusionSessionFactory()
    sessions = [first, first if same_session else InfusionSessionFactory()]
    users = [UserFactory(username="alice", role="technician"), UserFactory(username="tom", role="technician")]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def dispense(index: int) -> None:
        client = APIClient()
        client.force_authenticate(users[index])
        try:
            barrier.wait(timeout=30)
            response = client.post(f"/api/sessions/{sessions[index].pk}/dispenses", {"vial": vial.pk}, format="json")
            results[index] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=dispense, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 409]
    refused = next(body for status, body in results if status == 409)
    assert refused["code"] == "already_dispensed"
    assert Dispense.objects.filter(vial=vial).count() == 1
    assert Vial.objects.get(pk=vial.pk).status == Vial.Status.DISPENSED
    assert Vial.history.filter(id=vial.pk, status=Vial.Status.DISPENSED).count() == 1
