"""The history workbook: a summary sheet and one sheet per audited model, streamed to a file.

Rows go from the database cursor (`.iterator()`) through one batch in memory into the workbook,
whose sheets are streamed to the file (or to temporary files), so memory stays flat whatever the
number of rows. The writer is our own (core.xlsx: rows formatted straight into the zip); bench/
compares it with XlsxWriter's and openpyxl's streaming modes, which write the same workbook through
the same `book` interface, and bench/README.md has the figures behind the choice.
"""

import json
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
    USER,
    WHEN,
    HistoryFilters,
    changes_text,
    history_batches,
    selected_models,
)
from core.xlsx import StreamingWorkbook

# Excel's limit is 1,048,576 rows a sheet, the header included; a longer history continues on
# "<Sheet> (2)", "<Sheet> (3)", ….
MAX_DATA_ROWS = 1_048_575

LEAD_HEADERS = ("When", "Who", "Role", "Action", "Reason", "Object id", "Object", "Changes")
LEAD_WIDTHS = (20, 14, 16, 9, 36, 10, 48, 60)
NOTES = (
    "Each sheet lists the history records of one kind of record, grouped by object (oldest record first "
    "within each object); use the filter on the When column to sort them as one timeline.",
    "Changes compare a record with the previous record of the same object (fields as stored; related "
    "records by their label).",
    "Role is the user's role at the time of the export.",
)


# --- Writers -----------------------------------------------------------------------------------
# Each book: add_sheet(title, headers, widths, kinds, first=False) -> sheet; close().
# Each sheet: append(list of values), close(). `kinds` names the date and date-time columns.


class _StreamBook:
    def __init__(self, target) -> None:
        self.book = StreamingWorkbook(target)

    def add_sheet(self, title, headers, widths, kinds, *, first: bool = False):
        return self.book.add_sheet(title, headers, widths, position=0 if first else None)

    def close(self) -> None:
        self.book.close()


def _book(target) -> _StreamBook:
    if not hasattr(target, "write"):
        target = str(target)
    return _StreamBook(target)


# --- The workbook ------------------------------------------------------------------------------


@dataclass
class ExportResult:
    rows: int = 0
    sheet_counts: dict[str, int] = field(default_factory=dict)


def _kind(f: models.Field) -> str:
    if isinstance(f, models.DateTimeField):
        return "datetime"
    if isinstance(f, models.DateField):
        return "date"
    return ""


def _width(f: models.Field) -> float:
    if isinstance(f, models.DateTimeField):
        width = 20
    elif isinstance(f, models.DateField):
        width = 12
    elif isinstance(f, (models.BooleanField, models.ForeignKey, models.IntegerField, models.DecimalField)):
        width = 10
    elif isinstance(f, models.CharField):
        width = min(max(f.max_length or 20, 10), 40)
    else:
        width = 40
    return max(width, len(f.attname) + 2)


def write_history_workbook(
    target: str | Path | BinaryIO,
    filters: HistoryFilters,
    *,
    exported_by: str,
    progress: Callable[[int], None] | None = None,
    book_factory: Callable | None = None,
    chunk_size: int = 2000,
    max_rows_per_sheet: int = MAX_DATA_ROWS,
) -> ExportResult:
    """Write the history workbook for these filters to a path or binary file; returns rows per sheet."""
    tz = ZoneInfo(settings.TIME_ZONE)
    exported_at = timezone.now()
    book = (book_factory or _book)(target)
    result = ExportResult()
    lead_headers = [f"When ({settings.TIME_ZONE})", *LEAD_HEADERS[1:]]
    lead_kinds = ["datetime"] + [""] * (len(LEAD_HEADERS) - 1)

    for spec in selected_models(filters):
        headers = lead_headers + [f.attname for f in spec.fields]
        widths = list(LEAD_WIDTHS) + [_width(f) for f in spec.fields]
        kinds = lead_kinds + [_kind(f) for f in spec.fields]
        end = len(spec.columns)
        # Positions within the snapshot slice of the columns that need converting for Excel.
        local_times = [i for i, f in enumerate(spec.fields) if isinstance(f, models.DateTimeField)]
        json_texts = [i for i, f in enumerate(spec.fields) if isinstance(f, models.JSONField)]
        label = spec.label
        snapshot = spec.snapshot
        part = 1
        sheet = book.add_sheet(spec.title, headers, widths, kinds)
        written = 0
        labels = Labels()
        for batch in history_batches(spec, filters, labels=labels, chunk_size=chunk_size):
            for row, before in batch:
                if sheet.rows >= max_rows_per_sheet:
                    sheet.close()
                    part += 1
                    sheet = book.add_sheet(f"{spec.title[:25]} ({part})", headers, widths, kinds)
                who, role = labels.user(row[USER])
                values = list(row[SNAPSHOT_START:end])
                for i in local_times:
                    if values[i] is not None:
                        # Excel knows no time zones: the site's local time, with the zone dropped.
                        values[i] = values[i].astimezone(tz).replace(tzinfo=None)
                for i in json_texts:
                    if values[i] is not None:
                        values[i] = json.dumps(values[i], ensure_ascii=False)
                sheet.append(
                    [
                        row[WHEN].astimezone(tz).replace(tzinfo=None),
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
            written += len(batch)
            result.rows += len(batch)
            if progress is not None:
                progress(result.rows)
        sheet.close()
        result.sheet_counts[spec.key] = written

    summary = book.add_sheet("Summary", ["History export", ""], [34, 100], ["", ""], first=True)
    for line in _summary_lines(filters, result, exported_by=exported_by, exported_at=exported_at, tz=tz):
        summary.append(line)
    summary.close()
    book.close()
    return result


def _summary_lines(filters: HistoryFilters, result: ExportResult, *, exported_by, exported_at, tz) -> list[list]:
    registry = audited_models()
    lines: list[list] = [
        ["Exported by", exported_by],
        [f"Exported at ({settings.TIME_ZONE})", exported_at.astimezone(tz).replace(tzinfo=None)],
        ["Time zone of all dates", settings.TIME_ZONE],
        [None, None],
        ["Filters", None],
    ]
    lines += [[name, value] for name, value in filters.describe()] or [["(none)", "all history"]]
    lines += [[None, None], ["Sheet", "Rows"]]
    lines += [[registry[key].title, count] for key, count in result.sheet_counts.items()]
    lines += [["Total", result.rows], [None, None], ["Notes", None]]
    lines += [[None, note] for note in NOTES]
    return lines
