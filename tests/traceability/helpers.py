"""Builders shared by the traceability service and API tests."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ApplicationError
from inventory.models import Lot, Presentation, Product, StorageLocation, Vial, local_today
from tests.factories import (
    DispenseFactory,
    InfusionSessionFactory,
    LotFactory,
    PresentationFactory,
    ProductFactory,
    StorageLocationFactory,
    VialFactory,
)
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient


def presentation(product: Product, grams) -> Presentation:
    found = Presentation.objects.filter(product=product, grams=Decimal(str(grams))).first()
    return found or PresentationFactory(product=product, grams=Decimal(str(grams)))


def fridge() -> StorageLocation:
    return StorageLocationFactory(code="FRIDGE-1", name="Main fridge", kind=StorageLocation.Kind.REFRIGERATOR)


def stock(product: Product, grams=10, n: int = 1, *, lot: Lot | None = None, days: int | None = None, **kwargs) -> list[Vial]:
    """n in-stock vials of `grams` of the product, in one lot (new unless given), in the main fridge.
    `days`: beyond-use date that many days from today (the lot expiry otherwise)."""
    lot = lot or LotFactory(product=product)
    fields = {"location": fridge(), **kwargs}
    if days is not None:
        fields["beyond_use_date"] = local_today() + timedelta(days=days)
    return [VialFactory(presentation=presentation(product, grams), lot=lot, **fields) for _ in range(n)]


def completed_session(patient: Patient, *products: Product, days_ago: int = 28, user=None) -> InfusionSession:
    """A completed past infusion of the patient, one 10 g vial of each product given."""
    session = InfusionSessionFactory(
        patient=patient,
        scheduled_date=local_today() - timedelta(days=days_ago),
        status=InfusionSession.Status.COMPLETED,
        completed_at=timezone.now() - timedelta(days=days_ago),
    )
    for product in products:
        vial = VialFactory(
            presentation=presentation(product, 10), status=Vial.Status.DISPENSED, location=None
        )
        fields = {"dispensed_by": user} if user else {}
        DispenseFactory(session=session, vial=vial, **fields)
    session.grams_dispensed = Decimal(10 * len(products))
    session.save()
    return session


def state() -> dict:
    """Everything a refused action must leave as it was: rows, statuses and history rows."""
    return {
        "vials": list(Vial.objects.order_by("pk").values_list("pk", "status", "location_id")),
        "sessions": list(InfusionSession.objects.order_by("pk").values_list("pk", "status", "grams_dispensed")),
        "dispenses": list(Dispense.objects.order_by("pk").values_list("pk", "status")),
        "flags": list(BrandSwitchFlag.objects.order_by("pk").values_list("pk", "status")),
        "reactions": AdverseReaction.objects.count(),
        "patients": list(Patient.objects.order_by("pk").values_list("pk", "mrn", "weight_kg")),
        "history": [
            model.history.count() for model in (Vial, InfusionSession, Dispense, BrandSwitchFlag, AdverseReaction, Patient)
        ],
    }


def brand(name: str, **fields) -> Product:
    return ProductFactory(brand=name, **fields)


def refused(code: str, action, **kwargs):
    """Call a service that must refuse with `code`, and prove it changed nothing."""
    before = state()
    with pytest.raises(ApplicationError) as caught:
        action(**kwargs)
    assert caught.value.code == code
    assert state() == before
    return caught.value
