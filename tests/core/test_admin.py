"""The admin obeys the rules: records that only services change are read-only to superusers too
(no add, change, delete or revert, tested through the admin's own URLs); catalog and locations are
edited through the same services as the API; the history view speaks in names."""

import pytest

from core.history import audited_save
from inventory.models import Lot, Product, StorageLocation, Vial
from tests.audit.helpers import build_world


@pytest.fixture
def world(db):
    return build_world()


def admin_url(obj, view="change"):
    meta = obj._meta
    if view == "add":
        return f"/admin/{meta.app_label}/{meta.model_name}/add/"
    return f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/{view}/"


def records(world):
    return {
        "vial": world.vial,
        "lot": world.lot,
        "dispense": world.dispense,
        "session": world.session,
        "flag": world.flag,
        "reaction": world.reaction,
        "recall": world.recall,
        "notification": world.notification,
    }


@pytest.mark.parametrize(
    "name", ["vial", "lot", "dispense", "session", "flag", "reaction", "recall", "notification"]
)
def test_a_superuser_can_see_but_not_add_change_delete_or_revert_a_record_only_services_change(
    world, admin_client, name
):
    obj = records(world)[name]
    model = type(obj)
    before = model.objects.filter(pk=obj.pk).values().get()
    history_before = model.history.filter(id=obj.pk).count()
    oldest = model.history.filter(id=obj.pk).earliest()

    assert admin_client.get(admin_url(obj)).status_code == 200  # shown, read-only
    assert admin_client.get(admin_url(obj, "history")).status_code == 200
    assert admin_client.get(admin_url(obj, "add")).status_code == 403
    assert admin_client.post(admin_url(obj), {"status": "recalled", "reason": "x"}).status_code == 403
    assert admin_client.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 403
    revert = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/history/{oldest.history_id}/"
    assert admin_client.get(revert).status_code == 200  # an old version may be looked at
    assert b"Revert" not in admin_client.get(revert).content
    assert admin_client.post(revert, {"status": "in_stock"}).status_code == 403

    assert model.objects.filter(pk=obj.pk).values().get() == before
    assert model.history.filter(id=obj.pk).count() == history_before


def test_a_superuser_cannot_change_a_lots_status_in_the_admin(world, admin_client):
    response = admin_client.post(
        admin_url(world.lot),
        {"product": world.lot.product_id, "lot_number": "P100263", "expiry_date": "2030-01-01", "status": "released"},
    )

    assert response.status_code == 403
    world.lot.refresh_from_db()
    assert world.lot.status == Lot.Status.RELEASED and world.lot.expiry_date != "2030-01-01"


def test_the_changelist_offers_no_delete_action_for_clinical_records(world, admin_client):
    response = admin_client.get("/admin/traceability/dispense/")

    assert response.status_code == 200 and b"delete_selected" not in response.content


def test_a_product_edited_in_the_admin_goes_through_the_catalog_service_and_is_audited(world, admin_client, admin_user):
    product = world.vial.presentation.product
    form = {
        "brand": product.brand,
        "manufacturer": product.manufacturer_id,
        "route": product.route,
        "excipient": "proline",
        "fridge_min_c": "2",
        "fridge_max_c": "8",
        "room_temp_max_c": "25",
        "storage_notes": "",
        "source_notes": "",
        "iga_note": "",
    }

    response = admin_client.post(admin_url(product), form)

    assert response.status_code == 302
    product.refresh_from_db()
    record = product.history.latest()
    assert product.excipient == "proline"
    assert (record.history_user, record.history_change_reason) == (admin_user, "catalog: edited")


def test_a_location_added_in_the_admin_is_audited_like_one_added_through_the_api(db, admin_client, admin_user):
    response = admin_client.post(
        "/admin/inventory/storagelocation/add/",
        {"name": "Main pharmacy fridge A", "code": "FR-MAIN-A", "kind": "refrigerator", "active": "on",
         "excursion_grace_minutes": "30"},
    )

    assert response.status_code == 302
    location = StorageLocation.objects.get(code="FR-MAIN-A")
    record = location.history.get()
    assert (record.history_user, record.history_change_reason) == (admin_user, "catalog: created")


def test_catalog_and_locations_are_never_deleted_in_the_admin(world, admin_client):
    product = world.vial.presentation.product

    assert admin_client.post(admin_url(product, "delete"), {"post": "yes"}).status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()


def test_the_history_view_shows_none_for_an_empty_relation_and_people_by_name(world, admin_client):
    vial = world.vial
    vial.status = Vial.Status.IN_STOCK
    vial.location = StorageLocation.objects.get(code="FR-A")
    audited_save(vial, actor=world.pharmacist, reason="returned to stock unopened")

    page = admin_client.get(admin_url(vial, "history")).content.decode()

    assert "(none)" in page and "Fridge A" in page
    assert "pk=None" not in page and "Deleted storage location" not in page
    assert "phil (Phil Pharm)" in page and "tina (Tina Tech)" in page
