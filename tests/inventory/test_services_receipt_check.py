"""Checking a case before it is received: what each scan would do, changing nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.models import Lot, Vial, local_today
from inventory.services import SHORT_DATED_DAYS, receipt_check
from tests.factories import LotFactory, PresentationFactory, ProductFactory, VialFactory
from tests.inventory.helpers import carton, in_a_year

pytestmark = pytest.mark.django_db


@pytest.fixture
def presentation():
    return PresentationFactory(product=ProductFactory(brand="Gammagard Liquid"), grams=Decimal("2.5"))


def problems(check) -> list[str | None]:
    return [line.problem.code if line.problem else None for line in check.lines]


def test_a_good_case_is_ready_with_exact_totals_by_lot(presentation):
    scans = [carton(presentation, lot="L1", expiry=in_a_year(), serial=f"S{n}") for n in range(3)]
    scans.append(carton(presentation, lot="L2", expiry=in_a_year(), serial="S9"))

    check = receipt_check(scans=scans)

    assert check.ready and problems(check) == [None] * 4
    # 3 × 2.5 g is 7.5 g exactly: the totals are decimals, not floating point.
    assert check.totals == {("Gammagard Liquid", "L1"): (3, Decimal("7.5")), ("Gammagard Liquid", "L2"): (1, Decimal("2.5"))}
    assert not Vial.objects.exists() and not Lot.objects.exists()


def test_a_carton_scanned_twice_in_the_case_is_named_as_a_repeat(presentation):
    scan = carton(presentation, lot="L1", expiry=in_a_year(), serial="S1")

    check = receipt_check(scans=[scan, scan])

    assert problems(check) == [None, "repeated_in_case"]
    assert check.lines[1].problem.extra["repeats"] == 0
    assert not check.ready
    assert check.totals == {("Gammagard Liquid", "L1"): (1, Decimal("2.5"))}


def test_each_refusal_of_receiving_is_named_on_its_line(presentation):
    received = VialFactory(presentation=presentation, serial="OLD")
    recalled = LotFactory(product=presentation.product, lot_number="RC", status=Lot.Status.RECALLED)
    known = LotFactory(product=presentation.product, lot_number="KN", expiry_date=in_a_year())
    scans = [
        carton(presentation, lot=received.lot.lot_number, expiry=received.lot.expiry_date, serial="OLD"),
        carton(presentation, lot="RC", expiry=recalled.expiry_date, serial="A"),
        carton(presentation, lot="KN", expiry=in_a_year() + timedelta(days=1), serial="B"),
        carton(presentation, lot="EX", expiry=local_today() - timedelta(days=1), serial="C"),
        carton(presentation, lot="NEW", serial="D"),
        "not a barcode",
        "0100000000000000" + "10L\x1d21S",
    ]

    check = receipt_check(scans=scans)

    assert problems(check) == [
        "suspect_duplicate", "lot_recalled", "lot_expiry_conflict", "lot_expired", "missing_expiry",
        "invalid_barcode", "unknown_product",
    ]
    assert not check.ready and check.totals == {}
    assert known.vials.count() == 0


def test_a_short_dated_carton_is_received_with_a_caution_before_confirmation(presentation):
    soon = local_today() + timedelta(days=SHORT_DATED_DAYS - 1)

    check = receipt_check(scans=[carton(presentation, lot="SD", expiry=soon, serial="S1")])

    assert check.ready
    assert check.lines[0].cautions == [f"Short-dated: lot SD expires on {soon:%Y-%m-%d}, in {SHORT_DATED_DAYS - 1} days."]


def test_an_empty_case_is_not_ready():
    assert not receipt_check(scans=[]).ready
