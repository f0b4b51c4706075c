"""The last dose of an authorisation, scanned for two of the patient's sessions at the same moment:
exactly one is given, the other is refused as the doses are used up.

This needs real row locks and concurrent connections, so it runs on PostgreSQL only."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import AuthorisationFactory, InfusionSessionFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, stock
from traceability.models import Dispense

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]



def test_two_sessions_dispensed_at_once_under_the_last_dose_let_exactly_one_through():
    patient = PatientFactory()
    authorisation = AuthorisationFactory(patient=patient, doses=1)
    sessions = [InfusionSessionFactory(patient=patient, authorisation=authorisation) for _ in range(2)]
    vials = stock(brand("Privigen"), 10, 2)
    users = [UserFactory(username="alice", role="technician"), UserFactory(username="tom", role="technician")]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def dispense(index: int) -> None:
        client = APIClient()
        client.force_authenticate(users[index])
        try:
            barrier.wait(timeout=30)
            response = client.post(f"/api/sessions/{sessions[index].pk}/dispenses", {"vial": vials[index].pk},
                                   format="json")
            results[index] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=dispense, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(status for status, _ in results) == [201, 409]
    assert next(body for status, body in results if status == 409)["code"] == "authorisation_doses_used"
    assert Dispense.objects.filter(authorisation=authorisation).count() == 1
