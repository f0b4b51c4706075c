"""Clinical checks at the point of dispense: each contraindication is refused until a pharmacist
overrides it, each caution is shown and acknowledged, the dose is reconciled, and each leaves the
history rows it should."""

from datetime import timedelta
from decimal import Decimal

import pytest

from core.errors import ApplicationError
from inventory.models import Product, local_today
from tests.factories import AdverseReactionFactory, InfusionSessionFactory, PatientFactory
from tests.traceability.helpers import brand, completed_session, refused, state, stock
from traceability.clinical import clinical_findings
from traceability.models import DispenseOverride, InfusionSession
from traceability.picking import pick_vials
from traceability.services import (
    dispense_check,
    override_decide,
    override_grant,
    override_request,
    session_complete,
    vial_dispense,
)

pytestmark = pytest.mark.django_db


def session_for(**profile) -> InfusionSession:
    route = profile.pop("route", InfusionSession.Route.IV)
    return InfusionSessionFactory(patient=PatientFactory(**profile), ordered_grams=Decimal("40"), route=route)


# Each contraindication: (patient profile, product fields, check code).
CONTRAINDICATIONS = [
    ({"iga_deficient": True, "anti_iga_antibodies": True}, {"iga_ug_per_ml": Decimal("200")}, "iga_content"),
    ({"iga_deficient": True, "anti_iga_antibodies": True}, {"iga_ug_per_ml": None}, "iga_content"),
    ({"hyperprolinaemia": True}, {"excipient": "L-proline 250 mmol/L"}, "proline"),
    ({"hereditary_fructose_intolerance": True}, {"excipient": "D-sorbitol 50 mg/mL"}, "fructose"),
    ({"hereditary_fructose_intolerance": True}, {"excipient": "sucrose 10%"}, "fructose"),
    ({"renal_impairment": True}, {"excipient": "sucrose 10%", "concentration_pct": Decimal("5")}, "renal_sucrose"),
    ({"route": "IV"}, {"route": Product.Route.SC}, "route"),
    ({"route": "SC"}, {"route": Product.Route.IV}, "route"),
]


@pytest.mark.parametrize(("profile", "product_fields", "check"), CONTRAINDICATIONS)
def test_a_contraindication_refuses_the_dispense_and_changes_nothing(profile, product_fields, check, tech):
    session = session_for(**profile)
    [vial] = stock(brand("Risky", **{"excipient": "", **product_fields}))

    error = refused(f"contraindicated_{check}", vial_dispense, session=session, vial=vial, actor=tech)

    assert error.status == 409
    assert [c["check"] for c in error.extra["checks"]] == [check]
    assert error.extra["checks"][0]["source"]


@pytest.mark.parametrize(("profile", "product_fields", "check"), CONTRAINDICATIONS)
def test_a_pharmacists_override_lets_the_contraindicated_product_be_given_and_is_kept(profile, product_fields, check, tech, pharm):
    session = session_for(**profile)
    [vial] = stock(brand("Risky", **{"excipient": "", **product_fields}))
    asked = override_request(session=session, vial=vial, check=check, note="no other stock", actor=tech)
    assert asked.status == DispenseOverride.Status.REQUESTED
    refused(f"contraindicated_{check}", vial_dispense, session=session, vial=vial, actor=tech)

    granted = override_decide(override=asked, grant=True, reason="haematologist agreed; premedicate", actor=pharm)
    also = []
    if check == "route":
        # By another route than its authorisation's, the product is outside that too: a second decision.
        refused("authorisation_product", vial_dispense, session=session, vial=vial, actor=tech)
        also = [("authorisation_product", override_grant(session=session, vial=vial, check="authorisation_product",
                                                         reason="panel agreed by phone", actor=pharm).pk)]
    dispense = vial_dispense(session=session, vial=vial, actor=tech)

    assert granted.status == DispenseOverride.Status.GRANTED and granted.decided_by == pharm
    assert [(c["check"], c["override"]) for c in dispense.checks] == [(check, granted.pk), *also]
    assert dispense.outside_authorisation == bool(also)
    history = granted.history.order_by("history_date", "history_id")
    assert [(h.status, h.history_user) for h in history] == [("requested", tech), ("granted", pharm)]
    assert history.last().history_change_reason.endswith("haematologist agreed; premedicate")


def test_a_declined_override_keeps_the_refusal(tech, pharm):
    session = session_for(hyperprolinaemia=True)
    [vial] = stock(brand("Privigen", excipient="L-proline"))
    asked = override_request(session=session, vial=vial, check="proline", actor=tech)

    override_decide(override=asked, grant=False, reason="use a glycine product", actor=pharm)

    refused("contraindicated_proline", vial_dispense, session=session, vial=vial, actor=tech)


def test_an_override_is_decided_once_and_needs_a_reason(tech, pharm):
    session = session_for(hyperprolinaemia=True)
    [vial] = stock(brand("Privigen", excipient="L-proline"))
    asked = override_request(session=session, vial=vial, check="proline", actor=tech)
    with pytest.raises(ApplicationError) as missing:
        override_decide(override=asked, grant=True, reason=" ", actor=pharm)
    assert missing.value.code == "reason_required"

    override_decide(override=asked, grant=True, reason="ok", actor=pharm)
    with pytest.raises(ApplicationError) as twice:
        override_decide(override=asked, grant=False, reason="changed my mind", actor=pharm)
    assert twice.value.code == "override_state_conflict"


def test_no_override_is_asked_for_a_check_that_does_not_refuse(tech):
    session = session_for()
    [vial] = stock(brand("Plain", excipient="glycine"))
    with pytest.raises(ApplicationError) as error:
        override_request(session=session, vial=vial, check="proline", actor=tech)
    assert error.value.code == "override_state_conflict"
    assert not DispenseOverride.objects.exists()


def test_an_override_holds_for_its_session_and_product_only(tech, pharm):
    patient = PatientFactory(hyperprolinaemia=True)
    first = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("40"))
    second = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("40"))
    privigen = brand("Privigen", excipient="L-proline")
    hizentra = brand("Hizentra", excipient="L-proline", route=Product.Route.IV_SC)
    a, b = stock(privigen, n=2)
    [c] = stock(hizentra)
    override_grant(session=first, vial=a, check="proline", reason="agreed", actor=pharm)

    vial_dispense(session=first, vial=a, actor=tech)
    refused("contraindicated_proline", vial_dispense, session=second, vial=b, actor=tech)
    refused("contraindicated_proline", vial_dispense, session=first, vial=c, actor=tech)


# --- cautions -----------------------------------------------------------------------------------

CAUTIONS = [
    ({"iga_deficient": True}, {"iga_ug_per_ml": Decimal("200")}, "iga_deficiency"),
    ({"maltose_sensitive_glucose_monitoring": True}, {"excipient": "maltose 90 mg/mL"}, "maltose_glucose"),
    ({"renal_impairment": True}, {"concentration_pct": Decimal("10")}, "renal_concentration"),
    ({"thrombosis_risk": True}, {}, "thrombosis"),
]


@pytest.mark.parametrize(("profile", "product_fields", "check"), CAUTIONS)
def test_a_caution_must_be_acknowledged_and_is_kept_on_the_dispense(profile, product_fields, check, tech):
    session = session_for(**profile)
    [vial] = stock(brand("Careful", **{"excipient": "glycine", "concentration_pct": Decimal("5"), **product_fields}))

    error = refused("cautions_not_acknowledged", vial_dispense, session=session, vial=vial, actor=tech)
    assert [c["check"] for c in error.extra["cautions"]] == [check]

    dispense = vial_dispense(session=session, vial=vial, actor=tech, acknowledged={check})
    assert [(c["check"], c["kind"], c["acknowledged"]) for c in dispense.checks] == [(check, "caution", True)]
    assert dispense.history.get().checks == dispense.checks


def test_a_moderate_reaction_to_the_brand_is_a_caution_and_a_severe_one_a_contraindication(tech):
    patient = PatientFactory()
    privigen = brand("Privigen", excipient="glycine")
    past = completed_session(patient, privigen)
    AdverseReactionFactory(session=past, severity="moderate", type="headache")
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("40"))
    [vial] = stock(privigen)
    assert [(f.check, f.kind) for f in clinical_findings(session=session, product=privigen)] == [
        ("previous_reaction", "caution")
    ]

    AdverseReactionFactory(session=past, severity="severe", type="allergic_reaction")

    refused("contraindicated_previous_severe_reaction", vial_dispense, session=session, vial=vial, actor=tech)
    other = brand("Other", excipient="glycine")
    assert clinical_findings(session=session, product=other) == []


def test_the_demo_iga_deficient_patient_is_refused_a_high_iga_product_until_a_pharmacist_decides(tech, pharm):
    session = session_for(iga_deficient=True, anti_iga_antibodies=True)
    asceniv = brand("Asceniv", excipient="glycine", iga_ug_per_ml=Decimal("200"))
    gammagard = brand("Gammagard Liquid", excipient="glycine 0.25 M", iga_ug_per_ml=Decimal("37"))
    [high] = stock(asceniv)
    [low] = stock(gammagard)

    error = refused("contraindicated_iga_content", vial_dispense, session=session, vial=high, actor=tech)
    assert "200" in error.message and "50" in error.message
    dispense = vial_dispense(session=session, vial=low, actor=tech, acknowledged={"iga_deficiency"})
    assert dispense.product == gammagard


# --- dose ---------------------------------------------------------------------------------------


def test_a_vial_that_overshoots_the_order_by_more_than_the_smallest_vial_is_refused(tech, pharm):
    session = InfusionSessionFactory(ordered_grams=Decimal("27.2"))
    vials = stock(brand("Privigen", excipient="glycine"), grams=10, n=4)
    for vial in vials[:3]:
        vial_dispense(session=session, vial=vial, actor=tech)

    error = refused("dose_exceeded", vial_dispense, session=session, vial=vials[3], actor=tech)
    assert error.extra == {"ordered_grams": "27.2", "grams_after": "40", "tolerance_grams": "10", "session": session.pk}

    granted = override_grant(session=session, vial=vials[3], check="dose_excess", reason="order to be rounded up", actor=pharm)
    dispense = vial_dispense(session=session, vial=vials[3], actor=tech)
    assert dispense.checks[-1]["check"] == "dose_excess" and dispense.checks[-1]["override"] == granted.pk


def test_the_tolerance_is_the_smallest_vial_of_the_product_on_a_shelf(tech):
    session = InfusionSessionFactory(ordered_grams=Decimal("27.2"))
    privigen = brand("Privigen", excipient="glycine")
    tens = stock(privigen, grams=10, n=3)
    stock(privigen, grams=2.5)
    for vial in tens[:2]:
        vial_dispense(session=session, vial=vial, actor=tech)

    # 30 g of 27.2 g: 2.8 g over, more than the 2.5 g vial on the shelf.
    refused("dose_exceeded", vial_dispense, session=session, vial=tens[2], actor=tech)


def test_completion_with_a_shortfall_beyond_tolerance_needs_a_reason_and_keeps_it(tech):
    session = InfusionSessionFactory(ordered_grams=Decimal("40"))
    [vial] = stock(brand("Privigen", excipient="glycine"), grams=10)
    vial_dispense(session=session, vial=vial, actor=tech)

    error = refused("dose_discrepancy", session_complete, session=session, actor=tech)
    assert error.extra["ordered_grams"] == "40" and error.extra["given_grams"] == "10"

    done = session_complete(session=session, actor=tech, discrepancy_reason="infusion stopped: reaction")
    assert done.status == InfusionSession.Status.COMPLETED
    assert done.discrepancy_reason == "infusion stopped: reaction"
    assert done.history.first().history_change_reason.endswith("dose differs: infusion stopped: reaction")


# --- the patient and the day --------------------------------------------------------------------


def test_a_dispense_for_another_patient_than_the_one_identified_is_refused(tech):
    session = InfusionSessionFactory(patient=PatientFactory(mrn="MRN-1"), ordered_grams=Decimal("40"))
    [vial] = stock(brand("Privigen", excipient="glycine"))

    refused("patient_mismatch", vial_dispense, session=session, vial=vial, actor=tech, patient_mrn="MRN-2")
    assert vial_dispense(session=session, vial=vial, actor=tech, patient_mrn="MRN-1").session == session


def test_a_vial_must_be_usable_on_the_infusion_day_not_only_today(tech):
    session = InfusionSessionFactory(scheduled_date=local_today() + timedelta(days=5), ordered_grams=Decimal("10"))
    privigen = brand("Privigen", excipient="glycine")
    [short] = stock(privigen, days=2)
    [good] = stock(privigen, days=30)

    error = refused("beyond_use_date_passed", vial_dispense, session=session, vial=short, actor=tech)
    assert "before the infusion" in error.message
    assert pick_vials(session=session).vials == [good]


def test_the_pick_leaves_out_contraindicated_products(tech):
    session = session_for(iga_deficient=True, anti_iga_antibodies=True)
    stock(brand("Asceniv", excipient="glycine", iga_ug_per_ml=Decimal("200")), grams=20, n=2)
    low = stock(brand("Gammagard Liquid", excipient="glycine", iga_ug_per_ml=Decimal("37")), grams=10, n=4)

    assert sorted(v.pk for v in pick_vials(session=session).vials) == sorted(v.pk for v in low)


def test_the_check_before_a_dispense_changes_nothing(tech):
    session = session_for(hyperprolinaemia=True, thrombosis_risk=True)
    [vial] = stock(brand("Privigen", excipient="L-proline"))
    before = state()

    check = dispense_check(session=session, vial=vial)

    assert [f.check for f in check.blocking] == ["proline"]
    assert [f.check for f in check.cautions] == ["thrombosis"]
    assert state() == before


def test_the_tolerance_counts_only_sizes_on_a_shelf_and_falls_back_to_the_catalog(django_assert_num_queries):
    from inventory.models import Vial
    from traceability.selectors import dose_tolerance

    privigen = brand("Privigen", excipient="glycine")
    stock(privigen, grams=10, n=2)
    small = stock(privigen, grams=2.5)
    with django_assert_num_queries(1):
        assert dose_tolerance([privigen.pk]) == Decimal("2.5")

    Vial.objects.filter(pk__in=[v.pk for v in small]).update(status="dispensed")  # none of that size left
    assert dose_tolerance([privigen.pk]) == Decimal("10")

    Vial.objects.filter(presentation__product=privigen).update(status="wasted")  # an empty shelf: the catalog
    assert dose_tolerance([privigen.pk]) == Decimal("2.5")
