"""Taking a vial off the shelf: waste (a reason is required) and return to the supplier."""

import pytest

from inventory.exceptions import AlreadyDispensed, NotInStock, ReasonRequired
from inventory.models import Vial
from inventory.services import vial_return_to_supplier, vial_waste
from tests.factories import VialFactory
from tests.inventory.helpers import last_history, stock_state

pytestmark = pytest.mark.django_db

SERVICES = {"waste": (vial_waste, Vial.Status.WASTED), "return": (vial_return_to_supplier, Vial.Status.RETURNED)}


def test_wasting_a_vial_takes_it_off_the_shelf(technician):
    vial = VialFactory(location__code="FRIDGE-A")

    vial_waste(vial=vial, reason="dropped, glass cracked", actor=technician)

    vial.refresh_from_db()
    assert (vial.status, vial.location) == (Vial.Status.WASTED, None)
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (technician, "wasted: dropped, glass cracked")


def test_returning_a_vial_to_the_supplier_takes_it_off_the_shelf(pharmacist):
    vial = VialFactory()

    vial_return_to_supplier(vial=vial, reason="short-dated, credit agreed", actor=pharmacist)

    vial.refresh_from_db()
    assert (vial.status, vial.location) == (Vial.Status.RETURNED, None)
    row = last_history(vial)
    assert (row.history_user, row.history_change_reason) == (
        pharmacist, "returned to supplier: short-dated, credit agreed"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_a_quarantined_vial_may_leave_the_shelf(service, technician):
    vial = VialFactory(status=Vial.Status.QUARANTINED)
    function, status = SERVICES[service]

    function(vial=vial, reason="recalled lot destroyed", actor=technician)

    vial.refresh_from_db()
    assert vial.status == status


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("reason", ["", "   ", "\n", None])
def test_taking_a_vial_off_the_shelf_requires_a_reason(service, reason, technician):
    vial = VialFactory()
    before = stock_state()

    with pytest.raises(ReasonRequired) as refusal:
        SERVICES[service][0](vial=vial, reason=reason, actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("reason_required", 400)
    assert stock_state() == before


@pytest.mark.parametrize("service", SERVICES)
def test_a_dispensed_vial_cannot_be_taken_off_the_shelf(service, technician):
    vial = VialFactory(status=Vial.Status.DISPENSED, location=None)
    before = stock_state()

    with pytest.raises(AlreadyDispensed) as refusal:
        SERVICES[service][0](vial=vial, reason="broken", actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("already_dispensed", 409)
    assert "infusion session" in refusal.value.message
    assert stock_state() == before


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("status", [Vial.Status.WASTED, Vial.Status.RETURNED])
def test_a_vial_that_already_left_cannot_leave_again(service, status, technician):
    vial = VialFactory(status=status, location=None)
    before = stock_state()

    with pytest.raises(NotInStock) as refusal:
        SERVICES[service][0](vial=vial, reason="again", actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("not_in_stock", 409)
    assert stock_state() == before
