import re
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labels.exceptions import InvalidBarcode
from labels.gs1 import GS1_AI82_CHARSET, ScanData, element_string, gtin_check_digit, hri, parse_scan

GS = "\x1d"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_refuses(raw):
    try:
        result = parse_scan(raw)
    except InvalidBarcode as exc:
        assert exc.code == "invalid_barcode"
        assert exc.message
        return None
    assert isinstance(result, ScanData)
    assert len(result.gtin) == 14 and result.gtin.isdigit()
    for alternative in result.alternatives:
        assert isinstance(alternative, ScanData)
        assert alternative.alternatives == ()
    return result


# Pieces that drive the parser down its real paths: AIs, dates, separators and their
# stand-ins, symbology identifiers, HRI parentheses and Digital Link fragments.
scanner_pieces = st.sampled_from(
    [
        "01",
        "10",
        "17",
        "21",
        "11",
        "99",
        "00309442700050",
        "09521234543213",
        "261231",
        "260230",
        "280200",
        GS,
        "<GS>",
        "^]",
        "\u241d",
        "]d2",
        "]C1",
        "]Q3",
        "]",
        "(",
        ")",
        "(01)",
        "(10)",
        "https://id.gs1.org/",
        "/",
        "?17=",
        "%2F",
        "\r\n",
        " ",
        "\x00",
    ]
)
scanner_like_text = st.lists(
    st.one_of(scanner_pieces, st.text(alphabet="0123456789()ABCxyz", max_size=6)), max_size=14
).map("".join)


@SETTINGS
@given(st.text())
def test_any_text_parses_or_is_refused_with_invalid_barcode(raw):
    parses_or_refuses(raw)


@SETTINGS
@given(scanner_like_text)
def test_scanner_like_text_parses_or_is_refused_with_invalid_barcode(raw):
    parses_or_refuses(raw)


@SETTINGS
@given(st.sampled_from(["", "]d2", "]C1", "]Q3"]), st.text(alphabet="0123456789" + GS + "()", max_size=60))
def test_digit_soup_parses_or_is_refused_with_invalid_barcode(prefix, body):
    parses_or_refuses(prefix + "01" + body)


@st.composite
def gtins(draw):
    body = draw(st.text(alphabet="0123456789", min_size=13, max_size=13))
    return body + gtin_check_digit(body)


# Two-digit years are read within -49..+50 years of today (GS1 General Specifications 7.12),
# so only dates inside that window survive a round trip.
_today = date.today()
expiries = st.one_of(
    st.none(),
    st.dates(min_value=date(_today.year - 40, 1, 1), max_value=date(_today.year + 40, 12, 31)),
)

# Note: "<GS>" is a legal lot, and also a wedge scanner's stand-in for the separator; a lot
# like "A<GS>21B" is then read as lot "A" + serial "B" (as it would be from such a scanner).
# In the HRI form a value containing "(21)" is read as a new field. Those values are ambiguous
# by nature, so the generators leave them out.
_ai82 = "".join(sorted(GS1_AI82_CHARSET))
variable_values = st.text(alphabet=_ai82, min_size=1, max_size=20).filter(lambda v: "<gs>" not in v.lower())
optional_values = st.one_of(st.none(), variable_values)


@SETTINGS
@given(gtins(), expiries, optional_values, optional_values)
def test_element_string_round_trips(gtin, expiry, lot, serial):
    scan = parse_scan(element_string(gtin=gtin, expiry=expiry, lot=lot, serial=serial))
    assert (scan.gtin, scan.expiry, scan.lot, scan.serial) == (gtin, expiry, lot, serial)
    assert scan.form == "element_string"


@SETTINGS
@given(gtins(), expiries, optional_values, optional_values, st.sampled_from(["]d2", "]C1", "]Q3"]))
def test_element_string_with_symbology_and_trailing_enter_round_trips(gtin, expiry, lot, serial, symbology):
    scan = parse_scan(symbology + element_string(gtin=gtin, expiry=expiry, lot=lot, serial=serial) + "\r\n")
    assert (scan.gtin, scan.expiry, scan.lot, scan.serial, scan.symbology) == (gtin, expiry, lot, serial, symbology)


_hri_token = re.compile(r"\(\d{2,4}\)")


@SETTINGS
@given(
    gtins(),
    expiries,
    optional_values.filter(lambda v: v is None or not _hri_token.search(v)),
    optional_values.filter(lambda v: v is None or not _hri_token.search(v)),
)
def test_hri_round_trips(gtin, expiry, lot, serial):
    scan = parse_scan(hri(gtin=gtin, expiry=expiry, lot=lot, serial=serial))
    assert (scan.gtin, scan.expiry, scan.lot, scan.serial) == (gtin, expiry, lot, serial)
    assert scan.form == "hri"


@SETTINGS
@given(gtins(), expiries, variable_values, variable_values)
def test_dropped_separator_always_offers_the_true_reading(gtin, expiry, lot, serial):
    # What a wedge scanner that drops ASCII 29 sends: the lot runs straight into "21".
    raw = element_string(gtin=gtin, expiry=expiry, lot=lot, serial=serial, separator="")
    scan = parse_scan(raw)
    readings = [scan, *scan.alternatives]
    assert (gtin, expiry, lot, serial) in [(r.gtin, r.expiry, r.lot, r.serial) for r in readings]
