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


def test_two_nurses_finishing_one_infusion_at_once_leave_one_end_and_one_fate_per_vial():
    from decimal import Decimal

    from django.utils import timezone

    from traceability.infusion import administration_start
    from traceability.models import Administration, AdministrationStep, VialFate
    from traceability.services import vial_dispense

    session = InfusionSessionFactory()
    tech = UserFactory(username="alice", role="technician")
    dispense = vial_dispense(session=session, vial=stock(brand("Privigen"))[0], actor=tech)
    nurses = [UserFactory(username="nina", role="nurse"), UserFactory(username="otto", role="nurse")]
    administration = administration_start(session=session, actor=nurses[0], rate_ml_per_h=Decimal("30"),
                                          at=timezone.now())
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def finish(index: int) -> None:
        client = APIClient()
        client.force_authenticate(nurses[index])
        try:
            barrier.wait(timeout=30)
            response = client.post(f"/api/administrations/{administration.pk}/finish",
                                   {"fates": [{"dispense": dispense.pk, "fate": "infused"}]}, format="json")
            results[index] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(status for status, _ in results) == [200, 409]
    assert next(body for status, body in results if status == 409)["code"] == "administration_ended"
    assert VialFate.objects.filter(dispense=dispense).count() == 1
    assert AdministrationStep.objects.filter(administration=administration, kind="finish").count() == 1
    assert Administration.objects.get(pk=administration.pk).status == Administration.Status.FINISHED
