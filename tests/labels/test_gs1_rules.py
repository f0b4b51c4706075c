"""GS1 strictness: the association and exclusion rules of the GS1 General Specifications for the AIs
we accept, day 00 only in the dates that allow it, and DotCode's `]J` symbology identifiers."""

import pytest

from labels.exceptions import InvalidBarcode
from labels.gs1 import parse_scan
from labels.gs1_rules import ACCEPTED, EXCLUDES, REQUIRES

GTIN = "00309442700050"
GS = "\x1d"


@pytest.mark.parametrize(("raw", "words"), [
    (f"01{GTIN}250ABC", "(250) SECONDARY SERIAL needs (21)"),
    (f"(01){GTIN}(250)ABC", "(250) SECONDARY SERIAL needs (21)"),
    (f"(01){GTIN}(02){GTIN}", "(01) GTIN and (02) CONTENT may not appear"),
    (f"(01){GTIN}(7004)123", "(7004) ACTIVE POTENCY needs (10)"),
    (f"01{GTIN}7004123", "(7004) ACTIVE POTENCY needs (10)"),
    (f"(01){GTIN}(21)A1(235)XYZ", "(21) Serial and (235) TPX may not appear"),
    (f"(01){GTIN}(37)12", "(01) GTIN and (37) COUNT may not appear"),
    (f"(01){GTIN}(00)003094427000500001", "(00) SSCC is not read on a medicine carton"),
    (f"(01){GTIN}(8026){GTIN}0101", "(8026) ITIP CONTENT needs (37)"),
    (f"https://id.example.org/01/{GTIN}?250=ABC", "(250) SECONDARY SERIAL needs (21)"),
])
def test_a_scan_that_breaks_a_gs1_association_rule_is_refused_saying_which(raw, words):
    with pytest.raises(InvalidBarcode) as refused:
        parse_scan(raw)

    assert refused.value.code == "gs1_rule"
    assert words in refused.value.message


@pytest.mark.parametrize("raw", [
    f"(01){GTIN}(21)SN1(250)SEC1",
    f"(01){GTIN}(10)L1(7004)123",
    f"(01){GTIN}(17)271231(10)L1(21)S1(715)0944270005",
    f"(01){GTIN}(10)L1(240)ADD-1(91)INTERNAL",
    f"01{GTIN}1727123110L1{GS}21S1{GS}70032712312359",
])
def test_a_scan_that_keeps_the_rules_is_read(raw):
    assert parse_scan(raw).gtin == GTIN


@pytest.mark.parametrize(("raw", "expiry"), [
    (f"(01){GTIN}(17)271200", "2027-12-31"),
    (f"(01){GTIN}(17)280200", "2028-02-29"),
    (f"(01){GTIN}(15)271100(17)271200", "2027-12-31"),
])
def test_day_00_means_the_last_day_of_the_month_where_gs1_allows_it(raw, expiry):
    assert parse_scan(raw).expiry.isoformat() == expiry


@pytest.mark.parametrize("raw", [
    f"(01){GTIN}(7003)2712000000",
    f"(01){GTIN}(7003)2713011200",
    f"(01){GTIN}(7003)2712312400",
    f"(01){GTIN}(7003)2712311260",
    f"(01){GTIN}(8008)27120012",
    f"(01){GTIN}(8008)27123125",
])
def test_day_00_or_an_impossible_time_in_a_date_and_time_is_refused(raw):
    with pytest.raises(InvalidBarcode) as refused:
        parse_scan(raw)

    assert "(7003)" in refused.value.message or "(8008)" in refused.value.message


def test_a_gs1_dotcode_scan_is_read_with_its_symbology():
    scan = parse_scan(f"]J101{GTIN}1727123110LOT-7{GS}21SN-7")

    assert (scan.gtin, scan.lot, scan.serial, scan.symbology) == (GTIN, "LOT-7", "SN-7", "]J1")


def test_a_dotcode_scan_of_a_bare_gtin_is_read():
    scan = parse_scan(f"]J0{GTIN}")

    assert (scan.gtin, scan.symbology, scan.form) == (GTIN, "]J0", "gtin")


def test_a_gs1_dotcode_scan_breaking_a_rule_is_refused_like_any_other():
    with pytest.raises(InvalidBarcode) as refused:
        parse_scan(f"]J101{GTIN}250SEC")

    assert refused.value.code == "gs1_rule"


def test_the_rule_table_names_only_ais_it_defines_or_known_keys():
    named = set(REQUIRES) | {ai for groups in REQUIRES.values() for group in groups for ai in group} \
        | {ai for excluded in EXCLUDES.values() for ai in excluded}
    # Those named only as a requirement or an exclusion are never accepted on a carton.
    assert named - set(REQUIRES) <= {"415", "8020"}
    assert {"01", "10", "17", "21"} <= ACCEPTED
