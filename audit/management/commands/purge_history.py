"""python manage.py purge_history --reason "…": delete history and access logs past AUDIT_RETENTION_DAYS.

Refused while the retention is "forever" (the default) and without a reason; what was deleted, by
whom and why is recorded (HistoryPurge, itself history) and verify_history still proves the rest.
"""

import getpass

from django.core.management.base import BaseCommand, CommandError

from audit.services import history_purge
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Delete history and access-log rows older than AUDIT_RETENTION_DAYS, recording who and why."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reason", required=True, help="why (recorded with the purge)")

    def handle(self, *args, **options) -> None:
        try:
            operator = getpass.getuser()
        except (OSError, KeyError):
            operator = "unknown"
        try:
            purge = history_purge(reason=options["reason"], operator=operator)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        for source, count in purge.rows_deleted.items():
            self.stdout.write(f"{source}: {count:,} rows deleted")
        self.stdout.write(
            self.style.SUCCESS(f"Purged up to checkpoint #{purge.up_to_checkpoint} (older than {purge.cutoff:%Y-%m-%d}).")
        )
