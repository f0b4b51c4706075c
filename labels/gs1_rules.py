"""The GS1 rules a scan of a medicine carton must keep beyond each element's own format: which
Application Identifiers we accept at all, which ones require or exclude others, and which dates may
use day "00".

From the GS1 General Specifications (section 4.14, "Mandatory associations" and "Invalid pairs of
element strings"), as the GS1 Barcode Syntax Dictionary writes them (`req=` and `ex=`), for the AIs
a trade item may carry. A GS1 scanner's decoder (the GS1 Syntax Engine) refuses a message that
breaks them; so do we, so that what we store is what a GS1-conformant reader would read.
"""

from __future__ import annotations

from datetime import date

# AI -> groups it requires: each group is satisfied by any one of its AIs ("req=01,02" is one group
# of two; "req=01 req=10" is two groups).
REQUIRES: dict[str, tuple[frozenset[str], ...]] = {}
# AI -> AIs it may not appear with (the relation is symmetric in the specification; checked both ways).
EXCLUDES: dict[str, frozenset[str]] = {}


def _rule(ais: str, *, req: tuple[str, ...] = (), ex: str = "") -> None:
    for ai in ais.split():
        REQUIRES[ai] = tuple(frozenset(group.split(",")) for group in req)
        EXCLUDES[ai] = frozenset(ex.split(",")) if ex else frozenset()


TRADE_ITEM = "01,02,8006,8026"

# Keys and quantities: listed so that a message naming them is refused for the right reason.
_rule("00")
_rule("01", ex="02,255,37")
_rule("02", req=("37",))
_rule("37", req=("00", "02,8026"))
_rule("255", ex="01,02,415,8006,8020,8026")
_rule("8006", ex="01,37")
_rule("8026", req=("37",), ex="02,8006")
# Batch, dates and serials.
_rule("10", req=(TRADE_ITEM,))
_rule("11 13 15 16", req=(TRADE_ITEM,))
_rule("17", req=("01,02,255,8006,8026",))
_rule("20", req=(TRADE_ITEM,))
_rule("21", req=("01,8006",), ex="235")
_rule("22", req=("01",))
_rule("235", req=("01",))
_rule("240 241 242", req=(TRADE_ITEM,))
_rule("243", req=("01",))
_rule("250", req=("01,8006", "21"))
_rule("251", req=("01,8006",))
_rule("30", req=("01,02",))
# Healthcare: expiry with time, active potency, national health reimbursement numbers (NDC is 715).
_rule("7003", req=("01,02",))
_rule("7004", req=("01", "10"))
_rule("710 711 712 713 714 715", req=("01",))
_rule("7240", req=("01,8006",))
_rule("8008", req=("01,02",))
_rule("8012", req=("01,8006",))
_rule("8200", req=("01",))
# Company-internal information.
_rule("90 91 92 93 94 95 96 97 98 99")

# What a medicine carton may carry and we read. (00) is a pallet's code, (02)/(37) a logistic
# unit's content, (255)/(8006)/(8026) coupons and item pieces: not a vial's carton.
NOT_ON_A_CARTON = frozenset({"00", "02", "37", "255", "8006", "8026"})
ACCEPTED = frozenset(REQUIRES) - NOT_ON_A_CARTON

# Dates whose day may be "00" (the last day of the month): the GS1 `yymmd0` dates. Every other date
# (7003 expiry date and time, 8008 production date and time) names a real day.
DAY_00_ALLOWED = frozenset({"11", "12", "13", "15", "16", "17"})


def _named(ai: str, titles: dict[str, str]) -> str:
    return f"({ai}) {titles.get(ai, '')}".rstrip()


def association_problem(ais: list[str], titles: dict[str, str]) -> str | None:
    """The first broken GS1 rule among the AIs of one message, in words; None when it keeps them all."""
    present = set(ais)
    for ai in ais:
        for other in sorted(EXCLUDES.get(ai, frozenset()) & present):
            return f"{_named(ai, titles)} and {_named(other, titles)} may not appear in the same barcode"
    for ai in ais:
        for group in REQUIRES.get(ai, ()):
            if not group & present:
                wanted = " or ".join(f"({g})" for g in sorted(group, key=lambda g: (len(g), g)))
                return f"{_named(ai, titles)} needs {wanted} in the same barcode"
    for ai in ais:
        if ai not in ACCEPTED:
            return f"{_named(ai, titles)} is not read on a medicine carton"
    return None


def timed_date_problem(ai: str, value: str) -> str | None:
    """For (7003) YYMMDDHHMM and (8008) YYMMDDHH[MM[SS]]: a real day (no "00") and a real time."""
    digits = value
    if not (digits.isascii() and digits.isdigit()):
        return "must be digits"
    try:
        yy, mm, dd = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
        date(2000 + yy, mm, dd)
    except ValueError:
        return f"date {digits[0:6]} is not a real day (day 00 is allowed only in (11), (13), (15), (16), (17))"
    hh = int(digits[6:8])
    minutes = digits[8:10]
    seconds = digits[10:12]
    if hh > 23 or (minutes and int(minutes) > 59) or (seconds and int(seconds) > 59):
        return f"time {digits[6:]} is not a real time"
    return None
