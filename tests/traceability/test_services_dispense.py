from datetime import timedelta
from decimal import Decimal

import pytest

from inventory.models import Lot, StorageLocation, Vial, local_today
from tests.factories import (
    BrandSwitchFlagFactory,
    DispenseFactory,
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)
from tests.traceability.helpers import brand, completed_session, fridge, presentation, refused, stock
from traceability.models import BrandSwitchFlag, Dispense, InfusionSession
from traceability.services import dispense_advice, dispense_return_to_stock, dispense_waste, vial_dispense

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def session():
    return InfusionSessionFactory(ordered_grams=Decimal("30"))



# --- dispensing ---------------------------------------------------------------------------------


def test_dispense_gives_the_vial_to_the_session(session, user):
    [vial] = stock(brand("Privigen"), grams=10)

    dispense = vial_dispense(session=session, vial=vial, actor=user)

    vial.refresh_from_db()
    session.refresh_from_db()
    assert vial.status == Vial.Status.DISPENSED
    assert vial.location is None
    assert dispense.session == session and dispense.vial == vial
    assert dispense.product.brand == "Privigen"
    assert dispense.grams == Decimal("10")
    assert dispense.dispensed_by == user
    assert dispense.status == Dispense.Status.DISPENSED
    assert session.status == InfusionSession.Status.IN_PROGRESS


def test_dispense_leaves_history_naming_who_and_why(session, user):
    [vial] = stock(brand("Privigen"))

    dispense = vial_dispense(session=session, vial=vial, actor=user)

    reason = f"dispense to session {session.pk}"
    for row in (vial.history.first(), dispense.history.first()):
        assert row.history_user == user
        assert row.history_change_reason == reason
    started = InfusionSession.objects.get(pk=session.pk).history.first()
    assert started.history_user == user
    assert started.history_change_reason == f"infusion started: {reason}"


def test_dispense_to_a_session_in_progress_keeps_it_in_progress(user):
    session = InfusionSessionFactory(status=InfusionSession.Status.IN_PROGRESS)
    [vial] = stock(brand("Privigen"))
    history_before = session.history.count()

    vial_dispense(session=session, vial=vial, actor=user)

    session.refresh_from_db()
    assert session.status == InfusionSession.Status.IN_PROGRESS
    assert session.history.count() == history_before


@pytest.mark.parametrize("status", [InfusionSession.Status.COMPLETED, InfusionSession.Status.CANCELLED])
def test_dispense_refuses_a_session_that_is_not_open(status, user):
    session = InfusionSessionFactory(status=status)
    [vial] = stock(brand("Privigen"))

    error = refused("session_not_open", vial_dispense, session=session, vial=vial, actor=user)

    assert error.status == 409


def _recalled():
    return VialFactory(lot=LotFactory(status=Lot.Status.RECALLED))


def _quarantined_lot():
    return VialFactory(lot=LotFactory(status=Lot.Status.QUARANTINED), status=Vial.Status.QUARANTINED)


def _expired():
    lot = LotFactory(expiry_date=local_today() - timedelta(days=1))
    return VialFactory(lot=lot, beyond_use_date=lot.expiry_date)


def _past_beyond_use():
    return VialFactory(beyond_use_date=local_today() - timedelta(days=1))


def _dispensed():
    return DispenseFactory().vial


def _wasted():
    return VialFactory(status=Vial.Status.WASTED, location=None)


@pytest.mark.parametrize(
    "make_vial, code",
    [
        (_recalled, "lot_recalled"),
        (_quarantined_lot, "lot_quarantined"),
        (_expired, "lot_expired"),
        (_past_beyond_use, "beyond_use_date_passed"),
        (_dispensed, "already_dispensed"),
        (_wasted, "not_in_stock"),
    ],
)
def test_dispense_refuses_a_vial_that_must_not_be_given_and_changes_nothing(make_vial, code, session, user):
    vial = make_vial()

    error = refused(code, vial_dispense, session=session, vial=vial, actor=user)

    assert error.status == 409


def test_a_vial_returned_unopened_may_be_dispensed_again(session, user):
    [vial] = stock(brand("Privigen"))
    first = vial_dispense(session=session, vial=vial, actor=user)
    dispense_return_to_stock(dispense=first, location=fridge(), reason="not needed", actor=user)

    again = vial_dispense(session=session, vial=vial, actor=user)

    assert again.pk != first.pk
    assert list(Dispense.objects.filter(vial=vial).values_list("status", flat=True).order_by("pk")) == [
        Dispense.Status.RETURNED_TO_STOCK,
        Dispense.Status.DISPENSED,
    ]


# --- brand-switch flags -------------------------------------------------------------------------


def test_a_first_infusion_raises_an_advisory_flag_that_does_not_hold_completion(session, user):
    [vial] = stock(brand("Privigen"))

    dispense = vial_dispense(session=session, vial=vial, actor=user)

    [flag] = BrandSwitchFlag.objects.all()
    assert flag.raised_by == dispense
    assert (flag.kind, flag.status) == (BrandSwitchFlag.Kind.FIRST_INFUSION, "open")
    assert "First immunoglobulin infusion" in dispense_advice([flag]) and "hour after" in dispense_advice([flag])
    assert flag.kind not in BrandSwitchFlag.BLOCKING_KINDS


def test_a_patient_returning_after_more_than_eight_weeks_is_flagged(user):
    privigen = brand("Privigen")
    patient = PatientFactory()
    completed_session(patient, privigen, days_ago=70)
    [vial] = stock(privigen)

    dispense = vial_dispense(session=InfusionSessionFactory(patient=patient), vial=vial, actor=user)

    [flag] = dispense.flags.all()
    assert flag.kind == BrandSwitchFlag.Kind.RETURNING
    assert "10 weeks before" in dispense_advice([flag])


def test_the_same_brand_as_the_last_infusion_raises_no_flag(user):
    privigen = brand("Privigen")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient)
    [vial] = stock(privigen)

    vial_dispense(session=session, vial=vial, actor=user)

    assert not BrandSwitchFlag.objects.exists()


def test_another_brand_than_the_last_infusion_raises_a_switch_flag_with_what_differs(user):
    privigen = brand("Privigen", excipient="L-proline", iga_ug_per_ml=Decimal("25"), concentration_pct=Decimal("10"))
    octagam = brand("Octagam 5%", excipient="maltose", iga_ug_per_ml=Decimal("200"), concentration_pct=Decimal("5"))
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient)
    [vial] = stock(octagam)

    dispense = vial_dispense(session=session, vial=vial, actor=user)

    [flag] = BrandSwitchFlag.objects.all()
    assert flag.session == session
    assert flag.kind == BrandSwitchFlag.Kind.SWITCH
    assert (flag.from_product, flag.to_product) == (privigen, octagam)
    assert flag.status == BrandSwitchFlag.Status.OPEN
    assert flag.raised_by == dispense
    assert flag.differences == [
        {"field": "excipient", "from": "L-proline", "to": "maltose"},
        {"field": "iga_ug_per_ml", "from": "25", "to": "200"},
        {"field": "concentration_pct", "from": "10", "to": "5"},
    ]
    row = flag.history.first()
    assert row.history_user == user
    assert row.history_change_reason == f"brand switch Privigen → Octagam 5% in session {session.pk}"


def test_the_switch_advice_names_both_brands(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    [vial] = stock(panzyga)

    dispense = vial_dispense(session=InfusionSessionFactory(patient=patient), vial=vial, actor=user)

    assert dispense_advice(list(dispense.flags.all())) == (
        "Start the first infusion of Panzyga at the initial (slowest) rate and watch the whole first infusion "
        "and the hour after; the patient is switching from Privigen."
    )
    assert dispense_advice([]) is None


def test_a_switch_is_flagged_once_per_session_however_many_vials(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient)
    first, second = stock(panzyga, n=2)

    vial_dispense(session=session, vial=first, actor=user)
    later = vial_dispense(session=session, vial=second, actor=user)

    assert BrandSwitchFlag.objects.count() == 1
    assert not later.flags.exists()


def test_an_acknowledged_switch_is_not_raised_again_in_the_same_session(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient)
    BrandSwitchFlagFactory(
        session=session, from_product=privigen, to_product=panzyga, status=BrandSwitchFlag.Status.ACKNOWLEDGED
    )
    [vial] = stock(panzyga)

    vial_dispense(session=session, vial=vial, actor=user)

    assert BrandSwitchFlag.objects.count() == 1


def test_the_switch_compares_with_the_most_recent_completed_infusion_only(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, panzyga, days_ago=56)
    completed_session(patient, privigen, days_ago=28)
    # Neither a cancelled nor an unfinished session counts as the patient's last infusion.
    cancelled = InfusionSessionFactory(
        patient=patient, status=InfusionSession.Status.CANCELLED, scheduled_date=local_today() - timedelta(days=3)
    )
    DispenseFactory(session=cancelled, vial__presentation=presentation(panzyga, 10), status=Dispense.Status.WASTED)
    session = InfusionSessionFactory(patient=patient)
    [vial] = stock(privigen)

    vial_dispense(session=session, vial=vial, actor=user)

    assert not BrandSwitchFlag.objects.exists()


def test_a_vial_returned_unopened_does_not_make_the_last_infusion_brand(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    last = completed_session(patient, privigen)
    DispenseFactory(
        session=last, vial__presentation=presentation(panzyga, 10), status=Dispense.Status.RETURNED_TO_STOCK
    )
    [vial] = stock(panzyga)

    vial_dispense(session=InfusionSessionFactory(patient=patient), vial=vial, actor=user)

    [flag] = BrandSwitchFlag.objects.all()
    assert (flag.from_product, flag.to_product) == (privigen, panzyga)


def test_a_brand_given_in_the_last_infusion_alongside_another_raises_no_switch(user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    patient = PatientFactory()
    completed_session(patient, privigen, panzyga)
    [vial] = stock(panzyga)

    vial_dispense(session=InfusionSessionFactory(patient=patient), vial=vial, actor=user)

    assert not BrandSwitchFlag.objects.exists()


def test_two_brands_in_one_session_raise_a_mixed_flag(session, user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga", route="IV_SC")
    [first] = stock(privigen)
    [second] = stock(panzyga)
    vial_dispense(session=session, vial=first, actor=user)

    dispense = vial_dispense(session=session, vial=second, actor=user)

    [flag] = BrandSwitchFlag.objects.filter(kind=BrandSwitchFlag.Kind.MIXED)
    assert flag.kind == BrandSwitchFlag.Kind.MIXED
    assert (flag.from_product, flag.to_product) == (privigen, panzyga)
    assert flag.raised_by == dispense
    assert {"field": "route", "from": "IV", "to": "IV_SC"} in flag.differences


def test_going_back_to_the_first_brand_of_a_mixed_session_raises_nothing_new(session, user):
    privigen, panzyga = brand("Privigen"), brand("Panzyga")
    first, third = stock(privigen, n=2)
    [second] = stock(panzyga)
    for vial in (first, second, third):
        vial_dispense(session=session, vial=vial, actor=user)

    assert BrandSwitchFlag.objects.filter(kind=BrandSwitchFlag.Kind.MIXED).count() == 1


def test_a_switch_and_a_mix_in_one_dispense_raise_both_flags(user):
    privigen, octagam = brand("Privigen"), brand("Octagam 10%")
    patient = PatientFactory()
    completed_session(patient, privigen)
    session = InfusionSessionFactory(patient=patient)
    [first] = stock(privigen)
    [second] = stock(octagam)
    vial_dispense(session=session, vial=first, actor=user)

    dispense = vial_dispense(session=session, vial=second, actor=user)

    kinds = sorted(dispense.flags.values_list("kind", "from_product__brand", "to_product__brand"))
    assert kinds == [("mixed", "Privigen", "Octagam 10%"), ("switch", "Privigen", "Octagam 10%")]
    assert "Start the first infusion of Octagam 10% at the initial (slowest) rate" in dispense_advice(
        list(dispense.flags.order_by("kind"))
    )


# --- return to stock and waste ------------------------------------------------------------------


@pytest.fixture
def dispensed(session, user):
    [vial] = stock(brand("Privigen"), grams=10)
    return vial_dispense(session=session, vial=vial, actor=user)


def test_return_puts_the_unopened_vial_back_on_a_shelf_and_keeps_the_dispense(dispensed, user):
    shelf = StorageLocationFactory(code="FRIDGE-2", kind=StorageLocation.Kind.REFRIGERATOR)

    dispense = dispense_return_to_stock(dispense=dispensed, location=shelf, reason="dose reduced", actor=user)

    vial = Vial.objects.get(pk=dispense.vial_id)
    assert vial.status == Vial.Status.IN_STOCK
    assert vial.location == shelf
    assert dispense.status == Dispense.Status.RETURNED_TO_STOCK
    assert dispense.closed_reason == "dose reduced"
    assert dispense.closed_by == user and dispense.closed_at is not None
    assert Dispense.objects.filter(pk=dispensed.pk).exists()
    reason = f"returned unopened from session {dispensed.session_id}: dose reduced"
    assert dispense.history.first().history_change_reason == reason
    assert dispense.history.first().history_user == user
    assert reason in set(vial.history.values_list("history_change_reason", flat=True))


def test_return_to_stock_is_one_act_with_one_history_row_per_record(dispensed, user):
    shelf = StorageLocationFactory(code="FRIDGE-2", kind=StorageLocation.Kind.REFRIGERATOR)
    vial_rows, dispense_rows = dispensed.vial.history.count(), dispensed.history.count()

    dispense_return_to_stock(dispense=dispensed, location=shelf, reason="dose reduced", actor=user)

    assert dispensed.vial.history.count() == vial_rows + 1
    assert dispensed.history.count() == dispense_rows + 1
    latest = dispensed.vial.history.first()
    assert (latest.status, latest.location_id) == (Vial.Status.IN_STOCK, shelf.pk)


def test_return_to_a_room_temperature_shelf_starts_the_clock(dispensed, user):
    shelf = StorageLocationFactory(code="RT-1", kind=StorageLocation.Kind.ROOM_TEMPERATURE)

    dispense_return_to_stock(dispense=dispensed, location=shelf, reason="not needed", actor=user)

    vial = Vial.objects.get(pk=dispensed.vial_id)
    assert vial.room_temp_since is not None
    assert vial.beyond_use_date <= vial.lot.expiry_date


def test_return_needs_a_reason(dispensed, user):
    refused("reason_required", dispense_return_to_stock, dispense=dispensed, location=fridge(), reason=" ", actor=user)


def test_return_of_a_vial_of_a_lot_quarantined_meanwhile_goes_only_to_quarantine(dispensed, user):
    lot = dispensed.vial.lot
    lot.status = Lot.Status.QUARANTINED
    lot.save()

    refused("lot_not_released", dispense_return_to_stock, dispense=dispensed, location=fridge(), reason="x", actor=user)

    quarantine = StorageLocationFactory(code="Q-1", kind=StorageLocation.Kind.QUARANTINE)
    dispense_return_to_stock(dispense=dispensed, location=quarantine, reason="lot on hold", actor=user)
    assert Vial.objects.get(pk=dispensed.vial_id).status == Vial.Status.QUARANTINED


def test_return_of_a_dispense_already_closed_is_refused(dispensed, user):
    dispense_waste(dispense=dispensed, reason="opened", actor=user)

    refused("dispense_closed", dispense_return_to_stock, dispense=dispensed, location=fridge(), reason="x", actor=user)


def test_return_after_the_session_was_completed_is_refused(dispensed, user):
    session = dispensed.session
    session.status = InfusionSession.Status.COMPLETED
    session.save()

    refused("session_not_open", dispense_return_to_stock, dispense=dispensed, location=fridge(), reason="x", actor=user)


def test_waste_marks_the_opened_vial_and_the_dispense_wasted(dispensed, user):
    dispense = dispense_waste(dispense=dispensed, reason="half used, rest discarded", actor=user)

    vial = Vial.objects.get(pk=dispense.vial_id)
    assert vial.status == Vial.Status.WASTED
    assert vial.location is None
    assert dispense.status == Dispense.Status.WASTED
    assert dispense.closed_reason == "half used, rest discarded"
    reason = f"wasted after opening in session {dispense.session_id}: half used, rest discarded"
    for row in (vial.history.first(), dispense.history.first()):
        assert row.history_change_reason == reason
        assert row.history_user == user


def test_waste_needs_a_reason(dispensed, user):
    refused("reason_required", dispense_waste, dispense=dispensed, reason="", actor=user)


def test_waste_of_a_dispense_already_wasted_is_refused(dispensed, user):
    dispense_waste(dispense=dispensed, reason="opened", actor=user)

    refused("dispense_closed", dispense_waste, dispense=dispensed, reason="again", actor=user)
