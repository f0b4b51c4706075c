"""FHIR R4 for the hospital's EHR: Patient (by MRN), MedicationDispense, MedicationAdministration
and AdverseEvent, each medication a contained Medication with the NDC (and GTIN), the lot and
expiry as its batch and the vial's serial as its identifier.

Every resource is built as plain data and validated by fhir.resources' R4B models (R4B keeps R4's
shape for these resources), so what leaves here is valid FHIR or nothing. `GET /api/fhir/{type}`
answers a searchset Bundle as application/fhir+json; `manage.py export_fhir` writes Bulk Data
NDJSON with the same builders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.patient import Patient as FhirPatient
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from api.access import record_patient_access
from api.permissions import capability_permission
from core.errors import InvalidInput, NotFound
from core.text import grams_text
from traceability.models import (
    AdverseReaction,
    Administration,
    AdministrationStep,
    BrandSwitchFlag,
    Dispense,
    InfusionSession,
    Patient,
    VialFate,
)
from traceability.selectors import (
    administrations_for_fhir,
    dispenses_for_fhir,
    patient_queryset,
    reactions_for_fhir,
)

FHIR_JSON = "application/fhir+json"
UCUM = "http://unitsofmeasure.org"
NDC = "http://hl7.org/fhir/sid/ndc"
GTIN = "https://www.gs1.org/gtin"
USER_SYSTEM = "urn:ivig-trace:user"
SNOMED = "http://snomed.info/sct"
ROUTES = {
    InfusionSession.Route.IV: {"system": SNOMED, "code": "47625008", "display": "Intravenous route"},
    InfusionSession.Route.SC: {"system": SNOMED, "code": "34206005", "display": "Subcutaneous route"},
}
# Why a brand was switched, in HL7's substitution reasons where one fits (v3 ActReason).
SUBSTITUTION_REASONS = {
    BrandSwitchFlag.Reason.SHORTAGE: ("OS", "out of stock"),
    BrandSwitchFlag.Reason.FORMULARY: ("FP", "formulary policy"),
}
ADMINISTRATION_STATUS = {
    Administration.Status.RUNNING: "in-progress",
    Administration.Status.PAUSED: "on-hold",
    Administration.Status.FINISHED: "completed",
    Administration.Status.STOPPED: "stopped",
}
SEVERITY = {"mild": "mild", "moderate": "moderate", "severe": "severe", "life_threatening": "severe"}
SERIOUS = {"severe", "life_threatening"}
RATE_AT_ONSET = "urn:ivig-trace:fhir:StructureDefinition/rate-at-onset"

RESOURCE_TYPES = ("Patient", "MedicationDispense", "MedicationAdministration", "AdverseEvent")


def _valid(model, data: dict) -> dict:
    """The resource, once fhir.resources' model has read it without complaint (a ValidationError
    here is a bug, not input). The data built here is returned, not the model's dump of it: the
    dump costs more than the check, and says the same."""
    model.model_validate(data)
    return data


def json_default(value):
    """FHIR decimals are JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _instant(value: datetime) -> str:
    # FHIR dateTimes carry their offset: the site's local time, as the nurse saw it.
    return timezone.localtime(value).isoformat()


def _user(user) -> dict:
    name = user.get_full_name() or user.get_username()
    return {"identifier": {"system": USER_SYSTEM, "value": user.get_username()}, "display": name}


def mrn_identifier(patient: Patient) -> dict:
    return {
        "use": "usual",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        "system": settings.FHIR_MRN_SYSTEM,
        "value": patient.mrn,
    }


def patient_reference(patient: Patient) -> dict:
    return {"reference": f"Patient/{patient.pk}", "identifier": mrn_identifier(patient), "display": patient.name}


def patient_resource(patient: Patient) -> dict:
    return _valid(FhirPatient, {
        "resourceType": "Patient",
        "id": str(patient.pk),
        "identifier": [mrn_identifier(patient)],
        "name": [{"text": patient.name}],
        "birthDate": patient.date_of_birth.isoformat(),
    })


def medication(dispense: Dispense, *, id: str = "med") -> dict:
    """The vial as a contained Medication: NDC (as printed) and GTIN, the lot and expiry as its
    batch, the serial as its identifier (the GS1 serial of that GTIN, or our own for unserialised
    stock)."""
    vial = dispense.vial
    presentation, lot = vial.presentation, vial.lot
    product = presentation.product
    coding = []
    if presentation.ndc:
        coding.append({"system": NDC, "code": presentation.ndc, "display": product.brand})
    coding.append({"system": GTIN, "code": presentation.gtin})
    serial_system = ("urn:ivig-trace:internal-serial" if vial.serial_is_internal
                     else f"https://id.gs1.org/01/{presentation.gtin}/21")
    return {
        "resourceType": "Medication",
        "id": id,
        "identifier": [{"use": "official", "type": {"text": "serial number"}, "system": serial_system,
                        "value": vial.serial}],
        "code": {"coding": coding, "text": f"{product.brand} {grams_text(presentation.grams)} g"},
        "manufacturer": {"display": product.manufacturer.name},
        "amount": {"numerator": {"value": presentation.grams, "unit": "g", "system": UCUM, "code": "g"},
                   "denominator": {"value": 1, "unit": "vial"}},
        "batch": {"lotNumber": lot.lot_number, "expirationDate": lot.expiry_date.isoformat()},
    }


def _substitution(dispense: Dispense) -> dict | None:
    switch = next((f for f in dispense.flags.all()
                   if f.kind == BrandSwitchFlag.Kind.SWITCH and f.status != BrandSwitchFlag.Status.WITHDRAWN), None)
    if switch is None:
        return None
    substitution = {
        "wasSubstituted": True,
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution",
                             "code": "TE", "display": "therapeutic alternative"}],
                 "text": f"brand switch {switch.from_product.brand} → {switch.to_product.brand}"},
    }
    if switch.status == BrandSwitchFlag.Status.ACKNOWLEDGED:
        reason = {"text": switch.get_reason_display() + (f": {switch.reason_text}" if switch.reason_text else "")}
        if switch.reason in SUBSTITUTION_REASONS:
            code, display = SUBSTITUTION_REASONS[switch.reason]
            reason["coding"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": code,
                                 "display": display}]
        substitution["reason"] = [reason]
        substitution["responsibleParty"] = [_user(switch.acknowledged_by)]
    else:
        substitution["reason"] = [{"text": "awaiting a pharmacist's review"}]
    return substitution


def dispense_resource(dispense: Dispense) -> dict:
    data = {
        "resourceType": "MedicationDispense",
        "id": str(dispense.pk),
        "contained": [medication(dispense)],
        "identifier": [{"system": "urn:ivig-trace:dispense", "value": str(dispense.pk)}],
        # Returned unopened: handed over, then taken back; the vial was not given.
        "status": "stopped" if dispense.status == Dispense.Status.RETURNED_TO_STOCK else "completed",
        "medicationReference": {"reference": "#med"},
        "subject": patient_reference(dispense.session.patient),
        "performer": [{"actor": _user(dispense.dispensed_by)}],
        "quantity": {"value": 1, "unit": "vial",
                     "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm", "code": "VIAL"},
        "whenHandedOver": _instant(dispense.dispensed_at),
    }
    if dispense.closed_at is not None:
        data["note"] = [{"text": f"{dispense.get_status_display()}: {dispense.closed_reason}"}]
    substitution = _substitution(dispense)
    if substitution is not None:
        data["substitution"] = substitution
    return _valid(MedicationDispense, data)


def _rate_text(step: AdministrationStep) -> str:
    when = f"{timezone.localtime(step.at):%H:%M}"
    if step.kind in AdministrationStep.RATED:
        per_kg = f" ({step.rate_ml_per_kg_per_h.normalize():f} mL/kg/h)" if step.rate_ml_per_kg_per_h is not None else ""
        return f"{when} {step.get_kind_display()} {grams_text(step.rate_ml_per_h)} mL/h{per_kg}"
    return f"{when} {step.get_kind_display()}" + (f": {step.reason}" if step.reason else "")


def _infused_grams(dispense: Dispense, fate: VialFate | None) -> Decimal | None:
    grams = dispense.vial.presentation.grams
    if fate is None or fate.fate == VialFate.Fate.INFUSED:
        return grams
    volume = dispense.vial.presentation.volume_ml
    if fate.fate == VialFate.Fate.PARTIAL and volume:
        return (grams * (volume - fate.volume_left_ml) / volume).quantize(Decimal("0.01"))
    return None


def administration_resources(administration: Administration) -> list[dict]:
    """One MedicationAdministration per vial given in the infusion (its Medication has one batch):
    the infusion's period, the nurses, the dose from that vial and the highest rate run; every
    step in the dosage text. A vial not opened was not administered and is left out."""
    session = administration.session
    steps = list(administration.steps.all())
    fates = {fate.dispense_id: fate for fate in administration.fates.all()}
    rates = [s.rate_ml_per_h for s in steps if s.kind in AdministrationStep.RATED]
    nurses = {}
    for step in steps:
        nurses.setdefault(step.recorded_by_id, step.recorded_by)
    period = {"start": _instant(administration.started_at)}
    if administration.ended_at:
        period["end"] = _instant(administration.ended_at)
    notes = []
    if administration.premedication:
        notes.append({"text": f"Premedication: {administration.premedication}"})
    resources = []
    for dispense in session.given_dispenses:
        fate = fates.get(dispense.pk)
        if fate is not None and fate.fate == VialFate.Fate.NOT_OPENED:
            continue
        dosage = {
            "text": "; ".join(_rate_text(step) for step in steps),
            "route": {"coding": [ROUTES[session.route]]},
        }
        grams = _infused_grams(dispense, fate)
        if grams is not None:
            dosage["dose"] = {"value": grams, "unit": "g", "system": UCUM, "code": "g"}
        if rates:
            dosage["rateQuantity"] = {"value": max(rates), "unit": "mL/h", "system": UCUM, "code": "mL/h"}
        data = {
            "resourceType": "MedicationAdministration",
            "id": f"{administration.pk}-{dispense.pk}",
            "contained": [medication(dispense)],
            "identifier": [{"system": "urn:ivig-trace:administration", "value": str(administration.pk)}],
            "status": ADMINISTRATION_STATUS[administration.status],
            "medicationReference": {"reference": "#med"},
            "subject": patient_reference(session.patient),
            "effectivePeriod": period,
            "performer": [{"actor": _user(nurse)} for nurse in nurses.values()],
            "supportingInformation": [{"reference": f"MedicationDispense/{dispense.pk}"}],
            "dosage": dosage,
        }
        if administration.stop_reason:
            data["statusReason"] = [{"text": administration.stop_reason}]
        if notes or fate is not None:
            data["note"] = notes + ([{"text": f"Vial {fate.get_fate_display()}" + (
                f", {grams_text(fate.volume_left_ml)} mL left" if fate.volume_left_ml else "")}] if fate else [])
        resources.append(_valid(MedicationAdministration, data))
    return resources


def adverse_event_resource(reaction: AdverseReaction) -> dict:
    """The reaction, pointing to each vial that could have caused it as a contained Medication:
    the vials given in the session, or those of the home infusion it followed."""
    if reaction.home_infusion_id is not None:
        suspects = [use.dispense for use in reaction.home_infusion.vials.all()]
    else:
        suspects = reaction.session.given_dispenses
    event = reaction.get_type_display() + (f": {reaction.type_other}" if reaction.type_other else "")
    data = {
        "resourceType": "AdverseEvent",
        "id": str(reaction.pk),
        "contained": [medication(d, id=f"med-{d.pk}") for d in suspects],
        "actuality": "actual",
        "event": {"text": event},
        "subject": patient_reference(reaction.session.patient),
        "date": _instant(reaction.onset_at),
        "detected": _instant(reaction.onset_at),
        "recordedDate": _instant(reaction.recorded_at),
        "recorder": _user(reaction.recorded_by),
        "seriousness": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
            "code": "serious" if reaction.severity in SERIOUS else "non-serious"}]},
        "severity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
            "code": SEVERITY[reaction.severity]}], "text": reaction.get_severity_display()},
        "suspectEntity": [{"instance": {"reference": f"#med-{d.pk}"}} for d in suspects],
    }
    if reaction.rate_at_onset_ml_per_h is not None:
        data["extension"] = [{"url": RATE_AT_ONSET, "valueQuantity": {
            "value": reaction.rate_at_onset_ml_per_h, "unit": "mL/h", "system": UCUM, "code": "mL/h"}}]
    return _valid(AdverseEvent, data)


# --- search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """What to return: one patient (by id or MRN) or all, within [since, until)."""

    patient_id: int | None = None
    mrn: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def patients(self, field: str = "") -> Q:
        prefix = f"{field}__" if field else ""
        q = Q()
        if self.patient_id is not None:
            q &= Q(**{f"{prefix}pk" if prefix else "pk": self.patient_id})
        if self.mrn is not None:
            q &= Q(**{f"{prefix}mrn": self.mrn})
        return q

    def times(self, field: str) -> Q:
        q = Q()
        if self.since is not None:
            q &= Q(**{f"{field}__gte": self.since})
        if self.until is not None:
            q &= Q(**{f"{field}__lt": self.until})
        return q


DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")


def _day_bounds(value: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date value covers: a day (in the site's zone) or a moment."""
    try:
        return _bounds(value)
    except OverflowError:  # the very edge of the calendar: no day after 9999-12-31
        raise InvalidInput(f"{value!r} is out of range.", code="invalid_date") from None


def _bounds(value: str) -> tuple[datetime, datetime]:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None:
            start = timezone.make_aware(datetime.combine(day, time.min))
            return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    moment = None
    try:
        moment = parse_datetime(value)
    except ValueError:
        pass
    if moment is None:
        raise InvalidInput(f"{value!r} is not a FHIR date (YYYY-MM-DD) or dateTime.", code="invalid_date")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment, moment + timedelta(microseconds=1)


def parse_search(params) -> Search:
    """FHIR search parameters: `patient` (Patient/{id}, or an MRN), `identifier` (an MRN, with or
    without `system|`), and `date` (repeatable, with prefixes eq, ge, gt, le, lt)."""
    if any("\x00" in value for values in params.lists() for value in values[1]):
        raise InvalidInput("A search parameter holds a NUL character.", code="invalid")
    patient_id = mrn = None
    reference = (params.get("patient") or "").strip()
    if reference:
        match = re.fullmatch(r"Patient/(\d{1,18})", reference)
        if match:
            patient_id = int(match.group(1))
        else:
            mrn = reference
    identifier = (params.get("identifier") or "").strip()
    if identifier:
        mrn = identifier.split("|", 1)[1] if "|" in identifier else identifier
    since = until = None
    for raw in params.getlist("date"):
        raw = raw.strip()
        prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
        value = raw[2:] if raw[:2] in DATE_PREFIXES else raw
        start, end = _day_bounds(value)
        low, high = {"eq": (start, end), "ge": (start, None), "gt": (end, None),
                     "le": (None, end), "lt": (None, start)}[prefix]
        if low is not None:
            since = low if since is None else max(since, low)
        if high is not None:
            until = high if until is None else min(until, high)
    return Search(patient_id=patient_id, mrn=mrn, since=since, until=until)


@dataclass(frozen=True)
class ResourceKind:
    """How one resource type is searched and built."""

    name: str
    queryset: callable
    patient_field: str
    time_field: str | None
    build: callable  # row -> list of resources

    def rows(self, search: Search) -> QuerySet:
        rows = self.queryset().filter(search.patients(self.patient_field))
        if self.time_field is not None:
            rows = rows.filter(search.times(self.time_field))
        return rows.order_by("pk")


def _patients_with_activity(search: Search) -> QuerySet[Patient]:
    """Patients: the one searched for, or, with a date, those given a vial in that time."""
    patients = patient_queryset().filter(search.patients())
    if search.since is not None or search.until is not None:
        patients = patients.filter(pk__in=Dispense.objects.filter(search.times("dispensed_at"))
                                   .values("session__patient_id"))
    return patients


KINDS = {
    "Patient": ResourceKind("Patient", None, "", None, lambda p: [patient_resource(p)]),
    "MedicationDispense": ResourceKind("MedicationDispense", dispenses_for_fhir, "session__patient", "dispensed_at",
                                       lambda d: [dispense_resource(d)]),
    "MedicationAdministration": ResourceKind("MedicationAdministration", administrations_for_fhir,
                                             "session__patient", "started_at", administration_resources),
    "AdverseEvent": ResourceKind("AdverseEvent", reactions_for_fhir, "session__patient", "onset_at",
                                 lambda r: [adverse_event_resource(r)]),
}


def search_rows(kind: str, search: Search) -> QuerySet:
    if kind == "Patient":
        return _patients_with_activity(search).order_by("pk")
    return KINDS[kind].rows(search)


def patient_id_of(kind: str, row) -> int:
    return row.pk if kind == "Patient" else row.session.patient_id


def resources(kind: str, rows: Iterable) -> Iterator[dict]:
    build = KINDS[kind].build
    for row in rows:
        yield from build(row)


def pages(queryset: QuerySet, size: int = 500) -> Iterator[list]:
    """The rows in pages by primary key: each page costs the queryset's few queries, and memory
    stays flat however many rows there are."""
    last = 0
    while True:
        page = list(queryset.filter(pk__gt=last)[:size])
        if not page:
            return
        yield page
        last = page[-1].pk


# --- HTTP ---------------------------------------------------------------------------------------


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


class FhirNegotiation(DefaultContentNegotiation):
    """FHIR JSON whatever the client accepts (application/json, */*, application/fhir+json)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


FhirPermission = capability_permission("FhirPermission", read="fhir.read", write="fhir.read")
DEFAULT_COUNT, MAX_COUNT = 100, 1000


def _count(params, name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not (0 <= int(raw) <= maximum):
        raise InvalidInput(f"{name} must be a whole number from 0 to {maximum}.", code="invalid_count")
    return int(raw)


class FhirSearch(APIView):
    permission_classes = [FhirPermission]
    renderer_classes = [FhirJSONRenderer]
    content_negotiation_class = FhirNegotiation

    def handle_exception(self, exc):
        # A refusal is the service's one error body (application/json, as documented), not a Bundle.
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter("patient", str, description="Patient/{id}, or the patient's MRN"),
            OpenApiParameter("identifier", str, description="Patient only: the MRN (system|value or value)"),
            OpenApiParameter("date", str, many=True, description="eq/ge/gt/le/lt + YYYY-MM-DD or a dateTime; repeatable"),
            OpenApiParameter("_count", int), OpenApiParameter("_offset", int),
        ],
        responses={(200, FHIR_JSON): OpenApiTypes.OBJECT},
    )
    def get(self, request, resource: str):
        """A FHIR R4 searchset Bundle of Patient, MedicationDispense, MedicationAdministration or
        AdverseEvent resources, paged with `_count` and `_offset`."""
        if resource not in RESOURCE_TYPES:
            raise NotFound(f"No FHIR resource type {resource!r} here; use one of {', '.join(RESOURCE_TYPES)}.")
        params = request.query_params
        search = parse_search(params)
        count = _count(params, "_count", DEFAULT_COUNT, MAX_COUNT)
        offset = _count(params, "_offset", 0, 10**9)
        rows = search_rows(resource, search)
        total = rows.count()
        page = list(rows[offset:offset + count])
        record_patient_access(request, [patient_id_of(resource, row) for row in page], via="fhir-search")
        base = request.build_absolute_uri("/api/fhir/")
        entries = [{"fullUrl": f"{base}{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                   for r in resources(resource, page)]
        links = [{"relation": "self", "url": request.build_absolute_uri()}]
        if count and offset + count < total:
            query = params.copy()
            query["_offset"] = str(offset + count)
            query["_count"] = str(count)
            links.append({"relation": "next", "url": f"{base}{resource}?{query.urlencode()}"})
        bundle = {"resourceType": "Bundle", "type": "searchset", "timestamp": _instant(timezone.now()),
                  # total counts the rows matched; a MedicationAdministration row may give several entries.
                  "total": total, "link": links, "entry": entries}
        return Response(bundle, content_type=FHIR_JSON)


urlpatterns = [path("fhir/<str:resource>", FhirSearch.as_view(), name="fhir-search")]
