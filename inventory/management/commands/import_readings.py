import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.timezone import localtime

from core.errors import ApplicationError
from inventory.coldchain import MAX_READINGS_PER_FILE, readings_record
from inventory.logger_csv import read_logger_file
from inventory.models import ReadingBatch
from inventory.services import location_by_code

MAX_FILE_BYTES = 50 * 1024 * 1024


class Command(BaseCommand):
    help = (
        "Import a temperature data logger's CSV file for one storage location: a timestamp column (or a date and "
        "a time column) and a temperature column in °C or °F, told by the header. All rows or none; bad rows are "
        "reported by line. Readings already imported are skipped, so a file may be imported again. Excursions "
        "found in the readings hold the vials that were in the location for a pharmacist."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the logger's CSV file")
        parser.add_argument("--location", required=True, help="code of the storage location the logger was in")
        parser.add_argument("--user", help="username recorded as having imported the file")
        parser.add_argument("--unit", choices=["C", "F"], help="the temperature unit, when the header does not say")
        parser.add_argument("--date-order", choices=["ymd", "dmy", "mdy"],
                            help="how dates like 03/04/2026 are written, when the file does not give it away")
        parser.add_argument("--timezone", default=None,
                            help=f"time zone of timestamps without one (default: {settings.TIME_ZONE})")

    def handle(self, *args, file, location, user=None, unit=None, date_order=None, timezone=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CommandError(f"{file} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
        try:
            zone = ZoneInfo(timezone or settings.TIME_ZONE)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CommandError(f"Unknown time zone {timezone!r}.") from exc
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user is called {user!r}.")
        data = path.read_bytes()
        try:
            where = location_by_code(location)
            readings = read_logger_file(data, zone=zone, unit=unit, date_order=date_order)
            result = readings_record(
                location=where, readings=readings, actor=actor, source=ReadingBatch.Source.LOGGER_FILE,
                filename=path.name, sha256=hashlib.sha256(data).hexdigest(), limit=MAX_READINGS_PER_FILE,
            )
        except ApplicationError as error:
            raise CommandError(f"{error.message} ({error.code})") from error
        self.stdout.write(
            f"{where.code}: {result.recorded} readings imported, {result.already_recorded} already on record."
        )
        for excursion in result.excursions:
            held = excursion.vials.filter(outcome="pending").count()
            end = f"{localtime(excursion.ended_at):%Y-%m-%d %H:%M}" if excursion.ended_at else "still out of range"
            self.stdout.write(
                f"Excursion {excursion.pk}: {excursion.lowest_c}–{excursion.highest_c} °C from "
                f"{localtime(excursion.started_at):%Y-%m-%d %H:%M} to {end}; {held} vial(s) held for a pharmacist."
            )
