"""History filters as typed, counts, and the newest-first pages of the JSON list."""

from datetime import datetime, timedelta

import pytest

from core.errors import ApplicationError
from labels.gs1 import gtin_check_digit
from django.utils import timezone

from audit.exceptions import InvalidCursor, InvalidHistoryFilter
from audit.registry import Labels, audited_models
from audit.selectors import Cursor, history_batches, history_counts, history_page, parse_filters
from tests.audit.helpers import build_world


@pytest.fixture
def world(db):
    return build_world()


def test_a_bare_date_means_the_whole_local_day():
    filters = parse_filters(since="2025-01-01", until="2025-01-31")

    assert timezone.localtime(filters.since).replace(tzinfo=None) == datetime(2025, 1, 1)
    assert timezone.localtime(filters.until).replace(tzinfo=None) == datetime(2025, 2, 1)
    assert filters.given == {"since": "2025-01-01", "until": "2025-01-31"}


def test_a_date_time_is_taken_as_given_and_a_naive_one_as_local_time():
    filters = parse_filters(since="2025-01-01T10:00:00+00:00", until="2025-01-02T08:30")

    assert filters.since == datetime(2025, 1, 1, 10, tzinfo=timezone.get_fixed_timezone(0))
    assert timezone.localtime(filters.until).replace(tzinfo=None) == datetime(2025, 1, 2, 8, 30)


@pytest.mark.parametrize(
    "given, code",
    [
        ({"since": "yesterday"}, "invalid_filter"),
        ({"until": "2025-02-30"}, "invalid_filter"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "invalid_range"),
        ({"vial": "twelve"}, "invalid_filter"),
        ({"model": "widgets"}, "unknown_model"),
    ],
)
def test_filters_that_make_no_sense_are_refused_with_a_code(given, code):
    with pytest.raises(InvalidHistoryFilter) as refused:
        parse_filters(**given)
    assert refused.value.code == code
    assert refused.value.message


def test_every_model_with_history_has_a_sheet():
    from django.apps import apps

    audited = {m for m in apps.get_models() if hasattr(m._meta, "simple_history_manager_attribute")}
    assert {spec.model for spec in audited_models().values()} >= audited


def test_counts_follow_the_filters(world):
    counts = history_counts(parse_filters(lot="P100263"))

    assert counts["vials"] == 3 and counts["dispenses"] == 1 and counts["sessions"] == 2
    assert counts["patients"] == 0 and counts["products"] == 0


def test_an_unknown_lot_number_is_not_found_with_close_lot_numbers_as_suggestions(world):
    with pytest.raises(ApplicationError) as missing:
        parse_filters(lot="p100263")

    assert (missing.value.status, missing.value.code) == (404, "lot_not_found")
    assert missing.value.extra["suggestions"][0] == "P100263"


def test_the_lot_filter_matches_as_the_recall_look_up_does(world):
    assert parse_filters(lot="  P100263\t").lot_ids == (world.lot.pk,)
    assert parse_filters(lot="P1002", lot_match="prefix").lot_ids == (world.lot.pk,)
    gtin = "0095200000001" + gtin_check_digit("0095200000001")
    type(world.vial.presentation).objects.filter(pk=world.vial.presentation_id).update(gtin=gtin)
    scanned = f"(01){gtin}(17)300101(10)P100263(21)4711"
    assert parse_filters(lot=scanned).lot_ids == (world.lot.pk,)


@pytest.mark.parametrize(
    "given, code, suggestion",
    [
        ({"patient": "mrn-a"}, "patient_not_found", "MRN-A"),
        ({"user": "Phill"}, "user_not_found", "phil"),
        ({"vial": 999999}, "vial_not_found", None),
    ],
)
def test_a_patient_user_or_vial_that_does_not_exist_is_not_found(world, given, code, suggestion):
    with pytest.raises(ApplicationError) as missing:
        parse_filters(**given)

    assert (missing.value.status, missing.value.code) == (404, code)
    if suggestion:
        assert suggestion in missing.value.extra["suggestions"]


def test_batches_hold_each_row_with_the_previous_record_of_its_object(world):
    spec = audited_models()["vials"]
    pairs = [pair for batch in history_batches(spec, parse_filters(), labels=Labels(), chunk_size=2) for pair in batch]

    assert len(pairs) == 5
    firsts = [row for row, before in pairs if before is None]
    assert len(firsts) == 2  # one per vial, across batch boundaries
    for row, before in pairs:
        if before is not None:
            assert before[5] == row[5] and before[1] <= row[1]


def test_pages_are_newest_first_across_models_and_cursors_walk_both_ways(world):
    filters = parse_filters()
    total = sum(history_counts(filters).values())
    seen = []
    page = history_page(filters, page_size=4)
    pages = [page]
    while page.next:
        page = history_page(filters, cursor=page.next, page_size=4)
        pages.append(page)
    for p in pages:
        seen += [(e["when"], e["model"], e["history_id"]) for e in p.entries]

    assert len(seen) == total == len(set(seen))
    whens = [when for when, _, _ in seen]
    assert whens == sorted(whens, reverse=True)
    back = history_page(filters, cursor=pages[2].previous, page_size=4)
    assert [e["history_id"] for e in back.entries] == [e["history_id"] for e in pages[1].entries]
    assert [e["model"] for e in back.entries] == [e["model"] for e in pages[1].entries]


def test_the_newest_records_of_every_model_are_read_in_one_statement_then_the_page_by_key(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = history_page(parse_filters(), page_size=4)

    models_on_page = {e["model"] for e in page.entries}
    keys = [q["sql"] for q in queries.captured_queries if " UNION ALL " in q["sql"]]
    assert len(keys) == 1
    assert keys[0].count(" UNION ALL ") == len(audited_models()) - 1
    # The keys, then per model on the page its rows and their previous records, and the labels.
    assert len(queries.captured_queries) < len(audited_models())
    assert len(models_on_page) >= 1


@pytest.mark.parametrize("page_size", [1, 3, 50])
def test_a_user_filter_pages_through_the_same_entries_as_the_unfiltered_list_holds_for_that_user(world, page_size):
    # Two ways to a page: the keys of every model in one statement (no filter), whole rows model by
    # model (a user filter); the same entries, in the same order, forwards and back, either way.
    from django.contrib.auth import get_user_model

    def walk(filters):
        pages = [history_page(filters, page_size=page_size)]
        while pages[-1].next:
            pages.append(history_page(filters, cursor=pages[-1].next, page_size=page_size))
        if len(pages) > 1:
            back = history_page(filters, cursor=pages[-1].previous, page_size=page_size)
            assert back.entries == pages[-2].entries
        return [entry for page in pages for entry in page.entries]

    everything = walk(parse_filters())
    users = [u for u in get_user_model().objects.values_list("username", flat=True)
             if any(e["who"].split(" (")[0] == u for e in everything)]
    assert len(users) >= 2
    for username in users:
        assert walk(parse_filters(user=username)) == [e for e in everything if e["who"].split(" (")[0] == username]


def test_a_page_entry_carries_the_diff_against_the_previous_record(world):
    page = history_page(parse_filters(model="sessions", user="phil"))

    (entry,) = page.entries
    assert entry["action"] == "changed" and entry["who"] == "phil (Phil Pharm)" and entry["role"] == "pharmacist"
    assert [(c["field"], c["label"], str(c["old"]), str(c["new"])) for c in entry["changes"]] == [
        ("ordered_grams", "ordered grams", "30.00", "35.00")
    ]
    assert entry["changes_text"] == "ordered grams: 30 → 35"


def test_a_garbled_cursor_is_refused():
    with pytest.raises(InvalidCursor):
        Cursor.decode("not-a-cursor")


def test_a_cursor_survives_a_round_trip():
    cursor = Cursor(when=timezone.now() - timedelta(days=1), rank=3, history_id=42, reverse=True)
    assert Cursor.decode(cursor.encode()) == cursor
