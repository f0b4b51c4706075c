"""The cold chain: readings, excursions, the vials they hold, the pharmacist's disposition, the
room-temperature clock across moves."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.errors import ApplicationError
from inventory.coldchain import (
    ReadingIn,
    excursion_dispose,
    readings_record,
)
from inventory.exceptions import MoveRefused, NotDispensable
from inventory.logger_csv import read_logger_file
from inventory.models import Excursion, ExcursionVial, Lot, ReadingBatch, StorageLocation, TemperatureReading, Vial
from inventory.rules import dispense_refusal, ensure_dispensable, vial_findings
from inventory.services import lot_release, vial_move, vial_waste
from tests.factories import LotFactory, PresentationFactory, ProductFactory, StorageLocationFactory, VialFactory
from tests.inventory.helpers import UTC, freeze_now

pytestmark = pytest.mark.django_db

Kind = StorageLocation.Kind
T0 = datetime(2031, 3, 1, 8, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def logger_file(rows: list[tuple[datetime, str]], header: str = "Timestamp,Temperature (°C)") -> bytes:
    lines = ["Logger: EL-USB-2", "Serial: 1234567", "", header]
    lines += [f"{moment:%Y-%m-%d %H:%M:%S},{value}" for moment, value in rows]
    return "\n".join(lines).encode()


def readings(rows: list[tuple[datetime, str]]) -> list[ReadingIn]:
    return [ReadingIn(taken_at=m, celsius=Decimal(v), where=f"reading {i + 1}") for i, (m, v) in enumerate(rows)]


# Every 15 minutes from T0: 5 °C, then 11-12 °C from 10:00 to 12:00 (two hours), then 5 °C again.
def warm_morning() -> list[tuple[datetime, str]]:
    rows = []
    for n in range(0, 33):
        moment = at(n / 4)
        rows.append((moment, "11.5" if at(2) <= moment < at(4) else "5.0"))
    return rows


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-1", name="Fridge 1", kind=Kind.REFRIGERATOR)


@pytest.fixture
def fridge_2():
    return StorageLocationFactory(code="FRIDGE-2", name="Fridge 2", kind=Kind.REFRIGERATOR)


@pytest.fixture
def shelf():
    return StorageLocationFactory(code="RT-1", name="Room shelf", kind=Kind.ROOM_TEMPERATURE)


def vial_at(location, moment, *, allowance=180, may_return=False, expiry=date(2032, 6, 30), product=None, **kwargs) -> Vial:
    """A vial received into `location` at `moment` (its history says so)."""
    product = product or ProductFactory(room_temp_allowance_days=allowance, may_return_to_fridge=may_return)
    vial = VialFactory.build(
        presentation=PresentationFactory(product=product), lot=LotFactory(product=product, expiry_date=expiry),
        location=location, beyond_use_date=expiry, received_at=moment, **kwargs,
    )
    vial._history_date = moment
    vial.save()
    return vial


def move_at(monkeypatch, vial, location, moment, actor):
    freeze_now(monkeypatch, moment)
    return vial_move(vial=vial, location=location, actor=actor)


# --- excursions from imported readings ---------------------------------------------------------------


def test_an_excursion_from_imported_readings_holds_exactly_the_vials_that_were_in_the_fridge_then(
    monkeypatch, fridge, fridge_2, technician
):
    before = vial_at(fridge, at(-48))
    moved_out_during = vial_at(fridge, at(-48))
    moved_in_after = vial_at(fridge_2, at(-48))
    elsewhere = vial_at(fridge_2, at(-48))
    move_at(monkeypatch, moved_out_during, fridge_2, at(3), technician)
    move_at(monkeypatch, moved_in_after, fridge, at(5), technician)
    freeze_now(monkeypatch, at(9))

    data = read_logger_file(logger_file(warm_morning()), zone=ZoneInfo("UTC"))
    result = readings_record(location=fridge, readings=data, actor=technician, source=ReadingBatch.Source.LOGGER_FILE)

    assert result.recorded == 33
    (excursion,) = result.excursions
    assert (excursion.started_at, excursion.ended_at, excursion.highest_c) == (at(2), at(4), Decimal("11.50"))
    assert excursion.status == Excursion.Status.OPEN
    held = {e.vial_id: e for e in excursion.vials.all()}
    assert set(held) == {before.pk, moved_out_during.pk}
    assert (held[moved_out_during.pk].exposed_from, held[moved_out_during.pk].exposed_until) == (at(2), at(3))
    for vial in (before, moved_out_during):
        vial.refresh_from_db()
        assert (vial.status, vial.cold_chain_hold_id) == (Vial.Status.QUARANTINED, excursion.pk)
    for vial in (moved_in_after, elsewhere):
        vial.refresh_from_db()
        assert (vial.status, vial.cold_chain_hold_id) == (Vial.Status.IN_STOCK, None)


def test_a_held_vial_is_refused_by_the_one_rule_with_its_own_code(monkeypatch, fridge, technician):
    vial = vial_at(fridge, at(-48))
    freeze_now(monkeypatch, at(9))
    readings_record(location=fridge, readings=readings(warm_morning()), actor=technician)
    vial.refresh_from_db()

    with pytest.raises(NotDispensable) as refusal:
        ensure_dispensable(vial)

    assert refusal.value.code == "cold_chain_excursion"
    assert [f.warning for f in vial_findings(vial)] == ["cold_chain_excursion"]


def test_readings_out_of_range_within_the_grace_period_are_no_excursion(monkeypatch, fridge, technician):
    vial = vial_at(fridge, at(-48))
    freeze_now(monkeypatch, at(9))
    rows = [(at(0), "5"), (at(0.25), "9.5"), (at(0.5), "5")]  # 30 minutes: the grace, not longer

    result = readings_record(location=fridge, readings=readings(rows), actor=technician)

    assert result.excursions == []
    vial.refresh_from_db()
    assert vial.status == Vial.Status.IN_STOCK


def test_an_excursion_split_over_two_imports_is_one_excursion(monkeypatch, fridge, technician):
    vial_at(fridge, at(-48))
    freeze_now(monkeypatch, at(9))
    rows = warm_morning()
    readings_record(location=fridge, readings=readings(rows[:12]), actor=technician)  # out of range at the end
    (ongoing,) = Excursion.objects.all()
    assert ongoing.ended_at is None

    readings_record(location=fridge, readings=readings(rows[12:]), actor=technician)

    (excursion,) = Excursion.objects.all()
    assert (excursion.pk, excursion.started_at, excursion.ended_at) == (ongoing.pk, at(2), at(4))
    assert excursion.vials.count() == 1


def test_a_file_imported_twice_adds_nothing(monkeypatch, fridge, technician):
    freeze_now(monkeypatch, at(9))
    data = read_logger_file(logger_file(warm_morning()), zone=ZoneInfo("UTC"))
    readings_record(location=fridge, readings=data, actor=technician)

    again = readings_record(location=fridge, readings=data, actor=technician)

    assert (again.recorded, again.already_recorded, again.batch) == (0, 33, None)
    assert TemperatureReading.objects.count() == 33
    assert Excursion.objects.count() == 1


# --- the logger file ------------------------------------------------------------------------------------


def test_a_fahrenheit_column_is_converted_to_celsius():
    data = logger_file([(at(0), "41.0"), (at(1), "53.6")], header="Date/Time,Temp (°F)")

    got = read_logger_file(data, zone=ZoneInfo("UTC"))

    assert [(r.taken_at, r.celsius) for r in got] == [(at(0), Decimal("5.00")), (at(1), Decimal("12.00"))]


def test_a_date_and_a_time_column_with_day_first_dates_and_decimal_commas_are_read():
    text = "Date;Time;Celsius(°C)\n31/03/2031;08:00:00;4,5\n01/04/2031;08:00:00;5,0\n"

    got = read_logger_file(text.encode("cp1252"), zone=ZoneInfo("Europe/London"))

    assert [(r.taken_at, r.celsius, r.where) for r in got] == [
        (datetime(2031, 3, 31, 7, 0, tzinfo=UTC), Decimal("4.50"), "line 2"),
        (datetime(2031, 4, 1, 7, 0, tzinfo=UTC), Decimal("5.00"), "line 3"),
    ]


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(fridge, technician):
    rows = warm_morning()
    data = logger_file(rows).decode().splitlines()
    data[6] = "2031-03-01 08:45:00,"  # line 7: no temperature
    data[9] = "yesterday,5.0"  # line 10: no date

    with pytest.raises(ApplicationError) as refusal:
        read_logger_file("\n".join(data).encode(), zone=ZoneInfo("UTC"))

    assert refusal.value.code == "bad_rows"
    assert refusal.value.extra["lines"] == ["line 7: '' is not a temperature", "line 10: 'yesterday' is not a date and time"]
    assert TemperatureReading.objects.count() == 0


def test_a_header_without_a_unit_is_refused_unless_the_unit_is_given():
    data = logger_file([(at(0), "5.0")], header="Timestamp,Temperature")

    with pytest.raises(ApplicationError) as refusal:
        read_logger_file(data, zone=ZoneInfo("UTC"))
    assert refusal.value.code == "unknown_unit"
    assert read_logger_file(data, zone=ZoneInfo("UTC"), unit="F")[0].celsius == Decimal("-15.00")


def test_ambiguous_dates_are_refused_unless_the_order_is_given():
    data = b"Date Time,Temp C\n03/04/2031 08:00,5.0\n"

    with pytest.raises(ApplicationError) as refusal:
        read_logger_file(data, zone=ZoneInfo("UTC"))
    assert refusal.value.code == "ambiguous_dates"
    assert read_logger_file(data, zone=ZoneInfo("UTC"), date_order="mdy")[0].taken_at == datetime(2031, 3, 4, 8, 0, tzinfo=UTC)


def test_a_file_without_a_header_is_refused():
    with pytest.raises(ApplicationError) as refusal:
        read_logger_file(b"1,2,3\n4,5,6\n", zone=ZoneInfo("UTC"))
    assert refusal.value.code == "no_header"


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        ([(at(0), "5"), (at(0), "6")], "conflicting_readings"),
        ([(at(100), "5")], "reading_in_future"),
        ([(datetime(1999, 12, 31, tzinfo=UTC), "5")], "reading_too_old"),
        ([(at(0), "500")], "implausible_temperature"),
        ([], "no_readings"),
    ],
)
def test_readings_are_refused_whole(monkeypatch, fridge, technician, rows, code):
    freeze_now(monkeypatch, at(9))
    good = [(at(-1), "5")]

    with pytest.raises(ApplicationError) as refusal:
        readings_record(location=fridge, readings=readings(good + rows if rows else []), actor=technician)

    assert refusal.value.code == code
    assert (TemperatureReading.objects.count(), ReadingBatch.objects.count()) == (0, 0)


def test_another_value_for_a_moment_on_record_is_refused_and_nothing_is_recorded(monkeypatch, fridge, technician):
    freeze_now(monkeypatch, at(9))
    readings_record(location=fridge, readings=readings([(at(0), "5")]), actor=technician)

    with pytest.raises(ApplicationError) as refusal:
        readings_record(location=fridge, readings=readings([(at(1), "5"), (at(0), "6")]), actor=technician)

    assert (refusal.value.code, refusal.value.status) == ("reading_conflict", 409)
    assert TemperatureReading.objects.count() == 1


# --- disposition ----------------------------------------------------------------------------------------


@pytest.fixture
def excursion_with(monkeypatch, fridge, technician):
    def make(**product_fields):
        product = ProductFactory(**product_fields)
        vials = [vial_at(fridge, at(-48), product=product) for _ in range(2)]
        freeze_now(monkeypatch, at(9))
        (excursion,) = readings_record(location=fridge, readings=readings(warm_morning()), actor=technician).excursions
        return excursion, product, vials
    return make


def test_release_uses_the_allowance_and_shortens_the_beyond_use_date(excursion_with, pharmacist):
    # The label allows 180 days at room temperature, then use or discard: the excursion starts that time.
    excursion, product, vials = excursion_with(room_temp_allowance_days=180, may_return_to_fridge=False)

    entries = excursion_dispose(excursion=excursion, product=product, decision="release", reason="within label",
                                actor=pharmacist)

    assert {e.outcome for e in entries} == {ExcursionVial.Outcome.RELEASED}
    for entry, vial in zip(entries, vials, strict=True):
        vial.refresh_from_db()
        assert (vial.status, vial.cold_chain_hold_id, vial.room_temp_since) == (Vial.Status.IN_STOCK, None, at(2))
        assert vial.beyond_use_date == date(2031, 8, 28)  # 1 March + 180 days, before the lot's 2032 expiry
        assert (entry.allowance_used, entry.beyond_use_before, entry.beyond_use_after) == (
            timedelta(hours=2), date(2032, 6, 30), date(2031, 8, 28))
        assert dispense_refusal(vial) is None
    excursion.refresh_from_db()
    assert excursion.status == Excursion.Status.CLOSED


def test_release_of_a_product_that_may_go_back_adds_the_excursion_to_the_time_used(excursion_with, pharmacist):
    excursion, product, vials = excursion_with(room_temp_allowance_days=30, may_return_to_fridge=True)

    excursion_dispose(excursion=excursion, product=product, decision="release", reason="ok", actor=pharmacist)

    vial = Vial.objects.get(pk=vials[0].pk)
    assert (vial.room_temp_used, vial.room_temp_since, vial.status) == (timedelta(hours=2), None, Vial.Status.IN_STOCK)


@pytest.mark.parametrize(
    ("product_fields", "code"),
    [
        ({"room_temp_allowance_days": None}, "no_room_temperature_allowance"),
        ({"room_temp_max_c": Decimal("10")}, "excursion_too_warm"),
    ],
)
def test_release_is_refused_where_the_label_does_not_allow_it(excursion_with, pharmacist, product_fields, code):
    excursion, product, vials = excursion_with(**product_fields)

    with pytest.raises(ApplicationError) as refusal:
        excursion_dispose(excursion=excursion, product=product, decision="release", reason="x", actor=pharmacist)

    assert (refusal.value.code, refusal.value.status) == (code, 409)
    assert set(Vial.objects.filter(pk__in=[v.pk for v in vials]).values_list("status", flat=True)) == {"quarantined"}
    assert set(ExcursionVial.objects.values_list("outcome", flat=True)) == {"pending"}


def test_release_is_refused_when_the_excursion_takes_more_than_is_left_of_the_allowance(excursion_with, pharmacist):
    excursion, product, vials = excursion_with(room_temp_allowance_days=30, may_return_to_fridge=True)
    Vial.objects.filter(pk=vials[1].pk).update(room_temp_used=timedelta(days=30) - timedelta(hours=1))

    with pytest.raises(ApplicationError) as refusal:
        excursion_dispose(excursion=excursion, product=product, decision="release", reason="x", actor=pharmacist)

    assert refusal.value.code == "allowance_exceeded"
    assert refusal.value.extra["serials"] == [vials[1].serial]
    assert set(ExcursionVial.objects.values_list("outcome", flat=True)) == {"pending"}


def test_waste_takes_the_vials_out_of_stock_and_closes_the_excursion(excursion_with, pharmacist):
    excursion, product, vials = excursion_with()

    excursion_dispose(excursion=excursion, product=product, decision="waste", reason="too warm", actor=pharmacist)

    assert set(Vial.objects.filter(pk__in=[v.pk for v in vials]).values_list("status", "location", "cold_chain_hold")) == {
        ("wasted", None, None)}
    excursion.refresh_from_db()
    assert excursion.status == Excursion.Status.CLOSED


def test_a_second_decision_for_the_same_vials_is_refused(excursion_with, pharmacist):
    excursion, product, _ = excursion_with()
    excursion_dispose(excursion=excursion, product=product, decision="waste", reason="x", actor=pharmacist)

    with pytest.raises(ApplicationError) as refusal:
        excursion_dispose(excursion=excursion, product=product, decision="release", reason="x", actor=pharmacist)

    assert refusal.value.code == "not_awaiting_disposition"


def test_releasing_the_lot_does_not_release_a_vial_held_for_an_excursion(excursion_with, pharmacist):
    excursion, product, vials = excursion_with()
    lot = vials[0].lot
    Lot.objects.filter(pk=lot.pk).update(status=Lot.Status.QUARANTINED)

    lot_release(lot=lot, reason="checked", actor=pharmacist)

    vials[0].refresh_from_db()
    assert (vials[0].status, vials[0].cold_chain_hold_id) == (Vial.Status.QUARANTINED, excursion.pk)


def test_wasting_a_held_vial_from_the_shelf_settles_it_in_the_excursion(excursion_with, technician):
    excursion, product, vials = excursion_with()

    for vial in vials:
        vial_waste(vial=vial, reason="dropped", actor=technician)

    assert set(excursion.vials.values_list("outcome", flat=True)) == {"wasted"}
    excursion.refresh_from_db()
    assert excursion.status == Excursion.Status.CLOSED


def test_an_ongoing_excursion_cannot_be_released(monkeypatch, fridge, technician, pharmacist):
    product = ProductFactory()
    vial_at(fridge, at(-48), product=product)
    freeze_now(monkeypatch, at(9))
    (excursion,) = readings_record(location=fridge, readings=readings(warm_morning()[:12]), actor=technician).excursions

    with pytest.raises(ApplicationError) as refusal:
        excursion_dispose(excursion=excursion, product=product, decision="release", reason="x", actor=pharmacist)

    assert refusal.value.code == "excursion_ongoing"


# --- the room-temperature clock ----------------------------------------------------------------------


def test_the_clock_adds_up_the_time_at_room_temperature_across_several_moves(monkeypatch, fridge, fridge_2, shelf, technician):
    shelf_2 = StorageLocationFactory(code="RT-2", kind=Kind.ROOM_TEMPERATURE)
    vial = vial_at(fridge, at(-1), allowance=10, may_return=True, expiry=date(2032, 1, 1))

    move_at(monkeypatch, vial, shelf, at(0), technician)  # 2 days on the shelf
    move_at(monkeypatch, vial, shelf_2, at(24), technician)
    move_at(monkeypatch, vial, fridge, at(48), technician)
    vial.refresh_from_db()
    assert (vial.room_temp_used, vial.room_temp_since, vial.beyond_use_date) == (timedelta(days=2), None, date(2032, 1, 1))

    move_at(monkeypatch, vial, fridge_2, at(24 * 5), technician)  # fridge to fridge: the clock stays stopped
    move_at(monkeypatch, vial, shelf, at(24 * 10), technician)  # 8 days left from 11 March 08:00
    vial.refresh_from_db()
    assert (vial.room_temp_used, vial.room_temp_since, vial.beyond_use_date) == (timedelta(days=2), at(240), date(2031, 3, 19))

    freeze_now(monkeypatch, at(24 * 18 + 1))  # 19 March 09:00: the allowance ran out at 08:00
    assert dispense_refusal(vial).code == "room_temperature_allowance_exceeded"
    with pytest.raises(MoveRefused) as refusal:
        vial_move(vial=vial, location=fridge, actor=technician)
    assert refusal.value.code == "room_temperature_allowance_exceeded"


def test_a_vial_whose_allowance_is_used_up_cannot_go_back_to_room_temperature(monkeypatch, fridge, shelf, technician):
    vial = vial_at(fridge, at(-1), allowance=1, may_return=True, room_temp_used=timedelta(days=1))

    with pytest.raises(MoveRefused) as refusal:
        move_at(monkeypatch, vial, shelf, at(0), technician)

    assert refusal.value.code == "room_temperature_allowance_exceeded"


def test_the_window_from_manufacture_caps_the_beyond_use_date_and_closes_room_temperature(monkeypatch, fridge, shelf, technician):
    # Gammagard Liquid: room temperature for up to 24 months, only within 24 months of manufacture.
    product = ProductFactory(room_temp_allowance_days=730, shelf_life_months=36, room_temp_within_months=24)
    young = vial_at(fridge, at(-1), product=product, expiry=date(2033, 1, 31))  # made 31 January 2030
    old = vial_at(fridge, at(-1), product=product, expiry=date(2032, 1, 31))  # made 31 January 2029

    move_at(monkeypatch, young, shelf, at(0), technician)
    young.refresh_from_db()
    assert young.beyond_use_date == date(2032, 1, 31)  # manufacture + 24 months, before start + 730 days
    with pytest.raises(MoveRefused) as refusal:
        move_at(monkeypatch, old, shelf, at(0), technician)
    assert refusal.value.code == "room_temperature_window_closed"


def test_a_production_date_scanned_from_the_carton_wins_over_the_shelf_life(monkeypatch, fridge, shelf, technician):
    product = ProductFactory(room_temp_allowance_days=730, shelf_life_months=36, room_temp_within_months=24)
    vial = vial_at(fridge, at(-1), product=product, expiry=date(2033, 1, 31))
    Lot.objects.filter(pk=vial.lot_id).update(manufactured_on=date(2030, 6, 1))
    vial.refresh_from_db()

    move_at(monkeypatch, vial, shelf, at(0), technician)

    vial.refresh_from_db()
    assert vial.beyond_use_date == date(2032, 6, 1)


def test_a_carton_carrying_its_production_date_records_it_on_the_new_lot(fridge, technician):
    from inventory.services import receipt_create

    presentation = PresentationFactory(product=ProductFactory(shelf_life_months=36))
    scan = f"01{presentation.gtin}11300115172912311000LOT-P11\x1d21S-1"

    (vial,) = receipt_create(location=fridge, scans=[scan], actor=technician)

    lot = Lot.objects.get(pk=vial.lot_id)
    assert (lot.manufactured_on, lot.manufacture_date()) == (date(2030, 1, 15), date(2030, 1, 15))


def test_a_room_temperature_shelf_above_25_degrees_holds_its_vials_and_only_waste_is_allowed(
    monkeypatch, shelf, fridge, technician, pharmacist
):
    product = ProductFactory(room_temp_allowance_days=180, may_return_to_fridge=True)
    vial = vial_at(fridge, at(-48), product=product)
    move_at(monkeypatch, vial, shelf, at(-24), technician)
    freeze_now(monkeypatch, at(9))
    rows = [(moment, "27.5" if value == "11.5" else "21.0") for moment, value in warm_morning()]

    (excursion,) = readings_record(location=shelf, readings=readings(rows), actor=technician).excursions

    assert (excursion.range_min_c, excursion.range_max_c) == (None, Decimal("25"))
    with pytest.raises(ApplicationError) as refusal:
        excursion_dispose(excursion=excursion, product=product, decision="release", reason="x", actor=pharmacist)
    assert refusal.value.code == "excursion_too_warm"
    excursion_dispose(excursion=excursion, product=product, decision="waste", reason="27.5 °C", actor=pharmacist)
    vial.refresh_from_db()
    assert vial.status == Vial.Status.WASTED
