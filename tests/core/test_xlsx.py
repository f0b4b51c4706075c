"""core.xlsx: what the streaming writer writes, openpyxl reads back cell for cell, in its place."""

import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import openpyxl

from core.xlsx import StreamingWorkbook

ROWS = [
    ["plain", 1, 2.5, Decimal("10.25"), True, date(2026, 1, 2), datetime(2026, 1, 2, 3, 4, 5)],
    [None, "after an empty first cell", None, "", "after two empty cells", None, "last"],
    ["", None, None, None, None, None, "only the last"],
    ["a_b", "_x000D_ stays as typed", "<b>&amp;</b>", " leading", "trailing ", "tab\there", "line\nbreak"],
    ["café · → ✓", 0, False, -3, None, None, None],
]


def written(rows) -> bytes:
    target = io.BytesIO()
    book = StreamingWorkbook(target)
    sheet = book.add_sheet("Rows", [f"h{i}" for i in range(7)], [10] * 7)
    for row in rows:
        sheet.append(row)
    book.close()
    return target.getvalue()


def test_every_cell_is_read_back_in_its_column_whatever_cells_before_it_were_empty():
    content = written(ROWS)
    sheet = openpyxl.load_workbook(io.BytesIO(content))["Rows"]
    for r, row in enumerate(ROWS, start=2):
        for c, value in enumerate(row, start=1):
            got = sheet.cell(row=r, column=c).value
            expected = None if value == "" else value
            if isinstance(value, date) and not isinstance(value, datetime):
                got = got.date()
            if isinstance(value, Decimal):
                expected = float(value)
            if isinstance(value, str) and "_x" in value:
                # Excel's escape of its own escape sequence, which Excel shows as typed (openpyxl
                # hands it over as stored).
                expected = value.replace("_x", "_x005F_x")
            assert got == expected, (r, c, got, expected)
    assert sheet.max_column == 7 and sheet.max_row == len(ROWS) + 1


def test_a_cell_names_its_place_only_after_an_empty_cell():
    xml = zipfile.ZipFile(io.BytesIO(written(ROWS))).read("xl/worksheets/sheet1.xml").decode()
    row = xml[xml.index('<row r="3">'):xml.index('<row r="4">')]
    assert row.count("<c") == 3 and 'r="B3"' in row and 'r="E3"' in row and 'r="G3"' in row
    first = xml[xml.index('<row r="2">'):xml.index('<row r="3">')]
    assert ' r="A2"' not in first and first.count("<c") == 7
