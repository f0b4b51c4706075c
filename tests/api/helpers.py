"""Helpers for API tests: the role matrix and constant query counts on lists."""

from collections.abc import Callable

from django.db import connection
from django.test.utils import CaptureQueriesContext

ROLES = ["technician", "pharmacist", "auditor", "recall_coordinator", "none", None]
ALL_FOUR = {"technician", "pharmacist", "auditor", "recall_coordinator"}
STOCK = {"technician", "pharmacist"}
PHARMACIST_ONLY = {"pharmacist"}


def refused(role: str | None) -> int:
    """403 for a logged-in user without the role, 401 for anonymous (token authentication answers
    401 with a WWW-Authenticate challenge)."""
    return 401 if role is None else 403


def expected_status(role: str | None, allowed: set[str], ok: int) -> int:
    """`ok` for an allowed role, else what refused() says."""
    return ok if role in allowed else refused(role)


def page_rows(body) -> int:
    return len(body["results"])


def assert_constant_queries(
    client,
    url: str,
    make_row: Callable[[], object],
    django_assert_num_queries,
    *,
    rows: Callable[[dict], int] = page_rows,
    many: int = 20,
) -> int:
    """Measure the queries of `url` listing one row, then assert the same number for `many` rows.
    Returns the number, so tests can report it."""
    make_row()
    client.get(url)  # warm up: the caller's roles are read once per user, then cached
    with CaptureQueriesContext(connection) as small:
        response = client.get(url)
    assert response.status_code == 200, response.content
    assert rows(response.json()) == 1
    for _ in range(many - 1):
        make_row()
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert response.status_code == 200
    assert rows(response.json()) == many
    return len(small.captured_queries)
