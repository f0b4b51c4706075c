"""The history workbook: a Timeline of every event in time order, a Summary, the access log of
patient data, then one sheet per kind of record that has rows; streamed to a file.

Rows go from the database cursor (`.iterator()`) through one batch in memory into the workbook,
whose sheets are streamed to the file (or to temporary files), so memory stays flat whatever the
number of rows. The writer is our own (core.xlsx: rows formatted straight into the zip); bench/
compares it with XlsxWriter's and openpyxl's streaming modes, which write the same workbook through
the same `book` interface, and bench/README.md has the figures behind the choice.

Everything an auditor reads is in words: people as "tech (Tina Tech)", related records by name
("location: (none) → Main pharmacy fridge A"), choices by label, JSON as a line of text.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.utils import timezone

from audit.registry import ACTIONS, Labels, audited_models
from audit.selectors import (
    OBJECT,
    REASON,
    SNAPSHOT_START,
    TYPE,
    who_and_role,
    WHEN,
    HistoryFilters,
    access_batches,
    changes_text,
    export_counts,
    history_batches,
    readable_json,
    timeline_batches,
)
from core.xlsx import StreamingWorkbook
from traceability.models import Patient

# Excel's limit is 1,048,576 rows a sheet, the header included; a longer history continues on
# "<Sheet> (2)", "<Sheet> (3)", ….
MAX_DATA_ROWS = 1_048_575

TIMELINE_HEADERS = ("Who", "Role", "Action", "Record", "Object", "Reason", "Changes", "Record id")
TIMELINE_WIDTHS = (20, 22, 18, 9, 18, 56, 36, 70, 10)
ACCESS_HEADERS = ("Who", "Role", "Patient", "Seen through", "Method", "Path")
ACCESS_WIDTHS = (20, 22, 18, 36, 22, 8, 60)
LEAD_HEADERS = ("When", "Who", "Role", "Action", "Reason", "Object id", "Object", "Changes")
LEAD_WIDTHS = (20, 22, 16, 9, 36, 10, 48, 60)
NOTES = (
    "Timeline: every record of every kind in time order, one row each; Changes compare a record with "
    "the previous record of the same object, whatever the filters, as field: old → new.",
    "Patient access: who saw which patient's data, when and through which page or API route.",
    "The sheets after them hold each kind of record with all its fields, grouped by object (oldest "
    "record first within each object); only kinds with records appear.",
    "Role is the user's role at the time of the export.",
    "The checkpoint is the signed Merkle root over the sealed history taken as the export began; "
    "`manage.py verify_history` proves the history still matches it.",
)
NOTHING = "Nothing matched these filters: no history record and no access to patient data."


# --- Writers -----------------------------------------------------------------------------------
# Each book: add_sheet(title, headers, widths, kinds, summary=False) -> sheet; close().
# Each sheet: append(list of values), close(). `kinds` names the date and date-time columns.


class _StreamBook:
    def __init__(self, target) -> None:
        self.book = StreamingWorkbook(target)

    def add_sheet(self, title, headers, widths, kinds, *, summary: bool = False):
        # The Summary is written last (it counts the rows) and shown after the Timeline's sheets.
        position = None
        if summary:
            position = sum(1 for s in self.book.sheets if s["title"] == "Timeline" or s["title"].startswith("Timeline ("))
        return self.book.add_sheet(title, headers, widths, position=position)

    def close(self) -> None:
        self.book.close()


def _book(target) -> _StreamBook:
    if not hasattr(target, "write"):
        target = str(target)
    return _StreamBook(target)


# --- The workbook ------------------------------------------------------------------------------


@dataclass
class ExportResult:
    rows: int = 0  # history records (each is one Timeline row and one row on its kind's sheet)
    sheet_counts: dict[str, int] = field(default_factory=dict)
    access_rows: int = 0


def _kind(f: models.Field) -> str:
    if isinstance(f, models.DateTimeField):
        return "datetime"
    if isinstance(f, models.DateField):
        return "date"
    return ""


def _width(f: models.Field, header: str) -> float:
    if isinstance(f, models.DateTimeField):
        width = 20
    elif isinstance(f, models.DateField):
        width = 12
    elif f.is_relation:
        width = 30
    elif isinstance(f, (models.BooleanField, models.IntegerField, models.DecimalField)):
        width = 10
    elif isinstance(f, models.CharField):
        width = min(max(f.max_length or 20, 10), 40)
    else:
        width = 40
    return max(width, len(header) + 2)


class _Sheets:
    """One logical sheet, continued on "<title> (2)", … past Excel's row limit."""

    def __init__(self, book, title, headers, widths, kinds, max_rows: int) -> None:
        self.book, self.title, self.args, self.max_rows = book, title, (headers, widths, kinds), max_rows
        self.part = 1
        self.sheet = book.add_sheet(title, *self.args)

    def append(self, values) -> None:
        if self.sheet.rows >= self.max_rows:
            self.sheet.close()
            self.part += 1
            self.sheet = self.book.add_sheet(f"{self.title[:25]} ({self.part})", *self.args)
        self.sheet.append(values)

    def close(self) -> None:
        self.sheet.close()


def write_history_workbook(
    target: str | Path | BinaryIO,
    filters: HistoryFilters,
    *,
    exported_by: str,
    checkpoint=None,
    progress: Callable[[int], None] | None = None,
    book_factory: Callable | None = None,
    chunk_size: int = 2000,
    max_rows_per_sheet: int = MAX_DATA_ROWS,
) -> ExportResult:
    """Write the history workbook for these filters to a path or binary file; returns rows per sheet.

    `progress` is told the number of history records done (the Timeline and the sheets of each
    kind each count for half of a record).
    """
    tz = ZoneInfo(settings.TIME_ZONE)
    exported_at = timezone.now()
    registry = audited_models()
    counts, access_count = export_counts(filters)
    specs = [registry[key] for key, count in counts.items() if count]
    book = (book_factory or _book)(target)
    result = ExportResult()
    when = f"When ({settings.TIME_ZONE})"
    written = 0

    def local(moment: datetime) -> datetime:
        # Excel knows no time zones: the site's local time, with the zone dropped.
        return moment.astimezone(tz).replace(tzinfo=None)

    def advance(rows: int) -> None:
        nonlocal written
        written += rows
        if progress is not None:
            progress(written // 2)

    # The Timeline: what happened, in order.
    labels = Labels()
    timeline = _Sheets(
        book, "Timeline", [when, *TIMELINE_HEADERS], TIMELINE_WIDTHS, ["datetime"] + [""] * 8, max_rows_per_sheet
    )
    for batch in timeline_batches(filters, labels=labels, models=specs, chunk_size=chunk_size):
        for spec, row, before in batch:
            who, role = who_and_role(row, labels)
            timeline.append(
                [
                    local(row[WHEN]),
                    who,
                    role,
                    ACTIONS.get(row[TYPE], row[TYPE]),
                    spec.noun,
                    spec.label(spec.snapshot(row), labels),
                    row[REASON] or "",
                    changes_text(spec, row, before, labels),
                    row[OBJECT],
                ]
            )
        result.rows += len(batch)
        advance(len(batch))
    timeline.close()

    # Who looked: the access log of patient data.
    if access_count:
        access = _Sheets(
            book, "Patient access", [when, *ACCESS_HEADERS], ACCESS_WIDTHS, ["datetime"] + [""] * 6, max_rows_per_sheet
        )
        for chunk in access_batches(filters, labels=labels, chunk_size=chunk_size):
            for at, user_id, patient_id, via, method, path in chunk:
                who, role = labels.user(user_id)
                access.append([local(at), who, role, labels.text(Patient, patient_id), via, method, path])
            result.access_rows += len(chunk)
        access.close()

    # Each kind of record with all its fields, in words.
    for spec in specs:
        lead = [when, *LEAD_HEADERS[1:]]
        headers = lead + spec.headers
        widths = list(LEAD_WIDTHS) + [_width(f, h) for f, h in zip(spec.fields, spec.headers)]
        kinds = ["datetime"] + [""] * (len(LEAD_HEADERS) - 1) + [_kind(f) for f in spec.fields]
        end = len(spec.columns)
        # Positions within the snapshot slice of the columns that need converting for Excel.
        local_times = [i for i, f in enumerate(spec.fields) if isinstance(f, models.DateTimeField)]
        json_texts = [i for i, f in enumerate(spec.fields) if isinstance(f, models.JSONField)]
        related = [(index - SNAPSHOT_START, model) for index, model in spec.foreign_keys]
        choices = [(index - SNAPSHOT_START, mapping) for index, mapping in spec.choices.items()]
        label = spec.label
        snapshot = spec.snapshot
        sheet = _Sheets(book, spec.title, headers, widths, kinds, max_rows_per_sheet)
        count = 0
        for batch in history_batches(spec, filters, labels=labels, chunk_size=chunk_size):
            for row, before in batch:
                who, role = who_and_role(row, labels)
                values = list(row[SNAPSHOT_START:end])
                for i in local_times:
                    if values[i] is not None:
                        values[i] = local(values[i])
                for i in json_texts:
                    if values[i] is not None:
                        values[i] = readable_json(values[i])
                for i, model in related:
                    if values[i] is not None:
                        values[i] = labels.text(model, values[i])
                for i, mapping in choices:
                    values[i] = mapping.get(values[i], values[i])
                sheet.append(
                    [
                        local(row[WHEN]),
                        who,
                        role,
                        ACTIONS.get(row[TYPE], row[TYPE]),
                        row[REASON] or "",
                        row[OBJECT],
                        label(snapshot(row), labels),
                        changes_text(spec, row, before, labels) if before is not None or row[TYPE] == "~" else "",
                        *values,
                    ]
                )
            count += len(batch)
            advance(len(batch))
        sheet.close()
        result.sheet_counts[spec.key] = count

    summary = book.add_sheet("Summary", ["History export", ""], [34, 100], ["", ""], summary=True)
    for line in _summary_lines(
        filters, result, exported_by=exported_by, exported_at=exported_at, tz=tz, checkpoint=checkpoint
    ):
        summary.append(line)
    summary.close()
    book.close()
    return result


def _summary_lines(
    filters: HistoryFilters, result: ExportResult, *, exported_by, exported_at, tz, checkpoint
) -> list[list]:
    registry = audited_models()
    lines: list[list] = [
        ["Exported by", exported_by],
        [f"Exported at ({settings.TIME_ZONE})", exported_at.astimezone(tz).replace(tzinfo=None)],
        ["Time zone of all dates", settings.TIME_ZONE],
        [None, None],
        ["Filters", None],
    ]
    lines += [[name, value] for name, value in filters.describe()] or [["(none)", "all history"]]
    if filters.lot:
        lines.append(["Lots matched", f"{len(filters.lot_ids)} lot(s) numbered {filters.lot}" + (
            " (prefix)" if filters.lot_match == "prefix" else "")])
    lines += [[None, None]]
    if not result.rows and not result.access_rows:
        lines += [["Result", NOTHING], [None, None]]
    lines += [["Sheet", "Rows"], ["Timeline", result.rows], ["Patient access", result.access_rows]]
    lines += [[registry[key].title, count] for key, count in result.sheet_counts.items()]
    lines += [["Total history records", result.rows], [None, None]]
    lines += _checkpoint_lines(checkpoint, tz)
    lines += [[None, None], ["Notes", None]]
    lines += [[None, note] for note in NOTES]
    return lines


def _checkpoint_lines(checkpoint, tz) -> list[list]:
    if checkpoint is None:
        return [["Checkpoint", "(none taken for this export)"]]
    return [
        ["Checkpoint", f"#{checkpoint.sequence}"],
        [f"Checkpoint taken ({settings.TIME_ZONE})", checkpoint.created_at.astimezone(tz).replace(tzinfo=None)],
        ["Sealed rows covered", f"every row sealed up to seal #{checkpoint.last_seal} ({checkpoint.leaves:,} since checkpoint #{checkpoint.sequence - 1})"],
        ["Merkle root (RFC 6962)", checkpoint.root],
        ["Signature (HMAC-SHA256)", checkpoint.signature],
    ]
