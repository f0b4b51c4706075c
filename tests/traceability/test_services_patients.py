from datetime import date
from decimal import Decimal

import pytest

from tests.factories import PatientFactory, UserFactory
from tests.traceability.helpers import refused
from traceability.services import patient_create, patient_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="paul")



def test_a_patient_is_registered_with_history(user):
    patient = patient_create(
        mrn=" MRN-1 ", name="Ann Smith", date_of_birth=date(1980, 5, 1), weight_kg=Decimal("61.5"),
        iga_deficient=True, allergy_notes="latex", actor=user,
    )

    assert patient.mrn == "MRN-1"
    assert patient.iga_deficient
    row = patient.history.first()
    assert row.history_user == user
    assert row.history_change_reason == "patient registered"


def test_a_second_patient_with_the_same_mrn_is_refused(user):
    PatientFactory(mrn="MRN-1")

    refused("duplicate_mrn", patient_create, mrn="MRN-1", name="B", date_of_birth=date(1990, 1, 1), actor=user)


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"mrn": " "}, "mrn_required"),
        ({"name": ""}, "name_required"),
        ({"weight_kg": Decimal("0")}, "invalid_weight"),
        ({"date_of_birth": date(9999, 12, 31)}, "invalid_date_of_birth"),
        ({"date_of_birth": date(1899, 12, 31)}, "invalid_date_of_birth"),
    ],
)
def test_a_patient_with_missing_or_impossible_details_is_refused(fields, code, user):
    kwargs = {"mrn": "MRN-9", "name": "C", "date_of_birth": date(1990, 1, 1), **fields}

    refused(code, patient_create, **kwargs, actor=user)


def test_an_update_names_the_fields_that_changed(user):
    patient = PatientFactory(weight_kg=Decimal("70"))

    patient = patient_update(patient=patient, weight_kg=Decimal("72.0"), name=patient.name, actor=user)

    assert patient.weight_kg == Decimal("72.0")
    row = patient.history.first()
    assert row.history_user == user
    assert row.history_change_reason == "patient updated: weight_kg"


def test_an_update_that_changes_nothing_writes_no_history(user):
    patient = PatientFactory()
    before = patient.history.count()

    patient_update(patient=patient, name=patient.name, actor=user)

    assert patient.history.count() == before


def test_an_update_to_another_patients_mrn_is_refused(user):
    PatientFactory(mrn="MRN-1")
    patient = PatientFactory(mrn="MRN-2")

    refused("duplicate_mrn", patient_update, patient=patient, mrn="MRN-1", actor=user)


def test_an_update_of_an_unknown_field_is_refused(user):
    refused("invalid", patient_update, patient=PatientFactory(), shoe_size=42, actor=user)


def test_an_update_to_a_date_of_birth_in_the_future_is_refused(user):
    patient = PatientFactory()

    refused("invalid_date_of_birth", patient_update, patient=patient, date_of_birth=date(2999, 1, 1), actor=user)
