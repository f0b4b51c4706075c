"""GET /api/stock/expiring: what reaches its beyond-use date soon, first to expire first, grams by brand."""

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.models import Vial, local_today
from tests.api.helpers import ALL_FOUR, ROLES, assert_constant_queries, expected_status
from tests.factories import PresentationFactory, ProductFactory, VialFactory

pytestmark = pytest.mark.django_db

URL = "/api/stock/expiring"


def test_expiring_stock_is_ordered_by_beyond_use_date_with_grams_by_brand(tech_client):
    today = local_today()
    gamma = PresentationFactory(product=ProductFactory(brand="Gammagard Liquid"), grams=Decimal("10"))
    hizentra = PresentationFactory(product=ProductFactory(brand="Hizentra"), grams=Decimal("4"))
    third = VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=9))
    first = VialFactory(presentation=hizentra, beyond_use_date=today + timedelta(days=1))
    second = VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=5))
    VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=11))
    VialFactory(presentation=gamma, beyond_use_date=today + timedelta(days=2), status=Vial.Status.DISPENSED, location=None)

    response = tech_client.get(f"{URL}?within_days=10")

    assert response.status_code == 200
    body = response.json()
    assert body["within_days"] == 10
    assert [v["id"] for v in body["vials"]] == [first.pk, second.pk, third.pk]
    assert body["by_brand"] == [
        {"brand": "Gammagard Liquid", "grams": "20.00", "vials": 2},
        {"brand": "Hizentra", "grams": "4.00", "vials": 1},
    ]


def test_expiring_stock_looks_thirty_days_ahead_by_default(auditor_client):
    today = local_today()
    inside = VialFactory(beyond_use_date=today + timedelta(days=30))
    VialFactory(beyond_use_date=today + timedelta(days=31))

    body = auditor_client.get(URL).json()

    assert body["within_days"] == 30
    assert [v["id"] for v in body["vials"]] == [inside.pk]


def test_nothing_expiring_is_an_empty_report(tech_client):
    body = tech_client.get(URL).json()

    assert (body["vials"], body["by_brand"]) == ([], [])


@pytest.mark.parametrize("within_days", ["-1", "abc", "3651", "1.5", "99999999999999999999999"])
def test_a_horizon_that_is_not_a_whole_number_of_days_up_to_ten_years_is_invalid(within_days, tech_client):
    response = tech_client.get(f"{URL}?within_days={within_days}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_expiring_stock(role, client_for):
    VialFactory(beyond_use_date=local_today())

    response = client_for(role).get(URL)

    assert response.status_code == expected_status(role, ALL_FOUR, 200)


def test_expiring_stock_takes_the_same_number_of_queries_for_one_vial_and_for_twenty(
    tech_client, django_assert_num_queries
):
    def make_row():
        VialFactory(beyond_use_date=local_today() + timedelta(days=3))

    # One SELECT for the vials with their joins, one GROUP BY for the grams by brand.
    queries = assert_constant_queries(tech_client, URL, make_row, django_assert_num_queries,
                                      rows=lambda body: len(body["vials"]))

    assert queries == 2
