"""Vial and location labels that scan back: PNG, SVG, ZPL (Zebra printers) and PDF.

A vial label carries the same GS1 data twice, as a GS1 DataMatrix (what DSCSA asks for on each
package) and as a GS1-128 for the 1D-only scanners still found at some infusion chairs, plus
the human-readable lines. Both symbols start with FNC1, which is what makes a scanner report
``]d2`` / ``]C1`` and send a GS between fields.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import date, timedelta
from xml.dom import minidom

import barcode
from barcode.codex import Code128, Gs1_128
from barcode.writer import SVGWriter
from PIL import Image, ImageDraw, ImageFont
from pystrich.datamatrix import DataMatrixData, DataMatrixEncoder
from pystrich.gs1 import GS1Fixed, GS1Variable
from reportlab.lib.pagesizes import A4, letter
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from core.errors import InvalidInput
from labels import gs1
from labels.codes import LOCATION_CODE_RULE, printable_location_code

CONTENT_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "zpl": "application/x-zpl",
    "pdf": "application/pdf",
}

# Raster geometry (PNG, and the PDFs built from it): 300 dpi. A 1D module of 3 px is 0.254 mm
# and a DataMatrix module of 6 px is 0.508 mm, both inside the GS1 healthcare X-dimension ranges.
DPI = 300
MODULE_PX = 3
DATAMATRIX_CELL_PX = 6
BAR_HEIGHT_PX = 142  # 12 mm
QUIET_ZONE_MODULES = 10  # GS1-128 needs 10X on each side
MARGIN_PX = 24
FONT_PX = 36  # about 8.6 pt at 300 dpi
SMALL_FONT_PX = 28

# Vector geometry (SVG), in millimetres.
MODULE_MM = 0.254
DATAMATRIX_CELL_MM = 0.508
BAR_HEIGHT_MM = 12.0
MARGIN_MM = 2.0
FONT_MM = 3.0

# ZPL geometry, in dots of a 203 dpi (8 dots/mm) Zebra printer.
ZPL_MODULE_DOTS = 2
ZPL_DATAMATRIX_DOTS = 5
ZPL_BAR_HEIGHT_DOTS = 96
ZPL_MARGIN_DOTS = 16
ZPL_FONT_DOTS = 28

_FONT_PATH = os.path.join(os.path.dirname(barcode.__file__), "fonts", "DejaVuSansMono.ttf")

# Location codes are our own identifiers: printable ASCII (what Code 128 carries) except the
# characters ZPL reads as commands (^ ~) or Code 128 invocation codes (>).


@dataclass(frozen=True)
class LabelData:
    """What one vial label carries. `gtin`, `expiry`, `lot` and `serial` are the manufacturer's,
    repeated as printed: `serial` only when the carton had one (DSCSA reads GTIN + serial as the
    manufacturer's product identifier), and `expiry_day_00` when its (17) said day 00. The
    pharmacy's own id for unserialised stock goes in `internal_serial`, encoded in the
    company-internal AI (91), never in (21)."""

    gtin: str
    expiry: date | None
    lot: str | None
    serial: str | None
    lines: tuple[str, ...] = ()  # e.g. ("Privigen 10 g", "Lot P100263  Exp 2027-06-30", "SN 4711")
    expiry_day_00: bool = False
    internal_serial: str | None = None


def render_vial_label(data: LabelData, fmt: str) -> tuple[bytes, str]:
    """Render one vial label; returns (content, content_type). Invalid GS1 data raises InvalidBarcode."""
    content_type = _content_type(fmt)
    fields = _fields(data)
    if fmt == "png":
        content = _png_bytes(_vial_image(data, fields))
    elif fmt == "svg":
        content = _vial_svg(data, fields)
    elif fmt == "zpl":
        content = _vial_zpl(data, fields)
    else:
        content = _single_pdf(_vial_image(data, fields))
    return content, content_type


def render_location_label(*, code: str, name: str, fmt: str) -> tuple[bytes, str]:
    """A Code 128 of the location code with the code and the location's name as text."""
    content_type = _content_type(fmt)
    if not printable_location_code(code):
        raise InvalidInput(
            f"Location code {code!r} cannot be printed: use {LOCATION_CODE_RULE}",
            code="invalid_location_code",
            extra={"code": code},
        )
    if fmt == "png":
        content = _png_bytes(_location_image(code, name))
    elif fmt == "svg":
        content = _location_svg(code, name)
    elif fmt == "zpl":
        content = _location_zpl(code, name)
    else:
        content = _single_pdf(_location_image(code, name))
    return content, content_type


# A4: 3 x 8 labels of 70 x 37 mm. Letter: Avery 5160 layout, 3 x 10 labels of 66.7 x 25.4 mm.
_SHEETS = {
    "A4": {"size": A4, "columns": 3, "rows": 8, "cell": (70 * mm, 37 * mm), "origin": (0, 0.5 * mm), "gap": 0},
    "letter": {
        "size": letter,
        "columns": 3,
        "rows": 10,
        "cell": (66.7 * mm, 25.4 * mm),
        "origin": (4.8 * mm, 12.7 * mm),
        "gap": 3.2 * mm,
    },
}


def render_label_sheet(labels: list[LabelData], *, page_size: str = "A4") -> bytes:
    """A PDF of vial labels in a grid, as many pages as needed."""
    if not labels:
        raise InvalidInput("No labels to print", code="empty_label_sheet")
    if page_size not in _SHEETS:
        raise InvalidInput(
            f"Unknown page size {page_size!r}: expected one of {', '.join(_SHEETS)}",
            code="invalid_format",
        )
    # Render every label before drawing, so that bad data fails before any output exists.
    images = [_vial_image(label, _fields(label)) for label in labels]

    sheet = _SHEETS[page_size]
    page_width, page_height = sheet["size"]
    cell_width, cell_height = sheet["cell"]
    left, top = sheet["origin"]
    per_page = sheet["columns"] * sheet["rows"]
    padding = 2 * mm

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=sheet["size"])
    pdf.setTitle("Vial labels")
    for index, image in enumerate(images):
        if index and index % per_page == 0:
            pdf.showPage()
        slot = index % per_page
        column, row = slot % sheet["columns"], slot // sheet["columns"]
        x = left + column * (cell_width + sheet["gap"])
        y = page_height - top - (row + 1) * cell_height
        scale = min((cell_width - 2 * padding) / image.width, (cell_height - 2 * padding) / image.height)
        width, height = image.width * scale, image.height * scale
        pdf.drawImage(
            ImageReader(image),
            x + (cell_width - width) / 2,
            y + (cell_height - height) / 2,
            width=width,
            height=height,
        )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _content_type(fmt: str) -> str:
    if fmt not in CONTENT_TYPES:
        raise InvalidInput(
            f"Unknown label format {fmt!r}: expected one of {', '.join(CONTENT_TYPES)}",
            code="invalid_format",
            extra={"format": fmt},
        )
    return CONTENT_TYPES[fmt]


# Variable-length AIs: each ends at FNC1 / GS unless it is the last field.
VARIABLE_AIS = frozenset({"10", "21", gs1.INTERNAL_SERIAL_AI})
MAX_INTERNAL_SERIAL_LENGTH = 20


def _fields(data: LabelData) -> list[tuple[str, str]]:
    fields = gs1.ordered_fields(gtin=data.gtin, expiry=data.expiry, lot=data.lot, serial=data.serial)
    if data.expiry_day_00 and data.expiry is not None:
        # Repeat the manufacturer's (17) as printed: day 00 stood for this last day of the month.
        if (data.expiry + timedelta(days=1)).day != 1:
            raise InvalidInput(
                f"Expiry {data.expiry:%Y-%m-%d} is not the last day of its month, so it was not printed with day 00.",
                code="invalid_label_data",
            )
        fields = [(ai, value[:4] + "00" if ai == "17" else value) for ai, value in fields]
    if data.internal_serial is not None:
        value = data.internal_serial
        if (
            not value
            or len(value) > MAX_INTERNAL_SERIAL_LENGTH
            or any(char not in gs1.GS1_AI82_CHARSET for char in value)
        ):
            raise InvalidInput(
                f"Internal serial {value!r} cannot be printed in (91): use 1-{MAX_INTERNAL_SERIAL_LENGTH} GS1 characters.",
                code="invalid_label_data",
            )
        fields.append((gs1.INTERNAL_SERIAL_AI, value))
    return fields


def _hri(fields: list[tuple[str, str]]) -> str:
    return "".join(f"({ai}){value}" for ai, value in fields)


def _datamatrix(fields: list[tuple[str, str]]) -> DataMatrixEncoder:
    # DataMatrixData.gs1 emits the leading FNC1 (codeword 232, read as "]d2") and an FNC1 after
    # each variable field that is not last; a plain str payload would give a non-GS1 "]d1".
    return DataMatrixEncoder(
        DataMatrixData.gs1(
            *(GS1Variable(ai, value) if ai in VARIABLE_AIS else GS1Fixed(ai, value) for ai, value in fields)
        )
    )


def _gs1_128_modules(fields: list[tuple[str, str]]) -> str:
    """The GS1-128 as a string of modules ("1" bar, "0" space), without quiet zones."""
    # Note: python-barcode marks FNC1 with Gs1_128.FNC1_CHAR ("\xf1"), not ASCII 29, and its
    # encoder keeps state between builds, so always build from a fresh object.
    return Gs1_128(_joined(fields, Gs1_128.FNC1_CHAR)).build()[0]


def _joined(fields: list[tuple[str, str]], separator: str) -> str:
    out = ""
    for i, (ai, value) in enumerate(fields):
        out += ai + value
        if ai in VARIABLE_AIS and i != len(fields) - 1:
            out += separator
    return out


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(_FONT_PATH, size)
    except OSError:
        return ImageFont.load_default(size)


def _bars_image(modules: str, *, module_px: int, height_px: int) -> Image.Image:
    """Paint modules at an exact integer number of pixels each, with quiet zones."""
    quiet = QUIET_ZONE_MODULES * module_px
    image = Image.new("L", (len(modules) * module_px + 2 * quiet, height_px), 255)
    draw = ImageDraw.Draw(image)
    for i, module in enumerate(modules):
        if module == "1":
            x = quiet + i * module_px
            draw.rectangle((x, 0, x + module_px - 1, height_px - 1), fill=0)
    return image


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(DPI, DPI))
    return buffer.getvalue()


def _single_pdf(image: Image.Image) -> bytes:
    """A one-page PDF the size of the label, at the raster's 300 dpi."""
    width, height = image.width * 72 / DPI, image.height * 72 / DPI
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height))
    pdf.drawImage(ImageReader(image), 0, 0, width=width, height=height)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _text_block(lines: tuple[str, ...] | list[str], font) -> tuple[int, int, int]:
    """(width, height, line height) of lines drawn in `font`."""
    line_height = int(font.size * 1.25) if hasattr(font, "size") else 14
    width = max((int(font.getlength(line)) for line in lines), default=0)
    return width, line_height * len(lines), line_height


# ---------------------------------------------------------------------------------------------
# Vial label


def _vial_image(data: LabelData, fields: list[tuple[str, str]]) -> Image.Image:
    matrix = _datamatrix(fields).get_pilimage(cellsize=DATAMATRIX_CELL_PX).convert("L")
    bars = _bars_image(_gs1_128_modules(fields), module_px=MODULE_PX, height_px=BAR_HEIGHT_PX)
    font, small = _font(FONT_PX), _font(SMALL_FONT_PX)
    lines = tuple(data.lines)
    hri = _hri(fields)
    text_width, text_height, line_height = _text_block(lines, font)
    hri_width, hri_height, _ = _text_block([hri], small)

    text_x = MARGIN_PX + matrix.width + MARGIN_PX
    top_height = max(matrix.height, text_height)
    width = max(text_x + text_width, MARGIN_PX + bars.width, MARGIN_PX + hri_width) + MARGIN_PX
    bars_y = MARGIN_PX + top_height + MARGIN_PX
    height = bars_y + bars.height + MARGIN_PX // 2 + hri_height + MARGIN_PX

    image = Image.new("L", (width, height), 255)
    image.paste(matrix, (MARGIN_PX, MARGIN_PX))
    image.paste(bars, (MARGIN_PX, bars_y))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((text_x, MARGIN_PX + i * line_height), line, font=font, fill=0)
    text_left = MARGIN_PX + QUIET_ZONE_MODULES * MODULE_PX
    draw.text((text_left, bars_y + bars.height + MARGIN_PX // 2), hri, font=small, fill=0)
    return image


def _vial_svg(data: LabelData, fields: list[tuple[str, str]]) -> bytes:
    matrix_svg = minidom.parseString(_datamatrix(fields).get_svg(cellsize=1)).documentElement
    modules = float(matrix_svg.getAttribute("viewBox").split()[2])  # symbol + quiet zone
    matrix_mm = modules * DATAMATRIX_CELL_MM
    lines = tuple(data.lines)
    text_x = MARGIN_MM + matrix_mm + MARGIN_MM
    text_width = max((len(line) for line in lines), default=0) * FONT_MM * 0.62
    top_height = max(matrix_mm, len(lines) * FONT_MM * 1.3)
    bars_svg, bars_width, bars_height = _bars_svg(
        Gs1_128(_joined(fields, Gs1_128.FNC1_CHAR), writer=SVGWriter())
    )
    bars_y = MARGIN_MM + top_height + MARGIN_MM
    hri_y = bars_y + bars_height + FONT_MM
    width = max(text_x + text_width, MARGIN_MM + bars_width) + MARGIN_MM
    height = hri_y + MARGIN_MM

    doc, root = _svg_document(width, height)
    for name, value in (("x", MARGIN_MM), ("y", MARGIN_MM), ("width", matrix_mm), ("height", matrix_mm)):
        matrix_svg.setAttribute(name, f"{value:.3f}mm")
    root.appendChild(doc.importNode(matrix_svg, True))
    for i, line in enumerate(lines):
        root.appendChild(_svg_text(doc, line, x=text_x, y=MARGIN_MM + FONT_MM + i * FONT_MM * 1.3, size=FONT_MM))
    bars_svg.setAttribute("x", f"{MARGIN_MM:.3f}mm")
    bars_svg.setAttribute("y", f"{bars_y:.3f}mm")
    root.appendChild(doc.importNode(bars_svg, True))
    root.appendChild(
        _svg_text(doc, _hri(fields), x=MARGIN_MM + QUIET_ZONE_MODULES * MODULE_MM, y=hri_y, size=FONT_MM * 0.8)
    )
    return doc.toxml(encoding="utf-8")


def _bars_svg(code: Code128) -> tuple[minidom.Element, float, float]:
    """python-barcode's SVG of a Code 128 (no text), its width and height in mm."""
    rendered = code.render(
        writer_options={
            "module_width": MODULE_MM,
            "module_height": BAR_HEIGHT_MM,
            "quiet_zone": QUIET_ZONE_MODULES * MODULE_MM,
            "write_text": False,
            "margin_top": 0,
            "margin_bottom": 0,
        },
        text="",
    )
    element = minidom.parseString(rendered).documentElement
    width = float(element.getAttribute("width").removesuffix("mm"))
    height = float(element.getAttribute("height").removesuffix("mm"))
    return element, width, height


def _svg_document(width_mm: float, height_mm: float) -> tuple[minidom.Document, minidom.Element]:
    # No viewBox: lengths carry "mm" so that the nested python-barcode SVG (also in mm) and the
    # DataMatrix (its own viewBox) come out at their physical size.
    doc = minidom.Document()
    root = doc.createElement("svg")
    root.setAttribute("xmlns", "http://www.w3.org/2000/svg")
    root.setAttribute("version", "1.1")
    root.setAttribute("width", f"{width_mm:.3f}mm")
    root.setAttribute("height", f"{height_mm:.3f}mm")
    background = doc.createElement("rect")
    background.setAttribute("width", "100%")
    background.setAttribute("height", "100%")
    background.setAttribute("fill", "#fff")
    root.appendChild(background)
    doc.appendChild(root)
    return doc, root


def _svg_text(doc: minidom.Document, content: str, *, x: float, y: float, size: float) -> minidom.Element:
    text = doc.createElement("text")
    text.setAttribute("x", f"{x:.3f}mm")
    text.setAttribute("y", f"{y:.3f}mm")
    text.setAttribute("font-family", "DejaVu Sans Mono, monospace")
    text.setAttribute("font-size", f"{size:.2f}mm")
    text.setAttribute("fill", "#000")
    text.appendChild(doc.createTextNode(content))
    return text


def _vial_zpl(data: LabelData, fields: list[tuple[str, str]]) -> bytes:
    modules = _gs1_128_modules(fields)
    bars_width = (len(modules) + 2 * QUIET_ZONE_MODULES) * ZPL_MODULE_DOTS
    matrix_dots = _datamatrix(fields).get_pilimage(cellsize=1).width * ZPL_DATAMATRIX_DOTS
    lines = tuple(data.lines)
    text_x = ZPL_MARGIN_DOTS + matrix_dots + ZPL_MARGIN_DOTS
    top_height = max(matrix_dots, len(lines) * (ZPL_FONT_DOTS + 6))
    bars_y = ZPL_MARGIN_DOTS + top_height + ZPL_MARGIN_DOTS
    hri_y = bars_y + ZPL_BAR_HEIGHT_DOTS + 8
    width = max(812, ZPL_MARGIN_DOTS * 2 + bars_width)  # at least a 4 inch label
    height = hri_y + ZPL_FONT_DOTS + ZPL_MARGIN_DOTS

    commands = ["^XA", "^CI28", f"^PW{width}", f"^LL{height}", "^LH0,0"]
    # ^BX quality 200 with "_" as escape character: "_1" is FNC1, first (GS1 DataMatrix) and as
    # the separator after a variable field; a literal "_" in the data is written "__".
    matrix_data = "_1" + _joined([(ai, value.replace("_", "__")) for ai, value in fields], "_1")
    commands.append(f"^FO{ZPL_MARGIN_DOTS},{ZPL_MARGIN_DOTS}^BXN,{ZPL_DATAMATRIX_DOTS},200,,,,_^FD{matrix_data}^FS")
    for i, line in enumerate(lines):
        y = ZPL_MARGIN_DOTS + i * (ZPL_FONT_DOTS + 6)
        commands.append(f"^FO{text_x},{y}^A0N,{ZPL_FONT_DOTS},{ZPL_FONT_DOTS}^FH_^FD{_zpl_text(line)}^FS")
    bars_x = ZPL_MARGIN_DOTS + QUIET_ZONE_MODULES * ZPL_MODULE_DOTS
    commands.append(
        f"^FO{bars_x},{bars_y}^BY{ZPL_MODULE_DOTS}^BCN,{ZPL_BAR_HEIGHT_DOTS},N,N,N^FD{zpl_gs1_128_data(fields)}^FS"
    )
    commands.append(f"^FO{bars_x},{hri_y}^A0N,22,22^FH_^FD{_zpl_text(_hri(fields))}^FS")
    commands.append("^XZ")
    return ("\n".join(commands) + "\n").encode("utf-8")


def zpl_gs1_128_data(fields: list[tuple[str, str]]) -> str:
    """^BC field data for a GS1-128: start in subset C with FNC1 (">;>8"), FNC1 as ">8" after a
    variable field, and explicit subset switches (">6" to B, ">5" to C), since ^BC without a
    mode neither switches subsets nor inserts FNC1 by itself."""
    data = _joined(fields, "\x1d")
    out = [">;>8"]
    subset = "C"
    i = 0
    while i < len(data):
        char = data[i]
        if char == "\x1d":
            out.append(">8")
            i += 1
            continue
        run = _digit_run(data, i)
        if subset == "C":
            if run >= 2:
                out.append(data[i : i + 2])
                i += 2
                continue
            out.append(">6")
            subset = "B"
        # Subset B. Back to C for 4+ digits; an odd run leaves its first digit in B.
        if run >= 4 and run % 2 == 0:
            out.append(">5")
            subset = "C"
            continue
        out.append("><" if char == ">" else char)
        i += 1
    return "".join(out)


def _digit_run(data: str, start: int) -> int:
    end = start
    while end < len(data) and data[end].isdigit():
        end += 1
    return end - start


def _zpl_text(text: str) -> str:
    """Text for ^FH_^FD: ^, ~ and _ would be read as commands or escapes, so write them as hex."""
    return text.replace("_", "_5F").replace("^", "_5E").replace("~", "_7E")


# ---------------------------------------------------------------------------------------------
# Location label


def _location_image(code: str, name: str) -> Image.Image:
    bars = _bars_image(Code128(code).build()[0], module_px=MODULE_PX, height_px=BAR_HEIGHT_PX)
    font, small = _font(FONT_PX), _font(SMALL_FONT_PX)
    name_width, name_height, _ = _text_block([name], font)
    code_width, code_height, _ = _text_block([code], small)
    width = max(bars.width, name_width, code_width) + 2 * MARGIN_PX
    height = MARGIN_PX + name_height + MARGIN_PX // 2 + bars.height + MARGIN_PX // 2 + code_height + MARGIN_PX
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN_PX, MARGIN_PX), name, font=font, fill=0)
    bars_y = MARGIN_PX + name_height + MARGIN_PX // 2
    image.paste(bars, (MARGIN_PX, bars_y))
    text_left = MARGIN_PX + QUIET_ZONE_MODULES * MODULE_PX
    draw.text((text_left, bars_y + bars.height + MARGIN_PX // 2), code, font=small, fill=0)
    return image


def _location_svg(code: str, name: str) -> bytes:
    bars_svg, bars_width, bars_height = _bars_svg(Code128(code, writer=SVGWriter()))
    name_y = MARGIN_MM + FONT_MM
    bars_y = name_y + MARGIN_MM
    code_y = bars_y + bars_height + FONT_MM
    width = max(bars_width, len(name) * FONT_MM * 0.62) + 2 * MARGIN_MM
    doc, root = _svg_document(width, code_y + MARGIN_MM)
    root.appendChild(_svg_text(doc, name, x=MARGIN_MM, y=name_y, size=FONT_MM))
    bars_svg.setAttribute("x", f"{MARGIN_MM:.3f}mm")
    bars_svg.setAttribute("y", f"{bars_y:.3f}mm")
    root.appendChild(doc.importNode(bars_svg, True))
    root.appendChild(_svg_text(doc, code, x=MARGIN_MM + QUIET_ZONE_MODULES * MODULE_MM, y=code_y, size=FONT_MM * 0.8))
    return doc.toxml(encoding="utf-8")


def _location_zpl(code: str, name: str) -> bytes:
    bars_y = ZPL_MARGIN_DOTS + ZPL_FONT_DOTS + ZPL_MARGIN_DOTS
    code_y = bars_y + ZPL_BAR_HEIGHT_DOTS + 8
    commands = [
        "^XA",
        "^CI28",
        "^PW812",
        f"^LL{code_y + ZPL_FONT_DOTS + ZPL_MARGIN_DOTS}",
        "^LH0,0",
        f"^FO{ZPL_MARGIN_DOTS},{ZPL_MARGIN_DOTS}^A0N,{ZPL_FONT_DOTS},{ZPL_FONT_DOTS}^FH_^FD{_zpl_text(name)}^FS",
        # Mode A: the printer picks Code 128 subsets itself (the code has no GS1 content).
        f"^FO{ZPL_MARGIN_DOTS + QUIET_ZONE_MODULES * ZPL_MODULE_DOTS},{bars_y}^BY{ZPL_MODULE_DOTS}"
        f"^BCN,{ZPL_BAR_HEIGHT_DOTS},N,N,N,A^FD{code}^FS",
        f"^FO{ZPL_MARGIN_DOTS + QUIET_ZONE_MODULES * ZPL_MODULE_DOTS},{code_y}^A0N,22,22^FD{code}^FS",
        "^XZ",
    ]
    return ("\n".join(commands) + "\n").encode("utf-8")
