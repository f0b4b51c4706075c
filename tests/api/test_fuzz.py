"""Schemathesis drives every operation of the published schema in process, as an administrator (so
that no operation stops at a 403), with data that fits the schema and data that does not, on
whichever database the suite runs on (SQLite and PostgreSQL in CI). Every answer must be a
documented status with a documented body, headers and content type, and nothing may be a 5xx:
zero failures tolerated. FUZZ_EXAMPLES (default 8) sets the examples per operation and mode.

How many requests each run sent, and how each operation answered, is written to
artifacts/fuzz/<database>-<worker>.json.
"""

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.factories import (
    BrandSwitchFlagFactory,
    DispenseFactory,
    InfusionSessionFactory,
    NotificationTaskFactory,
    RecallFactory,
    UserFactory,
    VialFactory,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "fuzz"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
schema.config.generation.update(modes=["positive", "negative"])

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Note: not negative_data_rejection. DRF and django-filter coerce leniently where the schema is
# strict (0 for "0", an empty filter value for no filter) and that check would refuse it; invalid
# data is still sent in negative mode, and must still never make a 5xx or an undocumented answer.

SENT: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_what_was_sent():
    yield
    if not SENT:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    statuses = Counter()
    for (_, status), count in SENT.items():
        statuses[status] += count
    report = {
        "database": connection.vendor,
        "requests": sum(SENT.values()),
        "by_status": dict(sorted(statuses.items())),
        "by_operation": {f"{op} {status}": count for (op, status), count in sorted(SENT.items())},
    }
    (ARTIFACTS / f"{connection.vendor}-{worker}.json").write_text(json.dumps(report, indent=1))


@pytest.fixture
def keep_test_connection_open():
    """Requests here go through the real WSGI handler, which closes "old" database connections
    when a request starts and ends, and so the test's own transaction on PostgreSQL. Django's
    test client unhooks the same two signals for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token_header(db, keep_test_connection_open) -> dict:
    # A little of everything, so that some generated ids name real rows.
    session = InfusionSessionFactory()
    dispense = DispenseFactory(session=session)
    BrandSwitchFlagFactory(session=session, raised_by=dispense)
    VialFactory.create_batch(2)
    NotificationTaskFactory(recall=RecallFactory(), patient=session.patient)
    admin = UserFactory(username="fuzz-admin", is_superuser=True, is_staff=True)
    return {"Authorization": f"Token {AuthToken.objects.create(user=admin)[1]}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_every_answer_is_documented_and_none_is_a_server_error(case, token_header):
    response = case.call_and_validate(headers=token_header, checks=CHECKS)
    SENT[(f"{case.method} {case.path}", response.status_code)] += 1
