"""US National Drug Codes as printed on the carton, kept beside the GTIN, never derived from it.

Today's NDCs have 10 digits in three segments, labeler-product-package, as 4-4-2, 5-3-2 or 5-4-1;
billing systems pad them to 11 digits (5-4-2). FDA's move to one 12-digit format (6-4-2) pads
existing codes with zeros, and a GTIN can no longer hold all 12 digits (GS1 AI 715 carries the NDC
beside the GTIN instead). So the catalog stores the NDC exactly as printed and checks it against
the GTIN only where the two are tied: a GTIN in the GS1 US "03" range holds the 10-digit NDC.
"""

from __future__ import annotations

import re

# Hyphenated forms by segment lengths, and how many digits each total gives.
SEGMENT_FORMS = {
    (4, 4, 2): 10,
    (5, 3, 2): 10,
    (5, 4, 1): 10,
    (5, 4, 2): 11,
    (6, 4, 2): 12,
}
# Unhyphenated forms: 11 and 12 digits have one layout each; a bare 10-digit code is ambiguous
# (any of the three 10-digit layouts), which is fine for storing and for the GTIN check.
BARE_FORMS = {10: None, 11: (5, 4, 2), 12: (6, 4, 2)}
TEN_DIGIT_FORMS = ((4, 4, 2), (5, 3, 2), (5, 4, 1))

_HYPHENATED = re.compile(r"(\d+)-(\d+)-(\d+)")
MAX_LENGTH = 14  # 6-4-2 with its two hyphens

FORMATS_TEXT = "10 digits (4-4-2, 5-3-2 or 5-4-1), 11 digits (5-4-2) or 12 digits (6-4-2), with or without hyphens"


def ndc_problem(ndc: str) -> str | None:
    """Why `ndc` is not an NDC as printed, or None when it is one."""
    if not isinstance(ndc, str) or not ndc.isascii():
        return f"NDC {ndc!r} is not {FORMATS_TEXT}."
    match = _HYPHENATED.fullmatch(ndc)
    if match is not None:
        if tuple(len(part) for part in match.groups()) not in SEGMENT_FORMS:
            return f"NDC {ndc} has segments {'-'.join(str(len(p)) for p in match.groups())}: expected {FORMATS_TEXT}."
        return None
    if ndc.isdigit() and len(ndc) in BARE_FORMS:
        return None
    return f"NDC {ndc!r} is not {FORMATS_TEXT}."


def ten_digit_readings(ndc: str) -> set[str]:
    """The 10-digit NDCs this printed code can stand for: itself for a 10-digit code; for a padded
    11- or 12-digit code, each way of taking the padding zeros back out of its segments."""
    match = _HYPHENATED.fullmatch(ndc)
    if match is not None:
        segments = match.groups()
    elif len(ndc) in (11, 12):
        layout = BARE_FORMS[len(ndc)]
        cut1, cut2 = layout[0], layout[0] + layout[1]
        segments = (ndc[:cut1], ndc[cut1:cut2], ndc[cut2:])
    else:
        return {ndc}
    readings = set()
    for form in TEN_DIGIT_FORMS:
        parts = []
        for segment, length in zip(segments, form):
            extra = len(segment) - length
            if extra < 0 or segment[:extra].strip("0"):
                break
            parts.append(segment[extra:])
        else:
            readings.add("".join(parts))
    return readings


def gtin_holds_ndc(gtin: str) -> bool:
    """A GTIN-14 in the GS1 US "03" range: indicator, "03", the 10-digit NDC, check digit."""
    return len(gtin) == 14 and gtin[1:3] == "03"


def ndc_agrees_with_gtin(ndc: str, gtin: str) -> bool:
    """Whether an NDC as printed fits the GTIN printed beside it. Only a GTIN in the "03" range
    embeds an NDC (its 10-digit form); any other GTIN says nothing about the NDC."""
    if not gtin_holds_ndc(gtin):
        return True
    return gtin[3:13] in ten_digit_readings(ndc)
