"""The administration record: start, rate steps, pauses, the end with each vial's fate, reactions
linked with the rate running at onset. Every refusal changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import Vial
from tests.factories import AuthorisationFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, fridge, state, stock
from traceability.infusion import (
    administration_finish,
    administration_pause,
    administration_rate,
    administration_resume,
    administration_start,
    rate_at,
)
from traceability.models import (
    AdverseReaction,
    Administration,
    AdministrationStep,
    Dispense,
    InfusionSession,
    VialFate,
)
from traceability.services import (
    dispense_return_to_stock,
    dispense_waste,
    reaction_record,
    session_complete,
    session_create,
    vial_dispense,
)
from inventory.models import local_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def nurse():
    return UserFactory(username="nina", role="nurse")


@pytest.fixture
def tech():
    return UserFactory(username="alice", role="technician")


@pytest.fixture
def dispensed(tech):
    """A session of 30 g for a 70 kg patient with three 10 g vials (100 mL each) dispensed an hour ago."""
    product = brand("Privigen")
    patient = PatientFactory(weight_kg=Decimal("70.0"))
    session = session_create(patient=patient, scheduled_date=local_today(), indication="cidp",
                             ordered_grams=Decimal("30"), actor=tech,
                             authorisation=AuthorisationFactory(patient=patient, indication="cidp"))
    vials = stock(product, 10, 3)
    dispenses = [vial_dispense(session=session, vial=v, actor=tech) for v in vials]
    earlier = timezone.now() - timedelta(hours=1)
    Dispense.objects.filter(session=session).update(dispensed_at=earlier)
    session.refresh_from_db()
    return session, dispenses


def admin_state() -> dict:
    return {
        **state(),
        "administrations": list(Administration.objects.order_by("pk").values_list("pk", "status", "ended_at")),
        "steps": AdministrationStep.objects.count(),
        "fates": VialFate.objects.count(),
        "admin_history": [m.history.count() for m in (Administration, AdministrationStep, VialFate)],
        "reaction_rates": list(AdverseReaction.objects.values_list("pk", "rate_at_onset_ml_per_h")),
    }


def refused(code: str, action, **kwargs) -> ApplicationError:
    before = admin_state()
    with pytest.raises(ApplicationError) as caught:
        action(**kwargs)
    assert caught.value.code == code, caught.value.message
    assert admin_state() == before
    return caught.value


def started(session, nurse, minutes_ago: int = 50, **kwargs) -> Administration:
    fields = {"rate_ml_per_kg_per_h": Decimal("0.5"), **kwargs}
    return administration_start(session=session, actor=nurse, at=timezone.now() - timedelta(minutes=minutes_ago),
                                **fields)


def ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


# --- start ------------------------------------------------------------------------------------------


def test_an_infusion_starts_at_its_first_rate_in_both_units_with_the_premedication(dispensed, nurse):
    session, _ = dispensed

    administration = started(session, nurse, premedication="paracetamol 1 g PO, cetirizine 10 mg PO")

    assert administration.status == Administration.Status.RUNNING
    assert administration.weight_kg == Decimal("70.0")
    assert administration.premedication == "paracetamol 1 g PO, cetirizine 10 mg PO"
    (step,) = administration.steps.all()
    assert step.kind == AdministrationStep.Kind.START
    assert (step.rate_ml_per_h, step.rate_ml_per_kg_per_h) == (Decimal("35.0"), Decimal("0.500"))
    assert step.recorded_by == nurse
    row = administration.history.first()
    assert row.history_user == nurse
    assert row.history_change_reason == f"infusion started in session {session.pk} at 35 mL/h (0.5 mL/kg/h)"


def test_a_rate_in_ml_per_hour_is_also_kept_per_kilogram(dispensed, nurse):
    session, _ = dispensed
    administration = started(session, nurse, rate_ml_per_kg_per_h=None, rate_ml_per_h=Decimal("42"))
    step = administration.steps.get()
    assert (step.rate_ml_per_h, step.rate_ml_per_kg_per_h) == (Decimal("42.0"), Decimal("0.600"))


def test_a_start_is_refused_twice_before_any_dispense_for_a_home_supply_and_at_an_impossible_rate(
    dispensed, nurse, tech
):
    session, _ = dispensed
    started(session, nurse)
    refused("administration_exists", administration_start, session=session, actor=nurse, rate_ml_per_h=Decimal("30"))

    empty = session_create(patient=PatientFactory(), scheduled_date=local_today(), indication="cidp",
                           ordered_grams=Decimal("10"), actor=tech)
    refused("nothing_dispensed", administration_start, session=empty, actor=nurse, rate_ml_per_h=Decimal("30"))

    home = session_create(patient=PatientFactory(), scheduled_date=local_today(), indication="cidp",
                          ordered_grams=Decimal("10"), setting="home", route="SC", actor=tech)
    refused("home_supply", administration_start, session=home, actor=nurse, rate_ml_per_h=Decimal("30"))

    other, _ = _another_session(tech)
    refused("invalid_rate", administration_start, session=other, actor=nurse, rate_ml_per_h=Decimal("0"))
    refused("invalid_rate", administration_start, session=other, actor=nurse, rate_ml_per_h=Decimal("5000"))
    refused("invalid_rate", administration_start, session=other, actor=nurse)
    refused("invalid_time", administration_start, session=other, actor=nurse, rate_ml_per_h=Decimal("30"),
            at=timezone.now() + timedelta(hours=1))


def _another_session(tech):
    patient = PatientFactory(weight_kg=None)
    session = session_create(patient=patient, scheduled_date=local_today(),
                             indication="itp", ordered_grams=Decimal("10"), actor=tech,
                             authorisation=AuthorisationFactory(patient=patient, indication="itp"))
    dispense = vial_dispense(session=session, vial=stock(brand("Octagam 10%"), 10)[0], actor=tech)
    return session, dispense


def test_a_rate_per_kilogram_needs_the_patients_weight(tech, nurse):
    session, _ = _another_session(tech)
    refused("weight_unknown", administration_start, session=session, actor=nurse,
            rate_ml_per_kg_per_h=Decimal("0.5"))
    administration = administration_start(session=session, actor=nurse, rate_ml_per_h=Decimal("30"))
    assert administration.steps.get().rate_ml_per_kg_per_h is None


def test_an_infusion_cannot_start_before_its_vials_were_dispensed(dispensed, nurse):
    session, _ = dispensed
    refused("start_before_dispense", administration_start, session=session, actor=nurse,
            rate_ml_per_h=Decimal("30"), at=timezone.now() - timedelta(hours=3))


# --- steps ------------------------------------------------------------------------------------------


def test_rate_steps_pauses_and_resumes_are_recorded_in_order_with_the_nurse_of_each(dispensed, nurse):
    session, _ = dispensed
    other_nurse = UserFactory(username="otto", role="nurse")
    administration = started(session, nurse, minutes_ago=50)

    administration_rate(administration=administration, actor=nurse, rate_ml_per_kg_per_h=Decimal("1"), at=ago(40))
    administration_pause(administration=administration, actor=other_nurse, reason="chills", at=ago(30))
    administration.refresh_from_db()
    assert administration.status == Administration.Status.PAUSED
    administration_resume(administration=administration, actor=other_nurse, rate_ml_per_h=Decimal("35"), at=ago(20))

    steps = list(administration.steps.values_list("kind", "rate_ml_per_h", "reason", "recorded_by__username"))
    assert steps == [
        ("start", Decimal("35.0"), "", "nina"),
        ("rate", Decimal("70.0"), "", "nina"),
        ("pause", None, "chills", "otto"),
        ("resume", Decimal("35.0"), "", "otto"),
    ]
    administration.refresh_from_db()
    assert administration.status == Administration.Status.RUNNING


def test_a_step_before_the_last_one_a_pause_without_reason_and_a_rate_while_paused_are_refused(dispensed, nurse):
    session, _ = dispensed
    administration = started(session, nurse, minutes_ago=50)
    administration_rate(administration=administration, actor=nurse, rate_ml_per_h=Decimal("70"), at=ago(30))

    refused("step_out_of_order", administration_rate, administration=administration, actor=nurse,
            rate_ml_per_h=Decimal("100"), at=ago(40))
    refused("reason_required", administration_pause, administration=administration, actor=nurse, reason="  ")
    refused("administration_not_paused", administration_resume, administration=administration, actor=nurse,
            rate_ml_per_h=Decimal("70"))
    administration_pause(administration=administration, actor=nurse, reason="hypotension")
    refused("administration_paused", administration_rate, administration=administration, actor=nurse,
            rate_ml_per_h=Decimal("100"))
    refused("administration_paused", administration_pause, administration=administration, actor=nurse,
            reason="again")


def test_a_rate_step_on_a_finished_infusion_is_refused(dispensed, nurse):
    session, dispenses = dispensed
    administration = started(session, nurse)
    administration_finish(administration=administration, actor=nurse,
                          fates=[{"dispense": d.pk, "fate": "infused"} for d in dispenses])

    error = refused("administration_ended", administration_rate, administration=administration, actor=nurse,
                    rate_ml_per_h=Decimal("100"))
    assert "finished" in error.message
    refused("administration_ended", administration_pause, administration=administration, actor=nurse, reason="x")
    refused("administration_ended", administration_finish, administration=administration, actor=nurse)


# --- the end and the vials ----------------------------------------------------------------------------


def test_finishing_records_each_vials_fate_and_wastes_the_rest_of_a_part_infused_vial(dispensed, nurse):
    session, (whole, partial, unopened) = dispensed
    administration = started(session, nurse)

    administration_finish(administration=administration, actor=nurse, at=ago(1), fates=[
        {"dispense": whole.pk, "fate": "infused"},
        {"dispense": partial.pk, "fate": "partial", "volume_left_ml": Decimal("40")},
        {"dispense": unopened.pk, "fate": "not_opened"},
    ])

    administration.refresh_from_db()
    assert administration.status == Administration.Status.FINISHED
    assert administration.ended_by == nurse and administration.ended_at is not None
    assert administration.steps.last().kind == AdministrationStep.Kind.FINISH
    fates = dict(VialFate.objects.values_list("dispense_id", "fate"))
    assert fates == {whole.pk: "infused", partial.pk: "partial", unopened.pk: "not_opened"}
    partial.refresh_from_db()
    assert partial.status == Dispense.Status.WASTED
    assert "40 mL left, wasted" in partial.closed_reason
    assert Vial.objects.get(pk=partial.vial_id).status == Vial.Status.WASTED
    whole.refresh_from_db()
    assert whole.status == Dispense.Status.DISPENSED


def test_stopping_early_needs_a_reason_and_is_kept_as_stopped(dispensed, nurse):
    session, dispenses = dispensed
    administration = started(session, nurse)
    fates = [{"dispense": dispenses[0].pk, "fate": "partial", "volume_left_ml": Decimal("80")},
             {"dispense": dispenses[1].pk, "fate": "not_opened"}, {"dispense": dispenses[2].pk, "fate": "not_opened"}]

    administration_finish(administration=administration, actor=nurse, fates=fates,
                          stop_reason="anaphylaxis: adrenaline given")

    administration.refresh_from_db()
    assert administration.status == Administration.Status.STOPPED
    assert administration.stop_reason == "anaphylaxis: adrenaline given"
    assert administration.steps.last().reason == "anaphylaxis: adrenaline given"


def test_a_vial_fate_that_contradicts_its_dispense_is_refused_and_nothing_is_recorded(dispensed, nurse, tech):
    session, (first, second, third) = dispensed
    dispense_return_to_stock(dispense=second, location=fridge(), reason="not needed", actor=tech)
    dispense_waste(dispense=third, reason="dropped after opening", actor=tech)
    administration = started(session, nurse)

    error = refused("fate_contradicts_dispense", administration_finish, administration=administration, actor=nurse,
                    fates=[{"dispense": first.pk, "fate": "infused"}, {"dispense": second.pk, "fate": "infused"},
                           {"dispense": third.pk, "fate": "partial", "volume_left_ml": Decimal("20")}])
    assert "returned to stock" in error.message
    refused("fate_contradicts_dispense", administration_finish, administration=administration, actor=nurse,
            fates=[{"dispense": first.pk, "fate": "infused"}, {"dispense": third.pk, "fate": "not_opened"}])
    refused("fate_contradicts_dispense", administration_finish, administration=administration, actor=nurse,
            fates=[{"dispense": first.pk, "fate": "infused"}, {"dispense": third.pk, "fate": "infused"}])

    # The returned vial needs no word: it is recorded as not opened by itself.
    administration_finish(administration=administration, actor=nurse, fates=[
        {"dispense": first.pk, "fate": "infused"},
        {"dispense": third.pk, "fate": "partial", "volume_left_ml": Decimal("20")},
    ])
    assert VialFate.objects.get(dispense=second).fate == VialFate.Fate.NOT_OPENED


def test_finishing_without_every_vials_fate_or_with_an_impossible_volume_is_refused(dispensed, nurse):
    session, dispenses = dispensed
    administration = started(session, nurse)

    error = refused("vial_fates_missing", administration_finish, administration=administration, actor=nurse,
                    fates=[{"dispense": dispenses[0].pk, "fate": "infused"}])
    assert error.extra["dispenses"] == [dispenses[1].pk, dispenses[2].pk]
    whole = [{"dispense": d.pk, "fate": "infused"} for d in dispenses[1:]]
    for volume in (None, Decimal("0"), Decimal("100"), Decimal("150")):
        refused("invalid_volume", administration_finish, administration=administration, actor=nurse,
                fates=[{"dispense": dispenses[0].pk, "fate": "partial", "volume_left_ml": volume}, *whole])
    refused("invalid_volume", administration_finish, administration=administration, actor=nurse,
            fates=[{"dispense": dispenses[0].pk, "fate": "infused", "volume_left_ml": Decimal("5")}, *whole])
    refused("dispense_not_in_session", administration_finish, administration=administration, actor=nurse,
            fates=[{"dispense": 999_999, "fate": "infused"}, *whole])


def test_a_vial_recorded_as_infused_cannot_go_back_on_a_shelf_and_one_not_opened_is_not_wasted_as_given(
    dispensed, nurse, tech
):
    session, dispenses = dispensed
    administration = started(session, nurse)
    administration_finish(administration=administration, actor=nurse, fates=[
        {"dispense": dispenses[0].pk, "fate": "infused"},
        {"dispense": dispenses[1].pk, "fate": "not_opened"},
        {"dispense": dispenses[2].pk, "fate": "not_opened"},
    ])

    refused("vial_fate_conflict", dispense_return_to_stock, dispense=dispenses[0], location=fridge(),
            reason="back", actor=tech)
    refused("vial_fate_conflict", dispense_waste, dispense=dispenses[1], reason="opened", actor=tech)
    dispense_return_to_stock(dispense=dispenses[1], location=fridge(), reason="not opened", actor=tech)


def test_a_session_is_not_completed_while_its_infusion_runs(dispensed, nurse, tech):
    session, dispenses = dispensed
    administration = started(session, nurse)
    refused("infusion_running", session_complete, session=session, actor=tech)

    administration_finish(administration=administration, actor=nurse,
                          fates=[{"dispense": d.pk, "fate": "infused"} for d in dispenses])
    assert session_complete(session=session, actor=tech).status == InfusionSession.Status.COMPLETED


# --- reactions ----------------------------------------------------------------------------------------


def test_a_reaction_is_linked_to_the_infusion_with_the_rate_running_at_onset(dispensed, nurse):
    session, dispenses = dispensed
    administration = started(session, nurse, minutes_ago=50)
    administration_rate(administration=administration, actor=nurse, rate_ml_per_kg_per_h=Decimal("1"), at=ago(40))

    reaction = reaction_record(session=session, type="headache", severity="mild", onset_at=ago(35), actor=nurse)

    assert reaction.administration == administration
    assert (reaction.rate_at_onset_ml_per_h, reaction.rate_at_onset_ml_per_kg_per_h) == (Decimal("70.0"), Decimal("1.000"))
    early = reaction_record(session=session, type="nausea", severity="mild", onset_at=ago(45), actor=nurse)
    assert early.rate_at_onset_ml_per_h == Decimal("35.0")


def test_the_rate_at_onset_is_zero_while_paused_and_none_after_the_end(dispensed, nurse):
    session, dispenses = dispensed
    administration = started(session, nurse, minutes_ago=50)
    administration_pause(administration=administration, actor=nurse, reason="flushing", at=ago(40))
    administration_resume(administration=administration, actor=nurse, rate_ml_per_h=Decimal("20"), at=ago(30))
    administration_finish(administration=administration, actor=nurse, at=ago(10),
                          fates=[{"dispense": d.pk, "fate": "infused"} for d in dispenses])

    assert rate_at(administration, ago(35)) == (Decimal("0"), Decimal("0"))
    assert rate_at(administration, ago(25))[0] == Decimal("20.0")
    assert rate_at(administration, ago(5)) is None
    after = reaction_record(session=session, type="headache", severity="moderate", onset_at=ago(5), actor=nurse)
    assert after.administration == administration and after.rate_at_onset_ml_per_h is None


def test_a_reaction_before_the_start_of_the_infusion_is_refused(dispensed, nurse):
    session, _ = dispensed
    started(session, nurse, minutes_ago=30)

    refused("onset_before_start", reaction_record, session=session, type="headache", severity="mild",
            onset_at=ago(40), actor=nurse)
