"""Treatment authorisations: the dosing weight arithmetic, each refusal at dispense and the
pharmacist's override of it, orders under an authorisation, and the reports' selectors."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import local_today
from tests.factories import AuthorisationFactory, DispenseFactory, InfusionSessionFactory, PatientFactory
from tests.traceability.helpers import brand, refused, stock
from traceability.authorisations import (
    adjusted_body_weight,
    authorisation_create,
    authorisation_revoke,
    authorised_grams,
    dosing_weight,
    ideal_body_weight,
    smallest_cover,
    standing,
)
from traceability.models import DispenseOverride, InfusionSession, TreatmentAuthorisation
from traceability.picking import pick_for_dose, pick_vials
from traceability.selectors import authorisation_discrepancies, expiring_authorisations
from traceability.services import (
    dispense_check,
    override_decide,
    override_grant,
    override_request,
    session_authorise,
    session_create,
    vial_dispense,
)

pytestmark = pytest.mark.django_db


def under(**fields) -> InfusionSession:
    """A session for 30 g under an authorisation with these fields (the rest wide open)."""
    session = InfusionSessionFactory(ordered_grams=Decimal(fields.pop("ordered_grams", "30")))
    a = session.authorisation
    for name, value in fields.items():
        setattr(a, name, value)
    a.save()
    return session


def dosed_before(session: InfusionSession, *, days_ago: int) -> InfusionSession:
    """A completed earlier session of the patient under the same authorisation, one vial given."""
    earlier = InfusionSessionFactory(
        patient=session.patient, authorisation=session.authorisation, status=InfusionSession.Status.COMPLETED,
        scheduled_date=session.scheduled_date - timedelta(days=days_ago))
    DispenseFactory(session=earlier)
    return earlier


# --- the dosing weight: worked examples ---------------------------------------------------------


def test_the_ideal_body_weight_is_devines():
    # Man, 180 cm: 180 / 2.54 = 70.866 in, 10.866 in over 5 ft; 50 + 2.3 × 10.866 = 74.99 → 75.0 kg.
    assert ideal_body_weight(height_cm=Decimal("180"), sex="male") == Decimal("75.0")
    # Woman, 165 cm: 64.961 in, 4.961 in over 5 ft; 45.5 + 2.3 × 4.961 = 56.91 → 56.9 kg.
    assert ideal_body_weight(height_cm=Decimal("165"), sex="female") == Decimal("56.9")
    # Woman of exactly 5 ft (152.4 cm): the base alone, 45.5 kg.
    assert ideal_body_weight(height_cm=Decimal("152.4"), sex="female") == Decimal("45.5")


def test_the_adjusted_body_weight_is_ibw_plus_four_tenths_of_the_excess():
    # Man, 180 cm, 110 kg: IBW 75.0; 75.0 + 0.4 × (110 − 75.0) = 75.0 + 14.0 = 89.0 kg.
    assert adjusted_body_weight(actual_kg=Decimal("110"), ideal_kg=Decimal("75.0")) == Decimal("89.0")
    # Woman, 165 cm, 95 kg: IBW 56.9; 56.9 + 0.4 × 38.1 = 56.9 + 15.24 = 72.14 → 72.1 kg.
    assert adjusted_body_weight(actual_kg=Decimal("95"), ideal_kg=Decimal("56.9")) == Decimal("72.1")


def test_the_dosing_weight_follows_the_basis_and_never_exceeds_the_actual_weight():
    heavy = PatientFactory(weight_kg=Decimal("110"), height_cm=Decimal("180"), sex="male")
    assert dosing_weight(heavy, "actual").kg == Decimal("110")
    assert dosing_weight(heavy, "ideal").kg == Decimal("75.0")
    assert dosing_weight(heavy, "adjusted").kg == Decimal("89.0")
    # Woman, 165 cm (IBW 56.9 kg), 50 kg: below her IBW, so she is dosed on her actual 50 kg.
    light = PatientFactory(weight_kg=Decimal("50"), height_cm=Decimal("165"), sex="female")
    weight = dosing_weight(light, "adjusted")
    assert (weight.kg, weight.ideal_kg) == (Decimal("50"), Decimal("56.9"))
    assert "below the ideal" in weight.note


def test_a_dose_per_kilogram_is_worked_out_from_the_dosing_weight():
    patient = PatientFactory(weight_kg=Decimal("110"), height_cm=Decimal("180"), sex="male")
    a = AuthorisationFactory(patient=patient, dose_grams=None, dose_g_per_kg=Decimal("0.4"), weight_basis="adjusted")
    # 0.4 g/kg × 89.0 kg (adjusted, above) = 35.60 g.
    grams, weight = authorised_grams(a, patient)
    assert grams == Decimal("35.60") and weight.kg == Decimal("89.0")


def test_ideal_and_adjusted_weights_need_height_and_sex_and_every_basis_needs_the_weight():
    with pytest.raises(ApplicationError) as caught:
        dosing_weight(PatientFactory(weight_kg=Decimal("80"), height_cm=None, sex="male"), "ideal")
    assert caught.value.code == "height_or_sex_unknown"
    with pytest.raises(ApplicationError) as caught:
        dosing_weight(PatientFactory(weight_kg=Decimal("80"), height_cm=Decimal("170"), sex=""), "adjusted")
    assert caught.value.code == "height_or_sex_unknown"
    with pytest.raises(ApplicationError) as caught:
        dosing_weight(PatientFactory(weight_kg=None), "actual")
    assert caught.value.code == "weight_unknown"


def test_vial_rounding_is_the_smallest_total_of_whole_vials_reaching_the_dose():
    # 32.5 g from 5, 10 and 20 g vials: 35 g (20 + 10 + 5).
    assert smallest_cover([Decimal("5"), Decimal("10"), Decimal("20")], Decimal("32.5")) == Decimal("35.00")
    # 28.84 g from 2.5 and 10 g vials: 30 g.
    assert smallest_cover([Decimal("2.5"), Decimal("10")], Decimal("28.84")) == Decimal("30.00")
    # 13 g from 6 and 10 g vials: 16 g (6 + 10), not 18 (3 × 6) nor 20 (2 × 10).
    assert smallest_cover([Decimal("6"), Decimal("10")], Decimal("13")) == Decimal("16.00")
    assert smallest_cover([Decimal("10")], Decimal("30")) == Decimal("30.00")
    assert smallest_cover([], Decimal("30")) is None


# --- each refusal at dispense, and its override -------------------------------------------------


def test_a_session_without_an_authorisation_is_refused_until_a_pharmacist_overrides(tech, pharm):
    session = InfusionSessionFactory(authorisation=None)
    [vial] = stock(brand("Privigen"))

    error = refused("authorisation_missing", vial_dispense, session=session, vial=vial, actor=tech)
    assert error.status == 409
    override = override_grant(session=session, vial=vial, check="authorisation_missing",
                              reason="Kawasaki: urgent, BloodSTAR request lodged", actor=pharm)
    dispense = vial_dispense(session=session, vial=vial, actor=tech)

    assert override.product is None  # the whole session, whatever brand
    assert dispense.outside_authorisation and dispense.authorisation is None
    assert [(c["check"], c["kind"], c["override"]) for c in dispense.checks] == [
        ("authorisation_missing", "authorisation", override.pk)]


def test_without_the_requirement_a_session_without_an_authorisation_is_dispensed_and_queued(tech, settings):
    settings.AUTHORISATION_REQUIRED = False
    session = InfusionSessionFactory(authorisation=None)
    [vial] = stock(brand("Privigen"))

    dispense = vial_dispense(session=session, vial=vial, actor=tech)

    assert dispense.outside_authorisation and dispense.checks == []
    assert list(authorisation_discrepancies()) == [dispense]


def test_a_revoked_authorisation_is_refused_until_overridden(tech, pharm):
    session = InfusionSessionFactory()
    authorisation_revoke(authorisation=session.authorisation, reason="panel withdrew approval", actor=pharm)
    session.refresh_from_db()
    [vial] = stock(brand("Privigen"))

    error = refused("authorisation_revoked", vial_dispense, session=session, vial=vial, actor=tech)
    assert "panel withdrew approval" in error.message
    override_grant(session=session, vial=vial, check="authorisation_revoked", reason="appeal upheld", actor=pharm)
    assert vial_dispense(session=session, vial=vial, actor=tech).outside_authorisation


@pytest.mark.parametrize(("valid_from", "valid_until", "code"), [
    (-200, -1, "authorisation_expired"),
    (1, 200, "authorisation_not_yet_valid"),
])
def test_an_authorisation_outside_its_dates_is_refused_until_overridden(valid_from, valid_until, code, tech, pharm):
    today = local_today()
    session = under(valid_from=today + timedelta(days=valid_from), valid_until=today + timedelta(days=valid_until))
    [vial] = stock(brand("Privigen"))

    refused(code, vial_dispense, session=session, vial=vial, actor=tech)
    asked = override_request(session=session, vial=vial, check=code, note="renewal submitted", actor=tech)
    refused(code, vial_dispense, session=session, vial=vial, actor=tech)  # asked is not granted
    override_decide(override=asked, grant=True, reason="renewal approved by phone, paperwork follows", actor=pharm)

    dispense = vial_dispense(session=session, vial=vial, actor=tech)
    assert [c["check"] for c in dispense.checks] == [code]
    assert dispense.authorisation == session.authorisation and dispense.outside_authorisation


def test_a_brand_outside_the_authorisation_is_refused_and_the_override_holds_for_that_brand_only(tech, pharm):
    privigen, octagam, gamunex = brand("Privigen"), brand("Octagam 10%"), brand("Gamunex-C")
    session = under(product=privigen)
    [other] = stock(octagam)
    [third] = stock(gamunex)

    refused("authorisation_product", vial_dispense, session=session, vial=other, actor=tech)
    override = override_grant(session=session, vial=other, check="authorisation_product",
                              reason="Privigen out of stock nationally", actor=pharm)
    vial_dispense(session=session, vial=other, actor=tech)

    assert override.product == octagam
    refused("authorisation_product", vial_dispense, session=session, vial=third, actor=tech)
    [own] = stock(privigen)
    assert not vial_dispense(session=session, vial=own, actor=tech).outside_authorisation


def test_a_dose_above_the_authorised_beyond_vial_rounding_is_refused_until_overridden(tech, pharm):
    # 25 g authorised, 10 g vials: whole vials make 30 g, so three vials (30 g) pass; a fourth
    # (40 g) is refused. The order is 25 g too; the fourth vial is past it by more than a vial.
    session = under(dose_grams=Decimal("25"), ordered_grams="25")
    vials = stock(brand("Privigen"), 10, 4)
    for vial in vials[:3]:
        assert not vial_dispense(session=session, vial=vial, actor=tech).outside_authorisation

    error = refused("authorisation_dose", vial_dispense, session=session, vial=vials[3], actor=tech)
    assert "allows 25 g a dose (30 g in whole vials)" in error.message
    override_grant(session=session, vial=vials[3], check="authorisation_dose", reason="loading dose agreed", actor=pharm)
    # The ordered dose is a check of its own, decided on its own.
    refused("dose_exceeded", vial_dispense, session=session, vial=vials[3], actor=tech)
    override_grant(session=session, vial=vials[3], check="dose_excess", reason="loading dose agreed", actor=pharm)

    dispense = vial_dispense(session=session, vial=vials[3], actor=tech)
    assert [c["check"] for c in dispense.checks] == ["authorisation_dose", "dose_excess"]
    assert dispense.outside_authorisation


def test_a_dose_per_kilogram_that_cannot_be_worked_out_is_refused(tech):
    session = under(dose_grams=None, dose_g_per_kg=Decimal("0.4"))
    session.patient.weight_kg = None
    session.patient.save()
    [vial] = stock(brand("Privigen"))

    error = refused("authorisation_dose", vial_dispense, session=session, vial=vial, actor=tech)
    assert "cannot be worked out" in error.message


def test_a_dose_earlier_than_the_interval_is_refused_until_overridden(tech, pharm):
    session = under(interval_days=21)
    dosed_before(session, days_ago=14)
    [vial] = stock(brand("Privigen"))

    error = refused("authorisation_interval", vial_dispense, session=session, vial=vial, actor=tech)
    assert "every 21 days" in error.message
    override_grant(session=session, vial=vial, check="authorisation_interval", reason="travel next week", actor=pharm)
    assert vial_dispense(session=session, vial=vial, actor=tech).outside_authorisation


def test_a_dose_on_the_day_the_interval_allows_passes(tech):
    session = under(interval_days=21)
    dosed_before(session, days_ago=21)
    [vial] = stock(brand("Privigen"))

    assert not vial_dispense(session=session, vial=vial, actor=tech).outside_authorisation


def test_doses_used_up_are_refused_until_overridden_and_a_dose_in_progress_is_not_counted_twice(tech, pharm):
    session = under(doses=2, ordered_grams="20")
    dosed_before(session, days_ago=56)
    dosed_before(session, days_ago=28)
    first, second = stock(brand("Privigen"), 10, 2)

    error = refused("authorisation_doses_used", vial_dispense, session=session, vial=first, actor=tech)
    assert "All 2 doses" in error.message
    override_grant(session=session, vial=first, check="authorisation_doses_used", reason="renewal pending",
                   actor=pharm)
    vial_dispense(session=session, vial=first, actor=tech)
    # The second vial is of the same dose: the override covers the session.
    assert vial_dispense(session=session, vial=second, actor=tech).outside_authorisation

    last = under(doses=1, ordered_grams="20")
    a, b = stock(brand("Privigen"), 10, 2)
    vial_dispense(session=last, vial=a, actor=tech)
    # Its only dose is this session's, already begun: the next vial of it is no new dose.
    assert not vial_dispense(session=last, vial=b, actor=tech).outside_authorisation


def test_a_declined_authorisation_override_keeps_the_refusal(tech, pharm):
    session = InfusionSessionFactory(authorisation=None)
    [vial] = stock(brand("Privigen"))
    asked = override_request(session=session, vial=vial, check="authorisation_missing", actor=tech)
    override_decide(override=asked, grant=False, reason="no approval on file", actor=pharm)

    refused("authorisation_missing", vial_dispense, session=session, vial=vial, actor=tech)


def test_an_override_of_an_authorisation_check_that_does_not_refuse_is_refused(tech):
    session = InfusionSessionFactory()
    [vial] = stock(brand("Privigen"))

    with pytest.raises(ApplicationError) as caught:
        override_request(session=session, vial=vial, check="authorisation_dose", actor=tech)
    assert caught.value.code == "override_state_conflict"
    assert not DispenseOverride.objects.exists()


def test_the_dispense_check_shows_the_authorisation_and_its_refusals_without_changing_anything():
    session = under(doses=6, interval_days=21, valid_until=local_today() + timedelta(days=10))
    dosed_before(session, days_ago=28)
    [vial] = stock(brand("Privigen"))

    check = dispense_check(session=session, vial=vial)
    now = standing(session).as_dict()

    assert check.authorisation == []
    assert (now["dose_number"], now["doses_remaining_after_this"], now["days_left"]) == (2, 4, 10)
    assert now["state"] == "current"


# --- orders under an authorisation ----------------------------------------------------------------


def test_an_order_under_an_authorisation_may_leave_the_dose_to_it(pharm):
    patient = PatientFactory(weight_kg=Decimal("110"), height_cm=Decimal("180"), sex="male")
    a = AuthorisationFactory(patient=patient, dose_grams=None, dose_g_per_kg=Decimal("0.4"), weight_basis="adjusted")

    session = session_create(patient=patient, scheduled_date=local_today(), indication=a.indication,
                             authorisation=a, actor=pharm)

    assert session.ordered_grams == Decimal("35.60") and session.authorisation == a


@pytest.mark.parametrize(("change", "code"), [
    ({"ordered_grams": Decimal("1001")}, "authorisation_dose"),
    ({"indication": "itp"}, "authorisation_mismatch"),
    ({"route": "SC"}, "authorisation_mismatch"),
    ({"scheduled_date": local_today() + timedelta(days=4 * 366)}, "invalid_scheduled_date"),
])
def test_an_order_the_authorisation_does_not_cover_is_refused(change, code, pharm):
    a = AuthorisationFactory(valid_until=local_today() + timedelta(days=30))
    order = {"patient": a.patient, "scheduled_date": local_today(), "indication": a.indication,
             "ordered_grams": Decimal("30"), **change}

    refused(code, session_create, **order, authorisation=a, actor=pharm)


def test_an_order_after_the_end_or_for_another_patient_is_refused(pharm):
    a = AuthorisationFactory(valid_until=local_today() + timedelta(days=30))
    late = {"patient": a.patient, "scheduled_date": local_today() + timedelta(days=31), "indication": a.indication,
            "ordered_grams": Decimal("30")}
    refused("authorisation_expired", session_create, **late, authorisation=a, actor=pharm)
    other = {**late, "patient": PatientFactory(), "scheduled_date": local_today()}
    refused("authorisation_mismatch", session_create, **other, authorisation=a, actor=pharm)


def test_an_open_session_is_put_under_an_authorisation_with_its_history(pharm, tech):
    session = InfusionSessionFactory(authorisation=None)
    a = AuthorisationFactory(patient=session.patient, payer_reference="BS-77")
    [vial] = stock(brand("Privigen"))

    session = session_authorise(session=session, authorisation=a, actor=pharm)

    assert session.authorisation == a
    assert session.history.first().history_change_reason == "given under authorisation BS-77"
    assert not vial_dispense(session=session, vial=vial, actor=tech).outside_authorisation
    refused("authorisation_mismatch", session_authorise, session=session,
            authorisation=AuthorisationFactory(), actor=pharm)


# --- recording and revoking ---------------------------------------------------------------------


def _record(pharm, **changes):
    fields = dict(patient=PatientFactory(), indication="cidp", route="IV", interval_days=21, doses=6,
                  valid_from=local_today(), valid_until=local_today() + timedelta(days=180), prescriber="Dr A",
                  approver="Panel", dose_grams=Decimal("40"), payer_reference="BS-1", actor=pharm)
    return authorisation_create(**{**fields, **changes})


def test_an_authorisation_is_recorded_with_its_history(pharm):
    a = _record(pharm)
    assert a.status == "active" and a.created_by == pharm
    row = a.history.get()
    assert row.history_user == pharm and row.history_change_reason.startswith("treatment authorisation recorded")


@pytest.mark.parametrize(("changes", "code"), [
    ({"dose_g_per_kg": Decimal("0.4")}, "invalid_dose"),
    ({"dose_grams": None}, "invalid_dose"),
    ({"doses": 0}, "invalid_doses"),
    ({"valid_until": local_today() - timedelta(days=1)}, "invalid_dates"),
    ({"prescriber": " "}, "prescriber_and_approver_required"),
    ({"dose_grams": None, "dose_g_per_kg": Decimal("0.4"), "weight_basis": "ideal"}, "height_or_sex_unknown"),
    ({"indication": "other"}, "indication_other_required"),
])
def test_an_impossible_authorisation_is_refused_and_nothing_is_recorded(changes, code, pharm):
    with pytest.raises(ApplicationError) as caught:
        _record(pharm, **changes)
    assert caught.value.code == code
    assert not TreatmentAuthorisation.objects.exists()


def test_revoking_needs_a_reason_and_happens_once(pharm):
    a = _record(pharm)
    with pytest.raises(ApplicationError) as caught:
        authorisation_revoke(authorisation=a, reason=" ", actor=pharm)
    assert caught.value.code == "reason_required"

    authorisation_revoke(authorisation=a, reason="treatment stopped", actor=pharm)
    with pytest.raises(ApplicationError) as caught:
        authorisation_revoke(authorisation=a, reason="again", actor=pharm)
    assert caught.value.code == "authorisation_state_conflict"
    a.refresh_from_db()
    assert (a.status, a.revoked_reason, a.revoked_by) == ("revoked", "treatment stopped", pharm)


# --- picking and reports ------------------------------------------------------------------------


def test_the_pick_and_the_dose_calculator_propose_only_what_the_authorisation_covers():
    privigen, octagam = brand("Privigen"), brand("Octagam 10%")
    stock(octagam, 10, 3)
    stock(privigen, 10, 1)
    stock(privigen, 5, 2)
    session = under(product=privigen, ordered_grams="20")

    pick = pick_vials(session=session)
    assert {v.presentation.product for v in pick.vials} == {privigen}
    assert pick.total_grams == Decimal("20")

    dose = pick_for_dose(patient=session.patient, authorisation=session.authorisation, grams=Decimal("17.5"))
    assert {v.presentation.product for v in dose.vials} == {privigen}
    assert (dose.total_grams, dose.overfill_grams) == (Decimal("20"), Decimal("2.5"))


def test_the_expiring_report_lists_active_authorisations_ending_within_the_days_soonest_first(pharm):
    today = local_today()
    soon = AuthorisationFactory(valid_until=today + timedelta(days=5))
    later = AuthorisationFactory(valid_until=today + timedelta(days=25))
    AuthorisationFactory(valid_until=today + timedelta(days=45))
    AuthorisationFactory(valid_until=today - timedelta(days=1))
    authorisation_revoke(authorisation=AuthorisationFactory(valid_until=today + timedelta(days=3)),
                         reason="stopped", actor=pharm)

    assert list(expiring_authorisations(days=30)) == [soon, later]
    assert list(expiring_authorisations(days=5)) == [soon]


def test_the_discrepancy_queue_holds_what_was_given_outside_or_without_an_authorisation(tech, pharm, settings):
    outside = under(dose_grams=Decimal("10"), ordered_grams="10")
    first, extra = stock(brand("Privigen"), 10, 2)
    within = vial_dispense(session=outside, vial=first, actor=tech)
    override_grant(session=outside, vial=extra, check="authorisation_dose", reason="agreed", actor=pharm)
    over = vial_dispense(session=outside, vial=extra, actor=tech)
    settings.AUTHORISATION_REQUIRED = False
    bare = InfusionSessionFactory(authorisation=None)
    [vial] = stock(brand("Privigen"))
    without = vial_dispense(session=bare, vial=vial, actor=tech)
    without.dispensed_at = timezone.now() + timedelta(minutes=1)
    without.save()

    assert list(authorisation_discrepancies()) == [without, over]
    assert within not in authorisation_discrepancies()
