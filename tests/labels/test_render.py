import base64
import io
import re
import zlib
from datetime import date
from xml.dom import minidom

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from core.errors import InvalidInput
from labels.exceptions import InvalidBarcode
from labels.gs1 import element_string, parse_scan
from labels.render import (
    LabelData,
    render_label_sheet,
    render_location_label,
    render_vial_label,
    zpl_gs1_128_data,
)

GAMMAGARD = "00309442700050"
DEMO = "09521234543213"

PRIVIGEN = LabelData(
    gtin=GAMMAGARD,
    expiry=date(2027, 6, 30),
    lot="P100263",
    serial="4711",
    lines=("Privigen 10 g", "Lot P100263  Exp 2027-06-30", "SN 4711"),
)

# Data that exercises Code 128 subset switching, FNC1 placement and characters ZPL treats specially.
AWKWARD = [
    PRIVIGEN,
    LabelData(gtin=DEMO, expiry=None, lot="LE12A045", serial=None, lines=("Gammagard Liquid 10 g",)),
    LabelData(gtin=GAMMAGARD, expiry=date(2028, 2, 29), lot="12345", serial="INT-000123", lines=()),
    LabelData(gtin=DEMO, expiry=date(2026, 12, 31), lot="a_b>c<d", serial="x%y/z?", lines=("Ünïcode ok ^~_",)),
    LabelData(gtin=GAMMAGARD, expiry=None, lot=None, serial="9" * 20, lines=("Serial only",)),
    LabelData(gtin=GAMMAGARD, expiry=date(2030, 1, 1), lot="A" * 20, serial="B1" * 10, lines=("Longest",)),
]


def decode(image):
    return {result.format.name: result for result in zxingcpp.read_barcodes(image)}


def fields(data: LabelData):
    return (data.gtin, data.expiry, data.lot, data.serial)


def scanned(result):
    # zxing gives GS1 content as HRI text; what a scanner sends is the symbology identifier
    # plus the raw bytes with GS. Both must parse back to the label's data.
    from_text = parse_scan(result.symbology_identifier + result.text)
    from_bytes = parse_scan(result.symbology_identifier + result.bytes.decode("ascii"))
    assert (from_text.gtin, from_text.expiry, from_text.lot, from_text.serial) == (
        from_bytes.gtin,
        from_bytes.expiry,
        from_bytes.lot,
        from_bytes.serial,
    )
    return (from_text.gtin, from_text.expiry, from_text.lot, from_text.serial)


def png(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


# --- PNG --------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", AWKWARD, ids=lambda d: d.lot or d.serial)
def test_vial_png_datamatrix_and_gs1_128_both_scan_back_to_the_label_data(data):
    content, content_type = render_vial_label(data, "png")
    assert content_type == "image/png"
    found = decode(png(content))

    matrix = found["DataMatrix"]
    assert matrix.symbology_identifier == "]d2"
    assert matrix.content_type == zxingcpp.ContentType.GS1
    assert scanned(matrix) == fields(data)

    linear = found["Code128"]
    assert linear.symbology_identifier == "]C1"
    assert linear.content_type == zxingcpp.ContentType.GS1
    assert scanned(linear) == fields(data)


def test_vial_png_separates_variable_fields_with_gs_not_a_stand_in():
    found = decode(png(render_vial_label(PRIVIGEN, "png")[0]))
    expected = element_string(gtin=GAMMAGARD, expiry=date(2027, 6, 30), lot="P100263", serial="4711").encode()
    assert found["DataMatrix"].bytes == expected
    assert found["Code128"].bytes == expected
    assert found["DataMatrix"].text == "(01)00309442700050(17)270630(10)P100263(21)4711"


def test_vial_png_is_300_dpi():
    image = png(render_vial_label(PRIVIGEN, "png")[0])
    assert round(image.info["dpi"][0]) == 300


# --- SVG --------------------------------------------------------------------------------------


def _mm(value: str) -> float:
    assert value.endswith("mm"), value
    return float(value[:-2])


def rasterize_svg(content: bytes, px_per_mm: int = 12) -> Image.Image:
    """Just enough SVG for our labels: rects at the top level of the nested <svg>s."""
    root = minidom.parseString(content).documentElement
    width, height = _mm(root.getAttribute("width")), _mm(root.getAttribute("height"))
    image = Image.new("L", (round(width * px_per_mm), round(height * px_per_mm)), 255)
    draw = ImageDraw.Draw(image)
    for nested in root.getElementsByTagName("svg"):
        x0, y0 = _mm(nested.getAttribute("x")), _mm(nested.getAttribute("y"))
        view_box = nested.getAttribute("viewBox")
        scale = _mm(nested.getAttribute("width")) / float(view_box.split()[2]) if view_box else None
        for rect in nested.getElementsByTagName("rect"):
            style = rect.getAttribute("style") + rect.getAttribute("fill") + rect.parentNode.getAttribute("fill")
            if "white" in style or "#fff" in style or "%" in rect.getAttribute("width"):
                continue

            def length(name, rect=rect):
                raw = rect.getAttribute(name) or "0"
                return float(raw) * scale if scale else _mm(raw)

            left, top = x0 + length("x"), y0 + length("y")
            right, bottom = left + length("width"), top + length("height")
            box = [round(left * px_per_mm), round(top * px_per_mm), round(right * px_per_mm), round(bottom * px_per_mm)]
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=0)
    return image


def test_vial_svg_is_valid_xml_with_both_symbols_and_the_text():
    content, content_type = render_vial_label(PRIVIGEN, "svg")
    assert content_type == "image/svg+xml"
    root = minidom.parseString(content).documentElement
    assert root.tagName == "svg"
    assert root.getAttribute("xmlns") == "http://www.w3.org/2000/svg"
    assert len(root.getElementsByTagName("rect")) > 50
    texts = [node.firstChild.data for node in root.getElementsByTagName("text")]
    assert texts == [*PRIVIGEN.lines, "(01)00309442700050(17)270630(10)P100263(21)4711"]


@pytest.mark.parametrize("data", AWKWARD[:4], ids=lambda d: d.lot)
def test_vial_svg_scans_back_when_drawn(data):
    found = decode(rasterize_svg(render_vial_label(data, "svg")[0]))
    assert found["DataMatrix"].symbology_identifier == "]d2"
    assert found["Code128"].symbology_identifier == "]C1"
    assert scanned(found["DataMatrix"]) == fields(data)
    assert scanned(found["Code128"]) == fields(data)


# --- ZPL --------------------------------------------------------------------------------------


def undo_zpl_code128(field_data: str) -> str:
    """Read ^BC field data back, checking that subset C only ever holds digit pairs."""
    assert field_data.startswith(">;>8"), "GS1-128 starts in subset C with FNC1"
    out, subset, chunk, i = "", "C", "", 4
    while i < len(field_data):
        if field_data[i] == ">":
            code = field_data[i + 1]
            i += 2
            if code == "<":
                assert subset == "B"
                out += ">"
                continue
            if subset == "C":
                assert len(chunk) % 2 == 0 and chunk.isdigit() or chunk == "", chunk
            out, chunk = out + chunk, ""
            if code == "8":
                out += "\x1d"
            elif code == "6":
                subset = "B"
            elif code == "5":
                subset = "C"
            else:
                pytest.fail(f"unexpected invocation >{code}")
            continue
        if subset == "C":
            chunk += field_data[i]
        else:
            out += field_data[i]
        i += 1
    if subset == "C":
        assert len(chunk) % 2 == 0 and chunk.isdigit() or chunk == "", chunk
    return out + chunk


def test_vial_zpl_is_one_label_with_datamatrix_gs1_128_and_text():
    content, content_type = render_vial_label(PRIVIGEN, "zpl")
    assert content_type == "application/x-zpl"
    zpl = content.decode("utf-8")
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert "^BXN,5,200,,,,_^FD_10100309442700050172706301" + "0P100263_1214711^FS" in zpl
    assert "^BCN,96,N,N,N^FD>;>8" in zpl
    for line in PRIVIGEN.lines:
        assert f"^FD{line}^FS" in zpl
    assert "(01)00309442700050(17)270630(10)P100263(21)4711" in zpl
    # Every field is closed.
    assert zpl.count("^FD") == zpl.count("^FS")


@pytest.mark.parametrize("data", AWKWARD, ids=lambda d: d.lot or d.serial)
def test_vial_zpl_gs1_128_data_reads_back_to_the_element_string(data):
    zpl = render_vial_label(data, "zpl")[0].decode("utf-8")
    bc = re.search(r"\^BCN,\d+,N,N,N\^FD(.*?)\^FS", zpl).group(1)
    assert undo_zpl_code128(bc) == element_string(gtin=data.gtin, expiry=data.expiry, lot=data.lot, serial=data.serial)


def test_zpl_gs1_128_data_switches_subsets_for_letters_and_odd_digits():
    data = zpl_gs1_128_data([("01", GAMMAGARD), ("10", "AB12345"), ("21", "7")])
    # C: 01 00 30 94 42 70 00 50 10 | B: A B 1 | C: 23 45 | FNC1 21 | B: 7
    assert data == ">;>8" + "010030944270005010>6AB1>52345>821>67"
    assert undo_zpl_code128(data) == f"01{GAMMAGARD}10AB12345\x1d217"


def test_zpl_escapes_text_that_would_read_as_commands():
    zpl = render_vial_label(AWKWARD[3], "zpl")[0].decode("utf-8")
    assert "^FDÜnïcode ok _5E_7E_5F^FS" in zpl
    assert "a__b>c<d" in zpl  # "_" doubled in ^BX data, whose escape character is "_"
    assert "^CI28" in zpl


# --- PDF --------------------------------------------------------------------------------------


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


def test_vial_pdf_is_one_page_holding_the_label_image():
    content, content_type = render_vial_label(PRIVIGEN, "pdf")
    assert content_type == "application/pdf"
    assert content.startswith(b"%PDF-")
    assert page_count(content) == 1
    assert b"/Subtype /Image" in content


def test_label_sheet_puts_24_labels_on_an_a4_page():
    one = render_label_sheet([PRIVIGEN])
    full = render_label_sheet([PRIVIGEN] * 24)
    more = render_label_sheet([PRIVIGEN] * 25)
    assert one.startswith(b"%PDF-")
    assert (page_count(one), page_count(full), page_count(more)) == (1, 1, 2)
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in one


def test_label_sheet_on_letter_puts_30_labels_on_a_page():
    sheet = render_label_sheet([PRIVIGEN] * 31, page_size="letter")
    assert page_count(sheet) == 2
    assert b"/MediaBox [ 0 0 612 792 ]" in sheet


def page_contents(pdf: bytes) -> bytes:
    """reportlab writes streams ASCII85 + Flate encoded; decode those that are not images."""
    out = b""
    for header, stream in re.findall(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", pdf, re.S):
        if b"/Subtype /Image" in header or b"/ASCII85Decode" not in header:
            continue
        out += zlib.decompress(base64.a85decode(stream.strip().removesuffix(b"~>")))
    return out


def test_label_sheet_draws_every_label():
    labels = [PRIVIGEN] * 3 + AWKWARD[1:3]
    sheet = render_label_sheet(labels)
    assert len(re.findall(rb" Do\b", page_contents(sheet))) == len(labels)
    assert len(render_label_sheet(labels * 4)) > len(sheet)


def test_label_sheet_refuses_an_empty_list_and_an_unknown_page_size():
    with pytest.raises(InvalidInput) as caught:
        render_label_sheet([])
    assert caught.value.code == "empty_label_sheet"
    with pytest.raises(InvalidInput) as caught:
        render_label_sheet([PRIVIGEN], page_size="A5")
    assert caught.value.code == "invalid_format"


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpg", "PNG", "", "pdf "])
def test_an_unknown_format_is_refused(fmt):
    with pytest.raises(InvalidInput) as caught:
        render_vial_label(PRIVIGEN, fmt)
    assert caught.value.code == "invalid_format"
    with pytest.raises(InvalidInput) as caught:
        render_location_label(code="FRIDGE-A", name="Fridge A", fmt=fmt)
    assert caught.value.code == "invalid_format"


def test_a_label_with_invalid_gs1_data_is_refused():
    with pytest.raises(InvalidBarcode, match="wrong check digit"):
        render_vial_label(LabelData(gtin="00309442700051", expiry=None, lot="A", serial=None, lines=()), "png")
    with pytest.raises(InvalidBarcode, match="longer than 20"):
        render_label_sheet([PRIVIGEN, LabelData(gtin=GAMMAGARD, expiry=None, lot="L" * 21, serial=None, lines=())])


# --- location labels --------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["FRIDGE-A", "RT-SHELF-1", "QUAR-1", "loc 7/b_2", "12345678"])
def test_location_png_scans_back_to_the_code(code):
    content, content_type = render_location_label(code=code, name="Main pharmacy fridge A", fmt="png")
    assert content_type == "image/png"
    found = decode(png(content))
    assert found["Code128"].text == code
    assert found["Code128"].symbology_identifier == "]C0"  # plain Code 128, not GS1


def test_location_svg_scans_back_to_the_code():
    content, _ = render_location_label(code="FRIDGE-B", name="Main pharmacy fridge B", fmt="svg")
    root = minidom.parseString(content).documentElement
    texts = [node.firstChild.data for node in root.getElementsByTagName("text")]
    assert texts == ["Main pharmacy fridge B", "FRIDGE-B"]
    assert decode(rasterize_svg(content))["Code128"].text == "FRIDGE-B"


def test_location_zpl_and_pdf():
    zpl = render_location_label(code="QUAR-1", name="Quarantine ^cabinet", fmt="zpl")[0].decode()
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    assert "^BCN,96,N,N,N,A^FDQUAR-1^FS" in zpl
    assert "^FDQuarantine _5Ecabinet^FS" in zpl
    pdf, content_type = render_location_label(code="QUAR-1", name="Quarantine cabinet", fmt="pdf")
    assert (pdf[:5], content_type, page_count(pdf)) == (b"%PDF-", "application/pdf", 1)


@pytest.mark.parametrize("code", ["", "A^B", "A~B", "A>B", "Kühlschrank", "X" * 41, "A\nB"])
def test_a_location_code_that_cannot_be_printed_is_refused(code):
    with pytest.raises(InvalidInput) as caught:
        render_location_label(code=code, name="x", fmt="png")
    assert caught.value.code == "invalid_location_code"


# --- the manufacturer's identifiers, repeated as printed ---------------------------------------


def test_an_internal_serial_is_encoded_in_91_after_the_lot_and_never_in_21():
    data = LabelData(gtin=GAMMAGARD, expiry=date(2027, 6, 30), lot="P100263", serial=None, internal_serial="INT-00AB")

    found = decode(png(render_vial_label(data, "png")[0]))

    for symbol in ("DataMatrix", "Code128"):
        assert found[symbol].text == "(01)00309442700050(17)270630(10)P100263(91)INT-00AB"
        assert found[symbol].bytes == b"01003094427000501727063010P100263\x1d91INT-00AB"


def test_day_00_is_printed_back_as_day_00():
    data = LabelData(gtin=GAMMAGARD, expiry=date(2028, 2, 29), lot="L1", serial="S1", expiry_day_00=True)

    found = decode(png(render_vial_label(data, "png")[0]))

    assert found["DataMatrix"].text == "(01)00309442700050(17)280200(10)L1(21)S1"


@pytest.mark.parametrize("data", [
    LabelData(gtin=GAMMAGARD, expiry=date(2028, 2, 28), lot="L1", serial="S1", expiry_day_00=True),
    LabelData(gtin=GAMMAGARD, expiry=date(2028, 2, 29), lot="L1", serial=None, internal_serial=""),
    LabelData(gtin=GAMMAGARD, expiry=date(2028, 2, 29), lot="L1", serial=None, internal_serial="INT ÄB"),
    LabelData(gtin=GAMMAGARD, expiry=date(2028, 2, 29), lot="L1", serial=None, internal_serial="I" * 21),
], ids=["day 00 not a month end", "empty internal serial", "bad characters", "too long"])
def test_label_data_that_cannot_be_printed_faithfully_is_refused(data):
    with pytest.raises(InvalidInput) as refused:
        render_vial_label(data, "png")
    assert refused.value.code == "invalid_label_data"
