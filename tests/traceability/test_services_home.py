"""SCIG at home: a supply of several vials dispensed for home use, and the infusions the patient
reports later, by lot, closing the loop."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import local_today
from tests.factories import AuthorisationFactory, LotFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, state, stock
from traceability.infusion import home_infusion_report
from traceability.models import AdverseReaction, Dispense, HomeInfusion, HomeInfusionVial
from traceability.services import reaction_record, session_create, vial_dispense

pytestmark = pytest.mark.django_db


@pytest.fixture
def tech():
    return UserFactory(username="alice", role="technician")


@pytest.fixture
def nurse():
    return UserFactory(username="nina", role="nurse")


@pytest.fixture
def supply(tech):
    """Four 4 g vials of Hizentra for home use, two lots, dispensed three days ago."""
    hizentra = brand("Hizentra", route="SC")
    patient = PatientFactory(name="Hana Home")
    session = session_create(patient=patient, scheduled_date=local_today() - timedelta(days=3), indication="primary_immunodeficiency",
                             ordered_grams=Decimal("16"), route="SC", setting="home", actor=tech,
                             authorisation=AuthorisationFactory(patient=patient, route="SC"))
    lot_a, lot_b = LotFactory(product=hizentra, lot_number="HZA1"), LotFactory(product=hizentra, lot_number="HZB2")
    vials = stock(hizentra, 4, 2, lot=lot_a) + stock(hizentra, 4, 2, lot=lot_b)
    dispenses = [vial_dispense(session=session, vial=v, actor=tech) for v in vials]

    Dispense.objects.filter(session=session).update(dispensed_at=timezone.now() - timedelta(days=3))
    return session, dispenses


def snapshot():
    return {**state(), "homes": HomeInfusion.objects.count(), "uses": HomeInfusionVial.objects.count(),
            "home_history": HomeInfusion.history.count()}


def refused(code, action, **kwargs):
    before = snapshot()
    with pytest.raises(ApplicationError) as caught:
        action(**kwargs)
    assert caught.value.code == code, caught.value.message
    assert snapshot() == before
    return caught.value


def test_a_reported_home_infusion_takes_the_vials_of_the_lots_named(supply, nurse):
    session, dispenses = supply
    day = local_today() - timedelta(days=1)

    home = home_infusion_report(session=session, infused_on=day, sites=2, actor=nurse, reported_by_text="patient by phone",
                                vials=[{"lot": "HZA1", "count": 1}, {"lot": "HZB2", "count": 1}])

    used = sorted(home.vials.values_list("dispense__vial__lot__lot_number", flat=True))
    assert used == ["HZA1", "HZB2"]
    assert home.sites == 2 and home.recorded_by == nurse
    assert home.history.first().history_change_reason == f"home infusion of {day:%Y-%m-%d} reported for session {session.pk}"

    second = home_infusion_report(session=session, infused_on=local_today(), sites=2, actor=nurse,
                                  vials=[{"lot": "HZA1", "count": 1}, {"lot": "HZB2", "count": 1}])
    assert HomeInfusionVial.objects.filter(home_infusion__in=[home, second]).count() == 4


def test_more_vials_of_a_lot_than_the_supply_has_unused_are_refused(supply, nurse):
    session, _ = supply
    home_infusion_report(session=session, infused_on=local_today(), sites=1, actor=nurse,
                         vials=[{"lot": "HZA1", "count": 2}])

    error = refused("home_vials_unavailable", home_infusion_report, session=session, infused_on=local_today(), sites=1,
                    actor=nurse, vials=[{"lot": "HZA1", "count": 1}, {"lot": "HZB2", "count": 1}])
    assert error.extra["available"] == {"HZA1": 0}
    refused("home_vials_unavailable", home_infusion_report, session=session, infused_on=local_today(), sites=1,
            actor=nurse, vials=[{"lot": "NOPE", "count": 1}])


def test_a_home_report_is_refused_for_a_clinic_session_a_future_day_a_day_before_the_supply_or_no_vials(
    supply, nurse, tech
):
    session, _ = supply
    other = PatientFactory()
    clinic = session_create(patient=other, scheduled_date=local_today(), indication="cidp",
                            ordered_grams=Decimal("10"), actor=tech,
                            authorisation=AuthorisationFactory(patient=other, indication="cidp"))
    vial_dispense(session=clinic, vial=stock(brand("Privigen"), 10)[0], actor=tech)
    one = [{"lot": "HZA1", "count": 1}]
    refused("not_a_home_supply", home_infusion_report, session=clinic, infused_on=local_today(), sites=1, actor=nurse,
            vials=[{"lot": clinic.dispenses.get().vial.lot.lot_number, "count": 1}])
    refused("invalid_date", home_infusion_report, session=session, infused_on=local_today() + timedelta(days=1),
            sites=1, actor=nurse, vials=one)
    refused("invalid_date", home_infusion_report, session=session, infused_on=local_today() - timedelta(days=10),
            sites=1, actor=nurse, vials=one)
    refused("vials_required", home_infusion_report, session=session, infused_on=local_today(), sites=1, actor=nurse,
            vials=[])
    refused("invalid_sites", home_infusion_report, session=session, infused_on=local_today(), sites=0, actor=nurse,
            vials=one)


def test_a_reaction_to_a_home_supply_names_the_home_infusion_and_follows_it(supply, nurse):
    session, _ = supply
    home = home_infusion_report(session=session, infused_on=local_today() - timedelta(days=1), sites=2, actor=nurse,
                                vials=[{"lot": "HZA1", "count": 1}])

    refused("home_infusion_required", reaction_record, session=session, type="headache", severity="mild",
            onset_at=timezone.now() - timedelta(hours=1), actor=nurse)
    refused("onset_before_start", reaction_record, session=session, type="headache", severity="mild",
            onset_at=timezone.now() - timedelta(days=2), home_infusion=home, actor=nurse)
    reaction = reaction_record(session=session, type="headache", severity="mild", home_infusion=home,
                               onset_at=timezone.now() - timedelta(hours=1), actor=nurse)
    assert reaction.home_infusion == home
    assert AdverseReaction.objects.filter(home_infusion=home).count() == 1
