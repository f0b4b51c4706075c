from datetime import date

import pytest

from core.errors import InvalidInput
from labels.exceptions import InvalidBarcode
from labels.gs1 import (
    ScanData,
    element_string,
    gtin_check_digit,
    hri,
    is_valid_gtin,
    normalize_gtin,
    parse_scan,
)

GS = "\x1d"
GAMMAGARD = "00309442700050"  # Gammagard Liquid 10 g, NDC 0944-2700-05
DEMO = "09521234543213"  # GS1 demo GTIN

GAMMAGARD_FULL = f"01{GAMMAGARD}17261231" + f"10ABC123{GS}21XYZ"


def refusal(raw: str) -> InvalidBarcode:
    with pytest.raises(InvalidBarcode) as caught:
        parse_scan(raw)
    return caught.value


# --- GTIN helpers -----------------------------------------------------------------------------


def test_check_digit_of_the_gammagard_ndc_gtin_is_zero():
    assert gtin_check_digit("0030944270005") == "0"


@pytest.mark.parametrize(
    ("body", "digit"),
    [("950110153100", "0"), ("9501234", "6"), ("0952123454321", "3"), ("00000000000", "0")],
)
def test_check_digit_weights_three_one_from_the_right(body, digit):
    assert gtin_check_digit(body) == digit


@pytest.mark.parametrize("body", ["", "12a", "١٢٣"])
def test_check_digit_refuses_non_digits(body):
    with pytest.raises(InvalidBarcode):
        gtin_check_digit(body)


@pytest.mark.parametrize("value", [GAMMAGARD, DEMO, "9521234543213", "95012346", "309442700050"])
def test_valid_gtins_of_each_length_are_valid(value):
    assert is_valid_gtin(value)


@pytest.mark.parametrize(
    "value", [GAMMAGARD[:-1] + "1", "123", "0030944270005O", "", "003094427000500", None, 309442700050]
)
def test_invalid_gtins_are_not_valid(value):
    assert not is_valid_gtin(value)


def test_normalize_gtin_pads_to_fourteen_digits():
    assert normalize_gtin("9521234543213") == DEMO
    assert normalize_gtin("95012346") == "00000095012346"
    assert normalize_gtin(GAMMAGARD) == GAMMAGARD


def test_normalize_gtin_names_the_expected_check_digit():
    with pytest.raises(InvalidBarcode) as caught:
        normalize_gtin("00309442700051")
    assert caught.value.message == "GTIN 00309442700051 has a wrong check digit (expected 0)"
    assert caught.value.code == "invalid_barcode"
    assert caught.value.extra["expected_check_digit"] == "0"


def test_normalize_gtin_refuses_a_wrong_length():
    with pytest.raises(InvalidBarcode, match="not a GTIN"):
        normalize_gtin("1234567")


def test_invalid_barcode_is_an_invalid_input_with_status_400():
    error = refusal("")
    assert isinstance(error, InvalidInput)
    assert error.status == 400
    assert error.code == "invalid_barcode"


# --- accepted forms ---------------------------------------------------------------------------


def test_element_string_with_separator_parses_all_four_fields():
    scan = parse_scan(GAMMAGARD_FULL)
    assert scan == ScanData(
        raw=GAMMAGARD_FULL,
        gtin=GAMMAGARD,
        expiry=date(2026, 12, 31),
        lot="ABC123",
        serial="XYZ",
        symbology=None,
        form="element_string",
    )


@pytest.mark.parametrize("symbology", ["]d2", "]C1", "]Q3", "]e0"])
def test_element_string_with_a_symbology_identifier_keeps_it(symbology):
    scan = parse_scan(symbology + GAMMAGARD_FULL)
    assert scan.symbology == symbology
    assert (scan.gtin, scan.lot, scan.serial, scan.expiry) == (GAMMAGARD, "ABC123", "XYZ", date(2026, 12, 31))
    assert scan.form == "element_string"


def test_a_leading_gs_for_fnc1_in_first_position_is_ignored():
    assert parse_scan(GS + GAMMAGARD_FULL).lot == "ABC123"


def test_separator_after_a_fixed_length_field_is_accepted():
    scan = parse_scan(f"01{GAMMAGARD}{GS}17261231{GS}10ABC123{GS}21XYZ{GS}")
    assert (scan.expiry, scan.lot, scan.serial) == (date(2026, 12, 31), "ABC123", "XYZ")


def test_fields_may_come_in_any_order():
    scan = parse_scan(f"21XYZ{GS}10ABC123{GS}17261231" + f"01{GAMMAGARD}")
    assert (scan.gtin, scan.lot, scan.serial, scan.expiry) == (GAMMAGARD, "ABC123", "XYZ", date(2026, 12, 31))


def test_other_known_application_identifiers_are_accepted_and_ignored():
    scan = parse_scan(f"01{GAMMAGARD}11250101" + f"10ABC{GS}7154410944270005{GS}21S1")
    assert (scan.lot, scan.serial, scan.expiry) == ("ABC", "S1", None)


def test_only_a_gtin_in_an_element_string():
    scan = parse_scan(f"]C101{GAMMAGARD}")
    assert (scan.gtin, scan.lot, scan.serial, scan.expiry, scan.form) == (GAMMAGARD, None, None, None, "element_string")


def test_hri_form_parses():
    raw = f"(01){GAMMAGARD}(17)261231(10)ABC123(21)XYZ"
    scan = parse_scan(raw)
    assert (scan.gtin, scan.expiry, scan.lot, scan.serial, scan.form) == (
        GAMMAGARD,
        date(2026, 12, 31),
        "ABC123",
        "XYZ",
        "hri",
    )


def test_hri_with_spaces_and_a_symbology_identifier_parses():
    scan = parse_scan(f"]d2(01) {DEMO} (10) ABC123 (21) 12345")
    assert (scan.gtin, scan.lot, scan.serial, scan.symbology, scan.form) == (DEMO, "ABC123", "12345", "]d2", "hri")


def test_hri_lot_may_contain_parentheses():
    assert parse_scan(f"(01){DEMO}(10)A(B)C").lot == "A(B)C"


def test_digital_link_with_expiry_in_the_query_parses():
    scan = parse_scan("https://id.gs1.org/01/09521234543213/10/ABC123/21/12345?17=261231")
    assert (scan.gtin, scan.expiry, scan.lot, scan.serial, scan.form) == (
        DEMO,
        date(2026, 12, 31),
        "ABC123",
        "12345",
        "digital_link",
    )


def test_digital_link_on_any_host_with_a_path_prefix_and_percent_encoding_parses():
    scan = parse_scan("https://pharma.example.com/dl/01/9521234543213/10/AB%2FC1?17=280200&linkType=gs1:pip")
    assert (scan.gtin, scan.lot, scan.expiry) == (DEMO, "AB/C1", date(2028, 2, 29))


def test_digital_link_percent_decodes_the_lot():
    scan = parse_scan("https://example.org/01/09521234543213/10/AB%2FC%251")
    assert scan.lot == "AB/C%1"


def test_digital_link_with_short_key_names_parses():
    scan = parse_scan("https://id.gs1.org/gtin/9521234543213/lot/ABC1/ser/12345?exp=261231")
    assert (scan.gtin, scan.lot, scan.serial, scan.expiry) == (DEMO, "ABC1", "12345", date(2026, 12, 31))


def test_digital_link_in_a_gs1_qr_code_keeps_the_symbology():
    scan = parse_scan("]Q1https://id.gs1.org/01/09521234543213")
    assert (scan.gtin, scan.symbology, scan.form) == (DEMO, "]Q1", "digital_link")


@pytest.mark.parametrize(
    ("raw", "gtin"), [(GAMMAGARD, GAMMAGARD), ("9521234543213", DEMO), ("95012346", "00000095012346")]
)
def test_a_bare_gtin_parses_as_form_gtin(raw, gtin):
    scan = parse_scan(raw)
    assert (scan.gtin, scan.form, scan.lot, scan.expiry) == (gtin, "gtin", None, None)


def test_an_ean13_scan_with_its_symbology_identifier_parses():
    scan = parse_scan("]E09521234543213")
    assert (scan.gtin, scan.symbology, scan.form) == (DEMO, "]E0", "gtin")


@pytest.mark.parametrize(
    "stand_in", ["<GS>", "{GS}", "[GS]", "^]", "\\x1d", "\\u001d", "\u241d", "<gs>", "\\X1D"]
)
def test_wedge_scanner_separator_stand_ins_parse(stand_in):
    scan = parse_scan(f"01{GAMMAGARD}17261231" + f"10ABC123{stand_in}21XYZ")
    assert (scan.lot, scan.serial) == ("ABC123", "XYZ")
    assert scan.alternatives == ()


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n", "  \t"])
def test_surrounding_whitespace_and_a_trailing_enter_are_ignored(ending):
    raw = "  " + GAMMAGARD_FULL + ending
    scan = parse_scan(raw)
    assert (scan.lot, scan.serial) == ("ABC123", "XYZ")
    assert scan.raw == raw


def test_a_lot_that_looks_like_a_stand_in_is_read_literally_when_the_translation_fails():
    assert parse_scan(f"01{GAMMAGARD}10A<GS>B").lot == "A<GS>B"


# --- expiry dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("261200", date(2026, 12, 31)),
        ("270600", date(2027, 6, 30)),
        ("280200", date(2028, 2, 29)),  # leap year
        ("270200", date(2027, 2, 28)),
        ("270630", date(2027, 6, 30)),
    ],
)
def test_expiry_day_00_is_the_last_day_of_the_month(yymmdd, expected):
    assert parse_scan(f"01{GAMMAGARD}17{yymmdd}").expiry == expected


# --- refusals ---------------------------------------------------------------------------------


def test_wrong_check_digit_is_refused_with_the_expected_digit():
    error = refusal("]d201003094427000511726123110ABC")
    assert error.message == "GTIN 00309442700051 has a wrong check digit (expected 0)"
    assert error.extra["ai"] == "01"


def test_wrong_check_digit_in_a_bare_gtin_is_refused():
    assert refusal("9521234543214").message == "GTIN 9521234543214 has a wrong check digit (expected 3)"


def test_wrong_check_digit_in_a_digital_link_is_refused():
    assert "wrong check digit" in refusal("https://id.gs1.org/01/09521234543214").message


def test_a_barcode_without_gtin_is_refused():
    assert refusal(f"1726123110ABC{GS}21XYZ").message == "No GTIN (01) in the barcode"
    assert refusal("(17)261231(10)ABC").message == "No GTIN (01) in the barcode"
    assert refusal("https://id.gs1.org/00/106141412345678908").message == "No GTIN (01) in the barcode"


@pytest.mark.parametrize("yymmdd", ["261331", "260230", "270229", "260431", "261232", "260001"])
def test_an_expiry_that_is_not_a_real_date_is_refused(yymmdd):
    error = refusal(f"01{GAMMAGARD}17{yymmdd}10ABC")
    assert error.message == f"Expiry {yymmdd} is not a real date"
    assert error.extra == {"ai": "17", "value": yymmdd}


def test_an_impossible_expiry_in_hri_and_digital_link_is_refused():
    assert refusal(f"(01){GAMMAGARD}(17)261331").message == "Expiry 261331 is not a real date"
    assert refusal(f"https://id.gs1.org/01/{DEMO}?17=260230").message == "Expiry 260230 is not a real date"


def test_an_unknown_application_identifier_is_refused_where_it_starts():
    error = refusal(f"01{GAMMAGARD}1926123")
    assert error.message.startswith("Unknown application identifier at '192612")
    assert error.extra["at"] == "1926123"


def test_an_unknown_application_identifier_in_hri_is_refused():
    assert refusal(f"(01){GAMMAGARD}(88)X").message.startswith("Unknown application identifier at '(88)")


def test_a_truncated_expiry_is_refused():
    error = refusal("0100309442700050172612")
    assert error.message == "Expiry (17) is truncated: 4 of 6 digits"
    assert error.extra == {"ai": "17", "value": "2612"}


def test_a_truncated_gtin_is_refused():
    assert refusal("010030944270005").message == "GTIN (01) is truncated: 13 of 14 digits"


def test_a_barcode_ending_in_half_an_application_identifier_is_refused():
    assert "truncated" in refusal(f"01{GAMMAGARD}1").message


@pytest.mark.parametrize("raw", [f"01{GAMMAGARD}10", f"01{GAMMAGARD}10{GS}21XYZ", f"(01){GAMMAGARD}(10)"])
def test_an_empty_lot_is_refused(raw):
    assert refusal(raw).message == "Lot (10) is empty"


def test_a_lot_longer_than_20_characters_is_refused():
    error = refusal(f"01{GAMMAGARD}10{'A' * 21}")
    assert error.message.startswith("Lot is longer than 20 characters")
    assert error.extra == {"ai": "10", "value": "A" * 21}


def test_a_serial_longer_than_20_characters_is_refused():
    assert refusal(f"01{GAMMAGARD}10A{GS}21{'9' * 21}").message.startswith("Serial is longer than 20 characters")


def test_a_lot_with_characters_outside_the_gs1_set_is_refused():
    assert "not allowed" in refusal(f"(01){GAMMAGARD}(10)AB#C").message


@pytest.mark.parametrize("raw", ["", "   ", "\r\n", GS])
def test_an_empty_scan_is_refused(raw):
    assert refusal(raw).message == "Empty barcode"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x1e", "\x7f", "\u200b"])
def test_control_characters_other_than_the_separator_are_refused(char):
    error = refusal(f"01{GAMMAGARD}10AB{char}C")
    assert "control character" in error.message
    assert error.extra["char"] == f"U+{ord(char):04X}"


def test_non_ascii_text_is_refused():
    assert "not allowed" in refusal(f"01{GAMMAGARD}10ABÉ").message


def test_conflicting_repeated_fields_are_refused():
    assert "appears twice" in refusal(f"01{GAMMAGARD}10A{GS}10B").message


@pytest.mark.parametrize("raw", ["]", "]]]", "]d", "]d2", "]X9abc", "hello", "(", "()", "https://", "http://[::1"])
def test_garbage_is_refused_cleanly(raw):
    refusal(raw)


def test_a_non_string_is_refused():
    with pytest.raises(InvalidBarcode):
        parse_scan(None)  # type: ignore[arg-type]


# --- dropped separators -----------------------------------------------------------------------


def test_dropped_separator_returns_the_greedy_lot_and_the_split_as_alternative():
    raw = f"01{GAMMAGARD}17261231" + "10ABC12321XYZ"
    scan = parse_scan(raw)
    assert (scan.lot, scan.serial) == ("ABC12321XYZ", None)
    assert [(alt.lot, alt.serial, alt.expiry) for alt in scan.alternatives] == [("ABC123", "XYZ", date(2026, 12, 31))]
    alternative = scan.alternatives[0]
    assert (alternative.gtin, alternative.raw, alternative.form, alternative.alternatives) == (
        GAMMAGARD,
        raw,
        "element_string",
        (),
    )


def test_dropped_separator_before_an_expiry_offers_the_expiry_split():
    scan = parse_scan(f"01{GAMMAGARD}" + "10ABC12317261231")
    assert (scan.lot, scan.expiry) == ("ABC12317261231", None)
    assert [(alt.lot, alt.expiry) for alt in scan.alternatives] == [("ABC123", date(2026, 12, 31))]


def test_dropped_separator_ignores_17_not_followed_by_a_real_date():
    scan = parse_scan(f"01{GAMMAGARD}" + "10ABC17881399")
    assert scan.lot == "ABC17881399"
    assert scan.alternatives == ()


def test_the_company_internal_serial_91_is_read_apart_from_the_manufacturer_serial():
    scan = parse_scan(f"]d201{GAMMAGARD}17271231" + "10LOT1\x1d91INT-0A1B2C")
    assert (scan.lot, scan.serial, scan.internal_serial) == ("LOT1", None, "INT-0A1B2C")


def test_a_dropped_separator_before_the_internal_serial_91_is_offered_as_a_reading():
    scan = parse_scan(f"01{GAMMAGARD}17271231" + "10LOT191INT-0A1B2C")
    assert [(alt.lot, alt.internal_serial) for alt in scan.alternatives] == [("LOT1", "INT-0A1B2C")]


@pytest.mark.parametrize("raw", [f"01{GAMMAGARD}17271200" + "10LOT1", f"(01){GAMMAGARD}(17)271200(10)LOT1",
                                 f"https://id.example.org/01/{GAMMAGARD}/10/LOT1?17=271200"])
def test_an_expiry_printed_with_day_00_is_flagged_in_every_form(raw):
    scan = parse_scan(raw)
    assert scan.expiry == date(2027, 12, 31)
    assert scan.expiry_day_00 is True


def test_an_expiry_with_a_real_day_is_not_flagged_as_day_00():
    assert parse_scan(f"01{GAMMAGARD}17271231" + "10LOT1").expiry_day_00 is False


def test_dropped_separator_offers_every_plausible_split():
    scan = parse_scan(f"01{GAMMAGARD}" + "10A21B10C")
    readings = {(scan.lot, scan.serial)} | {(alt.lot, alt.serial) for alt in scan.alternatives}
    assert (scan.lot, scan.serial) == ("A21B10C", None)
    assert ("A", "B10C") in readings
    # "10" again after the lot would repeat the lot field: not a plausible reading.
    assert all(alt.lot != "A21B" for alt in scan.alternatives)


def test_dropped_separator_serial_first_offers_the_lot_split():
    scan = parse_scan(f"01{GAMMAGARD}" + "21SN123410LOT9")
    assert (scan.serial, scan.lot) == ("SN123410LOT9", None)
    assert [(alt.serial, alt.lot) for alt in scan.alternatives] == [("SN1234", "LOT9")]


def test_when_the_greedy_reading_is_too_long_the_split_becomes_the_answer():
    scan = parse_scan(f"01{GAMMAGARD}" + "10ABC12321" + "X" * 20)
    assert (scan.lot, scan.serial) == ("ABC123", "X" * 20)


def test_a_scan_with_separators_has_no_alternatives():
    assert parse_scan(f"01{GAMMAGARD}10ABC123{GS}21XYZ").alternatives == ()


def test_a_lot_without_anything_that_looks_like_an_ai_has_no_alternatives():
    assert parse_scan(f"01{GAMMAGARD}17261231" + "10P100263").alternatives == ()


# --- building ---------------------------------------------------------------------------------


def test_element_string_puts_fixed_fields_first_and_gs_after_a_variable_field_that_is_not_last():
    built = element_string(gtin=GAMMAGARD, expiry=date(2027, 6, 30), lot="P100263", serial="4711")
    assert built == f"01{GAMMAGARD}17270630" + f"10P100263{GS}214711"


def test_element_string_has_no_trailing_separator():
    assert element_string(gtin="9521234543213", lot="ABC") == f"01{DEMO}10ABC"


def test_element_string_with_a_custom_separator():
    assert element_string(gtin=DEMO, lot="A", serial="B", separator="<GS>") == f"01{DEMO}10A<GS>21B"


def test_hri_renders_parenthesised_application_identifiers():
    assert hri(gtin=GAMMAGARD, expiry=date(2027, 6, 30), lot="P100263", serial="4711") == (
        f"(01){GAMMAGARD}(17)270630(10)P100263(21)4711"
    )


def test_building_refuses_bad_data():
    with pytest.raises(InvalidBarcode, match="wrong check digit"):
        element_string(gtin="00309442700051")
    with pytest.raises(InvalidBarcode, match="longer than 20"):
        hri(gtin=GAMMAGARD, lot="L" * 21)
    with pytest.raises(InvalidBarcode, match="empty"):
        element_string(gtin=GAMMAGARD, serial="")
    with pytest.raises(InvalidBarcode, match="not allowed"):
        element_string(gtin=GAMMAGARD, lot="A B")


@pytest.mark.parametrize(
    ("expiry", "lot", "serial"),
    [
        (date(2027, 6, 30), "P100263", "4711"),
        (None, "LE12A345", None),
        (date(2028, 2, 29), None, "SN-0001/2"),
        (None, None, None),
        (date(2030, 1, 1), "A" * 20, "9" * 20),
    ],
)
def test_element_string_and_hri_round_trip(expiry, lot, serial):
    for built in (
        element_string(gtin=GAMMAGARD, expiry=expiry, lot=lot, serial=serial),
        hri(gtin=GAMMAGARD, expiry=expiry, lot=lot, serial=serial),
        "]d2" + element_string(gtin=GAMMAGARD, expiry=expiry, lot=lot, serial=serial, separator="<GS>"),
    ):
        scan = parse_scan(built)
        assert (scan.gtin, scan.expiry, scan.lot, scan.serial) == (GAMMAGARD, expiry, lot, serial)
        assert scan.alternatives == ()


@pytest.mark.parametrize(
    "text, is_scan",
    [
        ("LE12A045", False), ("  P100263 ", False), ("239825", False), ("A(1)", False), ("", False),
        ("]d20109501101530003", True), ("(01)09501101530003(10)L1", True), ("0109501101530003" + "10L1", True),
        ("10L1\x1d21S1", True), ("https://id.gs1.org/01/09501101530003/10/L1", True), ("HTTP://x", True),
    ],
)
def test_a_scan_is_told_from_a_typed_lot_number(text, is_scan):
    from labels.gs1 import looks_like_scan

    assert looks_like_scan(text) is is_scan
