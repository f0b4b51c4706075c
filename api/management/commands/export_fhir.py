"""python manage.py export_fhir --since 2026-01-01 [--until 2026-12-31] [--patient MRN] -o fhir-export/

FHIR Bulk Data NDJSON: one file per resource type (MedicationDispense.ndjson,
MedicationAdministration.ndjson, AdverseEvent.ndjson, Patient.ndjson), one resource a line, and a
manifest.json shaped like a Bulk Data status response listing them. A progress bar (tqdm) counts
the records read, on standard error. Rows are read a page at a time, so memory stays flat."""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from api.fhir import Search, _day_bounds, json_default, pages, patient_resource, resources, search_rows
from core.errors import ApplicationError
from traceability.models import Patient

EVENT_TYPES = ("MedicationDispense", "MedicationAdministration", "AdverseEvent")


class Command(BaseCommand):
    help = "Export dispenses, administrations, adverse events and their patients as FHIR R4 Bulk Data NDJSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", required=True, help="from this date (YYYY-MM-DD, local) or ISO date-time")
        parser.add_argument("--until", help="to this date (its whole day, inclusive) or ISO date-time (exclusive)")
        parser.add_argument("--patient", help="only this patient (MRN)")
        parser.add_argument("-o", "--output", default="fhir-export", help="the folder to write (made if missing)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        try:
            since = _day_bounds(options["since"])[0]
            until = _day_bounds(options["until"])[1] if options.get("until") else None
        except ApplicationError as error:
            raise CommandError(error.message) from None
        search = Search(mrn=options.get("patient") or None, since=since, until=until)
        folder = Path(options["output"])
        folder.mkdir(parents=True, exist_ok=True)

        rows = {kind: search_rows(kind, search) for kind in EVENT_TYPES}
        totals = {kind: queryset.count() for kind, queryset in rows.items()}
        counts, patients = {}, set()
        with tqdm(total=sum(totals.values()), unit=" records", file=sys.stderr, desc="FHIR export",
                  disable=options["no_progress"]) as bar:
            for kind in EVENT_TYPES:
                counts[kind] = 0
                with open(folder / f"{kind}.ndjson", "w", encoding="utf-8") as out:
                    for page in pages(rows[kind]):
                        for row in page:
                            patients.add(row.session.patient_id)
                        for resource in resources(kind, page):
                            out.write(json.dumps(resource, ensure_ascii=False, separators=(",", ":"), default=json_default) + "\n")
                            counts[kind] += 1
                        bar.update(len(page))
            counts["Patient"] = 0
            with open(folder / "Patient.ndjson", "w", encoding="utf-8") as out:
                for page in pages(Patient.objects.filter(pk__in=sorted(patients)).order_by("pk")):
                    for patient in page:
                        out.write(json.dumps(patient_resource(patient), ensure_ascii=False, separators=(",", ":"),
                                           default=json_default) + "\n")
                        counts["Patient"] += 1

        request = "manage.py export_fhir --since " + options["since"] + (
            f" --until {options['until']}" if options.get("until") else "") + (
            f" --patient {options['patient']}" if options.get("patient") else "")
        manifest = {
            "transactionTime": timezone.localtime().isoformat(),
            "request": request,
            "requiresAccessToken": False,
            "output": [{"type": kind, "url": f"{kind}.ndjson", "count": counts[kind]}
                       for kind in (*EVENT_TYPES, "Patient")],
            "error": [],
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for kind in (*EVENT_TYPES, "Patient"):
            self.stdout.write(f"{kind}.ndjson: {counts[kind]} resource(s)")
        self.stdout.write(self.style.SUCCESS(f"FHIR Bulk Data written to {folder}/ (manifest.json)"))


