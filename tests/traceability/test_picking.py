from datetime import timedelta
from decimal import Decimal

import pytest

from core.errors import ApplicationError
from inventory.models import Lot, Vial, local_today
from tests.factories import InfusionSessionFactory, LotFactory, PatientFactory, UserFactory, VialFactory
from tests.traceability.helpers import brand, completed_session, presentation, state, stock
from traceability.picking import pick_vials
from traceability.services import vial_dispense

pytestmark = pytest.mark.django_db


def session_for(grams, patient=None):
    return InfusionSessionFactory(ordered_grams=Decimal(str(grams)), patient=patient or PatientFactory())


def picked(pick) -> list[tuple]:
    return sorted((f"{v.presentation.grams.normalize():f}", v.lot.lot_number) for v in pick.vials)


def test_the_proposal_reaches_the_dose_with_the_least_overfill():
    privigen = brand("Privigen")
    stock(privigen, grams=10, n=5, lot=LotFactory(product=privigen, lot_number="A"))
    stock(privigen, grams=5, n=2, lot=LotFactory(product=privigen, lot_number="B"))

    pick = pick_vials(session=session_for(25))

    assert picked(pick) == [("10", "A"), ("10", "A"), ("5", "B")]
    assert pick.total_grams == Decimal("25")
    assert pick.overfill_grams == Decimal("0")
    assert pick.needed_grams == Decimal("25")


def test_at_equal_overfill_the_fewest_vials_win():
    privigen = brand("Privigen")
    lot = LotFactory(product=privigen)
    stock(privigen, grams=10, n=4, lot=lot)
    stock(privigen, grams=20, n=1, lot=lot)
    stock(privigen, grams=5, n=4, lot=lot)

    pick = pick_vials(session=session_for(20))

    assert [v.presentation.grams for v in pick.vials] == [Decimal("20")]


def test_when_the_dose_cannot_be_met_exactly_the_overfill_is_reported():
    privigen = brand("Privigen")
    stock(privigen, grams=10, n=4)

    pick = pick_vials(session=session_for("28.2"))

    assert pick.total_grams == Decimal("30")
    assert pick.overfill_grams == Decimal("1.8")


def test_vials_of_one_presentation_are_taken_earliest_beyond_use_date_first():
    privigen = brand("Privigen")
    late = stock(privigen, grams=10, n=2, days=300)
    soon = stock(privigen, grams=10, n=2, days=30)

    pick = pick_vials(session=session_for(20))

    assert {v.pk for v in pick.vials} == {v.pk for v in soon}
    assert not {v.pk for v in pick.vials} & {v.pk for v in late}


def test_the_earliest_beyond_use_date_outranks_keeping_to_one_lot():
    privigen = brand("Privigen")
    soon = stock(privigen, grams=10, n=1, days=20, lot=LotFactory(product=privigen, lot_number="SOON"))
    stock(privigen, grams=10, n=3, days=200, lot=LotFactory(product=privigen, lot_number="LATE"))

    pick = pick_vials(session=session_for(30))

    assert soon[0] in pick.vials
    assert picked(pick) == [("10", "LATE"), ("10", "LATE"), ("10", "SOON")]


def test_among_equal_proposals_one_lot_is_preferred():
    privigen = brand("Privigen")
    expiry = local_today() + timedelta(days=200)
    one = LotFactory(product=privigen, lot_number="ONE", expiry_date=expiry)
    two = LotFactory(product=privigen, lot_number="TWO", expiry_date=expiry)
    stock(privigen, grams=10, n=1, lot=one)
    stock(privigen, grams=5, n=1, lot=two)
    stock(privigen, grams=5, n=2, lot=one)

    pick = pick_vials(session=session_for(15))

    # 10 + 5 from lot ONE, rather than 10 (ONE) + 5 (TWO): same grams, same count, one lot.
    assert {v.lot.lot_number for v in pick.vials} == {"ONE"}
    assert len(pick.vials) == 2


def test_the_patient_stays_on_the_current_brand_when_it_is_in_stock():
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    stock(panzyga, grams=20, n=2, days=10)
    stock(privigen, grams=10, n=4, days=300)

    pick = pick_vials(session=session_for(40, patient))

    assert {v.presentation.product for v in pick.vials} == {privigen}
    assert pick.brand_switch is None
    assert not pick.mixes_brands


def test_another_brand_is_proposed_with_the_switch_when_the_current_one_runs_short():
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    stock(privigen, grams=10, n=1)
    stock(panzyga, grams=10, n=4)

    pick = pick_vials(session=session_for(30, patient))

    assert {v.presentation.product for v in pick.vials} == {panzyga}
    assert pick.brand_switch == (privigen, panzyga)
    assert not pick.mixes_brands


def test_brands_are_mixed_only_when_no_single_brand_reaches_the_dose():
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    stock(privigen, grams=10, n=2)
    stock(panzyga, grams=10, n=2)

    pick = pick_vials(session=session_for(30))

    assert pick.total_grams == Decimal("30")
    assert pick.mixes_brands
    assert {p.brand for p in pick.products} == {"Privigen", "Panzyga"}


def test_the_proposal_completes_a_session_already_under_way_in_its_own_brand():
    user = UserFactory()
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    session = session_for(30)
    [first] = stock(panzyga, grams=10)
    vial_dispense(session=session, vial=first, actor=user)
    stock(privigen, grams=10, n=2, days=5)
    stock(panzyga, grams=10, n=2, days=300)

    pick = pick_vials(session=session)

    assert pick.already_dispensed_grams == Decimal("10")
    assert pick.needed_grams == Decimal("20")
    assert {v.presentation.product for v in pick.vials} == {panzyga}


def test_a_session_that_already_has_its_dose_needs_nothing_more():
    user = UserFactory()
    session = session_for(10)
    [vial] = stock(brand("Privigen"), grams=10)
    vial_dispense(session=session, vial=vial, actor=user)

    pick = pick_vials(session=session)

    assert pick.vials == [] and pick.needed_grams == 0


def test_vials_that_must_not_be_given_are_never_proposed():
    privigen = brand("Privigen")
    good = stock(privigen, grams=10, n=1)
    stock(privigen, grams=10, lot=LotFactory(product=privigen, status=Lot.Status.RECALLED))
    stock(privigen, grams=10, lot=LotFactory(product=privigen, status=Lot.Status.QUARANTINED))
    stock(privigen, grams=10, days=-1)
    expired = LotFactory(product=privigen, expiry_date=local_today() - timedelta(days=1))
    stock(privigen, grams=10, lot=expired, beyond_use_date=expired.expiry_date)
    VialFactory(presentation=presentation(privigen, 10), status=Vial.Status.WASTED, location=None)

    pick = pick_vials(session=session_for(10))
    assert pick.vials == good

    with pytest.raises(ApplicationError) as caught:
        pick_vials(session=session_for(20))
    assert caught.value.code == "insufficient_stock"


def test_no_combination_reaching_the_dose_is_refused_with_the_grams_available():
    stock(brand("Privigen"), grams=10, n=2)
    stock(brand("Panzyga"), grams=5, n=1)
    session = session_for(40)
    before = state()

    with pytest.raises(ApplicationError) as caught:
        pick_vials(session=session)

    assert caught.value.code == "insufficient_stock"
    assert caught.value.status == 409
    assert caught.value.extra == {"needed_grams": "40", "available_grams": "25"}
    assert "only 25 g" in caught.value.message
    assert state() == before


def test_a_pick_changes_nothing():
    stock(brand("Privigen"), grams=10, n=3)
    session = session_for(20)
    before = state()

    pick_vials(session=session)

    assert state() == before


def test_a_large_dose_from_many_small_vials_is_still_exact():
    privigen = brand("Privigen")
    for grams in ("1", "2.5", "5", "10", "20"):
        stock(privigen, grams=grams, n=12)

    pick = pick_vials(session=session_for("143.5"))

    assert pick.total_grams == Decimal("143.5")
    # 20×7 = 140, then 2.5 + 1 = 3.5: nine vials.
    assert len(pick.vials) == 9


@pytest.mark.parametrize("status", [InfusionSessionFactory._meta.model.Status.COMPLETED,
                                    InfusionSessionFactory._meta.model.Status.CANCELLED])
def test_a_pick_for_a_session_that_takes_no_more_vials_is_refused(db, status):
    session = InfusionSessionFactory(status=status)
    with pytest.raises(ApplicationError) as refusal:
        pick_vials(session=session)
    assert refusal.value.code == "session_not_open"


# --- the worst case: many interchangeable vials ---------------------------------------------------


def _six_lots_sharing_one_date():
    """One brand, six lots with the same beyond-use date (stock moved to a room-temperature shelf
    the same day), five vial sizes: 180 vials."""
    product = brand("Gammagard Liquid", excipient="glycine")
    same_day = local_today() + timedelta(days=20)
    for n in range(6):
        lot = LotFactory(product=product, lot_number=f"L{n}", expiry_date=local_today() + timedelta(days=300))
        for grams in (1, 2.5, 5, 10, 20):
            stock(product, grams=grams, n=6, lot=lot, beyond_use_date=same_day)
    return product


@pytest.mark.parametrize("grams, total", [("35", "35"), ("38.5", "38.5"), ("97.5", "97.5")])
def test_the_pick_over_many_interchangeable_vials_searches_counts_not_vials(grams, total, django_assert_max_num_queries):
    _six_lots_sharing_one_date()
    session = session_for(grams)

    with django_assert_max_num_queries(12):
        pick = pick_vials(session=session)

    assert pick.total_grams == Decimal(total)
    # Fewest lots: every vial from one lot, since each lot holds every size.
    assert len({v.lot_id for v in pick.vials}) == 1
    # The search is bounded: tied count-combinations times lot sets, not vials to the power of lots.
    assert pick.effort.combinations <= 50
    assert pick.effort.lot_sets <= pick.effort.combinations * 64


def test_lots_that_cover_one_size_each_are_combined_in_the_fewest_lots():
    product = brand("Privigen", excipient="glycine")
    same_day = local_today() + timedelta(days=20)
    tens = LotFactory(product=product, lot_number="TENS")
    fives = LotFactory(product=product, lot_number="FIVES")
    spare = LotFactory(product=product, lot_number="SPARE")
    stock(product, grams=10, n=3, lot=tens, beyond_use_date=same_day)
    stock(product, grams=5, n=1, lot=fives, beyond_use_date=same_day)
    stock(product, grams=10, n=1, lot=spare, beyond_use_date=same_day)
    stock(product, grams=5, n=1, lot=spare, beyond_use_date=same_day)

    pick = pick_vials(session=session_for(25))

    # 10 + 10 + 5: from TENS and SPARE (two lots), or TENS and FIVES (two lots); never three.
    assert len({v.lot_id for v in pick.vials}) == 2
    assert pick.total_grams == Decimal("25")
