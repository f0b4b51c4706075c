"""The recall lookback as an Excel workbook a person can read: one sheet for the recall, one for
the stock still on hand, one row per patient and vial, and the notification status per patient.
Headers bold, dates as real dates, header row frozen, filters on. Written in openpyxl's
write-only mode, so the time grows linearly with the rows."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from core.text import spreadsheet_text
from recalls.models import Recall
from recalls.selectors import Lookback, notification_list, notification_overdue, recall_lookback, recall_progress

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
        return spreadsheet_text(value)
    return value


def _cell(ws, value, *, number_format: str | None = None, bold: bool = False, wrap: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=_cell_value(value))
    if isinstance(value, str) and cell.data_type == "f":
        # Text typed by people ("=HYPERLINK(…)" in a note) stays text, never a formula.
        cell.data_type = "s"
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = BOLD
    if wrap:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _display_length(value) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    return max((len(line) for line in str(value).splitlines()), default=0)


FORMATS = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT}


def _table(wb: Workbook, title: str, columns: Sequence[Column], rows: Iterable[Sequence]) -> None:
    """One sheet: bold frozen header, filters, widths fitted to the content, typed cells.

    Write-only: each row goes to the file once, so the time grows with the cells and no more (a
    worksheet that is read back while written costs rows × cells)."""
    rows = [list(row) for row in rows]
    widths = [len(c.title) + 2 for c in columns]
    for row in rows:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _display_length(value) + 2)
    ws = wb.create_sheet(title)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = min(max(width, MIN_WIDTH), MAX_WIDTH)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    ws.append([_cell(ws, c.title, bold=True) for c in columns])
    formats = [FORMATS.get(c.kind) for c in columns]
    for row in rows:
        ws.append([_cell(ws, value, number_format=fmt) for value, fmt in zip(row, formats)])


def _joined(obj, name: str):
    """A reverse one-to-one the lookback joined, or None where there is none."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


def _what_became_of(dispense) -> list:
    """Where the vial went, when its infusion ran, its fate, and the day it was used at home."""
    administration = _joined(dispense.session, "administration")
    fate = _joined(dispense, "fate")
    use = _joined(dispense, "home_use")
    return [
        dispense.session.get_setting_display(),
        administration.started_at if administration else None,
        administration.ended_at if administration else None,
        fate.get_fate_display() if fate else "",
        fate.volume_left_ml if fate else None,
        use.home_infusion.infused_on if use else None,
    ]


def _user(user) -> str:
    return user.get_username() if user is not None else ""


def retention_text(recall: Recall) -> str:
    """What the site keeps, and until when: RECORD_RETENTION_YEARS after the recall is closed."""
    years = settings.RECORD_RETENTION_YEARS
    until = (
        f"until at least {_years_after(timezone.localtime(recall.closed_at).date(), years):%Y-%m-%d}"
        if recall.closed_at
        else "after the recall is closed"
    )
    return (f"Dispense and recall records, this lookback included, are kept {years} years {until} "
            "(setting RECORD_RETENTION_YEARS).")


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def _summary(wb: Workbook, recall: Recall, lots, progress: dict[str, int]) -> None:
    rows = [
        ("Source", recall.get_source_display()),
        ("Scheme", recall.get_scheme_display()),
        ("Class", recall.class_text),
        ("Action due", recall.action_due if recall.action_due else "no deadline set"),
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
        ("Notifications overdue", progress["overdue"]),
        ("Retention", retention_text(recall)),
    ]
    ws = wb.create_sheet("Recall")
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = MAX_WIDTH
    ws.freeze_panes = "A2"
    ws.append([_cell(ws, "Recall", bold=True), _cell(ws, recall.reference, bold=True)])
    for label, value in rows:
        number_format = DATETIME_FORMAT if isinstance(value, datetime) else DATE_FORMAT if isinstance(value, date) else None
        wrap = isinstance(value, str) and "\n" in value
        ws.append([_cell(ws, label, bold=True), _cell(ws, value, number_format=number_format, wrap=wrap)])


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
    Column("Where"),
    Column("Infusion started", "datetime"),
    Column("Infusion ended", "datetime"),
    Column("Vial fate"),
    Column("Volume left (mL)", "number"),
    Column("Used at home on", "date"),
]

NOTIFICATION_COLUMNS = [
    Column("MRN"),
    Column("Patient"),
    Column("Vials", "number"),
    Column("Serials"),
    Column("Status"),
    Column("Due", "datetime"),
    Column("Overdue"),
    Column("Note"),
    Column("Updated by"),
    Column("Updated at", "datetime"),
]


def recall_workbook(recall: Recall, *, lookback: Lookback | None = None, tasks: list | None = None) -> bytes:
    """The lookback of `recall` as .xlsx bytes. A caller that needs the lookback and tasks too
    (the access log) passes them in, read once."""
    lookback = recall_lookback(recall) if lookback is None else lookback
    tasks = list(notification_list(recall=recall)) if tasks is None else tasks
    now = timezone.now()
    progress = recall_progress(recall, now=now)

    wb = Workbook(write_only=True)
    _summary(wb, recall, [lb.lot for lb in lookback.lots], progress)

    _table(
        wb,
        "On hand",
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
        wb,
        "Patients",
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
                *_what_became_of(d),
            ]
            for exposure in lookback.patients
            for d in exposure.dispenses
        ),
    )
    _table(
        wb,
        "Notifications",
        NOTIFICATION_COLUMNS,
        (
            [
                t.patient.mrn,
                t.patient.name,
                len(t.vials.all()),
                ", ".join(v.serial for v in t.vials.all()),
                t.get_status_display(),
                recall.action_due,
                "overdue" if notification_overdue(t, now) else "",
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
