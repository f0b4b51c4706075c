"""python manage.py export_history --since 2025-01-01 --until 2025-01-31 [--lot …] [--patient …] -o history.xlsx"""

import getpass
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.models import ExportEvent
from audit.registry import audited_models
from audit.selectors import export_counts, parse_filters
from audit.services import history_export
from core.errors import ApplicationError


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment (a container, a cron job)
        return ""


class Progress:
    """A progress bar on a terminal; on anything else (a log, a pipe) a plain line now and then."""

    def __init__(self, out, total: int, *, tty: bool) -> None:
        self.out = out
        self.total = max(total, 1)
        self.tty = tty
        self.started = time.monotonic()
        self.last_line = 0

    def __call__(self, rows: int) -> None:
        if self.tty:
            done = min(rows / self.total, 1.0)
            bar = "#" * int(done * 30)
            rate = rows / max(time.monotonic() - self.started, 1e-6)
            self.out.write(f"\r[{bar:<30}] {done:6.1%} {rows:,}/{self.total:,} rows, {rate:,.0f} rows/s", ending="")
            self.out.flush()
        elif rows - self.last_line >= max(self.total // 10, 10_000) or rows >= self.total:
            self.last_line = rows
            self.out.write(f"{rows:,} of {self.total:,} rows written")

    def end(self) -> None:
        if self.tty:
            self.out.write("")


class Command(BaseCommand):
    help = "Export the change history (who, when, what, why) to an Excel workbook."

    def add_arguments(self, parser) -> None:
        parser.add_argument("-o", "--output", required=True, help="the .xlsx file to write")
        parser.add_argument("--since", help="from this date (YYYY-MM-DD, local) or ISO date-time, inclusive")
        parser.add_argument("--until", help="to this date (its whole day) or ISO date-time (exclusive)")
        parser.add_argument("--lot", help="lot number (or a scanned carton): the lot, its vials, dispenses, sessions and recalls")
        parser.add_argument("--lot-match", choices=["exact", "prefix"], help="exact (default) or every lot starting with --lot")
        parser.add_argument("--vial", help="vial id: the vial, its dispenses and their sessions")
        parser.add_argument("--patient", help="patient MRN: the patient, their sessions, dispenses, flags, reactions")
        parser.add_argument("--user", help="only records made by this username")
        parser.add_argument("--model", choices=list(audited_models()), help="only this kind of record")
        parser.add_argument("--as", dest="actor", help="username to record as the exporter (default: none)")

    def handle(self, *args, **options) -> None:
        try:
            filters = parse_filters(
                since=options["since"],
                until=options["until"],
                lot=options["lot"],
                lot_match=options["lot_match"],
                vial=options["vial"],
                patient=options["patient"],
                user=options["user"],
                model=options["model"],
            )
        except ApplicationError as error:
            suggestions = error.extra.get("suggestions")
            hint = f" Did you mean: {', '.join(map(str, suggestions))}?" if suggestions else ""
            raise CommandError(error.message + hint) from None
        actor = None
        if options["actor"]:
            actor = get_user_model().objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"No user {options['actor']!r}.")

        output = Path(options["output"])
        counts, access = export_counts(filters)
        total = sum(counts.values())
        progress = Progress(self.stdout, total, tty=self.stdout.isatty())
        event = history_export(
            filters=filters,
            path=output,
            channel=ExportEvent.Channel.COMMAND,
            actor=actor,
            operator=_login(),
            progress=progress,
        )
        progress.end()
        titles = {key: spec.title for key, spec in audited_models().items()} | {"access": "Patient access"}
        if not event.row_count and not event.sheet_counts.get("access"):
            self.stdout.write(self.style.WARNING("Nothing matched these filters; the summary sheet says so."))
        for key, count in event.sheet_counts.items():
            self.stdout.write(f"{titles[key]}: {count:,} rows")
        if event.checkpoint_id:
            checkpoint = event.checkpoint
            self.stdout.write(f"Checkpoint #{checkpoint.sequence}: Merkle root {checkpoint.root}")
        self.stdout.write(self.style.SUCCESS(f"Wrote {event.row_count:,} history rows to {output}"))
