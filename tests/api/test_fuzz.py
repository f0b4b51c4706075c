"""Schemathesis drives every operation of the published schema in process, as a pharmacist, with
valid and invalid input: whatever it sends, the answer is never a 5xx."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from knox.models import AuthToken
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from tests.factories import BrandSwitchFlagFactory, DispenseFactory, VialFactory


schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


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
def token_header(pharmacist, keep_test_connection_open) -> dict:
    # A little of everything, so that some generated ids name real rows.
    VialFactory.create_batch(2)
    DispenseFactory()
    BrandSwitchFlagFactory()
    return {"Authorization": f"Token {AuthToken.objects.create(user=pharmacist)[1]}"}


@schema.parametrize()
@settings(
    max_examples=12, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_no_request_makes_a_server_error(case, token_header):
    case.call_and_validate(headers=token_header, checks=[not_a_server_error])
