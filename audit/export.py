"""The history workbook: a summary sheet and one sheet per audited model, streamed to a file.

Rows go from the database cursor (`.iterator()`) through one batch in memory into the workbook,
whose sheets are streamed to the file (or to temporary files), so memory stays flat whatever the
number of rows. Three writers produce the same workbook:

- "stream" (the default): audit.xlsx, rows formatted straight into the zip; the fastest by far;
- "xlsxwriter": XlsxWriter's constant-memory mode;
- "openpyxl": openpyxl's write-only mode.

bench/README.md has the figures behind the default; the tests read each writer's workbook back
with openpyxl and expect the same content.
"""

import json
import re
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
from audit.xlsx import StreamingWorkbook

ENGINES = ("stream", "xlsxwriter", "openpyxl")
DEFAULT_ENGINE = "stream"
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


# Characters XML 1.0 cannot carry (scanner input has ASCII 29, the GS1 group separator).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean(text: str) -> str:
    return _ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


class _OpenpyxlBook:
    def __init__(self, target) -> None:
        from openpyxl import Workbook

        self.target = target
        self.workbook = Workbook(write_only=True)

    def add_sheet(self, title, headers, widths, kinds, *, first: bool = False):
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        sheet = self.workbook.create_sheet(title, 0 if first else None)
        for number, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(number)].width = width
        sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        cells = []
        for header in headers:
            cell = WriteOnlyCell(sheet, value=header)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)
        return _OpenpyxlSheet(sheet, len(headers))

    def close(self) -> None:
        self.workbook.save(self.target)


class _OpenpyxlSheet:
    def __init__(self, sheet, width: int) -> None:
        from openpyxl.cell import WriteOnlyCell

        self.sheet = sheet
        self.width = width
        self.rows = 0
        self._cell = WriteOnlyCell

    def append(self, values: list) -> None:
        for i, value in enumerate(values):
            if value.__class__ is str:
                if _ILLEGAL.search(value):
                    value = values[i] = _clean(value)
                if value.startswith("="):
                    # Text that starts with "=" is data, never a formula.
                    cell = self._cell(self.sheet, value=value)
                    cell.data_type = "s"
                    values[i] = cell
        self.sheet.append(values)
        self.rows += 1

    def close(self) -> None:
        from openpyxl.utils import get_column_letter

        self.sheet.auto_filter.ref = f"A1:{get_column_letter(self.width)}{self.rows + 1}"


class _XlsxWriterBook:
    def __init__(self, target) -> None:
        import xlsxwriter

        self.workbook = xlsxwriter.Workbook(
            target,
            {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
        )
        self.bold = self.workbook.add_format({"bold": True})
        self.formats = {
            "datetime": self.workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            "date": self.workbook.add_format({"num_format": "yyyy-mm-dd"}),
        }
        # XlsxWriter keeps sheets in creation order: reserve the first place for the summary.
        self.reserved = self.workbook.add_worksheet("Summary")

    def add_sheet(self, title, headers, widths, kinds, *, first: bool = False):
        sheet = self.reserved if first else self.workbook.add_worksheet(title)
        for col, (width, kind) in enumerate(zip(widths, kinds)):
            # Cells written without a format take their column's: dates show as dates.
            sheet.set_column(col, col, width, self.formats.get(kind))
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, headers, self.bold)
        return _XlsxWriterSheet(sheet, len(headers), self.formats["datetime"] if first else None)

    def close(self) -> None:
        self.workbook.close()


class _XlsxWriterSheet:
    def __init__(self, sheet, width: int, datetime_format) -> None:
        self.sheet = sheet
        self.width = width
        self.datetime_format = datetime_format
        self.rows = 0

    def append(self, values: list) -> None:
        self.rows += 1
        if self.datetime_format is not None:  # the summary: a date-time in a column of text and numbers
            for col, value in enumerate(values):
                if isinstance(value, datetime):
                    self.sheet.write_datetime(self.rows, col, value, self.datetime_format)
                    values[col] = None
        self.sheet.write_row(self.rows, 0, values)

    def close(self) -> None:
        self.sheet.autofilter(0, 0, self.rows, self.width - 1)


def _book(engine: str, target):
    if not hasattr(target, "write"):
        target = str(target)
    books = {"stream": _StreamBook, "openpyxl": _OpenpyxlBook, "xlsxwriter": _XlsxWriterBook}
    if engine not in books:
        raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
    return books[engine](target)


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
    engine: str = DEFAULT_ENGINE,
    chunk_size: int = 2000,
    max_rows_per_sheet: int = MAX_DATA_ROWS,
) -> ExportResult:
    """Write the history workbook for these filters to a path or binary file; returns rows per sheet."""
    tz = ZoneInfo(settings.TIME_ZONE)
    exported_at = timezone.now()
    book = _book(engine, target)
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
