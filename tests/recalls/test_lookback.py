"""The look-up and the lookback: every vial of a lot, on a shelf or given, each patient once."""

import pytest

from core.errors import ApplicationError
from inventory.models import Vial
from labels.gs1 import element_string
from tests.factories import (
    LotFactory,
    PatientFactory,
    PresentationFactory,
    ProductFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
    gtin_with_check_digit,
)
from tests.recalls.test_scenario import build_scenario, give
from recalls.models import Recall
from recalls.selectors import lot_lookup, lot_number_suggestions, recall_lookback
from recalls.services import recall_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario():
    return build_scenario()


def only(lookup):
    assert len(lookup.results) == 1
    return lookup.results[0]


def serials(vials):
    return {v.serial for v in vials}


def test_lookup_lists_stock_on_hand_grouped_by_location(scenario):
    result = only(lot_lookup(lot="P100263"))
    groups = {g.location.code: serials(g.vials) for g in result.on_hand_by_location}
    assert groups == {"FRIDGE-A": {"A0001", "A0002", "A0014"}, "RT-1": {"A0003"}}


def test_lookup_lists_every_dispense_with_patient_session_date_and_who(scenario):
    result = only(lot_lookup(lot="P100263"))
    lines = [(d.vial.serial, d.session.patient.mrn, d.status) for d in result.dispenses]
    assert sorted(lines) == sorted([
        ("A0004", "MRN0001", "dispensed"),
        ("A0005", "MRN0001", "dispensed"),
        ("A0006", "MRN0002", "returned_to_stock"),
        ("A0006", "MRN0003", "dispensed"),
        ("A0007", "MRN0004", "wasted"),
        ("A0014", "MRN0002", "returned_to_stock"),
    ])
    assert {d.dispensed_by.username for d in result.dispenses} == {"tess"}
    assert all(d.session.scheduled_date for d in result.dispenses)


def test_lookup_lists_vials_wasted_and_returned_to_the_supplier(scenario):
    result = only(lot_lookup(lot="P100263"))
    assert serials(result.wasted) == {"A0007", "A0008"}
    assert serials(result.returned) == {"A0009"}


def test_lookup_counts_the_lot(scenario):
    counts = only(lot_lookup(lot="P100263")).counts
    assert counts == {
        "vials": 10, "on_hand": 4, "in_stock": 4, "quarantined": 0, "dispensed": 3, "wasted": 2, "returned": 1,
        "dispenses": 6, "patients": 4,
    }


def test_lookup_works_with_or_without_a_recall(scenario, recall_coordinator):
    assert only(lot_lookup(lot="P100263")).recalls == []
    recall = recall_create(
        reference="FDA-9", source="regulator", recall_class="I", reason="x", lots=scenario.lots, actor=recall_coordinator
    )
    result = only(lot_lookup(lot="P100263"))
    assert result.recalls == [recall]
    assert result.counts["quarantined"] == 4
    assert result.lot.status == "recalled"


def test_the_lookback_lists_every_patient_exactly_once_with_all_their_vials(scenario, recall_coordinator):
    recall = recall_create(
        reference="FDA-9", source="regulator", recall_class="I", reason="x", lots=scenario.lots, actor=recall_coordinator
    )
    patients = recall_lookback(recall).patients
    assert [e.patient.mrn for e in patients] == ["MRN0001", "MRN0002", "MRN0003", "MRN0004"]
    assert {e.patient.mrn: serials(e.vials) for e in patients} == {
        scenario.patients[key].mrn: expected for key, expected in scenario.expected_tasks.items()
    }
    received = {e.patient.mrn: e.received for e in patients}
    assert received == {"MRN0001": True, "MRN0002": False, "MRN0003": True, "MRN0004": True}


def test_the_lookback_merges_a_patient_across_lots(scenario, recall_coordinator):
    recall = recall_create(
        reference="FDA-9", source="regulator", recall_class="I", reason="x", lots=scenario.lots, actor=recall_coordinator
    )
    ann = next(e for e in recall_lookback(recall).patients if e.patient.mrn == "MRN0001")
    assert {d.vial.lot.lot_number for d in ann.dispenses} == {"P100263", "P100264"}
    assert ann.vial_count == 3


# Matching ------------------------------------------------------------------------------------


def test_lookup_matches_exactly_and_ignores_surrounding_spaces(scenario):
    assert only(lot_lookup(lot="  P100263\t")).lot == scenario.lots[0]


def test_lookup_is_case_sensitive_and_suggests_the_lot_in_its_own_case(scenario):
    with pytest.raises(ApplicationError) as missing:
        lot_lookup(lot="p100263")
    assert (missing.value.status, missing.value.code) == (404, "lot_not_found")
    assert missing.value.extra["suggestions"][0] == "P100263"


def test_a_near_miss_suggests_close_lot_numbers(scenario):
    with pytest.raises(ApplicationError) as missing:
        lot_lookup(lot="P1OO263")  # letter O for zero
    assert "P100263" in missing.value.extra["suggestions"]


def test_a_lot_number_cut_short_suggests_the_lots_that_start_with_it(scenario):
    assert set(lot_number_suggestions("P10026")) >= {"P100263", "P100264"}


def test_nothing_like_it_suggests_nothing(scenario):
    with pytest.raises(ApplicationError) as missing:
        lot_lookup(lot="ZZZZ-9999-QQ")
    assert missing.value.extra["suggestions"] == []


def test_prefix_match_finds_every_lot_that_starts_with_it_and_is_case_sensitive(scenario):
    found = lot_lookup(lot="P10026", match="prefix")
    assert [r.lot.lot_number for r in found.results] == ["P100263", "P100264"]
    with pytest.raises(ApplicationError):
        lot_lookup(lot="p10026", match="prefix")


def test_a_lot_number_of_two_brands_returns_both_unless_narrowed(scenario):
    other = ProductFactory(brand="Gamunex-C")
    gtin = gtin_with_check_digit("0952999999999")
    PresentationFactory(product=other, gtin=gtin)
    LotFactory(product=other, lot_number="P100263")
    assert len(lot_lookup(lot="P100263").results) == 2
    assert only(lot_lookup(lot="P100263", brand="gamunex-c")).lot.product == other
    assert only(lot_lookup(lot="P100263", gtin=gtin)).lot.product == other
    with pytest.raises(ApplicationError) as missing:
        lot_lookup(lot="M245B8541", brand="Privigen")
    assert missing.value.code == "lot_not_found"


def test_lookup_by_scanning_a_carton(scenario):
    vial = scenario.vials["a1"]
    raw = "]d2" + element_string(gtin=vial.presentation.gtin, expiry=vial.lot.expiry_date, lot="P100263", serial="A0001")
    result = only(lot_lookup(barcode=raw))
    assert result.lot == scenario.lots[0]


def test_a_scan_without_a_lot_is_refused(scenario):
    raw = element_string(gtin=scenario.vials["a1"].presentation.gtin, serial="A0001")
    with pytest.raises(ApplicationError) as refused:
        lot_lookup(barcode=raw)
    assert refused.value.code == "barcode_without_lot"


@pytest.mark.parametrize("kwargs, code", [({"lot": "  "}, "lot_required"), ({"lot": "P1", "match": "fuzzy"}, "invalid_match")])
def test_lookup_refuses_bad_input(kwargs, code):
    with pytest.raises(ApplicationError) as refused:
        lot_lookup(**kwargs)
    assert refused.value.code == code


# Query counts --------------------------------------------------------------------------------


def lot_of(size: int):
    """A lot of `size` vials over three locations, every fourth one given to its own patient."""
    presentation = PresentationFactory()
    lot = LotFactory(product=presentation.product, lot_number=f"Q{size:05d}")
    locations = [StorageLocationFactory() for _ in range(3)]
    vials = [VialFactory(presentation=presentation, lot=lot, location=locations[i % 3]) for i in range(size)]
    tech = UserFactory()
    for vial in vials[::4]:
        give(vial, PatientFactory(), by=tech)
    vials[1].status = Vial.Status.WASTED
    vials[1].save()
    return lot


@pytest.mark.parametrize("size", [2, 40])
def test_lookup_costs_the_same_queries_whatever_the_lot_size(size, django_assert_num_queries):
    lot = lot_of(size)
    with django_assert_num_queries(6):  # lots, vials not dispensed, vials by status, dispenses, recall links, excursion vials
        result = only(lot_lookup(lot=lot.lot_number))
        # Everything a response reads, read here: no query may hide in a property.
        for group in result.on_hand_by_location:
            [(v.presentation.gtin, group.location.code) for v in group.vials]
        for e in result.patients:
            [(d.vial.lot.product.brand, d.session.patient.mrn, d.dispensed_by.username, d.vial.presentation.grams)
             for d in e.dispenses]
        result.counts, result.wasted, result.returned, result.recalls
    assert result.counts["vials"] == size


@pytest.mark.parametrize("size", [2, 40])
def test_recall_lookback_costs_the_same_queries_whatever_the_lot_size(size, django_assert_num_queries, recall_coordinator):
    lot = lot_of(size)
    recall = recall_create(reference=f"R{size}", source="internal", recall_class="III", reason="x", lots=[lot],
                           actor=recall_coordinator)
    recall = Recall.objects.get(pk=recall.pk)
    with django_assert_num_queries(6):
        lookback = recall_lookback(recall)
        [(d.vial.lot.lot_number, d.session.patient.name) for e in lookback.patients for d in e.dispenses]
        [v.location.name for v in lookback.on_hand]
    assert len(lookback.on_hand) == size - len(range(0, size, 4)) - 1
