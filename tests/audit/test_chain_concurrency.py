"""Seals under concurrent writes: writers of different objects never wait on each other, writers
of one object take turns on its row lock, and every chain verifies afterwards. PostgreSQL only
(real row locks and concurrent connections)."""

import threading

import pytest
from django.db import connection

from audit.services import checkpoint_create
from audit.verify import verify_history
from inventory.models import StorageLocation, Vial
from inventory.exceptions import MoveRefused
from inventory.services import vial_move
from tests.factories import StorageLocationFactory, UserFactory, VialFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

WRITERS = 6
MOVES = 5



def test_concurrent_moves_of_many_vials_and_of_one_vial_leave_every_chain_whole():
    tech = UserFactory(username="tess", role="technician")
    shelves = [StorageLocationFactory(kind=StorageLocation.Kind.REFRIGERATOR) for _ in range(2)]
    own = [VialFactory(location=shelves[0]) for _ in range(WRITERS)]
    shared = VialFactory(location=shelves[0])
    barrier = threading.Barrier(WRITERS * 2)
    errors = []
    moves = []

    def writer(vial: Vial) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(MOVES):
                for attempt in range(100):
                    try:
                        vial_move(vial=vial, location=shelves[1 - attempt % 2], actor=tech)
                        break
                    except MoveRefused:  # another writer put it there first: try the other shelf
                        continue
                moves.append(vial.pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(v,)) for v in own] + [
        threading.Thread(target=writer, args=(shared,)) for _ in range(WRITERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    checkpoint_create(trigger="command")

    assert not errors, errors
    assert Vial.history.filter(id=shared.pk).count() == 1 + moves.count(shared.pk) == 1 + WRITERS * MOVES
    report = verify_history()
    assert report.ok, [p.text for p in report.problems]
