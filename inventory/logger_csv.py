"""A temperature data logger's CSV file, read into readings: whatever the logger's make, a
timestamp (one column, or a date and a time column) and a temperature in °C or °F, told apart by
the header. Loggers write a few lines about themselves above the header; they are skipped.

Every bad row is reported by its line number, and one bad row refuses the whole file.
"""

import csv
import io
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from inventory.coldchain import ReadingIn, ReadingRefused, fahrenheit_to_celsius

HEADER_SEARCH_LINES = 30
MAX_REPORTED = 20

_FAHRENHEIT = re.compile(r"°\s*f\b|\bdeg\s*f\b|\(f\)|\bfahrenheit\b|\bf\)|\[f\]|\btemp\w*\s*f$", re.I)
_CELSIUS = re.compile(r"°\s*c\b|\bdeg\s*c\b|\(c\)|\bcelsius\b|\bc\)|\[c\]|\btemp\w*\s*c$", re.I)
_TEMPERATURE = re.compile(r"temp|°|celsius|fahrenheit|\bdeg", re.I)

_TIMES = ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "%H:%M:%S.%f")
_DATES = {"ymd": ("%Y-%m-%d", "%Y/%m/%d"), "dmy": ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y"),
          "mdy": ("%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y")}


class Columns:
    def __init__(self, header: list[str], unit: str | None):
        names = [h.strip().lower() for h in header]
        self.temperature = next((i for i, n in enumerate(names) if _TEMPERATURE.search(n)), None)
        self.timestamp = self.date = self.time = None
        for i, n in enumerate(names):
            if re.search(r"date\s*[/_ -]?\s*time|time\s*stamp|^datetime$", n):
                self.timestamp = i
                break
        if self.timestamp is None:
            self.date = next((i for i, n in enumerate(names) if n.startswith("date")), None)
            self.time = next((i for i, n in enumerate(names) if n.startswith("time")), None)
            if self.date is not None and self.time is None:
                self.timestamp, self.date = self.date, None
            elif self.time is not None and self.date is None:
                self.timestamp, self.time = self.time, None
        self.unit = None
        if self.temperature is not None:
            label = header[self.temperature]
            if _FAHRENHEIT.search(label):
                self.unit = "F"
            elif _CELSIUS.search(label):
                self.unit = "C"
        self.unit = unit or self.unit
        self.header = header

    @property
    def found(self) -> bool:
        return self.temperature is not None and (self.timestamp is not None or (self.date is not None and self.time is not None))


def _decode(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), UTF-16 with its mark, else Windows-1252 (°)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _dialect(text: str) -> str:
    sample = "\n".join(text.splitlines()[:HEADER_SEARCH_LINES + 5])
    counts = {d: sample.count(d) for d in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def _date_order(values: list[str]) -> str | None:
    """ymd when the dates start with the year; dmy or mdy where a day above 12 gives it away."""
    orders, undecided = set(), False
    for value in values:
        head = re.match(r"\s*(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{2,4})", value)
        if not head:
            continue
        undecided = True
        a, b = int(head.group(1)), int(head.group(2))
        if len(head.group(1)) == 4:
            orders.add("ymd")
        elif a > 12:
            orders.add("dmy")
        elif b > 12:
            orders.add("mdy")
        if "." in value[:10]:
            orders.add("dmy")  # 31.12.2026: the dotted form is day first wherever it is written
    if len(orders) == 1:
        return orders.pop()
    return "ymd" if not orders and not undecided else None


def _parse_time(value: str, order: str, zone: ZoneInfo) -> datetime:
    value = value.strip().replace("T", " ", 1) if re.match(r"\d{4}-\d{2}-\d{2}T", value.strip()) else value.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
        for date_format in _DATES[order]:
            for time_format in _TIMES:
                try:
                    moment = datetime.strptime(value, f"{date_format} {time_format}")
                    break
                except ValueError:
                    continue
            if moment is not None:
                break
        if moment is None:
            raise ValueError(value)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _number(value: str, delimiter: str) -> Decimal:
    value = value.strip().replace("\u2212", "-")
    if delimiter != "," and re.fullmatch(r"-?\d+,\d+", value):
        value = value.replace(",", ".")  # a decimal comma, in files whose columns are not split by commas
    value = re.sub(r"\s*°?\s*[CF]$", "", value, flags=re.I)
    return Decimal(value)


def read_logger_file(data: bytes, *, zone: ZoneInfo, unit: str | None = None, date_order: str | None = None) -> list[ReadingIn]:
    """The file's readings in °C, each knowing its line number; refused whole if a row is bad."""
    text = _decode(data)
    delimiter = _dialect(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    columns, header_line = None, None
    for index, row in enumerate(rows[:HEADER_SEARCH_LINES]):
        candidate = Columns(row, unit)
        if candidate.found:
            columns, header_line = candidate, index
            break
    if columns is None:
        raise ReadingRefused(
            "No header with a time column and a temperature column was found in the first "
            f"{HEADER_SEARCH_LINES} lines.", code="no_header")
    if columns.unit is None:
        raise ReadingRefused(
            f"The temperature column {columns.header[columns.temperature]!r} does not say °C or °F; "
            "give the unit (--unit C or --unit F).", code="unknown_unit")

    def stamp(row: list[str]) -> str:
        if columns.timestamp is not None:
            return row[columns.timestamp]
        return f"{row[columns.date].strip()} {row[columns.time].strip()}"

    body = [(header_line + 2 + n, row) for n, row in enumerate(rows[header_line + 1:])]
    body = [(line, row) for line, row in body if any(cell.strip() for cell in row)]
    width = max(i for i in (columns.temperature, columns.timestamp, columns.date, columns.time) if i is not None)
    order = date_order or _date_order([stamp(row) for _, row in body if len(row) > width])
    if order is None:
        raise ReadingRefused(
            "The dates could be day-first or month-first (no day above 12): give --date-order dmy or mdy.",
            code="ambiguous_dates")
    readings, problems = [], []
    for line, row in body:
        if len(row) <= width:
            problems.append(f"line {line}: {len(row)} columns, the header has {len(columns.header)}")
            continue
        try:
            taken_at = _parse_time(stamp(row), order, zone)
        except ValueError:
            problems.append(f"line {line}: {stamp(row).strip()!r} is not a date and time")
            continue
        try:
            value = _number(row[columns.temperature], delimiter)
            if not value.is_finite() or abs(value) > 1000:
                raise InvalidOperation
            celsius = fahrenheit_to_celsius(value) if columns.unit == "F" else value.quantize(Decimal("0.01"))
        except InvalidOperation:
            problems.append(f"line {line}: {row[columns.temperature].strip()!r} is not a temperature")
            continue
        readings.append(ReadingIn(taken_at=taken_at, celsius=celsius, where=f"line {line}"))
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED]) + (f"; and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else "")
        raise ReadingRefused(f"{len(problems)} bad row(s), nothing imported: {shown}.", code="bad_rows",
                             extra={"lines": problems})
    if not readings:
        raise ReadingRefused("The file has a header but no readings.", code="no_readings")
    return readings
