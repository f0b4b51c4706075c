"""Least privilege as one matrix: every operation of the published schema × every identity (the
four roles, a user in no role, a superuser, anonymous).

RULES names, for each operation, the capability of core.roles that admits it; who holds which
capability comes from core.roles.CAPABILITIES alone. An operation added to the API without a line
here fails `test_every_operation_of_the_schema_has_a_rule`; a rule left behind for an operation
that went fails too. Each request goes to a real row, so a refusal cannot hide behind a 404.
"""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from audit.models import ExportJob
from django.utils import timezone

from inventory.models import Excursion, SuspectScan
from traceability.models import DispenseOverride
from core.roles import CAPABILITIES, ROLES
from tests.factories import (
    BrandSwitchFlagFactory,
    DispenseFactory,
    InfusionSessionFactory,
    NotificationTaskFactory,
    RecallFactory,
    RecallLotFactory,
    StorageLocationFactory,
    UserFactory,
    VialFactory,
)

PUBLIC = "public"  # anyone, logged in or not
LOGGED_IN = "logged in"  # anyone logged in, whatever their role

PATIENTS_READ = ("patients.read", "patients.read_upcoming")
SESSIONS_READ = ("sessions.read", "sessions.read_upcoming")

RULES: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("POST", "/api/auth/token"): PUBLIC,
    ("DELETE", "/api/auth/token"): LOGGED_IN,
    ("GET", "/api/auth/me"): LOGGED_IN,
    # inventory
    ("GET", "/api/products/"): "inventory.read",
    ("POST", "/api/products/"): "catalog.change",
    ("GET", "/api/products/{id}/"): "inventory.read",
    ("PUT", "/api/products/{id}/"): "catalog.change",
    ("PATCH", "/api/products/{id}/"): "catalog.change",
    ("GET", "/api/presentations/"): "inventory.read",
    ("POST", "/api/presentations/"): "catalog.change",
    ("GET", "/api/presentations/{id}/"): "inventory.read",
    ("PUT", "/api/presentations/{id}/"): "catalog.change",
    ("PATCH", "/api/presentations/{id}/"): "catalog.change",
    ("GET", "/api/locations/"): "inventory.read",
    ("POST", "/api/locations/"): "catalog.change",
    ("GET", "/api/locations/{id}/"): "inventory.read",
    ("PUT", "/api/locations/{id}/"): "catalog.change",
    ("PATCH", "/api/locations/{id}/"): "catalog.change",
    ("GET", "/api/locations/{id}/label"): "inventory.read",
    ("GET", "/api/lots/"): "inventory.read",
    ("GET", "/api/lots/{id}/"): "inventory.read",
    ("POST", "/api/lots/{id}/quarantine/"): "lots.decide",
    ("POST", "/api/lots/{id}/release/"): "lots.decide",
    ("GET", "/api/vials/"): "inventory.read",
    ("GET", "/api/vials/{id}/"): "inventory.read",
    ("GET", "/api/vials/{id}/label"): "inventory.read",
    ("POST", "/api/vials/{id}/move/"): "stock.change",
    ("POST", "/api/vials/{id}/waste/"): "stock.change",
    ("POST", "/api/vials/{id}/return/"): "stock.change",
    ("POST", "/api/labels/sheet"): "stock.change",
    ("POST", "/api/scan"): "scan",
    ("POST", "/api/receipts"): "stock.change",
    ("POST", "/api/receipts/check"): "stock.change",
    ("GET", "/api/stock/expiring"): "inventory.read",
    # patients and sessions
    ("GET", "/api/patients/"): PATIENTS_READ,
    ("POST", "/api/patients/"): "patients.change",
    ("GET", "/api/patients/{id}/"): PATIENTS_READ,
    ("PATCH", "/api/patients/{id}/"): "patients.change",
    ("GET", "/api/patients/{id}/history/"): PATIENTS_READ,
    ("GET", "/api/sessions/"): SESSIONS_READ,
    ("POST", "/api/sessions/"): "sessions.order",
    ("GET", "/api/sessions/{id}/"): SESSIONS_READ,
    ("POST", "/api/sessions/{id}/start/"): "sessions.order",
    ("POST", "/api/sessions/{id}/cancel/"): "sessions.order",
    ("POST", "/api/sessions/{id}/complete/"): "sessions.complete",
    ("POST", "/api/sessions/{id}/dispenses/"): "dispenses.change",
    ("POST", "/api/sessions/{id}/pick/"): "dispenses.change",
    ("POST", "/api/sessions/{id}/dispense-check/"): "dispenses.change",
    ("GET", "/api/sessions/dose-discrepancies/"): SESSIONS_READ,
    ("GET", "/api/overrides/"): "dispenses.read",
    ("POST", "/api/overrides/"): "dispenses.change",
    ("GET", "/api/overrides/{id}/"): "dispenses.read",
    ("POST", "/api/overrides/{id}/grant/"): "overrides.decide",
    ("POST", "/api/overrides/{id}/decline/"): "overrides.decide",
    ("POST", "/api/dispenses/{id}/lot-decision/"): "overrides.decide",
    ("GET", "/api/suspect-scans/"): "inventory.read",
    ("GET", "/api/suspect-scans/{id}/"): "inventory.read",
    ("POST", "/api/suspect-scans/{id}/resolve/"): "lots.decide",
    ("GET", "/api/patients/{id}/wristband"): PATIENTS_READ,
    ("GET", "/api/sessions/{id}/reactions/"): SESSIONS_READ,
    ("POST", "/api/sessions/{id}/reactions/"): "reactions.record",
    ("GET", "/api/dispenses/"): "dispenses.read",
    ("GET", "/api/dispenses/{id}/"): "dispenses.read",
    ("POST", "/api/dispenses/{id}/return/"): "dispenses.change",
    ("POST", "/api/dispenses/{id}/waste/"): "dispenses.change",
    ("GET", "/api/flags/"): "flags.read",
    ("GET", "/api/flags/{id}/"): "flags.read",
    ("POST", "/api/flags/{id}/acknowledge/"): "flags.decide",
    # the administration record, home infusions, FHIR
    ("GET", "/api/administrations/"): "infusions.read",
    ("POST", "/api/administrations/"): "infusions.record",
    ("GET", "/api/administrations/worklist/"): "infusions.read",
    ("GET", "/api/administrations/{id}/"): "infusions.read",
    ("POST", "/api/administrations/{id}/rate/"): "infusions.record",
    ("POST", "/api/administrations/{id}/pause/"): "infusions.record",
    ("POST", "/api/administrations/{id}/resume/"): "infusions.record",
    ("POST", "/api/administrations/{id}/finish/"): "infusions.record",
    ("POST", "/api/administrations/{id}/stop/"): "infusions.record",
    ("POST", "/api/administrations/{id}/reactions/"): "infusions.record",
    ("GET", "/api/home-infusions/"): "infusions.read",
    ("POST", "/api/home-infusions/"): "infusions.record",
    ("GET", "/api/home-infusions/{id}/"): "infusions.read",
    ("POST", "/api/home-infusions/{id}/reactions/"): "infusions.record",
    ("GET", "/api/fhir/{resource}"): "fhir.read",
    ("GET", "/api/signals/lots"): "signals.read",
    # recalls
    ("GET", "/api/recalls/"): "recalls.read",
    ("POST", "/api/recalls/"): "recalls.change",
    ("GET", "/api/recalls/{id}/"): "recalls.read",
    ("POST", "/api/recalls/{id}/close/"): "recalls.change",
    ("POST", "/api/recalls/{id}/classify/"): "recalls.change",
    ("POST", "/api/recalls/{id}/dispose/"): "recalls.change",
    ("GET", "/api/recalls/{id}/export.xlsx/"): "recalls.read",
    ("GET", "/api/recalls/{id}/lookback/"): "recalls.read",
    ("GET", "/api/recalls/{id}/notifications/"): "recalls.read",
    ("GET", "/api/recalls/lookup/"): "recalls.read",
    ("GET", "/api/notifications/{id}/"): "recalls.read",
    ("POST", "/api/notifications/{id}/"): "recalls.change",
    ("PATCH", "/api/notifications/{id}/"): "recalls.change",
    # the cold chain
    ("GET", "/api/locations/{id}/readings"): "inventory.read",
    ("POST", "/api/locations/{id}/readings"): "readings.record",
    ("GET", "/api/excursions/"): "inventory.read",
    ("GET", "/api/excursions/{id}/"): "inventory.read",
    ("POST", "/api/excursions/{id}/dispositions/"): "excursions.decide",
    # audit
    ("GET", "/api/audit/history/"): "history.read",
    ("GET", "/api/audit/access/"): "history.read",
    ("GET", "/api/audit/export.xlsx"): "history.read",
    ("GET", "/api/audit/exports/{job_id}"): "history.read",
    ("GET", "/api/audit/exports/{job_id}/download"): "history.read",
}

# Treatment authorisations, their reports and the dose calculator.
RULES.update({
    ("GET", "/api/authorisations/"): "authorisations.read",
    ("POST", "/api/authorisations/"): "authorisations.change",
    ("GET", "/api/authorisations/{id}/"): "authorisations.read",
    ("POST", "/api/authorisations/{id}/revoke/"): "authorisations.change",
    ("GET", "/api/authorisations/expiring/"): "authorisations.read",
    ("GET", "/api/authorisations/discrepancies/"): "authorisations.read",
    ("POST", "/api/authorisations/discrepancies/{dispense}/reconcile/"): "authorisations.change",
    ("POST", "/api/sessions/{id}/authorisation/"): "sessions.order",
    ("POST", "/api/dose"): "doses.calculate",
})

IDENTITIES = [*ROLES, "none", "superuser", None]
METHODS = ("get", "post", "put", "patch", "delete")


def _operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((method.upper(), path) for path, ops in schema["paths"].items() for method in ops if method in METHODS)


OPERATIONS = _operations()


def allowed(rule, identity: str | None) -> bool:
    if rule == PUBLIC:
        return True
    if identity is None:
        return False
    if rule == LOGGED_IN or identity == "superuser":
        return True
    capabilities = (rule,) if isinstance(rule, str) else rule
    return any(identity in CAPABILITIES[capability] for capability in capabilities)


def test_every_operation_of_the_schema_has_a_rule():
    assert not sorted(set(OPERATIONS) - set(RULES)), "operations without a rule in RULES"
    assert not sorted(set(RULES) - set(OPERATIONS)), "rules for operations the schema no longer has"
    assert all(c in CAPABILITIES for rule in RULES.values() if rule not in (PUBLIC, LOGGED_IN)
               for c in ((rule,) if isinstance(rule, str) else rule))


@pytest.fixture
def rows(db) -> dict[str, int]:
    """One real row behind every id of a path: a session today (so a technician may see it) with a
    dispense and a flag, a recall with a notification, an export job."""
    session = InfusionSessionFactory()
    dispense = DispenseFactory(session=session)
    flag = BrandSwitchFlagFactory(session=session, raised_by=dispense)
    vial = VialFactory()
    recall = RecallFactory()
    RecallLotFactory(recall=recall, lot=vial.lot)
    task = NotificationTaskFactory(recall=recall, patient=session.patient)
    job = ExportJob.objects.create(requested_by=UserFactory(), filters={})
    override = DispenseOverride.objects.create(
        session=session, product=dispense.product, check_code="iga_content", detail="x", requested_by=UserFactory())
    suspect = SuspectScan.objects.create(vial=vial, raw="x", scanned_lot="OTHER", reported_by=UserFactory())
    excursion = Excursion.objects.create(location=vial.location, started_at=timezone.now(), lowest_c=9, highest_c=12)
    return {
        "excursions": excursion.pk,
        "overrides": override.pk, "suspect-scans": suspect.pk,
        "vials": vial.pk, "lots": vial.lot_id, "locations": StorageLocationFactory().pk,
        "products": vial.presentation.product_id, "presentations": vial.presentation_id,
        "patients": session.patient_id, "sessions": session.pk, "dispenses": dispense.pk, "flags": flag.pk,
        "recalls": recall.pk, "notifications": task.pk, "audit": job.pk,
        # The session's own authorisation (InfusionSessionFactory makes one).
        "authorisations": session.authorisation_id,
    }


def _client(identity: str | None) -> APIClient:
    client = APIClient()
    if identity == "superuser":
        client.force_authenticate(UserFactory(is_superuser=True, is_staff=True))
    elif identity == "none":
        client.force_authenticate(UserFactory())
    elif identity is not None:
        client.force_authenticate(UserFactory(role=identity))
    return client


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_each_identity_is_admitted_exactly_as_the_role_table_says(method, path, rows):
    rule = RULES[(method, path)]
    resource = path.split("/")[2]
    url = (path.replace("{id}", str(rows.get(resource, 0))).replace("{job_id}", str(rows["audit"]))
           .replace("{resource}", "Patient").replace("{dispense}", str(rows["dispenses"])))
    wrong = []
    for identity in IDENTITIES:
        client = _client(identity)
        response = client.generic(method, url, "{}", content_type="application/json")
        status = response.status_code
        if allowed(rule, identity):
            if status in (401, 403) or status >= 500:
                wrong.append((identity, status, "should be admitted"))
        else:
            expected = 401 if identity is None else 403
            if status != expected:
                wrong.append((identity, status, f"should be {expected}"))
            elif response.json()["code"] not in ("not_authenticated", "permission_denied"):
                wrong.append((identity, status, response.json()))
    assert not wrong, f"{method} {path} ({rule}): {wrong}"
