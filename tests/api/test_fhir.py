"""FHIR R4 for the EHR: every resource validates with fhir.resources' R4B models and carries the
lot, expiry, serial and times back out as they went in; searchset Bundles as application/fhir+json;
Bulk Data NDJSON from manage.py export_fhir."""

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.patient import Patient as FhirPatient
from rest_framework.test import APIClient

from inventory.models import local_today
from tests.api.helpers import expected_status
from tests.factories import AuthorisationFactory, LotFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, completed_session, presentation, stock
from traceability.infusion import administration_finish, administration_pause, administration_rate, administration_resume, administration_start
from traceability.models import BrandSwitchFlag, Dispense
from traceability.services import flag_acknowledge, reaction_record, session_create, vial_dispense

pytestmark = pytest.mark.django_db

MODELS = {"Patient": FhirPatient, "MedicationDispense": MedicationDispense,
          "MedicationAdministration": MedicationAdministration, "AdverseEvent": AdverseEvent}


def _step() -> timedelta:
    """The infusion's time step: an hour, or less just after local midnight, so every moment of it
    (dispensed three steps ago, finished a third of a step ago) falls on today's local date, where
    the searches by date look."""
    now = timezone.localtime()
    since_midnight = (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    # Whole multiples of 12 s: a half, three quarters and five thirds of a step stay whole seconds.
    return timedelta(seconds=max(12, min(3600, since_midnight / 4) // 12 * 12))


@pytest.fixture
def infusion():
    """Maria Lopez, switched from Gammagard to Privigen (acknowledged: shortage), given two 10 g
    vials of lot PRV-2211 (expiry 2027-06-30) at 30 then 60 mL/h, one part infused, with a headache."""
    tech = UserFactory(username="alice", role="technician", first_name="Alice", last_name="Tech")
    pharmacist = UserFactory(username="paul", role="pharmacist")
    nurse = UserFactory(username="nina", role="nurse", first_name="Nina", last_name="Nurse")
    maria = PatientFactory(name="Maria Lopez", mrn="MRN-42", weight_kg=Decimal("60.0"))
    earlier = completed_session(maria, brand("Gammagard Liquid"), days_ago=28)
    Dispense.objects.filter(session=earlier).update(dispensed_at=timezone.now() - timedelta(days=28))
    privigen = brand("Privigen")
    pres = presentation(privigen, 10)
    pres.ndc = "44206-0436-90"
    pres.save()
    lot = LotFactory(product=privigen, lot_number="PRV-2211", expiry_date="2027-06-30")
    session = session_create(patient=maria, scheduled_date=local_today(), indication="cidp",
                             ordered_grams=Decimal("20"), actor=tech,
                             authorisation=AuthorisationFactory(patient=maria, indication="cidp"))
    first, second = (vial_dispense(session=session, vial=v, actor=tech) for v in stock(privigen, 10, 2, lot=lot))
    flag_acknowledge(flag=BrandSwitchFlag.objects.get(session=session), reason="shortage", actor=pharmacist)
    step = _step()
    Dispense.objects.filter(session=session).update(dispensed_at=timezone.now() - 3 * step)
    start = (timezone.now() - 2 * step).replace(microsecond=0)
    administration = administration_start(session=session, actor=nurse, rate_ml_per_h=Decimal("30"), at=start,
                                          premedication="paracetamol 1 g PO")
    administration_rate(administration=administration, actor=nurse, rate_ml_per_h=Decimal("60"),
                        at=start + step / 2)
    onset = start + step * 3 / 4
    reaction = reaction_record(session=session, type="headache", severity="moderate", onset_at=onset, actor=nurse)
    administration_pause(administration=administration, actor=nurse, reason="headache", at=onset)
    administration_resume(administration=administration, actor=nurse, rate_ml_per_h=Decimal("30"),
                          at=start + step)
    end = start + step * 5 / 3
    administration_finish(administration=administration, actor=nurse, at=end, fates=[
        {"dispense": first.pk, "fate": "infused"},
        {"dispense": second.pk, "fate": "partial", "volume_left_ml": Decimal("25")},
    ])
    return {"patient": maria, "session": session, "dispenses": (first, second), "administration": administration,
            "reaction": reaction, "start": start, "end": end, "onset": onset}


@pytest.fixture
def fhir_client():
    client = APIClient()
    client.force_authenticate(UserFactory(username="ehr", role="nurse"))
    return client


def bundle(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json"
    body = json.loads(response.content)
    parsed = Bundle.model_validate(body)
    assert parsed.type == "searchset"
    return body, parsed


def resources_of(client, kind, query=""):
    body, _ = bundle(client, f"/api/fhir/{kind}?{query}")
    resources = [entry["resource"] for entry in body["entry"]]
    return [MODELS[kind].model_validate(r) for r in resources], body


def test_a_dispense_round_trips_the_lot_expiry_serial_ndc_and_time_with_the_brand_switch(fhir_client, infusion):
    first, _ = infusion["dispenses"]
    dispenses, body = resources_of(fhir_client, "MedicationDispense", f"patient=MRN-42&date={local_today():%Y-%m-%d}")

    assert body["total"] == 2
    dispense = next(d for d in dispenses if d.id == str(first.pk))
    medication = dispense.contained[0]
    assert medication.batch.lotNumber == "PRV-2211"
    assert medication.batch.expirationDate.isoformat() == "2027-06-30"
    assert medication.identifier[0].value == first.vial.serial
    assert {c.system: c.code for c in medication.code.coding}["http://hl7.org/fhir/sid/ndc"] == "44206-0436-90"
    assert dispense.medicationReference.reference == "#med"
    assert dispense.whenHandedOver == Dispense.objects.get(pk=first.pk).dispensed_at
    assert dispense.subject.reference == f"Patient/{infusion['patient'].pk}"
    assert dispense.subject.identifier.value == "MRN-42"
    assert dispense.performer[0].actor.display == "Alice Tech"
    assert dispense.quantity.value == 1
    assert dispense.substitution.wasSubstituted is True
    assert dispense.substitution.reason[0].coding[0].code == "OS"
    assert "Gammagard Liquid → Privigen" in dispense.substitution.type.text


def test_an_administration_round_trips_its_period_dose_rate_and_vial(fhir_client, infusion):
    first, second = infusion["dispenses"]
    administrations, _ = resources_of(fhir_client, "MedicationAdministration", "patient=MRN-42")

    by_dispense = {a.supportingInformation[0].reference: a for a in administrations}
    whole = by_dispense[f"MedicationDispense/{first.pk}"]
    part = by_dispense[f"MedicationDispense/{second.pk}"]
    assert whole.status == "completed"
    assert whole.effectivePeriod.start == infusion["start"] and whole.effectivePeriod.end == infusion["end"]
    assert whole.contained[0].batch.lotNumber == "PRV-2211"
    assert whole.contained[0].identifier[0].value == first.vial.serial
    assert whole.dosage.dose.value == Decimal("10") and whole.dosage.dose.code == "g"
    assert part.dosage.dose.value == Decimal("7.50")  # 75 of its 100 mL
    assert whole.dosage.rateQuantity.value == Decimal("60") and whole.dosage.rateQuantity.code == "mL/h"
    assert "60 mL/h (1 mL/kg/h)" in whole.dosage.text and "paused: headache" in whole.dosage.text
    assert [p.actor.display for p in whole.performer] == ["Nina Nurse"]
    assert any("paracetamol" in note.text for note in whole.note)


def test_an_adverse_event_points_to_the_vials_given_with_its_onset_and_rate(fhir_client, infusion):
    (event,), _ = resources_of(fhir_client, "AdverseEvent", "patient=MRN-42")

    assert event.date == infusion["onset"]
    assert event.event.text == "Headache"
    assert event.severity.coding[0].code == "moderate"
    assert event.seriousness.coding[0].code == "non-serious"
    suspects = {s.instance.reference for s in event.suspectEntity}
    contained = {f"#{m.id}": m for m in event.contained}
    assert suspects == set(contained)
    assert {m.batch.lotNumber for m in contained.values()} == {"PRV-2211"}
    assert {m.identifier[0].value for m in contained.values()} == {d.vial.serial for d in infusion["dispenses"]}
    assert event.extension[0].valueQuantity.value == Decimal("60")


def test_the_patient_is_found_by_mrn_and_by_reference(fhir_client, infusion):
    (patient,), _ = resources_of(fhir_client, "Patient", "identifier=urn:ivig-trace:mrn|MRN-42")
    assert patient.identifier[0].value == "MRN-42" and patient.name[0].text == "Maria Lopez"
    assert patient.birthDate == infusion["patient"].date_of_birth
    (same,), _ = resources_of(fhir_client, "Patient", f"patient=Patient/{infusion['patient'].pk}")
    assert same.id == patient.id


def test_dates_and_patients_narrow_the_search(fhir_client, infusion):
    today = local_today()
    assert resources_of(fhir_client, "MedicationDispense", f"date=gt{today:%Y-%m-%d}")[1]["total"] == 0
    assert resources_of(fhir_client, "MedicationDispense", f"date=ge{today:%Y-%m-%d}&date=le{today:%Y-%m-%d}")[1]["total"] == 2
    assert resources_of(fhir_client, "MedicationDispense", "patient=NOBODY")[1]["total"] == 0
    # The earlier Gammagard infusion is the patient's too.
    assert resources_of(fhir_client, "MedicationDispense", f"date=lt{today:%Y-%m-%d}")[1]["total"] == 1
    response = fhir_client.get("/api/fhir/MedicationDispense?date=ge2026-13-45")
    assert (response.status_code, json.loads(response.content)["code"]) == (400, "invalid_date")
    assert fhir_client.get("/api/fhir/Observation").status_code == 404


@pytest.mark.parametrize("url, status", [("/api/fhir/Observation", 404), ("/api/fhir/Patient?_count=x", 400)])
def test_a_refusal_is_the_documented_error_body_not_fhir_json(fhir_client, url, status):
    response = fhir_client.get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) >= {"code", "detail"}
    assert APIClient().get(url)["Content-Type"] == "application/json"  # and the 401 before it


def test_a_search_pages_with_count_and_offset(fhir_client, infusion):
    body, _ = bundle(fhir_client, "/api/fhir/MedicationDispense?_count=1")
    assert body["total"] == 3 and len(body["entry"]) == 1
    next_url = next(link["url"] for link in body["link"] if link["relation"] == "next")
    assert "_offset=1" in next_url


@pytest.mark.parametrize("role", ["technician", "pharmacist", "auditor", "recall_coordinator", "nurse", "none", None])
def test_fhir_is_read_by_pharmacists_auditors_and_nurses(role, client_for):
    response = client_for(role).get("/api/fhir/Patient")
    assert response.status_code == expected_status(role, {"pharmacist", "auditor", "nurse"}, 200)


def test_export_fhir_writes_bulk_data_ndjson_per_resource_type_with_a_manifest(tmp_path, infusion):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_fhir", "--since", f"{local_today():%Y-%m-%d}", "-o", str(tmp_path), stdout=out, stderr=err)

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    counts = {item["type"]: item["count"] for item in manifest["output"]}
    assert counts == {"MedicationDispense": 2, "MedicationAdministration": 2, "AdverseEvent": 1, "Patient": 1}
    for kind, model in MODELS.items():
        lines = (tmp_path / f"{kind}.ndjson").read_text().splitlines()
        assert len(lines) == counts[kind]
        for line in lines:
            model.model_validate_json(line)
    dispense = MedicationDispense.model_validate_json((tmp_path / "MedicationDispense.ndjson").read_text().splitlines()[0])
    assert dispense.contained[0].batch.lotNumber == "PRV-2211"
    assert "MedicationDispense.ndjson: 2 resource(s)" in out.getvalue()


def test_the_fhir_search_costs_the_same_queries_for_few_or_many(fhir_client, infusion, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for kind in MODELS:
        fhir_client.get(f"/api/fhir/{kind}")
        with CaptureQueriesContext(connection) as few:
            fhir_client.get(f"/api/fhir/{kind}")
        counts[kind] = len(few.captured_queries)
    for _ in range(3):
        session = completed_session(PatientFactory(), brand("Privigen"))
        reaction_record(session=session, type="nausea", severity="mild", onset_at=timezone.now(), actor=UserFactory())
    for kind in MODELS:
        with django_assert_max_num_queries(counts[kind]):
            fhir_client.get(f"/api/fhir/{kind}")
