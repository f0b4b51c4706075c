"""The recall lookback as an Excel workbook a person can read: one sheet for the recall, one for
the stock still on hand, one row per patient and vial, and the notification status per patient.
Headers bold, dates as real dates, header row frozen, filters on."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from traceability.models import Recall
from traceability.recall_selectors import Lookback, notification_list, recall_lookback, recall_progress

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MIN_WIDTH, MAX_WIDTH = 8, 60
BOLD = Font(bold=True)


@dataclass(frozen=True)
class Column:
    title: str
    kind: str = "text"  # text | date | datetime | number


def _cell_value(value):
    # Excel has no time zones: datetimes are written in the site's local time.
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, str):
        # Control characters pasted into a note would make the file unreadable (openpyxl refuses them).
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _append(ws: Worksheet, values: Sequence) -> None:
    ws.append([_cell_value(v) for v in values])
    for cell in ws[ws.max_row]:
        # Text typed by people ("=HYPERLINK(…)" in a note) stays text, never a formula.
        if cell.data_type == "f":
            cell.data_type = "s"


def _display_length(value) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    return max((len(line) for line in str(value).splitlines()), default=0)


def _table(ws: Worksheet, columns: Sequence[Column], rows: Iterable[Sequence]) -> None:
    ws.append([c.title for c in columns])
    for cell in ws[1]:
        cell.font = BOLD
    widths = [len(c.title) + 2 for c in columns]
    for row in rows:
        _append(ws, row)
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _display_length(value) + 2)
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        ws.column_dimensions[letter].width = min(max(widths[index - 1], MIN_WIDTH), MAX_WIDTH)
        number_format = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT}.get(column.kind)
        if number_format:
            for (cell,) in ws.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = number_format
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(ws.max_row, 1)}"


def _user(user) -> str:
    return user.get_username() if user is not None else ""


def _summary(ws: Worksheet, recall: Recall, lots, progress: dict[str, int]) -> None:
    rows = [
        ("Reference", recall.reference),
        ("Source", recall.get_source_display()),
        ("Class", recall.recall_class),
        ("Reason", recall.reason),
        ("Recall date", recall.recall_date),
        ("Status", recall.get_status_display()),
        ("Created by", _user(recall.created_by)),
        ("Created at", recall.created_at),
        ("Closed by", _user(recall.closed_by)),
        ("Closed at", recall.closed_at),
        ("Close reason", recall.close_reason),
        ("Lots", "\n".join(f"{lot.product.brand} lot {lot.lot_number} (exp. {lot.expiry_date:%Y-%m-%d})"
                            for lot in lots)),
        ("Lot numbers not found here", "\n".join(recall.unmatched_lot_numbers)),
        ("Patients", progress["total"]),
        ("Patients notified", progress["notified"]),
        ("Notifications pending", progress["pending"]),
    ]
    _append(ws, ["Recall", recall.reference])
    for cell in ws[1]:
        cell.font = BOLD
    for label, value in rows[1:]:
        _append(ws, [label, value])
        cell = ws.cell(row=ws.max_row, column=2)
        if isinstance(value, datetime):
            cell.number_format = DATETIME_FORMAT
        elif isinstance(value, date):
            cell.number_format = DATE_FORMAT
        if isinstance(value, str) and "\n" in value:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.cell(row=ws.max_row, column=1).font = BOLD
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = MAX_WIDTH
    ws.freeze_panes = "A2"


ON_HAND_COLUMNS = [
    Column("Brand"),
    Column("Lot"),
    Column("Expiry", "date"),
    Column("GTIN"),
    Column("Serial"),
    Column("Grams", "number"),
    Column("Location"),
    Column("Location code"),
    Column("Status"),
    Column("Beyond-use date", "date"),
]

PATIENT_COLUMNS = [
    Column("MRN"),
    Column("Patient"),
    Column("Session"),
    Column("Session date", "date"),
    Column("Brand"),
    Column("Lot"),
    Column("Serial"),
    Column("Grams", "number"),
    Column("Dispensed by"),
    Column("Dispensed at", "datetime"),
    Column("Outcome"),
]

NOTIFICATION_COLUMNS = [
    Column("MRN"),
    Column("Patient"),
    Column("Vials", "number"),
    Column("Serials"),
    Column("Status"),
    Column("Note"),
    Column("Updated by"),
    Column("Updated at", "datetime"),
]


def recall_workbook(recall: Recall, *, lookback: Lookback | None = None, tasks: list | None = None) -> bytes:
    """The lookback of `recall` as .xlsx bytes (a recall's lookback is hundreds of rows, not millions).
    A caller that needs the lookback and tasks too (the access log) passes them in, read once."""
    lookback = recall_lookback(recall) if lookback is None else lookback
    tasks = list(notification_list(recall=recall)) if tasks is None else tasks
    progress = recall_progress(recall)

    wb = Workbook()
    summary = wb.active
    summary.title = "Recall"
    _summary(summary, recall, [lb.lot for lb in lookback.lots], progress)

    _table(
        wb.create_sheet("On hand"),
        ON_HAND_COLUMNS,
        (
            [
                v.lot.product.brand,
                v.lot.lot_number,
                v.lot.expiry_date,
                v.presentation.gtin,
                v.serial,
                v.presentation.grams,
                v.location.name if v.location else "",
                v.location.code if v.location else "",
                v.get_status_display(),
                v.beyond_use_date,
            ]
            for v in lookback.on_hand
        ),
    )
    _table(
        wb.create_sheet("Patients"),
        PATIENT_COLUMNS,
        (
            [
                exposure.patient.mrn,
                exposure.patient.name,
                d.session_id,
                d.session.scheduled_date,
                d.vial.lot.product.brand,
                d.vial.lot.lot_number,
                d.vial.serial,
                d.grams,
                _user(d.dispensed_by),
                d.dispensed_at,
                d.get_status_display(),
            ]
            for exposure in lookback.patients
            for d in exposure.dispenses
        ),
    )
    _table(
        wb.create_sheet("Notifications"),
        NOTIFICATION_COLUMNS,
        (
            [
                t.patient.mrn,
                t.patient.name,
                len(t.vials.all()),
                ", ".join(v.serial for v in t.vials.all()),
                t.get_status_display(),
                t.note,
                _user(t.updated_by),
                t.updated_at,
            ]
            for t in tasks
        ),
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def recall_workbook_filename(recall: Recall) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", recall.reference).strip("-") or str(recall.pk)
    return f"recall-{safe}-lookback.xlsx"
