"""Users per role (alice the technician, paul the pharmacist, ada the auditor, rita the recall
coordinator), authenticated API clients, and a few ready-made pieces of stock."""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory

ROLE_USERS = {
    "technician": "alice",
    "pharmacist": "paul",
    "auditor": "ada",
    "recall_coordinator": "rita",
}


@pytest.fixture(scope="session", autouse=True)
def _live_server_one_request_at_a_time(django_db_setup):
    """On in-memory SQLite the live server's request threads all share the test's one connection
    (Django hands it over: the database exists nowhere else), and two of a page's requests at once
    on it fail with "database table is locked". There, the browser tests' server answers one
    request at a time, as the page's requests queue; on PostgreSQL each thread has its own
    connection and the server stays threaded."""
    from django.core.servers.basehttp import WSGIServer
    from django.test.testcases import LiveServerThread

    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return

    import time

    from django.core.management.base import CommandError
    from django.db import OperationalError
    from django.test.testcases import TransactionTestCase

    class OneAtATime(WSGIServer):
        def __init__(self, *args, connections_override=None, **kwargs):
            super().__init__(*args, **kwargs)

    # A request the page sent just before the test ended may still be reading when the test's
    # database is emptied: the flush then waits for it, as a second request would, instead of failing.
    emptied = TransactionTestCase._fixture_teardown

    def emptied_after_the_last_request(self):
        for attempt in range(50):
            try:
                return emptied(self)
            except (OperationalError, CommandError) as error:
                # The flush command wraps the database's error in its own.
                if "locked" not in f"{error} {error.__cause__}" or attempt == 49:
                    raise
                time.sleep(0.1)

    threaded, LiveServerThread.server_class = LiveServerThread.server_class, OneAtATime
    TransactionTestCase._fixture_teardown = emptied_after_the_last_request
    yield
    LiveServerThread.server_class = threaded
    TransactionTestCase._fixture_teardown = emptied


@pytest.fixture
def technician(db):
    return UserFactory(username="alice", role="technician")


@pytest.fixture
def pharmacist(db):
    return UserFactory(username="paul", role="pharmacist")


@pytest.fixture
def auditor(db):
    return UserFactory(username="ada", role="auditor")


@pytest.fixture
def recall_coordinator(db):
    return UserFactory(username="rita", role="recall_coordinator")


@pytest.fixture
def nobody(db):
    """Logged in, but in no role."""
    return UserFactory(username="nora")


def _client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def tech_client(technician):
    return _client_for(technician)


@pytest.fixture
def pharmacist_client(pharmacist):
    return _client_for(pharmacist)


@pytest.fixture
def auditor_client(auditor):
    return _client_for(auditor)


@pytest.fixture
def recall_client(recall_coordinator):
    return _client_for(recall_coordinator)


@pytest.fixture
def nobody_client(nobody):
    return _client_for(nobody)


@pytest.fixture
def client_for(db):
    """client_for("auditor") → an APIClient logged in as a fresh user of that role (or None: anonymous)."""

    def make(role: str | None):
        if role is None:
            return APIClient()
        if role == "none":
            return _client_for(UserFactory())
        return _client_for(UserFactory(role=role))

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is deliberately slow; tests create many users and need no strength here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Throttle counters live in the cache (this process's memory in tests): each test starts with none.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked postgres_only need real row locks and concurrent connections."""
    if request.node.get_closest_marker("postgres_only") and connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: {connection.vendor} has no row locks (SELECT … FOR UPDATE) and serialises writers")
