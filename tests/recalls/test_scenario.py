"""A recall scenario shared by the recall tests: two lots of one brand across three locations and
five patients, with vials returned and re-dispensed, wasted after partial use, wasted from the
shelf and returned to the supplier, plus a lot of another brand that no recall names."""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from inventory.models import Lot, StorageLocation, Vial, local_today
from tests.factories import (
    InfusionSessionFactory,
    LotFactory,
    PatientFactory,
    PresentationFactory,
    ProductFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)
from inventory.services import vial_return_to_supplier, vial_waste
from traceability.models import Dispense, Patient
from traceability.services import dispense_return_to_stock, dispense_waste, vial_dispense


def give(vial: Vial, patient: Patient, *, by, days_ago: int = 0, then: str | None = None, back_to=None) -> Dispense:
    """Dispense `vial` to a new session of `patient` through the dispensing service; `then` is
    "waste" (opened, partly used) or "return" (unopened, back to `back_to`)."""
    session = InfusionSessionFactory(patient=patient, scheduled_date=local_today() - timedelta(days=days_ago))
    dispense = vial_dispense(session=session, vial=vial, actor=by)
    if then == "waste":
        dispense = dispense_waste(dispense=dispense, reason="opened, partly used", actor=by)
    elif then == "return":
        dispense = dispense_return_to_stock(dispense=dispense, location=back_to, reason="infusion postponed", actor=by)
    vial.refresh_from_db()
    return dispense


def stock(presentation, lot, location, serial: str, **fields) -> Vial:
    return VialFactory(presentation=presentation, lot=lot, location=location, serial=serial, **fields)


@dataclass
class Scenario:
    lots: list[Lot]  # the two lots a recall names
    other_lot: Lot  # another brand's lot with the same kind of history, never recalled
    locations: dict[str, StorageLocation]
    vials: dict[str, Vial]
    patients: dict[str, Patient]
    technician: object
    expected_tasks: dict[str, set[str]] = field(default_factory=dict)  # patient key -> vial serials

    def refresh(self) -> "Scenario":
        for obj in [*self.lots, self.other_lot, *self.vials.values()]:
            obj.refresh_from_db()
        return self


def build_scenario() -> Scenario:
    tech = UserFactory(username="tess")
    brand_a = ProductFactory(brand="Privigen")
    brand_b = ProductFactory(brand="Octagam 10%")
    pres_a10 = PresentationFactory(product=brand_a)
    pres_a20 = PresentationFactory(product=brand_a, grams=20)
    pres_b = PresentationFactory(product=brand_b)
    la1 = LotFactory(product=brand_a, lot_number="P100263")
    la2 = LotFactory(product=brand_a, lot_number="P100264", expiry_date=local_today() + timedelta(days=500))
    lb1 = LotFactory(product=brand_b, lot_number="M245B8541")
    loc = {
        "fridge_a": StorageLocationFactory(name="Fridge A", code="FRIDGE-A"),
        "fridge_b": StorageLocationFactory(name="Fridge B", code="FRIDGE-B"),
        "rt": StorageLocationFactory(name="Room-temperature shelf", code="RT-1", kind=StorageLocation.Kind.ROOM_TEMPERATURE),
    }
    p = {key: PatientFactory(name=name, mrn=mrn) for key, name, mrn in [
        ("ann", "Ann Archer", "MRN0001"),
        ("ben", "Ben Baker", "MRN0002"),
        ("cat", "Cat Cole", "MRN0003"),
        ("dan", "Dan Dunn", "MRN0004"),
        ("eve", "Eve Evans", "MRN0005"),
    ]}
    v = {
        # lot P100263, on shelves in two places
        "a1": stock(pres_a10, la1, loc["fridge_a"], "A0001"),
        "a2": stock(pres_a10, la1, loc["fridge_a"], "A0002"),
        "a3": stock(pres_a20, la1, loc["rt"], "A0003"),
        # lot P100263, given to patients
        "a4": stock(pres_a10, la1, loc["fridge_a"], "A0004"),
        "a5": stock(pres_a10, la1, loc["fridge_a"], "A0005"),
        "a6": stock(pres_a10, la1, loc["fridge_a"], "A0006"),
        "a7": stock(pres_a20, la1, loc["rt"], "A0007"),
        "a8": stock(pres_a10, la1, loc["fridge_a"], "A0008"),
        "a9": stock(pres_a10, la1, loc["fridge_a"], "A0009"),
        "a14": stock(pres_a10, la1, loc["fridge_a"], "A0014"),
        # lot P100264
        "b10": stock(pres_a10, la2, loc["fridge_b"], "B0010"),
        "b11": stock(pres_a10, la2, loc["fridge_b"], "B0011"),
        # the other brand's lot: never recalled
        "c12": stock(pres_b, lb1, loc["fridge_b"], "C0012"),
        "c13": stock(pres_b, lb1, loc["fridge_b"], "C0013"),
    }
    give(v["a4"], p["ann"], by=tech, days_ago=40)
    give(v["a5"], p["ann"], by=tech, days_ago=12)
    give(v["b11"], p["ann"], by=tech, days_ago=12)
    # A6: dispensed to Ben, returned unopened, then given to Cat.
    give(v["a6"], p["ben"], by=tech, days_ago=20, then="return", back_to=loc["fridge_a"])
    give(v["a6"], p["cat"], by=tech, days_ago=10)
    # A7: opened for Dan, partly used, the rest wasted.
    give(v["a7"], p["dan"], by=tech, days_ago=5, then="waste")
    # A14: dispensed to Ben and returned unopened to Fridge A: on hand again.
    give(v["a14"], p["ben"], by=tech, days_ago=3, then="return", back_to=loc["fridge_a"])
    give(v["c12"], p["eve"], by=tech, days_ago=2)
    vial_waste(vial=v["a8"], reason="dropped", actor=tech)
    vial_return_to_supplier(vial=v["a9"], reason="damaged carton", actor=tech)
    scenario = Scenario(
        lots=[la1, la2], other_lot=lb1, locations=loc, vials=v, patients=p, technician=tech,
        expected_tasks={
            "ann": {"A0004", "A0005", "B0011"},
            "ben": {"A0006", "A0014"},
            "cat": {"A0006"},
            "dan": {"A0007"},
        },
    )
    return scenario.refresh()


@pytest.mark.django_db
def test_the_scenario_holds_what_the_recall_tests_rely_on():
    s = build_scenario()
    on_hand = {k for k, vial in s.vials.items() if vial.status == Vial.Status.IN_STOCK}
    assert on_hand == {"a1", "a2", "a3", "a14", "b10", "c13"}
    assert Dispense.objects.filter(vial=s.vials["a6"]).count() == 2
    assert all(lot.status == Lot.Status.RELEASED for lot in [*s.lots, s.other_lot])
