import pytest
from django.db import IntegrityError, transaction

from tests.factories import DispenseFactory, InfusionSessionFactory
from traceability.models import Dispense

pytestmark = pytest.mark.django_db


def test_the_database_refuses_a_second_live_dispense_of_a_vial():
    first = DispenseFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Dispense.objects.create(
            session=InfusionSessionFactory(),
            vial=first.vial,
            product=first.product,
            grams=first.grams,
            dispensed_by=first.dispensed_by,
        )

    assert Dispense.objects.filter(vial=first.vial).count() == 1


def test_the_database_refuses_a_live_dispense_next_to_a_wasted_one():
    first = DispenseFactory(status=Dispense.Status.WASTED)

    with pytest.raises(IntegrityError), transaction.atomic():
        DispenseFactory(vial=first.vial)


def test_the_database_allows_a_new_dispense_of_a_vial_returned_unopened():
    first = DispenseFactory(status=Dispense.Status.RETURNED_TO_STOCK)

    DispenseFactory(vial=first.vial)

    assert Dispense.objects.filter(vial=first.vial).count() == 2
