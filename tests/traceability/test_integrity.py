"""Traceability integrity: no recall, suspect scan, date or stale flag slips past a dispense.
Each test is an item of the integrity review, reproduced, and refused (or followed) now."""

from datetime import timedelta
from decimal import Decimal

import pytest

from core.errors import ApplicationError
from inventory.models import CasePackage, Lot, StorageLocation, SuspectScan, Vial, local_today
from inventory.selectors import vial_from_scan
from inventory.services import lot_quarantine, receipt_check, receipt_create, suspect_scan_record, suspect_scan_resolve
from recalls.models import Recall
from recalls.selectors import recall_lookback
from recalls.services import recall_create
from tests.factories import InfusionSessionFactory, LotFactory, PatientFactory, PresentationFactory
from tests.inventory.helpers import carton, carton_of, in_a_year
from tests.traceability.helpers import brand, completed_session, fridge, refused, stock
from traceability.models import BrandSwitchFlag, InfusionSession
from traceability.services import (
    dispense_lot_decision,
    dispense_return_to_stock,
    dispense_waste,
    flag_acknowledge,
    session_cancel,
    session_complete,
    vial_dispense,
)

pytestmark = pytest.mark.django_db


def session_of(grams="40", **fields) -> InfusionSession:
    return InfusionSessionFactory(ordered_grams=Decimal(grams), **fields)


# 1. A recall that names a lot we do not hold yet ------------------------------------------------


def test_a_lot_named_by_a_recall_before_it_arrives_is_received_recalled_into_quarantine(pharm, tech):
    presentation = PresentationFactory(product=brand("Privigen", excipient="glycine"))
    LotFactory(product=presentation.product, lot_number="HELD-ELSEWHERE")  # the recall needs one known lot
    recall = recall_create(reference="FDA-2026-77", source="regulator", recall_class="I", reason="thrombosis",
                           lots=["HELD-ELSEWHERE", "P999"], allow_unknown=True, actor=pharm)
    assert recall.unmatched_lot_numbers == ["P999"]
    scans = [carton(presentation, lot="P999", expiry=in_a_year(), serial=f"S{n}") for n in range(2)]

    check = receipt_check(scans=scans)
    assert "recall FDA-2026-77" in check.lines[0].cautions[0]
    vials = receipt_create(location=fridge(), scans=scans, actor=tech)

    lot = Lot.objects.get(lot_number="P999")
    assert lot.status == Lot.Status.RECALLED
    assert {v.status for v in vials} == {Vial.Status.QUARANTINED}
    recall.refresh_from_db()
    assert recall.unmatched_lot_numbers == []
    assert lot in [lb.lot for lb in recall_lookback(recall).lots]
    assert "arrived after the recall named it" in recall.history.first().history_change_reason
    refused("lot_recalled", vial_dispense, session=session_of(), vial=vials[0], actor=tech)


def test_a_closed_recall_holds_no_lot_number(pharm, tech):
    presentation = PresentationFactory(product=brand("Privigen", excipient="glycine"))
    LotFactory(product=presentation.product, lot_number="KNOWN")
    recall = recall_create(reference="R-1", source="internal", recall_class="III", reason="x",
                           lots=["KNOWN", "LATER"], allow_unknown=True, actor=pharm)
    Recall.objects.filter(pk=recall.pk).update(status=Recall.Status.CLOSED)

    [vial] = receipt_create(location=fridge(), scans=[carton(presentation, lot="LATER", expiry=in_a_year(), serial="A")],
                            actor=tech)
    assert vial.status == Vial.Status.IN_STOCK


# 2. A dispense scan's lot and expiry ------------------------------------------------------------


def test_a_scan_of_a_known_serial_on_another_lot_is_a_suspect_product_refused_and_reported(tech, pharm):
    [vial] = stock(brand("Privigen", excipient="glycine"), serial="S1", lot=LotFactory(lot_number="LOT-A"))
    other = carton(vial.presentation, lot="LOT-B", expiry=local_today() - timedelta(days=3), serial="S1")

    with pytest.raises(ApplicationError) as caught:
        vial_from_scan(other)
    assert caught.value.code == "suspect_product"
    assert caught.value.extra["lot_on_record"] == "LOT-A" and caught.value.extra["lot_scanned"] == "LOT-B"

    report = suspect_scan_record(raw=other, suspect=caught.value, actor=tech)
    assert suspect_scan_record(raw=other, suspect=caught.value, actor=tech) == report  # reported once
    assert (report.vial, report.scanned_lot, report.status) == (vial, "LOT-B", SuspectScan.Status.OPEN)
    resolved = suspect_scan_resolve(report=report, resolution="label misprint confirmed by maker", actor=pharm)
    assert resolved.status == SuspectScan.Status.RESOLVED and resolved.resolved_by == pharm


def test_a_dispense_scan_whose_expiry_disagrees_with_the_lot_is_refused(tech):
    [vial] = stock(brand("Privigen", excipient="glycine"))
    raw = carton(vial.presentation, lot=vial.lot.lot_number, expiry=vial.lot.expiry_date + timedelta(days=30),
                 serial=vial.serial)
    with pytest.raises(ApplicationError) as caught:
        vial_from_scan(raw)
    assert caught.value.code == "lot_expiry_conflict"
    assert vial_from_scan(carton_of(vial)) == vial


# 3. A recall or quarantine after the dispense ---------------------------------------------------


def test_a_lot_quarantined_after_its_vial_was_dispensed_blocks_completion_until_decided(tech, pharm):
    session = session_of("10")
    [vial] = stock(brand("Privigen", excipient="glycine"))
    dispense = vial_dispense(session=session, vial=vial, actor=tech)
    lot_quarantine(lot=vial.lot, reason="visible particles in a sister vial", actor=pharm)

    error = refused("lot_out_of_use_in_session", session_complete, session=session, actor=tech)
    assert error.extra == {"dispenses": [dispense.pk]}

    dispense_lot_decision(dispense=dispense, reason="infusion had finished before the quarantine", actor=pharm)
    assert session_complete(session=session, actor=tech).status == InfusionSession.Status.COMPLETED


def test_a_recalled_vial_returned_from_the_session_no_longer_blocks_it(tech, pharm):
    session = session_of("10")
    privigen = brand("Privigen", excipient="glycine")
    first, second = stock(privigen, n=2, lot=LotFactory(product=privigen, lot_number="BAD"))
    [good] = stock(privigen, lot=LotFactory(product=privigen, lot_number="GOOD"))
    given = vial_dispense(session=session, vial=first, actor=tech)
    recall_create(reference="R-9", source="manufacturer", recall_class="II", reason="x", lots=["BAD"], actor=pharm)
    refused("lot_out_of_use_in_session", session_complete, session=session, actor=tech)

    quarantine = StorageLocation.objects.create(name="Quarantine", code="Q", kind=StorageLocation.Kind.QUARANTINE)
    dispense_return_to_stock(dispense=given, location=quarantine, reason="recalled", actor=tech)
    vial_dispense(session=session, vial=good, actor=tech)
    assert session_complete(session=session, actor=tech).status == InfusionSession.Status.COMPLETED


def test_no_decision_is_recorded_for_a_lot_still_released(tech, pharm):
    session = session_of("10")
    [vial] = stock(brand("Privigen", excipient="glycine"))
    dispense = vial_dispense(session=session, vial=vial, actor=tech)
    refused("lot_in_use", dispense_lot_decision, dispense=dispense, reason="x", actor=pharm)


# 5. A partly given session ----------------------------------------------------------------------


def test_a_session_with_a_vial_given_even_partly_is_completed_never_cancelled(tech):
    session = session_of("20")
    [vial] = stock(brand("Privigen", excipient="glycine"))
    dispense_waste(dispense=vial_dispense(session=session, vial=vial, actor=tech), reason="reaction: stopped", actor=tech)

    refused("session_has_given_vials", session_cancel, session=session, reason="patient unwell", actor=tech)
    done = session_complete(session=session, actor=tech, discrepancy_reason="stopped after a reaction")
    assert done.status == InfusionSession.Status.COMPLETED


# 7. Flags follow what was given ------------------------------------------------------------------


def test_a_switch_flag_is_withdrawn_when_the_new_brand_goes_back_unopened(tech):
    a, b = brand("Brand A", excipient="glycine"), brand("Brand B", excipient="glycine")
    patient = PatientFactory()
    completed_session(patient, a)
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("10"))
    [vial_b] = stock(b)
    [vial_a] = stock(a)
    dispense_b = vial_dispense(session=session, vial=vial_b, actor=tech)
    [flag] = BrandSwitchFlag.objects.filter(session=session)
    assert (flag.kind, flag.status) == ("switch", "open")

    dispense_return_to_stock(dispense=dispense_b, location=fridge(), reason="wrong brand picked", actor=tech)
    vial_dispense(session=session, vial=vial_a, actor=tech)

    flag.refresh_from_db()
    assert flag.status == BrandSwitchFlag.Status.WITHDRAWN
    assert "returned unopened" in flag.withdrawn_reason
    assert session_complete(session=session, actor=tech).status == InfusionSession.Status.COMPLETED


def test_a_mixed_flag_is_withdrawn_when_one_brand_goes_back(tech):
    a, b = brand("Brand A", excipient="glycine"), brand("Brand B", excipient="glycine")
    session = InfusionSessionFactory(ordered_grams=Decimal("20"))
    [vial_a] = stock(a)
    [vial_b] = stock(b)
    vial_dispense(session=session, vial=vial_a, actor=tech)
    dispense_b = vial_dispense(session=session, vial=vial_b, actor=tech)
    mixed = BrandSwitchFlag.objects.get(session=session, kind="mixed")

    dispense_return_to_stock(dispense=dispense_b, location=fridge(), reason="not needed", actor=tech)

    mixed.refresh_from_db()
    assert mixed.status == BrandSwitchFlag.Status.WITHDRAWN


def test_the_baseline_is_the_last_infusion_given_even_if_left_in_progress(tech, pharm):
    a, b = brand("Brand A", excipient="glycine"), brand("Brand B", excipient="glycine")
    patient = PatientFactory()
    completed_session(patient, a, days_ago=56)
    earlier = InfusionSessionFactory(patient=patient, scheduled_date=local_today() - timedelta(days=28),
                                     ordered_grams=Decimal("10"))
    [first_b, second_b] = stock(b, n=2)
    vial_dispense(session=earlier, vial=first_b, actor=tech)  # switched to B, session left in progress
    flag_acknowledge(flag=BrandSwitchFlag.objects.get(session=earlier), reason="shortage", actor=pharm)

    today = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("10"))
    vial_dispense(session=today, vial=second_b, actor=tech)

    assert not BrandSwitchFlag.objects.filter(session=today).exists()


def test_an_acknowledged_flag_stays_when_its_vial_goes_back(tech, pharm):
    a, b = brand("Brand A", excipient="glycine"), brand("Brand B", excipient="glycine")
    patient = PatientFactory()
    completed_session(patient, a)
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("10"))
    [vial_b] = stock(b)
    dispense = vial_dispense(session=session, vial=vial_b, actor=tech)
    flag = flag_acknowledge(flag=BrandSwitchFlag.objects.get(), reason="shortage", actor=pharm)

    dispense_return_to_stock(dispense=dispense, location=fridge(), reason="not needed", actor=tech)

    flag.refresh_from_db()
    assert flag.status == BrandSwitchFlag.Status.ACKNOWLEDGED


# 8. Case GTINs -----------------------------------------------------------------------------------


def test_a_case_barcode_is_recognised_and_refused_with_what_it_holds(tech):
    presentation = PresentationFactory(product=brand("Privigen", excipient="glycine"), gtin="09520000000011")
    CasePackage.objects.create(gtin="19520000000018", presentation=presentation, units=10)
    scan = carton(presentation, lot="L1", expiry=in_a_year(), serial="C1").replace("09520000000011", "19520000000018")

    error = refused("case_barcode", receipt_create, location=fridge(), scans=[scan], actor=tech)
    assert "a case of 10 × Privigen" in error.message and error.extra["units"] == 10
    unknown_case = scan.replace("19520000000018", "29520000000015")
    assert refused("case_barcode", receipt_create, location=fridge(), scans=[unknown_case], actor=tech).extra["units"] is None


def test_a_case_gtin_cannot_be_entered_as_a_vial_presentation():
    from django.core.exceptions import ValidationError

    from inventory.models import validate_unit_gtin

    with pytest.raises(ValidationError) as caught:
        validate_unit_gtin("19520000000018")
    assert caught.value.code == "case_gtin"


# 9. The route of a session -----------------------------------------------------------------------


def test_the_same_brand_by_another_route_than_last_time_is_flagged(tech, pharm):
    gammagard = brand("Gammagard Liquid", excipient="glycine", route="IV_SC")
    patient = PatientFactory()
    completed_session(patient, gammagard)  # an IV session
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("10"), route=InfusionSession.Route.SC)
    [vial] = stock(gammagard)

    dispense = vial_dispense(session=session, vial=vial, actor=tech)

    [flag] = dispense.flags.all()
    assert flag.kind == BrandSwitchFlag.Kind.ROUTE
    assert flag.differences == [{"field": "route", "from": "IV", "to": "SC"}]
    refused("open_brand_switch_flag", session_complete, session=session, actor=tech)
