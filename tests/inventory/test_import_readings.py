"""manage.py import_readings: a logger's file in, all or nothing, excursions reported."""

from datetime import datetime, timedelta, timezone as dt_timezone
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from inventory.models import Excursion, ReadingBatch, StorageLocation, TemperatureReading
from tests.factories import StorageLocationFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 10, 8, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def fridge():
    return StorageLocationFactory(code="FRIDGE-9", kind=StorageLocation.Kind.REFRIGERATOR)


def write(tmp_path, lines, name="logger.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return str(path)


def fahrenheit_file(tmp_path):
    rows = ["Device,EL-USB-2", "Interval,15 min", "Time,Temperature (°F),Humidity"]
    for n in range(24):
        moment = START + timedelta(minutes=15 * n)
        rows.append(f"{moment:%Y-%m-%d %H:%M},{'50.0' if 4 <= n < 12 else '41.0'},40")
    return write(tmp_path, rows)


def test_a_fahrenheit_logger_file_is_imported_and_its_excursion_reported(tmp_path, fridge, pharmacist):
    out = StringIO()

    call_command("import_readings", fahrenheit_file(tmp_path), "--location", "FRIDGE-9", "--user", pharmacist.username,
                 "--timezone", "UTC", stdout=out)

    assert "24 readings imported, 0 already on record" in out.getvalue()
    assert "Excursion" in out.getvalue()
    assert set(TemperatureReading.objects.values_list("celsius", flat=True)) == {5, 10}
    batch = ReadingBatch.objects.get()
    assert (batch.source, batch.filename, batch.recorded_by, len(batch.sha256)) == ("logger_file", "logger.csv", pharmacist, 64)
    excursion = Excursion.objects.get()
    assert (excursion.started_at, excursion.ended_at) == (START + timedelta(hours=1), START + timedelta(hours=3))


def test_importing_the_same_file_again_adds_nothing(tmp_path, fridge):
    path = fahrenheit_file(tmp_path)
    call_command("import_readings", path, "--location", "FRIDGE-9", "--timezone", "UTC", stdout=StringIO())
    out = StringIO()

    call_command("import_readings", path, "--location", "FRIDGE-9", "--timezone", "UTC", stdout=out)

    assert "0 readings imported, 24 already on record" in out.getvalue()
    assert (TemperatureReading.objects.count(), Excursion.objects.count()) == (24, 1)


def test_bad_rows_refuse_the_whole_file_naming_their_lines(tmp_path, fridge):
    path = write(tmp_path, ["Timestamp,Temp °C", "2026-01-10 08:00,5.0", "2026-01-10 08:15,n/a", "2026-01-10 08:30,5.1",
                            "soon,5.0"])

    with pytest.raises(CommandError) as refusal:
        call_command("import_readings", path, "--location", "FRIDGE-9", stdout=StringIO())

    assert "line 3: 'n/a' is not a temperature" in str(refusal.value)
    assert "line 5: 'soon' is not a date and time" in str(refusal.value)
    assert (TemperatureReading.objects.count(), ReadingBatch.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--location", "NOWHERE"], "NOWHERE"),
        (["--location", "FRIDGE-9", "--user", "ghost"], "ghost"),
        (["--location", "FRIDGE-9", "--timezone", "Mars/Base"], "Mars/Base"),
    ],
)
def test_the_command_refuses_what_it_cannot_use(tmp_path, fridge, arguments, words):
    with pytest.raises(CommandError) as refusal:
        call_command("import_readings", fahrenheit_file(tmp_path), *arguments, stdout=StringIO())

    assert words in str(refusal.value)
    assert TemperatureReading.objects.count() == 0


def test_a_missing_file_is_refused(fridge):
    with pytest.raises(CommandError):
        call_command("import_readings", "/nonexistent/file.csv", "--location", "FRIDGE-9", stdout=StringIO())
