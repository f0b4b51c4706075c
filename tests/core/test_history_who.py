"""History keeps who acted: each row keeps the username, users with history are deactivated and
never deleted (the admin refuses), patients are deleted nowhere, and a long reason is kept whole on
every database."""

import pytest
from django.contrib.auth.models import User

from inventory.models import Vial
from inventory.services import vial_waste
from recalls.services import recall_bulk_dispose, recall_create
from tests.factories import PatientFactory, UserFactory, VialFactory
from traceability.models import Patient

pytestmark = pytest.mark.django_db


def test_a_history_row_keeps_the_username_of_who_acted(technician):
    vial = vial_waste(vial=VialFactory(), reason="carton crushed", actor=technician)

    assert vial.history.first().history_username == "alice"


def test_a_bulk_write_keeps_the_username_in_every_row(pharmacist):
    vials = VialFactory.create_batch(3)
    lot = vials[0].lot
    for vial in vials[1:]:
        vial.lot = lot
        vial.save()
    recall = recall_create(reference="R-1", source="regulator", recall_class="II", reason="x", lots=[lot],
                           actor=pharmacist)

    recall_bulk_dispose(recall=recall, action="waste", reason="destroyed", actor=pharmacist)

    names = list(Vial.history.filter(history_change_reason__startswith="recall R-1: waste")
                 .values_list("history_username", flat=True))
    assert names == ["paul"] * 3
    assert set(recall.history.values_list("history_username", flat=True)) == {"paul"}


def test_the_audit_history_still_names_who_acted_after_the_account_is_gone(technician, auditor_client):
    vial = vial_waste(vial=VialFactory(), reason="carton crushed", actor=technician)
    # Not through the admin or the API (both refuse): straight in the database, as a careless script might.
    User.objects.filter(pk=technician.pk).delete()

    entries = auditor_client.get("/api/audit/history/", {"model": "vials", "vial": vial.pk}).json()["results"]

    assert [e["who"] for e in entries if e["reason"] == "wasted: carton crushed"] == ["alice"]


@pytest.mark.parametrize("length", [200, 2000])
def test_a_long_reason_is_kept_whole_in_the_history(length, technician):
    reason = "r" * length

    vial = vial_waste(vial=VialFactory(), reason=reason, actor=technician)

    assert vial.history.first().history_change_reason == f"wasted: {reason}"


def test_the_admin_refuses_to_delete_a_user_who_appears_in_the_history(admin_client, technician):
    vial_waste(vial=VialFactory(), reason="carton crushed", actor=technician)

    page = admin_client.get(f"/admin/auth/user/{technician.pk}/delete/")
    posted = admin_client.post(f"/admin/auth/user/{technician.pk}/delete/", {"post": "yes"})
    listing = admin_client.get("/admin/auth/user/")

    assert (page.status_code, posted.status_code) == (403, 403)
    assert User.objects.filter(pk=technician.pk).exists()
    assert b"delete_selected" not in listing.content


def test_the_admin_deactivates_users_instead(admin_client, technician):
    vial_waste(vial=VialFactory(), reason="carton crushed", actor=technician)

    response = admin_client.post("/admin/auth/user/", {"action": "deactivate", "_selected_action": [technician.pk]})

    assert response.status_code == 302
    technician.refresh_from_db()
    assert technician.is_active is False


def test_the_admin_may_delete_a_user_who_never_acted(admin_client):
    typo = UserFactory(username="alcie")

    response = admin_client.post(f"/admin/auth/user/{typo.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(username="alcie").exists()


def test_a_patient_is_deleted_nowhere(admin_client, pharmacist_client):
    patient = PatientFactory()

    admin_page = admin_client.post(f"/admin/traceability/patient/{patient.pk}/delete/", {"post": "yes"})
    api = pharmacist_client.delete(f"/api/patients/{patient.pk}/")
    listing = admin_client.get("/admin/traceability/patient/")

    assert admin_page.status_code == 403
    assert api.status_code == 405
    assert b"delete_selected" not in listing.content
    assert Patient.objects.filter(pk=patient.pk).exists()
