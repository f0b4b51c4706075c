from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import local_today
from tests.factories import (
    BrandSwitchFlagFactory,
    DispenseFactory,
    InfusionSessionFactory,
    PatientFactory,
    UserFactory,
)
from tests.traceability.helpers import brand, completed_session, fridge, refused, stock
from traceability.models import BrandSwitchFlag, Dispense, InfusionSession
from traceability.services import (
    dispense_return_to_stock,
    dispense_waste,
    flag_acknowledge,
    reaction_record,
    session_cancel,
    session_complete,
    session_create,
    session_start,
    vial_dispense,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="paul")



def order(patient, **kwargs):
    fields = dict(patient=patient, scheduled_date=local_today(), indication=InfusionSession.Indication.PID)
    return {**fields, **kwargs}


# --- ordering -----------------------------------------------------------------------------------


def test_a_session_ordered_in_grams_keeps_the_grams(user):
    patient = PatientFactory(weight_kg=None)

    session = session_create(**order(patient, ordered_grams=Decimal("35")), site="Day unit", actor=user)

    assert session.ordered_grams == Decimal("35")
    assert session.dose_g_per_kg is None
    assert session.status == InfusionSession.Status.SCHEDULED
    row = session.history.first()
    assert row.history_user == user
    assert row.history_change_reason == f"infusion ordered for {patient.mrn}"


def test_a_dose_in_grams_per_kg_is_multiplied_by_the_patient_weight(user):
    patient = PatientFactory(weight_kg=Decimal("72.5"))

    session = session_create(**order(patient, dose_g_per_kg=Decimal("0.4")), actor=user)

    assert session.ordered_grams == Decimal("29.00")
    assert session.dose_g_per_kg == Decimal("0.4")


def test_a_later_change_of_weight_does_not_change_an_order(user):
    patient = PatientFactory(weight_kg=Decimal("50"))
    session = session_create(**order(patient, dose_g_per_kg=Decimal("1")), actor=user)
    patient.weight_kg = Decimal("60")
    patient.save()

    session.refresh_from_db()
    assert session.ordered_grams == Decimal("50")


def test_a_dose_in_grams_per_kg_is_refused_when_the_weight_is_unknown(user):
    patient = PatientFactory(weight_kg=None)

    error = refused("weight_unknown", session_create, **order(patient, dose_g_per_kg=Decimal("0.5")), actor=user)

    assert error.status == 400


@pytest.mark.parametrize(
    "dose",
    [
        {},
        {"ordered_grams": Decimal("30"), "dose_g_per_kg": Decimal("0.4")},
        {"ordered_grams": Decimal("0")},
        {"dose_g_per_kg": Decimal("-1")},
    ],
)
def test_an_order_without_exactly_one_positive_dose_is_refused(dose, user):
    refused("invalid_dose", session_create, **order(PatientFactory(), **dose), actor=user)


def test_an_other_indication_must_be_named(user):
    patient = PatientFactory()
    kwargs = order(patient, indication=InfusionSession.Indication.OTHER, ordered_grams=Decimal("10"))

    refused("indication_other_required", session_create, **kwargs, actor=user)

    session = session_create(**kwargs, indication_other="dermatomyositis", actor=user)
    assert session.indication_other == "dermatomyositis"


# --- start and cancel ---------------------------------------------------------------------------


def test_start_moves_a_scheduled_session_in_progress(user):
    session = InfusionSessionFactory()

    session = session_start(session=session, actor=user)

    assert session.status == InfusionSession.Status.IN_PROGRESS
    assert session.history.first().history_change_reason == "infusion started"
    assert session.history.first().history_user == user


@pytest.mark.parametrize(
    "status", [InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED, InfusionSession.Status.CANCELLED]
)
def test_only_a_scheduled_session_starts(status, user):
    refused("session_state_conflict", session_start, session=InfusionSessionFactory(status=status), actor=user)


def test_cancel_records_the_reason(user):
    session = session_cancel(session=InfusionSessionFactory(), reason="patient unwell", actor=user)

    assert session.status == InfusionSession.Status.CANCELLED
    assert session.history.first().history_change_reason == "cancelled: patient unwell"
    assert session.history.first().history_user == user


def test_cancel_needs_a_reason(user):
    refused("reason_required", session_cancel, session=InfusionSessionFactory(), reason="", actor=user)


def test_cancel_is_refused_while_a_vial_is_dispensed_to_the_session(user):
    dispense = DispenseFactory()

    error = refused("session_has_live_dispenses", session_cancel, session=dispense.session, reason="x", actor=user)

    assert error.extra == {"dispenses": [dispense.pk]}


def test_cancel_is_allowed_once_the_vials_are_returned(user):
    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"))
    dispense = vial_dispense(session=session, vial=vial, actor=user)
    dispense_return_to_stock(dispense=dispense, location=fridge(), reason="cancelled", actor=user)

    session = session_cancel(session=session, reason="patient unwell", actor=user)

    assert session.status == InfusionSession.Status.CANCELLED
    assert Dispense.objects.filter(session=session).count() == 1


@pytest.mark.parametrize("status", [InfusionSession.Status.COMPLETED, InfusionSession.Status.CANCELLED])
def test_a_closed_session_is_not_cancelled(status, user):
    refused("session_not_open", session_cancel, session=InfusionSessionFactory(status=status), reason="x", actor=user)


# --- completion ---------------------------------------------------------------------------------


def test_complete_records_the_grams_dispensed_against_the_grams_ordered(user):
    session = InfusionSessionFactory(ordered_grams=Decimal("28"))
    for vial in stock(brand("Privigen"), grams=10, n=3):
        vial_dispense(session=session, vial=vial, actor=user)

    session = session_complete(session=session, actor=user)

    assert session.status == InfusionSession.Status.COMPLETED
    assert session.grams_dispensed == Decimal("30")
    assert session.completed_by == user and session.completed_at is not None
    row = session.history.first()
    assert row.history_change_reason == "completed: 30 g dispensed of 28 g ordered"
    assert row.history_user == user


def test_complete_counts_wasted_vials_but_not_returned_ones(user):
    session = InfusionSessionFactory()
    a, b, c = stock(brand("Privigen"), grams=10, n=3)
    vial_dispense(session=session, vial=a, actor=user)
    dispense_waste(dispense=vial_dispense(session=session, vial=b, actor=user), reason="half used", actor=user)
    dispense_return_to_stock(
        dispense=vial_dispense(session=session, vial=c, actor=user), location=fridge(), reason="spare", actor=user
    )

    session = session_complete(session=session, actor=user)

    assert session.grams_dispensed == Decimal("20")


def test_complete_is_refused_while_a_brand_switch_flag_is_open(user):
    flag = BrandSwitchFlagFactory(session=DispenseFactory(session__status=InfusionSession.Status.IN_PROGRESS).session)

    error = refused("open_brand_switch_flag", session_complete, session=flag.session, actor=user)

    assert error.status == 409
    assert error.extra == {"flags": [flag.pk]}


def test_complete_is_allowed_once_the_pharmacist_acknowledged_the_switch(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("10"))
    [vial] = stock(panzyga)
    vial_dispense(session=session, vial=vial, actor=user)
    with pytest.raises(ApplicationError):
        session_complete(session=session, actor=user)

    flag_acknowledge(flag=BrandSwitchFlag.objects.get(), reason="shortage", actor=user)
    session = session_complete(session=session, actor=user)

    assert session.status == InfusionSession.Status.COMPLETED


def test_complete_of_a_session_that_never_started_is_refused(user):
    refused("nothing_dispensed", session_complete, session=InfusionSessionFactory(), actor=user)


def test_complete_of_a_session_whose_vials_all_went_back_is_refused(user):
    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"))
    dispense = vial_dispense(session=session, vial=vial, actor=user)
    dispense_return_to_stock(dispense=dispense, location=fridge(), reason="not given", actor=user)

    refused("nothing_dispensed", session_complete, session=session, actor=user)


@pytest.mark.parametrize("status", [InfusionSession.Status.COMPLETED, InfusionSession.Status.CANCELLED])
def test_a_closed_session_is_not_completed_again(status, user):
    refused("session_not_open", session_complete, session=InfusionSessionFactory(status=status), actor=user)


# --- acknowledging flags ------------------------------------------------------------------------


def test_acknowledge_records_the_pharmacist_and_the_reason(user):
    flag = BrandSwitchFlagFactory(from_product=brand("Privigen"), to_product=brand("Panzyga"))

    flag = flag_acknowledge(flag=flag, reason="formulary", actor=user)

    assert flag.status == BrandSwitchFlag.Status.ACKNOWLEDGED
    assert flag.reason == "formulary"
    assert flag.acknowledged_by == user and flag.acknowledged_at is not None
    row = flag.history.first()
    assert row.history_user == user
    assert row.history_change_reason == "brand switch Privigen → Panzyga acknowledged (formulary)"


def test_acknowledge_with_other_needs_a_text(user):
    flag = BrandSwitchFlagFactory()

    refused("reason_text_required", flag_acknowledge, flag=flag, reason="other", reason_text=" ", actor=user)

    flag = flag_acknowledge(flag=flag, reason="other", reason_text="patient preference", actor=user)
    assert flag.reason_text == "patient preference"


def test_acknowledge_with_an_unknown_reason_is_refused(user):
    error = refused("invalid_reason", flag_acknowledge, flag=BrandSwitchFlagFactory(), reason="because", actor=user)

    assert "shortage" in error.extra["choices"]


def test_a_flag_is_acknowledged_once(user):
    flag = flag_acknowledge(flag=BrandSwitchFlagFactory(), reason="payer", actor=user)

    error = refused("flag_already_acknowledged", flag_acknowledge, flag=flag, reason="shortage", actor=user)

    assert error.status == 409
    flag.refresh_from_db()
    assert flag.reason == "payer"


# --- reactions ----------------------------------------------------------------------------------


def reaction(session, **kwargs):
    fields = dict(session=session, type="headache", severity="mild", onset_at=timezone.now() - timedelta(minutes=30))
    return {**fields, **kwargs}


@pytest.mark.parametrize("status", [InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED])
def test_a_reaction_is_recorded_on_a_session_that_was_infused(status, user):
    session = InfusionSessionFactory(status=status)

    recorded = reaction_record(**reaction(session, severity="moderate", notes="paracetamol given"), actor=user)

    assert recorded.session == session
    assert recorded.recorded_by == user
    assert recorded.history.first().history_change_reason == f"adverse reaction recorded in session {session.pk}"


@pytest.mark.parametrize("status", [InfusionSession.Status.SCHEDULED, InfusionSession.Status.CANCELLED])
def test_a_reaction_is_refused_on_a_session_never_infused(status, user):
    refused("no_infusion", reaction_record, **reaction(InfusionSessionFactory(status=status)), actor=user)


def test_an_other_reaction_must_be_named(user):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)

    refused("type_other_required", reaction_record, **reaction(session, type="other"), actor=user)


def test_a_reaction_cannot_start_in_the_future(user):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)

    refused(
        "invalid_onset",
        reaction_record,
        **reaction(session, onset_at=timezone.now() + timedelta(hours=1)),
        actor=user,
    )


def test_a_reaction_cannot_start_days_before_its_session(user):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)

    refused(
        "invalid_onset",
        reaction_record,
        **reaction(session, onset_at=timezone.now() - timedelta(days=3)),
        actor=user,
    )


@pytest.mark.parametrize("days", [-365 * 5 - 1, 365 * 2 + 1])
def test_a_session_scheduled_years_away_is_refused(days, user):
    patient = PatientFactory()

    refused("invalid_scheduled_date", session_create,
            **order(patient, scheduled_date=local_today() + timedelta(days=days), ordered_grams=Decimal("30")), actor=user)


@pytest.mark.parametrize("field, value, code", [("type", "rash", "invalid_reaction_type"), ("severity", "bad", "invalid_severity")])
def test_a_reaction_with_unknown_choices_is_refused(field, value, code, user):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)

    refused(code, reaction_record, **reaction(session, **{field: value}), actor=user)
