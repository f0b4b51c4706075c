"""Patient wristband labels for positive patient identification at the scan station.

The barcode is a GS1-128 of the patient's GSRN (AI 8018, "GSRN - recipient", the GS1 key for a
patient in a hospital's service relation) where the hospital issues them, and otherwise a plain
Code 128 of the MRN, which the scan station reads as the patient's. The name, date of birth and
MRN are printed in words beside it, as every wristband must carry them.
"""

from __future__ import annotations

from datetime import date

from barcode.codex import Code128, Gs1_128
from PIL import Image, ImageDraw

from core.errors import InvalidInput
from labels import gs1
from labels.render import (
    BAR_HEIGHT_PX,
    MARGIN_PX,
    MODULE_PX,
    SMALL_FONT_PX,
    ZPL_BAR_HEIGHT_DOTS,
    ZPL_FONT_DOTS,
    ZPL_MARGIN_DOTS,
    ZPL_MODULE_DOTS,
    _bars_image,
    _content_type,
    _font,
    _png_bytes,
    _single_pdf,
    _text_block,
    _zpl_text,
)

# What a Code 128 in subset B carries and ZPL prints without escapes.
_PRINTABLE = {chr(c) for c in range(0x20, 0x7F)} - set("^~>")
WRISTBAND_FORMATS = ("png", "pdf", "zpl")


def wristband_payload(*, mrn: str, gsrn: str = "") -> tuple[str, str]:
    """("gs1", "8018<gsrn>") or ("code128", mrn): what the wristband's barcode holds."""
    if gsrn:
        if not gs1.has_valid_check_digit(gsrn) or len(gsrn) != 18:
            raise InvalidInput(f"{gsrn!r} is not a GSRN (18 digits with a GS1 check digit).", code="invalid_gsrn")
        return "gs1", "8018" + gsrn
    if not mrn or not set(mrn) <= _PRINTABLE or len(mrn) > 32:
        raise InvalidInput(f"MRN {mrn!r} cannot be printed as a barcode.", code="invalid_mrn")
    return "code128", mrn


def _modules(kind: str, payload: str) -> str:
    # A fresh encoder each time: python-barcode's keeps state between builds.
    return (Gs1_128(payload) if kind == "gs1" else Code128(payload)).build()[0]


def render_wristband(*, mrn: str, name: str, date_of_birth: date, gsrn: str = "", fmt: str) -> tuple[bytes, str]:
    if fmt not in WRISTBAND_FORMATS:
        raise InvalidInput(f"Unknown wristband format {fmt!r}: expected one of {', '.join(WRISTBAND_FORMATS)}",
                           code="invalid_format", extra={"format": fmt})
    content_type = _content_type(fmt)
    kind, payload = wristband_payload(mrn=mrn, gsrn=gsrn)
    lines = [name, f"MRN {mrn}   born {date_of_birth:%Y-%m-%d}"]
    if fmt == "zpl":
        return _zpl(kind, payload, lines), content_type
    image = _image(kind, payload, lines)
    return (_png_bytes(image) if fmt == "png" else _single_pdf(image)), content_type


def _image(kind: str, payload: str, lines: list[str]) -> Image.Image:
    bars = _bars_image(_modules(kind, payload), module_px=MODULE_PX, height_px=BAR_HEIGHT_PX)
    font, small = _font(SMALL_FONT_PX * 2), _font(SMALL_FONT_PX)
    name_w, name_h, _ = _text_block(lines[:1], font)
    rest_w, rest_h, _ = _text_block(lines[1:], small)
    width = bars.width + max(name_w, rest_w) + 3 * MARGIN_PX
    height = max(bars.height, name_h + rest_h + MARGIN_PX) + 2 * MARGIN_PX
    image = Image.new("L", (width, height), 255)
    image.paste(bars, (MARGIN_PX, MARGIN_PX))
    draw = ImageDraw.Draw(image)
    left = bars.width + 2 * MARGIN_PX
    draw.text((left, MARGIN_PX), lines[0], font=font, fill=0)
    draw.text((left, MARGIN_PX + name_h + MARGIN_PX // 2), lines[1], font=small, fill=0)
    return image


def _zpl(kind: str, payload: str, lines: list[str]) -> bytes:
    # ^BC with ">;>8" starts Code C with FNC1 for GS1-128; mode N lets the printer pick subsets.
    data = ">;>8" + payload if kind == "gs1" else payload
    text_x = ZPL_MARGIN_DOTS + 420
    commands = [
        "^XA", "^CI28", "^PW1200", f"^LL{ZPL_BAR_HEIGHT_DOTS + 2 * ZPL_MARGIN_DOTS}", "^LH0,0",
        f"^FO{ZPL_MARGIN_DOTS},{ZPL_MARGIN_DOTS}^BY{ZPL_MODULE_DOTS}^BCN,{ZPL_BAR_HEIGHT_DOTS},N,N,N^FD{data}^FS",
        f"^FO{text_x},{ZPL_MARGIN_DOTS}^A0N,{ZPL_FONT_DOTS + 8},{ZPL_FONT_DOTS + 8}^FH_^FD{_zpl_text(lines[0])}^FS",
        f"^FO{text_x},{ZPL_MARGIN_DOTS + ZPL_FONT_DOTS + 20}^A0N,{ZPL_FONT_DOTS},{ZPL_FONT_DOTS}^FH_^FD{_zpl_text(lines[1])}^FS",
        "^XZ",
    ]
    return ("\n".join(commands) + "\n").encode("utf-8")
