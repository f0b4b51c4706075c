"""The lot-level reaction signal, on lots built with a known answer."""

from math import comb

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Vial
from tests.api.helpers import expected_status
from tests.factories import (
    AdverseReactionFactory,
    DispenseFactory,
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    VialFactory,
)
from tests.traceability.helpers import brand, presentation
from traceability.models import Dispense, HomeInfusion, HomeInfusionVial, InfusionSession
from recalls.signals import exact_poisson_p, lot_signals

pytestmark = pytest.mark.django_db


def infusions(lot, n: int, reactions: int, *, patient=None) -> list[InfusionSession]:
    """n completed sessions given here, each with one vial of the lot; the first `reactions` had one."""
    sessions = []
    for i in range(n):
        session = InfusionSessionFactory(patient=patient or PatientFactory(), status=InfusionSession.Status.COMPLETED)
        vial = VialFactory(presentation=presentation(lot.product, 10), lot=lot, status=Vial.Status.DISPENSED,
                           location=None)
        DispenseFactory(session=session, vial=vial)
        if i < reactions:
            AdverseReactionFactory(session=session)
        sessions.append(session)
    return sessions


def binomial_tail(k: int, trials: int, p: float) -> float:
    return sum(comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(k, trials + 1))


@pytest.fixture
def brand_with_a_bad_lot():
    """Privigen: lot BAD with 4 reactions in 5 infusions, lots OK1 and OK2 with 1 in 20 between them."""
    privigen = brand("Privigen")
    bad, ok1, ok2 = (LotFactory(product=privigen, lot_number=n) for n in ("BAD", "OK1", "OK2"))
    infusions(bad, 5, 4)
    infusions(ok1, 10, 1)
    infusions(ok2, 10, 0)
    return bad, ok1, ok2


def test_a_lot_with_more_reactions_than_the_rest_of_its_brand_is_a_signal_with_the_exact_p_value(brand_with_a_bad_lot):
    bad, _, _ = brand_with_a_bad_lot

    (signal,) = lot_signals()

    assert signal.lot == bad and signal.signal
    assert (signal.infusions, signal.reactions) == (5, 4)
    assert (signal.rest_infusions, signal.rest_reactions) == (20, 1)
    assert (signal.brand_infusions, signal.brand_reactions) == (25, 5)
    assert signal.rate_per_1000 == 800.0
    assert signal.brand_rate_per_1000 == 200.0
    assert signal.rest_rate_per_1000 == 50.0
    # k=4 of the 5 reactions in the lot that has 5 of the 25 infusions: P(X >= 4), X ~ Bin(5, 0.2).
    assert signal.p_value == pytest.approx(binomial_tail(4, 5, 0.2)) == pytest.approx(0.00672)
    assert len(signal.patients) == 4 and len(signal.reaction_list) == 4


def test_every_lot_is_listed_with_its_figures_on_request_signals_first(brand_with_a_bad_lot):
    bad, ok1, ok2 = brand_with_a_bad_lot

    found = lot_signals(include_all=True)

    assert [s.lot.lot_number for s in found] == ["BAD", "OK1", "OK2"]
    by_lot = {s.lot.lot_number: s for s in found}
    assert not by_lot["OK1"].signal and not by_lot["OK2"].signal
    assert by_lot["OK2"].p_value == 1.0
    assert by_lot["OK1"].p_value == pytest.approx(binomial_tail(1, 5, 10 / 25))


def test_a_lot_under_the_minimum_number_of_reactions_or_alone_in_its_brand_is_no_signal(settings):
    single = LotFactory(product=brand("Asceniv"), lot_number="ALONE")
    infusions(single, 3, 3)
    privigen = brand("Privigen")
    few = LotFactory(product=privigen, lot_number="FEW")
    infusions(few, 2, 2)
    infusions(LotFactory(product=privigen), 40, 0)

    assert lot_signals() == []
    alone = {s.lot.lot_number: s for s in lot_signals(include_all=True)}["ALONE"]
    assert alone.p_value is None
    settings.LOT_SIGNAL_MIN_REACTIONS = 2
    assert [s.lot.lot_number for s in lot_signals()] == ["FEW"]


def test_vials_returned_unopened_cancelled_sessions_and_supplies_not_yet_used_count_for_nothing():
    privigen = brand("Privigen")
    lot = LotFactory(product=privigen, lot_number="L1")
    (returned,) = infusions(lot, 1, 1)
    Dispense.objects.filter(session=returned).update(status=Dispense.Status.RETURNED_TO_STOCK)
    (cancelled,) = infusions(lot, 1, 0)
    InfusionSession.objects.filter(pk=cancelled.pk).update(status=InfusionSession.Status.CANCELLED)
    (home,) = infusions(lot, 1, 0)
    InfusionSession.objects.filter(pk=home.pk).update(setting=InfusionSession.Setting.HOME)

    assert lot_signals(include_all=True) == []


def test_a_reported_home_infusion_counts_for_the_lots_of_its_vials_and_its_reactions():
    hizentra = brand("Hizentra", route="SC")
    lot = LotFactory(product=hizentra, lot_number="HZ1")
    (supply,) = infusions(lot, 1, 0)
    InfusionSession.objects.filter(pk=supply.pk).update(setting=InfusionSession.Setting.HOME)
    home = HomeInfusion.objects.create(session=supply, infused_on=supply.scheduled_date, sites=2,
                                       recorded_by=supply.dispenses.get().dispensed_by)
    HomeInfusionVial.objects.create(home_infusion=home, dispense=supply.dispenses.get())
    AdverseReactionFactory(session=supply, home_infusion=home)

    (only,) = lot_signals(include_all=True)
    assert (only.lot, only.infusions, only.reactions) == (lot, 1, 1)


def test_the_exact_test_agrees_with_the_binomial_tail_and_says_nothing_without_a_comparison():
    assert exact_poisson_p(3, 10, 2, 90) == pytest.approx(binomial_tail(3, 5, 0.1))
    assert exact_poisson_p(0, 10, 2, 90) == 1.0
    assert exact_poisson_p(3, 10, 0, 0) is None


def test_the_signal_costs_the_same_queries_for_few_lots_or_many(brand_with_a_bad_lot):
    with CaptureQueriesContext(connection) as few:
        lot_signals(include_all=True)
    for _ in range(4):
        infusions(LotFactory(product=brand("Privigen")), 3, 1)
    with CaptureQueriesContext(connection) as many:
        lot_signals(include_all=True)
    assert len(few.captured_queries) == len(many.captured_queries) == 5


@pytest.mark.parametrize("role", ["technician", "pharmacist", "auditor", "recall_coordinator", "nurse", "none", None])
def test_the_signal_list_is_for_those_who_decide_on_recalls(role, client_for, brand_with_a_bad_lot):
    response = client_for(role).get("/api/signals/lots")
    assert response.status_code == expected_status(role, {"pharmacist", "recall_coordinator", "auditor"}, 200)
    if response.status_code == 200:
        (row,) = response.json()
        assert row["lot"]["lot_number"] == "BAD" and row["signal"] is True
        assert row["rate_per_1000"] == 800.0 and len(row["reaction_list"]) == 4 and len(row["patients"]) == 4
