"""A small streaming .xlsx writer for exports: rows go straight into the zip as XML.

It lives on the ground floor because two floors export: the audit wing (the history export) and
recalls (the lookback workbook).

Why not only openpyxl or XlsxWriter: both build every cell through several Python calls (objects,
attribute lists, escaping passes). For the history export that per-cell cost is the whole budget:
at ~20 columns neither reaches five times django-import-export's rate (bench/README.md has the
figures). The subset of SpreadsheetML a history sheet needs is small and fixed: inline strings,
numbers, booleans, dates and date-times as serial numbers with a number format, a bold header, a
frozen first row, column widths and an autofilter. Rows are formatted with one f-string per cell
and written to the deflate stream of the zip member in blocks, so memory holds one block.

Sheets are written one after the other (a zip member is written in one go); a sheet may be listed
before others in the workbook and still be written last, which is how the summary comes first.
The tests read every workbook back with openpyxl.
"""

import re
import zipfile
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from core.text import spreadsheet_text

EPOCH = datetime(1899, 12, 30)
EPOCH_ORDINAL = EPOCH.toordinal()
# Style indexes in styles.xml below.
DATETIME_STYLE, DATE_STYLE, BOLD_STYLE, MINUTES_STYLE, WRAP_STYLE = 1, 2, 3, 4, 5
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

STYLES = (
    XML_HEAD + f'<styleSheet xmlns="{MAIN_NS}">'
    '<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/><numFmt numFmtId="166" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment vertical="top" wrapText="1"/></xf></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# Text that needs more than wrapping: markup or control characters (one character class, asked of
# every text cell: four times as fast as one pattern with the rest as alternatives), Excel's own
# escape sequence "_x", or whitespace at either end (both checked apart).
_MARKUP = re.compile(r"[&<>\x00-\x1f]")


def text(value: str) -> str:
    # Control characters and Excel's own "_x" escapes first (the shared rule), then XML's markup.
    escaped = spreadsheet_text(value).translate(_XML_ESCAPES)
    if escaped[:1].isspace() or escaped[-1:].isspace():
        return f'<is><t xml:space="preserve">{escaped}</t></is>'
    return f"<is><t>{escaped}</t></is>"


def excel_serial(value: datetime | date) -> float | int:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("Excel has no time zones: convert to local time and drop the zone first.")
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return value.toordinal() - EPOCH_ORDINAL + seconds / 86400
    return value.toordinal() - EPOCH_ORDINAL


class StreamingWorkbook:
    """Write-once workbook: add sheets, append rows, close. One sheet is open at a time."""

    BLOCK = 500  # rows per write to the deflate stream

    def __init__(self, target, *, compresslevel: int = 1) -> None:
        # Level 1 deflate: most of the size gain of level 6 at a fraction of its time.
        self.zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self.sheets: list[dict] = []  # in workbook order
        self.open_sheet: "StreamingSheet | None" = None

    def add_sheet(self, title: str, headers, widths, *, position: int | None = None, autofilter: bool = True,
                  datetime_style: int = DATETIME_STYLE) -> "StreamingSheet":
        """A sheet with a bold frozen header. `datetime_style`: DATETIME_STYLE (to the second) or
        MINUTES_STYLE; `autofilter=False` for a sheet that is not a table (a summary)."""
        if self.open_sheet is not None:
            self.open_sheet.close()
        number = len(self.sheets) + 1
        info = {"title": title, "part": f"xl/worksheets/sheet{number}.xml", "filter": None}
        if position is None:
            self.sheets.append(info)
        else:
            self.sheets.insert(position, info)
        self.open_sheet = StreamingSheet(self, info, headers, widths, autofilter=autofilter,
                                         datetime_style=datetime_style)
        return self.open_sheet

    def close(self) -> None:
        if self.open_sheet is not None:
            self.open_sheet.close()
        z = self.zip
        sheets = "".join(
            f'<sheet name={quoteattr(s["title"])} sheetId="{i}" r:id="rId{i}"/>' for i, s in enumerate(self.sheets, 1)
        )
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"{escape(repr_sheet(s['title']))}!{s['filter']}</definedName>"
            for i, s in enumerate(self.sheets)
            if s["filter"]
        )
        z.writestr(
            "xl/workbook.xml",
            XML_HEAD + f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><bookViews><workbookView/></bookViews>'
            f"<sheets>{sheets}</sheets>" + (f"<definedNames>{names}</definedNames>" if names else "") + "</workbook>",
        )
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="{s["part"][3:]}"/>'
            for i, s in enumerate(self.sheets, 1)
        )
        rels += f'<Relationship Id="rId{len(self.sheets) + 1}" Type="{REL_NS}/styles" Target="styles.xml"/>'
        z.writestr("xl/_rels/workbook.xml.rels", XML_HEAD + f'<Relationships xmlns="{PKG_REL_NS}">{rels}</Relationships>')
        z.writestr("xl/styles.xml", STYLES)
        z.writestr(
            "_rels/.rels",
            XML_HEAD + f'<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        sheet_types = "".join(
            f'<Override PartName="/{s["part"]}" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for s in self.sheets
        )
        z.writestr(
            "[Content_Types].xml",
            XML_HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            f"{sheet_types}</Types>",
        )
        z.close()


def repr_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


class StreamingSheet:
    def __init__(self, book: StreamingWorkbook, info: dict, headers, widths, *, autofilter: bool = True,
                 datetime_style: int = DATETIME_STYLE) -> None:
        self.book = book
        self.info = info
        self.autofilter = autofilter
        self.datetime_style = datetime_style
        self.width = len(headers)
        self.letters = [column_letter(i) for i in range(max(self.width, 1))]
        self.rows = 0  # data rows, the header not counted
        self._stream = book.zip.open(info["part"], "w", force_zip64=True)
        self._pending: list[str] = []
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(widths, start=1)
        )
        head = (
            XML_HEAD + f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
        )
        header = "".join(
            f'<c r="{letter}1" s="{BOLD_STYLE}" t="inlineStr">{text(str(h))}</c>' for letter, h in zip(self.letters, headers)
        )
        self._stream.write((head + f'<row r="1">{header}</row>').encode())
        self.closed = False

    def append(self, values) -> None:
        """One row; str, int, float, Decimal, bool, date, naive datetime or None (an empty cell).

        A cell names its place (`r="C7"`) only after an empty one: without it, a cell is the one
        after the cell before (ECMA-376 18.3.1.4), which Excel, LibreOffice and openpyxl follow."""
        self.rows += 1
        r = self.rows + 1
        cells = []
        add = cells.append
        gap = False
        for letter, value in zip(self.letters, values):
            kind = value.__class__
            if value is None or (kind is str and not value):
                gap = True
                continue
            at = f'<c r="{letter}{r}"' if gap else "<c"
            gap = False
            if kind is str:
                if (_MARKUP.search(value) is None and "_x" not in value
                        and not value[0].isspace() and not value[-1].isspace()):
                    add(f'{at} t="inlineStr"><is><t>{value}</t></is></c>')
                else:
                    add(f'{at} t="inlineStr">{text(value)}</c>')
            elif kind is int or kind is float or kind is Decimal:
                add(f"{at}><v>{value}</v></c>")
            elif kind is bool:
                add(f'{at} t="b"><v>{int(value)}</v></c>')
            elif kind is datetime:
                add(f'{at} s="{self.datetime_style}"><v>{excel_serial(value)}</v></c>')
            elif kind is date:
                add(f'{at} s="{DATE_STYLE}"><v>{excel_serial(value)}</v></c>')
            elif isinstance(value, bool):
                add(f'{at} t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, (int, float, Decimal)):
                add(f"{at}><v>{value}</v></c>")
            elif isinstance(value, datetime):
                add(f'{at} s="{self.datetime_style}"><v>{excel_serial(value)}</v></c>')
            elif isinstance(value, date):
                add(f'{at} s="{DATE_STYLE}"><v>{excel_serial(value)}</v></c>')
            else:
                add(f'{at} t="inlineStr">{text(str(value))}</c>')
        self._pending.append(f'<row r="{r}">{"".join(cells)}</row>')
        if len(self._pending) >= StreamingWorkbook.BLOCK:
            self._flush()

    def append_styled(self, values, styles) -> None:
        """One row with a style of its own for each cell (BOLD_STYLE, WRAP_STYLE, DATE_STYLE, …, or
        None for none): for the few rows of a summary, not for tables."""
        self.rows += 1
        r = self.rows + 1
        cells = []
        for letter, value, style in zip(self.letters, values, styles):
            if value is None or value == "":
                continue
            s = f' s="{style}"' if style is not None else ""
            if isinstance(value, bool):
                cells.append(f'<c r="{letter}{r}"{s} t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, (int, float, Decimal)):
                cells.append(f'<c r="{letter}{r}"{s}><v>{value}</v></c>')
            elif isinstance(value, (datetime, date)):
                cells.append(f'<c r="{letter}{r}"{s}><v>{excel_serial(value)}</v></c>')
            else:
                cells.append(f'<c r="{letter}{r}"{s} t="inlineStr">{text(str(value))}</c>')
        self._pending.append(f'<row r="{r}">{"".join(cells)}</row>')

    def _flush(self) -> None:
        if self._pending:
            self._stream.write("".join(self._pending).encode())
            self._pending.clear()

    def close(self) -> None:
        if self.closed:
            return
        self._flush()
        last = self.letters[self.width - 1]
        if self.autofilter:
            self.info["filter"] = f"$A$1:${last}${self.rows + 1}"
            self._stream.write(f'</sheetData><autoFilter ref="A1:{last}{self.rows + 1}"/></worksheet>'.encode())
        else:
            self._stream.write(b"</sheetData></worksheet>")
        self._stream.close()
        self.closed = True
        if self.book.open_sheet is self:
            self.book.open_sheet = None
