"""The cold chain as the dispense and the pick meet it: both ask inventory.rules, so a vial held
for an excursion, or past its room-temperature allowance to the minute, is neither given nor proposed."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import Excursion, Vial
from tests.factories import InfusionSessionFactory, LotFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, stock
from traceability.picking import pick_vials
from traceability.services import vial_dispense

pytestmark = pytest.mark.django_db


def session_for(grams):
    return InfusionSessionFactory(ordered_grams=Decimal(str(grams)), patient=PatientFactory())


def test_a_vial_held_for_an_excursion_is_refused_at_dispense_and_left_out_of_the_pick():
    privigen = brand("Privigen")
    lot = LotFactory(product=privigen)
    held, free = stock(privigen, grams=10, n=2, lot=lot)
    excursion = Excursion.objects.create(location=held.location, started_at=timezone.now(), lowest_c=9, highest_c=11)
    Vial.objects.filter(pk=held.pk).update(status=Vial.Status.QUARANTINED, cold_chain_hold=excursion)
    held.refresh_from_db()
    session = session_for(10)

    with pytest.raises(ApplicationError) as refusal:
        vial_dispense(session=session, vial=held, actor=UserFactory(role="technician"))

    assert refusal.value.code == "cold_chain_excursion"
    assert [v.pk for v in pick_vials(session=session).vials] == [free.pk]


def test_a_vial_past_its_room_temperature_allowance_is_refused_at_dispense_and_left_out_of_the_pick():
    gamunex = brand("Gamunex-C", room_temp_allowance_days=1)
    lot = LotFactory(product=gamunex)
    spent, fresh = stock(gamunex, grams=10, n=2, lot=lot)
    # Out of the fridge 25 hours ago: the 1-day allowance ran out an hour ago, though the date has not passed.
    Vial.objects.filter(pk=spent.pk).update(room_temp_since=timezone.now() - timedelta(hours=25),
                                            beyond_use_date=timezone.localdate() + timedelta(days=1))
    spent.refresh_from_db()
    session = session_for(10)

    with pytest.raises(ApplicationError) as refusal:
        vial_dispense(session=session, vial=spent, actor=UserFactory(role="technician"))

    assert refusal.value.code == "room_temperature_allowance_exceeded"
    assert [v.pk for v in pick_vials(session=session).vials] == [fresh.pk]
