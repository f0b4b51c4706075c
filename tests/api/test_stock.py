"""GET /api/stock/expiring: what reaches its beyond-use date soon, first to expire first, a page at a time,
with the grams by brand of all of it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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
    assert [v["id"] for v in body["results"]] == [first.pk, second.pk, third.pk]
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
    assert [v["id"] for v in body["results"]] == [inside.pk]


def test_nothing_expiring_is_an_empty_report(tech_client):
    body = tech_client.get(URL).json()

    assert (body["results"], body["by_brand"]) == ([], [])


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

    # The GROUP BY for the grams by brand, the capped count, the page's keys, its vials with their joins.
    queries = assert_constant_queries(tech_client, URL, make_row, django_assert_num_queries,
                                      rows=lambda body: len(body["results"]))

    assert queries == 4


def test_expiring_stock_is_paginated_with_the_grams_by_brand_of_every_page(tech_client):
    today = local_today()
    product = PresentationFactory(product=ProductFactory(brand="Privigen"), grams=Decimal("5"))
    vials = [VialFactory(presentation=product, beyond_use_date=today + timedelta(days=n)) for n in range(5)]

    first = tech_client.get(f"{URL}?page_size=2").json()
    second = tech_client.get(first["next"]).json()
    last = tech_client.get(second["next"]).json()

    assert (first["count"], first["count_exact"], first["previous"]) == (5, True, None)
    assert [v["id"] for v in first["results"] + second["results"] + last["results"]] == [v.pk for v in vials]
    assert last["next"] is None
    assert "page=2" in last["previous"]
    for body in (first, second, last):
        assert body["within_days"] == 30
        assert body["by_brand"] == [{"brand": "Privigen", "grams": "25.00", "vials": 5}]


def test_a_page_past_the_end_of_expiring_stock_is_not_found(tech_client):
    VialFactory(beyond_use_date=local_today())

    response = tech_client.get(f"{URL}?page=2")

    assert response.status_code == 404


@pytest.mark.parametrize("page_size", ["0", "-5", "501", "abc", "2.5"])
def test_expiring_stock_refuses_a_page_size_that_is_not_a_whole_number_from_1_to_500(page_size, tech_client):
    response = tech_client.get(f"{URL}?page_size={page_size}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_expiring_stock_takes_the_same_queries_for_a_page_of_5_as_for_50(tech_client, django_assert_num_queries):
    for n in range(60):
        VialFactory(beyond_use_date=local_today() + timedelta(days=n % 20))
    tech_client.get(URL)
    with CaptureQueriesContext(connection) as few:
        assert len(tech_client.get(f"{URL}?page_size=5").json()["results"]) == 5

    with django_assert_num_queries(len(few.captured_queries)):
        assert len(tech_client.get(f"{URL}?page_size=50").json()["results"]) == 50
