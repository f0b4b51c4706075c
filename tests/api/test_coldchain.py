"""The cold-chain API: readings in, excursions listed, dispositions; refusals and query counts."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from inventory.models import Excursion, ExcursionVial, StorageLocation, TemperatureReading, Vial
from tests.api.helpers import assert_constant_queries
from tests.factories import ProductFactory, StorageLocationFactory, VialFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-1", kind=StorageLocation.Kind.REFRIGERATOR)


def warm_hours(start, hours=2, every=15):
    """In range, then 12 °C for `hours`, then in range again, every `every` minutes."""
    rows, moment = [], start
    end = start + timedelta(hours=hours + 2)
    while moment <= end:
        warm = start + timedelta(hours=1) <= moment < start + timedelta(hours=1 + hours)
        rows.append({"taken_at": moment.isoformat(), "temperature": "12.0" if warm else "5.0"})
        moment += timedelta(minutes=every)
    return rows


def held_vials(fridge, n=2, **product_fields):
    product = ProductFactory(**product_fields)
    vials = []
    for _ in range(n):
        vial = VialFactory.build(presentation__product=product, lot__product=product, location=fridge,
                                 lot__expiry_date=date(2032, 6, 30), beyond_use_date=date(2032, 6, 30))
        vial.presentation.save()
        vial.lot.save()
        vial.presentation = vial.presentation
        vial.lot = vial.lot
        vial._history_date = timezone.now() - timedelta(days=5)
        vial.save()
        vials.append(vial)
    return product, vials


def test_readings_posted_open_an_excursion_that_holds_the_vials(tech_client, fridge):
    _, vials = held_vials(fridge)
    start = timezone.now() - timedelta(hours=6)

    response = tech_client.post(f"/api/locations/{fridge.pk}/readings", {"readings": warm_hours(start)}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["recorded"] == 17
    (excursion,) = body["excursions"]
    assert excursion["highest_c"] == "12.00"
    assert set(Vial.objects.filter(pk__in=[v.pk for v in vials]).values_list("status", flat=True)) == {"quarantined"}


def test_readings_in_fahrenheit_are_stored_in_celsius(tech_client, fridge):
    moment = timezone.now() - timedelta(hours=1)

    response = tech_client.post(f"/api/locations/{fridge.pk}/readings",
                                {"readings": [{"taken_at": moment.isoformat(), "temperature": "41", "unit": "F"}]},
                                format="json")

    assert response.status_code == 201
    assert TemperatureReading.objects.get().celsius == 5


@pytest.mark.parametrize(
    ("readings", "status", "code"),
    [
        ([], 400, "invalid"),
        ([{"taken_at": "2999-01-01T00:00:00Z", "temperature": "5"}], 400, "reading_in_future"),
        ([{"taken_at": "2026-01-01T00:00:00Z", "temperature": "90"}], 400, "implausible_temperature"),
        ([{"taken_at": "2026-01-01T00:00:00Z", "temperature": "5"},
          {"taken_at": "2026-01-01T00:00:00Z", "temperature": "6"}], 400, "conflicting_readings"),
    ],
)
def test_readings_are_refused_whole(tech_client, fridge, readings, status, code):
    response = tech_client.post(f"/api/locations/{fridge.pk}/readings", {"readings": readings}, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert TemperatureReading.objects.count() == 0


def test_too_many_readings_in_one_request_are_refused(tech_client, fridge):
    moment = timezone.now() - timedelta(days=30)
    rows = [{"taken_at": (moment + timedelta(minutes=n)).isoformat(), "temperature": "5"} for n in range(1001)]

    response = tech_client.post(f"/api/locations/{fridge.pk}/readings", {"readings": rows}, format="json")

    assert response.status_code == 400
    assert TemperatureReading.objects.count() == 0


def test_readings_of_an_unknown_location_are_refused(tech_client):
    response = tech_client.post("/api/locations/999999/readings",
                                {"readings": [{"taken_at": "2026-01-01T00:00:00Z", "temperature": "5"}]}, format="json")

    assert (response.status_code, response.json()["code"]) == (404, "unknown_location")


def test_a_pharmacist_releases_one_products_vials_and_the_excursion_closes(tech_client, pharmacist_client, fridge):
    product, vials = held_vials(fridge, room_temp_allowance_days=180, may_return_to_fridge=False)
    tech_client.post(f"/api/locations/{fridge.pk}/readings",
                     {"readings": warm_hours(timezone.now() - timedelta(hours=6))}, format="json")
    excursion = Excursion.objects.get()

    detail = pharmacist_client.get(f"/api/excursions/{excursion.pk}/").json()
    assert [(p["brand"], p["pending"], p["release_refusal"]) for p in detail["products"]] == [(product.brand, 2, None)]
    response = pharmacist_client.post(f"/api/excursions/{excursion.pk}/dispositions/",
                                      {"product": product.pk, "decision": "release", "reason": "within label"},
                                      format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["vials_pending"]) == ("closed", 0)
    assert {v["outcome"] for v in body["vials"]} == {"released"}
    assert all(v["allowance_used"] == "02:00:00" for v in body["vials"])
    assert all(v["beyond_use_after"] < "2032-06-30" for v in body["vials"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"decision": "release", "reason": "x"}, 400, "invalid"),
        ({"decision": "keep", "reason": "x"}, 400, "invalid"),
        ({"decision": "release", "reason": "  "}, 400, "reason_required"),
        ({"decision": "release", "reason": "x", "product": 999999}, 400, "unknown_product"),
        ({"decision": "release", "reason": "x", "vials": [999999]}, 409, "not_awaiting_disposition"),
    ],
)
def test_a_disposition_is_refused_and_changes_nothing(tech_client, pharmacist_client, fridge, body, status, code):
    product, _ = held_vials(fridge, room_temp_allowance_days=None)
    tech_client.post(f"/api/locations/{fridge.pk}/readings",
                     {"readings": warm_hours(timezone.now() - timedelta(hours=6))}, format="json")
    excursion = Excursion.objects.get()
    body = {"product": product.pk, **body} if "product" not in body and code != "invalid" else body

    response = pharmacist_client.post(f"/api/excursions/{excursion.pk}/dispositions/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert set(ExcursionVial.objects.values_list("outcome", flat=True)) == {"pending"}


def test_a_release_the_label_does_not_allow_is_refused_with_its_code(tech_client, pharmacist_client, fridge):
    product, _ = held_vials(fridge, room_temp_allowance_days=None)
    tech_client.post(f"/api/locations/{fridge.pk}/readings",
                     {"readings": warm_hours(timezone.now() - timedelta(hours=6))}, format="json")
    excursion = Excursion.objects.get()

    response = pharmacist_client.post(f"/api/excursions/{excursion.pk}/dispositions/",
                                      {"product": product.pk, "decision": "release", "reason": "x"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "no_room_temperature_allowance")


def test_a_technician_may_not_decide_an_excursion(tech_client, fridge):
    excursion = Excursion.objects.create(location=fridge, started_at=timezone.now(), lowest_c=9, highest_c=10)

    response = tech_client.post(f"/api/excursions/{excursion.pk}/dispositions/",
                                {"product": 1, "decision": "waste", "reason": "x"}, format="json")

    assert response.status_code == 403


def test_the_excursion_list_is_constant_in_queries(tech_client, django_assert_num_queries):
    def make():
        location = StorageLocationFactory()
        excursion = Excursion.objects.create(location=location, started_at=timezone.now(), lowest_c=9, highest_c=10)
        vial = VialFactory(location=location, status=Vial.Status.QUARANTINED, cold_chain_hold=excursion)
        ExcursionVial.objects.create(excursion=excursion, vial=vial, exposed_from=timezone.now(),
                                     status_when_found="in_stock")

    queries = assert_constant_queries(tech_client, "/api/excursions/", make, django_assert_num_queries)
    assert queries <= 5
    assert tech_client.get("/api/excursions/?status=open").json()["results"][0]["vials_pending"] == 1


def test_a_locations_readings_list_is_constant_in_queries(tech_client, fridge, django_assert_num_queries):
    from inventory.models import ReadingBatch

    batch = ReadingBatch.objects.create(location=fridge, source="api")

    def make():
        n = TemperatureReading.objects.count()
        TemperatureReading.objects.create(location=fridge, batch=batch, celsius=5,
                                          taken_at=timezone.now() - timedelta(minutes=n + 1))

    assert_constant_queries(tech_client, f"/api/locations/{fridge.pk}/readings", make, django_assert_num_queries)


def test_the_lot_look_up_shows_the_vials_an_excursion_reached(tech_client, pharmacist_client, fridge):
    product, vials = held_vials(fridge, n=1)
    tech_client.post(f"/api/locations/{fridge.pk}/readings",
                     {"readings": warm_hours(timezone.now() - timedelta(hours=6))}, format="json")

    response = pharmacist_client.get("/api/recalls/lookup", {"lot": vials[0].lot.lot_number})

    assert response.status_code == 200, response.content
    (lot,) = response.json()["results"]
    (entry,) = lot["excursions"]
    assert (entry["serial"], entry["location"], entry["outcome"], entry["vial_status"]) == (
        vials[0].serial, "FRIDGE-1", "pending", "quarantined")


def test_the_scan_card_shows_the_hold_and_the_clock_and_offers_no_dispense(tech_client, fridge):
    from labels.gs1 import element_string

    _, vials = held_vials(fridge, n=1)
    tech_client.post(f"/api/locations/{fridge.pk}/readings",
                     {"readings": warm_hours(timezone.now() - timedelta(hours=6))}, format="json")
    vial = vials[0]
    barcode = element_string(gtin=vial.presentation.gtin, expiry=vial.lot.expiry_date, lot=vial.lot.lot_number,
                             serial=vial.serial)

    body = tech_client.post("/api/scan", {"barcode": barcode}, format="json").json()

    assert [(w["code"], w["severity"]) for w in body["warnings"]] == [("cold_chain_excursion", "red")]
    assert body["cold_chain"] == {"allowance_days": 180, "used_hours": 0.0, "remaining_hours": 4320.0,
                                  "clock_running": False, "held_by_excursion": Excursion.objects.get().pk}
    assert "dispense" not in body["actions"]


def test_a_pharmacist_sets_a_locations_range_and_grace(pharmacist_client, fridge):
    response = pharmacist_client.patch(f"/api/locations/{fridge.pk}/", {"min_c": "2.5", "max_c": "7.5",
                                                                        "excursion_grace_minutes": 45}, format="json")

    assert response.status_code == 200, response.content
    fridge.refresh_from_db()
    assert (fridge.temperature_range(), fridge.excursion_grace_minutes) == ((2.5, 7.5), 45)


def test_a_range_whose_top_is_not_above_its_bottom_is_refused(pharmacist_client, fridge):
    response = pharmacist_client.patch(f"/api/locations/{fridge.pk}/", {"min_c": "8", "max_c": "2"}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    fridge.refresh_from_db()
    assert fridge.temperature_range() == (2, 8)
