import pytest
from django.core.management import call_command

from inventory import demo as inventory_demo
from inventory.models import Vial, local_today
from tests.factories import UserFactory
from traceability import demo
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient
from traceability.selectors import GIVEN_STATUSES

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    call_command("load_catalog", verbosity=0)
    actor = UserFactory(username="pharm", role="pharmacist")
    inventory_demo.load(actor=actor)
    demo.load(actor=actor)
    return actor


def counts() -> list[int]:
    models = (Patient, InfusionSession, Dispense, BrandSwitchFlag, AdverseReaction, Vial)
    return [m.objects.count() for m in models] + [m.history.count() for m in models]


def test_the_demo_has_patients_with_several_past_infusions(loaded):
    assert 4 <= Patient.objects.filter(mrn__startswith="DEMO-1").exclude(mrn="DEMO-1006").count() <= 6
    for patient in Patient.objects.exclude(mrn="DEMO-1006"):
        assert patient.sessions.filter(status=InfusionSession.Status.COMPLETED).count() >= 2


def test_the_demo_has_an_administration_record_with_a_reaction_at_the_rate_running(loaded):
    from traceability.models import Administration

    (administration,) = Administration.objects.all()
    assert administration.session.patient.mrn == "DEMO-1005"
    assert administration.status == Administration.Status.FINISHED
    assert [s.kind for s in administration.steps.all()] == ["start", "rate", "pause", "resume", "finish"]
    (reaction,) = administration.reactions.all()
    assert reaction.rate_at_onset_ml_per_kg_per_h == 1
    assert administration.fates.count() == 2


def test_the_demo_has_a_home_supply_with_reported_infusions_and_a_lot_with_a_reaction_signal(loaded):
    from recalls.signals import lot_signals
    from traceability.models import HomeInfusion

    supply = InfusionSession.objects.get(patient__mrn="DEMO-1006")
    assert supply.setting == InfusionSession.Setting.HOME
    assert HomeInfusion.objects.filter(session=supply).count() == 2
    (signal,) = lot_signals()
    assert signal.lot.lot_number == "FB-SIG-26" and signal.reactions == 4 and signal.p_value < 0.01


def test_the_demo_has_a_reviewed_brand_switch_and_one_waiting_on_today_session(loaded):
    acknowledged = BrandSwitchFlag.objects.filter(status=BrandSwitchFlag.Status.ACKNOWLEDGED)
    assert acknowledged.filter(session__status=InfusionSession.Status.COMPLETED).exists()
    [waiting] = BrandSwitchFlag.objects.filter(status=BrandSwitchFlag.Status.OPEN)
    assert waiting.session.scheduled_date == local_today()
    assert waiting.session.patient.mrn == "DEMO-1001"
    assert (waiting.from_product.brand, waiting.to_product.brand) == ("Gammagard Liquid", "Octagam 10%")


def test_the_demo_schedules_today_sessions_for_the_scan_station(loaded):
    today = InfusionSession.objects.filter(scheduled_date=local_today())
    assert today.filter(status=InfusionSession.Status.SCHEDULED).count() >= 3


def test_the_demo_uses_real_catalog_brands(loaded):
    brands = set(Dispense.objects.filter(status__in=GIVEN_STATUSES).values_list("product__brand", flat=True))
    assert {"Gammagard Liquid", "Octagam 10%", "Panzyga"} <= brands


def test_the_demo_leaves_a_history_row_for_everything_it_created(loaded):
    for model in (Patient, InfusionSession, Dispense, BrandSwitchFlag, AdverseReaction):
        assert model.history.filter(history_type="+").count() == model.objects.count()
        assert not model.history.filter(history_user__isnull=True).exists()


def test_loading_the_demo_twice_creates_nothing_new(loaded):
    before = counts()

    demo.load(actor=loaded)

    assert counts() == before


def test_the_demo_skips_what_the_catalog_lacks():
    actor = UserFactory()

    demo.load(actor=actor)

    assert not Patient.objects.exists()


def test_the_demo_treats_every_patient_under_an_authorisation_and_one_is_near_its_end(loaded):
    from datetime import timedelta

    from traceability.authorisations import standing
    from traceability.selectors import expiring_authorisations

    assert not InfusionSession.objects.filter(authorisation__isnull=True).exists()
    assert not Dispense.objects.filter(authorisation__isnull=True).exists()
    [ending] = expiring_authorisations(days=30)
    assert ending.patient.mrn == "DEMO-1001" and ending.valid_until <= local_today() + timedelta(days=14)
    today = InfusionSession.objects.get(patient__mrn="DEMO-1001", scheduled_date=local_today())
    assert standing(today).remaining_after_this == 0


def test_the_demo_has_a_home_supply_given_before_its_authorisation_began_in_the_discrepancy_queue(loaded):
    from traceability.models import DispenseOverride
    from traceability.selectors import authorisation_discrepancies

    queued = list(authorisation_discrepancies())
    assert queued and {d.session.patient.mrn for d in queued} == {"DEMO-1006"}
    override = DispenseOverride.objects.get(pk=queued[0].checks[0]["override"])
    assert (override.check_code, override.status) == ("authorisation_not_yet_valid", "granted")
