"""A small audited world (two lots, two patients, a dispense, a dose change, a flag, a reaction, a
recall) and helpers to read an exported workbook back with openpyxl."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from openpyxl import load_workbook

from core.history import audited_create, audited_save
from inventory.models import Lot, Vial
from tests.factories import (
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    PresentationFactory,
    ProductFactory,
    RecallFactory,
    StorageLocationFactory,
    UserFactory,
)
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense
from recalls.models import NotificationTask, RecallLot


@dataclass
class World:
    technician: object
    pharmacist: object
    lot: Lot
    other_lot: Lot
    vial: Vial
    other_vial: Vial
    patient: object
    other_patient: object
    session: object
    other_session: object
    dispense: Dispense
    other_dispense: Dispense
    flag: BrandSwitchFlag
    reaction: AdverseReaction
    recall: object
    notification: NotificationTask


def build_world() -> World:
    tech = UserFactory(username="tina", role="technician", first_name="Tina", last_name="Tech")
    pharm = UserFactory(username="phil", role="pharmacist", first_name="Phil", last_name="Pharm")
    product = ProductFactory(brand="Privigen")
    other_product = ProductFactory(brand="Gammagard Liquid")
    presentation = PresentationFactory(product=product, grams=Decimal("10"))
    other_presentation = PresentationFactory(product=other_product, grams=Decimal("20"))
    fridge = StorageLocationFactory(name="Fridge A", code="FR-A")
    room = StorageLocationFactory(name="Room shelf", code="RT-1", kind="room_temperature")

    lot = audited_create(
        Lot, actor=tech, reason="receive", product=product, lot_number="P100263",
        expiry_date=LotFactory.build().expiry_date,
    )
    other_lot = audited_create(
        Lot, actor=tech, reason="receive", product=other_product, lot_number="G200001",
        expiry_date=LotFactory.build().expiry_date,
    )
    vial = audited_create(
        Vial, actor=tech, reason="receive", presentation=presentation, lot=lot, serial="4711",
        location=fridge, beyond_use_date=lot.expiry_date,
    )
    other_vial = audited_create(
        Vial, actor=tech, reason="receive", presentation=other_presentation, lot=other_lot, serial="9000",
        location=fridge, beyond_use_date=other_lot.expiry_date,
    )
    vial.location = room
    audited_save(vial, actor=tech, reason="move to RT-1")

    patient = PatientFactory(mrn="MRN-A", name="Ann Able")
    other_patient = PatientFactory(mrn="MRN-B", name="Bob Baker")
    session = InfusionSessionFactory(patient=patient, ordered_grams=Decimal("30"))
    other_session = InfusionSessionFactory(patient=other_patient, ordered_grams=Decimal("40"))
    session.ordered_grams = Decimal("35")
    audited_save(session, actor=pharm, reason="dose corrected")

    dispense = _dispense(session, vial, tech)
    other_dispense = _dispense(other_session, other_vial, tech)
    flag = audited_create(
        BrandSwitchFlag, actor=tech, reason=f"dispense {dispense.pk}", session=session, kind="switch",
        from_product=other_product, to_product=product, raised_by=dispense, differences=["excipient"],
    )
    reaction = audited_create(
        AdverseReaction, actor=pharm, reason="reaction recorded", session=session, type="headache",
        severity="mild", onset_at=timezone.make_aware(datetime(2025, 3, 1, 15, 30)), recorded_by=pharm,
    )
    recall = RecallFactory(reference="FDA-2025-12", created_by=pharm)
    audited_create(RecallLot, actor=pharm, reason="recall FDA-2025-12", recall=recall, lot=lot)
    notification = audited_create(
        NotificationTask, actor=pharm, reason="lookback", recall=recall, patient=patient
    )
    return World(
        tech, pharm, lot, other_lot, vial, other_vial, patient, other_patient, session, other_session,
        dispense, other_dispense, flag, reaction, recall, notification,
    )


def _dispense(session, vial, actor) -> Dispense:
    vial.status = Vial.Status.DISPENSED
    vial.location = None
    audited_save(vial, actor=actor, reason=f"dispense to session {session.pk}")
    return audited_create(
        Dispense, actor=actor, reason=f"dispense to session {session.pk}", session=session, vial=vial,
        product=vial.presentation.product, grams=vial.presentation.grams, dispensed_by=actor,
    )


def read_workbook(source) -> dict[str, list[dict]]:
    """Every sheet as a list of rows keyed by header (the Summary sheet as raw rows)."""
    book = load_workbook(source)
    sheets = {}
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        if sheet.title == "Summary" or not rows:
            sheets[sheet.title] = rows
            continue
        headers = rows[0]
        sheets[sheet.title] = [dict(zip(headers, row)) for row in rows[1:]]
    return sheets


def summary_counts(summary_rows: list) -> dict[str, int]:
    rows = iter(summary_rows)
    for row in rows:
        if row and row[0] == "Sheet":
            break
    counts = {}
    for row in rows:
        if not row or row[0] in (None, "Total history records"):
            break
        counts[row[0]] = row[1]
    return counts


def summary_value(summary_rows: list, name: str):
    return next((row[1] for row in summary_rows if row and row[0] == name), None)
