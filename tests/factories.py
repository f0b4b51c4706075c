"""factory_boy factories for every model. Defaults are valid, in-date, in-stock stock."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from inventory.models import Lot, Manufacturer, Presentation, Product, StorageLocation, Vial, local_today
from traceability.models import (
    AdverseReaction,
    BrandSwitchFlag,
    Dispense,
    InfusionSession,
    Patient,
    TreatmentAuthorisation,
)
from recalls.models import NotificationTask, Recall, RecallLot


def gtin_with_check_digit(body13: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body13)))
    return body13 + str((10 - total % 10) % 10)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-secret-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            # Transactional tests flush the groups the roles migration made; make them again.
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        if create:
            self.save()


class ManufacturerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Manufacturer
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Maker {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("brand",)

    brand = factory.Sequence(lambda n: f"Brand {n}")
    manufacturer = factory.SubFactory(ManufacturerFactory)
    route = Product.Route.IV
    concentration_pct = Decimal("10")
    excipient = "L-proline"
    iga_ug_per_ml = Decimal("25")
    room_temp_allowance_days = 180
    may_return_to_fridge = False


class PresentationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Presentation

    product = factory.SubFactory(ProductFactory)
    # 0952… is the GS1 prefix reserved for demonstrations and examples.
    gtin = factory.Sequence(lambda n: gtin_with_check_digit(f"0952{n:09d}"))
    grams = Decimal("10")
    volume_ml = Decimal("100")


class LotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lot

    product = factory.SubFactory(ProductFactory)
    lot_number = factory.Sequence(lambda n: f"L{n:06d}")
    expiry_date = factory.LazyFunction(lambda: local_today() + timedelta(days=365))
    status = Lot.Status.RELEASED


class StorageLocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StorageLocation
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"Fridge {n}")
    code = factory.Sequence(lambda n: f"LOC-{n:04d}")
    kind = StorageLocation.Kind.REFRIGERATOR


class VialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vial

    presentation = factory.SubFactory(PresentationFactory)
    lot = factory.SubFactory(LotFactory, product=factory.SelfAttribute("..presentation.product"))
    serial = factory.Sequence(lambda n: f"SN{n:08d}")
    location = factory.SubFactory(StorageLocationFactory)
    status = Vial.Status.IN_STOCK
    beyond_use_date = factory.LazyAttribute(lambda o: o.lot.expiry_date)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN{n:07d}")
    name = factory.Sequence(lambda n: f"Patient {n}")
    date_of_birth = factory.LazyFunction(lambda: local_today().replace(year=local_today().year - 40, day=1))
    weight_kg = Decimal("70.0")


class AuthorisationFactory(factory.django.DjangoModelFactory):
    """A current authorisation for any brand of the route, whose dose, interval, number of doses and
    dates are wide enough not to be what a test is about; tests of the authorisation checks narrow
    them."""

    class Meta:
        model = TreatmentAuthorisation

    patient = factory.SubFactory(PatientFactory)
    indication = InfusionSession.Indication.PID
    route = InfusionSession.Route.IV
    product = None
    dose_grams = Decimal("1000")
    dose_g_per_kg = None
    interval_days = 0
    doses = 100
    valid_from = factory.LazyFunction(lambda: local_today() - timedelta(days=5 * 366))
    valid_until = factory.LazyFunction(lambda: local_today() + timedelta(days=3 * 366))
    prescriber = "Dr Iris Immunologist"
    approver = "Immunoglobulin assessment panel"
    payer_reference = factory.Sequence(lambda n: f"AUTH-{n:06d}")
    created_by = factory.SubFactory(UserFactory)


class InfusionSessionFactory(factory.django.DjangoModelFactory):
    """A session under an authorisation of its own (AuthorisationFactory), as every session must be
    dispensed against one; `authorisation=None` makes a session without."""

    class Meta:
        model = InfusionSession

    patient = factory.SubFactory(PatientFactory)
    scheduled_date = factory.LazyFunction(local_today)
    site = "Infusion centre"
    indication = InfusionSession.Indication.PID
    route = InfusionSession.Route.IV
    authorisation = factory.SubFactory(
        AuthorisationFactory, patient=factory.SelfAttribute("..patient"),
        indication=factory.SelfAttribute("..indication"), route=factory.SelfAttribute("..route"),
    )
    ordered_grams = Decimal("30")
    status = InfusionSession.Status.SCHEDULED


class DispenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dispense

    session = factory.SubFactory(InfusionSessionFactory)
    vial = factory.SubFactory(VialFactory, status=Vial.Status.DISPENSED, location=None)
    product = factory.SelfAttribute("vial.presentation.product")
    grams = factory.SelfAttribute("vial.presentation.grams")
    dispensed_by = factory.SubFactory(UserFactory)
    dispensed_at = factory.LazyFunction(timezone.now)


class BrandSwitchFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrandSwitchFlag

    session = factory.SubFactory(InfusionSessionFactory)
    kind = BrandSwitchFlag.Kind.SWITCH
    from_product = factory.SubFactory(ProductFactory)
    to_product = factory.SubFactory(ProductFactory)
    differences = factory.LazyFunction(list)


class AdverseReactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AdverseReaction

    session = factory.SubFactory(InfusionSessionFactory)
    type = AdverseReaction.Type.HEADACHE
    severity = AdverseReaction.Severity.MILD
    onset_at = factory.LazyFunction(timezone.now)
    recorded_by = factory.SubFactory(UserFactory)


class RecallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recall

    reference = factory.Sequence(lambda n: f"RCL-{n:05d}")
    source = Recall.Source.MANUFACTURER
    recall_class = Recall.RecallClass.II
    reason = "Increased reports of hypersensitivity reactions"
    recall_date = factory.LazyFunction(local_today)
    created_by = factory.SubFactory(UserFactory)


class RecallLotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecallLot

    recall = factory.SubFactory(RecallFactory)
    lot = factory.SubFactory(LotFactory)


class NotificationTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationTask

    recall = factory.SubFactory(RecallFactory)
    patient = factory.SubFactory(PatientFactory)
