"""Quarantining and releasing a lot: the vials on the shelf follow, a recalled lot stays out."""

import pytest

from inventory.exceptions import LotStateConflict, ReasonRequired
from inventory.models import Lot, StorageLocation, Vial
from inventory.services import lot_quarantine, lot_release
from tests.factories import LotFactory, PresentationFactory, StorageLocationFactory, VialFactory
from tests.inventory.helpers import last_history, stock_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot():
    return LotFactory(lot_number="P100263")


def vials_of(lot, n=2, **kwargs):
    presentation = PresentationFactory(product=lot.product)
    return [VialFactory(presentation=presentation, lot=lot, **kwargs) for _ in range(n)]


def statuses(vials):
    return [Vial.objects.get(pk=v.pk).status for v in vials]


def test_quarantining_a_lot_quarantines_its_vials_on_the_shelf(lot, pharmacist):
    on_shelf = vials_of(lot)
    dispensed = vials_of(lot, 1, status=Vial.Status.DISPENSED, location=None)
    wasted = vials_of(lot, 1, status=Vial.Status.WASTED, location=None)
    other = VialFactory()

    lot_quarantine(lot=lot, reason="temperature excursion in fridge A", actor=pharmacist)

    lot.refresh_from_db()
    assert lot.status == Lot.Status.QUARANTINED
    assert statuses(on_shelf) == [Vial.Status.QUARANTINED] * 2
    assert statuses(dispensed + wasted) == [Vial.Status.DISPENSED, Vial.Status.WASTED]
    assert statuses([other]) == [Vial.Status.IN_STOCK]


def test_quarantining_a_lot_leaves_history_naming_the_pharmacist_and_the_reason(lot, pharmacist):
    [vial] = vials_of(lot, 1)

    lot_quarantine(lot=lot, reason="temperature excursion", actor=pharmacist)

    lot_row, vial_row = last_history(lot), last_history(vial)
    assert (lot_row.history_user, lot_row.history_change_reason) == (pharmacist, "quarantine: temperature excursion")
    assert lot_row.status == Lot.Status.QUARANTINED
    assert (vial_row.history_user, vial_row.history_change_reason) == (
        pharmacist, "lot P100263 quarantined: temperature excursion"
    )


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_quarantining_a_lot_requires_a_reason(reason, lot, pharmacist):
    vials_of(lot)
    before = stock_state()

    with pytest.raises(ReasonRequired) as refusal:
        lot_quarantine(lot=lot, reason=reason, actor=pharmacist)

    assert (refusal.value.code, refusal.value.status) == ("reason_required", 400)
    assert stock_state() == before


def test_quarantining_a_quarantined_lot_is_refused(pharmacist):
    lot = LotFactory(status=Lot.Status.QUARANTINED)
    before = stock_state()

    with pytest.raises(LotStateConflict) as refusal:
        lot_quarantine(lot=lot, reason="again", actor=pharmacist)

    assert (refusal.value.code, refusal.value.status) == ("lot_state_conflict", 409)
    assert stock_state() == before


def test_quarantining_a_recalled_lot_is_refused(pharmacist):
    lot = LotFactory(status=Lot.Status.RECALLED)
    before = stock_state()

    with pytest.raises(LotStateConflict) as refusal:
        lot_quarantine(lot=lot, reason="again", actor=pharmacist)

    assert refusal.value.code == "lot_recalled"
    assert stock_state() == before


def test_releasing_a_lot_puts_its_quarantined_vials_back_in_stock(lot, pharmacist):
    on_shelf = vials_of(lot)
    lot_quarantine(lot=lot, reason="excursion", actor=pharmacist)

    lot_release(lot=lot, reason="data logger shows 2-8 °C throughout", actor=pharmacist)

    lot.refresh_from_db()
    assert lot.status == Lot.Status.RELEASED
    assert statuses(on_shelf) == [Vial.Status.IN_STOCK] * 2
    lot_row, vial_row = last_history(lot), last_history(on_shelf[0])
    assert (lot_row.history_user, lot_row.history_change_reason) == (
        pharmacist, "release: data logger shows 2-8 °C throughout"
    )
    assert (vial_row.history_user, vial_row.history_change_reason) == (
        pharmacist, "lot P100263 released: data logger shows 2-8 °C throughout"
    )


def test_releasing_a_lot_leaves_vials_in_a_quarantine_location_quarantined(lot, pharmacist):
    cabinet = StorageLocationFactory(kind=StorageLocation.Kind.QUARANTINE)
    [in_cabinet] = vials_of(lot, 1, location=cabinet, status=Vial.Status.QUARANTINED)
    [in_fridge] = vials_of(lot, 1)
    lot_quarantine(lot=lot, reason="excursion", actor=pharmacist)

    lot_release(lot=lot, reason="cleared", actor=pharmacist)

    assert statuses([in_cabinet, in_fridge]) == [Vial.Status.QUARANTINED, Vial.Status.IN_STOCK]


def test_releasing_a_recalled_lot_is_refused(pharmacist):
    lot = LotFactory(status=Lot.Status.RECALLED)
    vials_of(lot, 2, status=Vial.Status.QUARANTINED)
    before = stock_state()

    with pytest.raises(LotStateConflict) as refusal:
        lot_release(lot=lot, reason="looks fine", actor=pharmacist)

    assert (refusal.value.code, refusal.value.status) == ("lot_recalled", 409)
    assert stock_state() == before


def test_releasing_a_released_lot_is_refused(lot, pharmacist):
    vials_of(lot)
    before = stock_state()

    with pytest.raises(LotStateConflict) as refusal:
        lot_release(lot=lot, reason="why not", actor=pharmacist)

    assert refusal.value.code == "lot_state_conflict"
    assert stock_state() == before


@pytest.mark.parametrize("reason", ["", "  \t", None])
def test_releasing_a_lot_requires_a_reason(reason, pharmacist):
    lot = LotFactory(status=Lot.Status.QUARANTINED)
    vials_of(lot, 1, status=Vial.Status.QUARANTINED)
    before = stock_state()

    with pytest.raises(ReasonRequired):
        lot_release(lot=lot, reason=reason, actor=pharmacist)

    assert stock_state() == before
