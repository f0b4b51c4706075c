"""python manage.py verify_history: is the change history (and the access log) as the application wrote it?

Exit status 0 when every row matches its seal and every checkpoint its Merkle root; 1 otherwise,
naming the first row found changed, deleted, reordered or inserted outside the application.
"""

import time

from django.core.management.base import BaseCommand

from audit.verify import verify_history

SHOWN = 20


class Command(BaseCommand):
    help = "Verify the sealed change history and access log; name the first row changed outside the application."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--all", action="store_true", help="list every problem, not only the first 20")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        report = verify_history()
        seconds = max(time.monotonic() - started, 1e-6)
        self.stdout.write(
            f"Checked {report.seals:,} seals ({report.rows:,} rows) and {report.checkpoints:,} checkpoints "
            f"in {seconds:.1f} s ({report.seals / seconds:,.0f} rows/s)."
        )
        if report.seals_after_checkpoint:
            self.stdout.write(f"{report.seals_after_checkpoint:,} rows sealed since the last checkpoint (the next one fixes them).")
        if report.ok:
            self.stdout.write(self.style.SUCCESS("The history is as the application wrote it."))
            return
        first = report.first
        self.stderr.write(self.style.ERROR(f"First problem: {first.text}"))
        shown = report.problems if options["all"] else report.problems[:SHOWN]
        for problem in shown[1:]:
            self.stderr.write(f"  also: {problem.text}")
        if len(report.problems) > len(shown):
            self.stderr.write(f"  … and {len(report.problems) - len(shown):,} more (--all lists them).")
        self.stderr.write(self.style.ERROR(f"{len(report.problems):,} problem(s): the history was changed outside the application."))
        raise SystemExit(1)
