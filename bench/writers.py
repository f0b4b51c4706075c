"""The two other Excel writers the history export was measured against (bench only).

They write the same workbook as audit.export's own writer, through the same book interface:
add_sheet(title, headers, widths, kinds, summary=False) -> sheet; close(); each sheet: append(values), close().
Pass one as `write_history_workbook(..., book_factory=OpenpyxlBook)`.
"""

from datetime import datetime

from core.text import has_spreadsheet_unsafe, spreadsheet_text


class OpenpyxlBook:
    def __init__(self, target) -> None:
        from openpyxl import Workbook

        self.target = target
        self.workbook = Workbook(write_only=True)

    def add_sheet(self, title, headers, widths, kinds, *, summary: bool = False):
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        sheet = self.workbook.create_sheet(title, 0 if summary else None)
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
        return OpenpyxlSheet(sheet, len(headers))

    def close(self) -> None:
        self.workbook.save(self.target)


class OpenpyxlSheet:
    def __init__(self, sheet, width: int) -> None:
        from openpyxl.cell import WriteOnlyCell

        self.sheet = sheet
        self.width = width
        self.rows = 0
        self._cell = WriteOnlyCell

    def append(self, values: list) -> None:
        for i, value in enumerate(values):
            if value.__class__ is str:
                if has_spreadsheet_unsafe(value) or "_x" in value:
                    value = values[i] = spreadsheet_text(value)
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


class XlsxWriterBook:
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

    def add_sheet(self, title, headers, widths, kinds, *, summary: bool = False):
        sheet = self.reserved if summary else self.workbook.add_worksheet(title)
        for col, (width, kind) in enumerate(zip(widths, kinds)):
            # Cells written without a format take their column's: dates show as dates.
            sheet.set_column(col, col, width, self.formats.get(kind))
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, headers, self.bold)
        return XlsxWriterSheet(sheet, len(headers), self.formats["datetime"] if summary else None)

    def close(self) -> None:
        self.workbook.close()


class XlsxWriterSheet:
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
