"""Pages: an exact count up to the cap, a lower bound past it (`count_exact: false`), and page
navigation that does not depend on the count; the page's queries do not grow with its size."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from api.pagination import Pagination
from inventory.models import local_today
from tests.factories import DispenseFactory, InfusionSessionFactory, LotFactory, VialFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cap_of_three(monkeypatch):
    monkeypatch.setattr(Pagination, "count_cap", 3)


@pytest.fixture
def five_vials():
    return [VialFactory(beyond_use_date=local_today() + timedelta(days=n)) for n in range(5)]


def ids(body):
    return [row["id"] for row in body["results"]]


def test_the_count_is_exact_up_to_the_cap(tech_client, five_vials, monkeypatch):
    monkeypatch.setattr(Pagination, "count_cap", 5)

    body = tech_client.get("/api/vials/?page_size=2").json()

    assert (body["count"], body["count_exact"]) == (5, True)


def test_past_the_cap_the_count_is_a_lower_bound_and_says_so(tech_client, five_vials, cap_of_three):
    body = tech_client.get("/api/vials/?page_size=2").json()

    assert (body["count"], body["count_exact"]) == (3, False)
    assert ids(body) == [v.pk for v in five_vials[:2]]
    assert "page=2" in body["next"]
    assert body["previous"] is None


def test_the_count_reads_at_most_one_row_past_the_cap(tech_client, five_vials, cap_of_three):
    tech_client.get("/api/vials/")  # the first request loads the user's roles
    with CaptureQueriesContext(connection) as queries:
        tech_client.get("/api/vials/?page_size=2")

    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    assert "LIMIT 4" in counts[0]


def test_next_leads_past_the_cap_to_the_last_page_which_states_the_exact_count(tech_client, five_vials, cap_of_three):
    first = tech_client.get("/api/vials/?page_size=2").json()
    second = tech_client.get(first["next"]).json()
    last = tech_client.get(second["next"]).json()

    assert ids(first) + ids(second) + ids(last) == [v.pk for v in five_vials]
    assert (second["count"], second["count_exact"]) == (4, False)  # more than 4: a fifth was read
    assert "page=3" in second["next"]
    assert (last["count"], last["count_exact"], last["next"]) == (5, True, None)
    assert "page=2" in last["previous"]
    back = tech_client.get(last["previous"]).json()
    assert ids(back) == ids(second)


def test_any_page_number_is_reached_directly_past_the_cap(tech_client, five_vials, cap_of_three):
    body = tech_client.get("/api/vials/?page_size=1&page=4").json()

    assert ids(body) == [five_vials[3].pk]
    assert (body["count"], body["count_exact"]) == (4, False)
    assert "page=5" in body["next"] and "page=3" in body["previous"]


@pytest.mark.parametrize("page", ["4", "99", "0", "-1", "abc"])
def test_a_page_past_the_end_or_not_a_page_is_not_found_past_the_cap(page, tech_client, five_vials, cap_of_three):
    response = tech_client.get(f"/api/vials/?page_size=2&page={page}")

    assert response.status_code == 404


def test_page_last_counts_every_row(tech_client, five_vials, cap_of_three):
    body = tech_client.get("/api/vials/?page_size=2&page=last").json()

    assert ids(body) == [five_vials[4].pk]
    assert (body["count"], body["count_exact"], body["next"]) == (5, True, None)


def test_a_filtered_list_is_counted_under_the_cap_exactly(tech_client, five_vials, cap_of_three):
    body = tech_client.get(f"/api/vials/?beyond_use_to={local_today() + timedelta(days=1)}").json()

    assert (body["count"], body["count_exact"]) == (2, True)
    assert body["next"] is None


def test_lists_that_read_their_rows_in_one_query_cap_their_count_too(tech_client, cap_of_three):
    LotFactory.create_batch(5)

    first = tech_client.get("/api/lots/?page_size=4").json()
    last = tech_client.get(first["next"]).json()

    # A page longer than the cap reads one row more than it shows: more than 4.
    assert (first["count"], first["count_exact"], len(first["results"])) == (4, False, 4)
    assert (last["count"], last["count_exact"], len(last["results"])) == (5, True, 1)


@pytest.mark.parametrize(("url", "make"), [
    ("/api/vials/", lambda n: VialFactory.create_batch(n)),
    ("/api/dispenses/", lambda n: DispenseFactory.create_batch(n)),
    ("/api/sessions/", lambda n: InfusionSessionFactory.create_batch(n)),
    ("/api/lots/", lambda n: LotFactory.create_batch(n)),
])
@pytest.mark.parametrize("capped", [False, True])
def test_a_page_of_5_takes_the_queries_of_a_page_of_12(url, make, capped, pharmacist_client, monkeypatch,
                                                      django_assert_num_queries):
    make(30)
    if capped:
        monkeypatch.setattr(Pagination, "count_cap", 20)
    pharmacist_client.get(url)  # the first request loads the user's roles
    with CaptureQueriesContext(connection) as few:
        body = pharmacist_client.get(f"{url}?page_size=5&page=2").json()
    assert (len(body["results"]), body["count_exact"]) == (5, not capped)

    with django_assert_num_queries(len(few.captured_queries)):
        body = pharmacist_client.get(f"{url}?page_size=12&page=2").json()
    assert len(body["results"]) == 12


def test_rows_read_by_key_keep_the_list_order(tech_client):
    today = local_today()
    vials = [VialFactory(beyond_use_date=today + timedelta(days=d)) for d in (9, 2, 7, 2, 5)]

    body = tech_client.get("/api/vials/").json()
    by_serial = tech_client.get("/api/vials/?ordering=-serial&page_size=3").json()

    assert ids(body) == [v.pk for v in sorted(vials, key=lambda v: (v.beyond_use_date, v.pk))]
    assert ids(by_serial) == [v.pk for v in sorted(vials, key=lambda v: v.serial, reverse=True)][:3]


def test_the_schema_documents_the_count_flag_of_every_page():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    # Every page numbered list; the access log is paged by a cursor and has no count.
    pages = {name: c for name, c in components.items() if name.startswith("Paginated") and "count" in c["properties"]}

    assert {"PaginatedVialOutList", "PaginatedDispenseOutList", "PaginatedSessionOutList"} <= set(pages)
    for name, page in pages.items():
        assert page["properties"]["count_exact"]["type"] == "boolean", name
        assert "count_exact" in page["required"], name
    expiring = schema["paths"]["/api/stock/expiring"]["get"]["responses"]["200"]["content"]["application/json"]
    assert expiring["schema"] == {"$ref": "#/components/schemas/ExpiringPageOut"}
    assert components["ExpiringPageOut"]["properties"]["count_exact"]["type"] == "boolean"
