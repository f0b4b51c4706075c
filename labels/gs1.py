"""Read and write the GS1 data on IVIG vials: GTIN (01), expiry (17), lot (10) and serial (21).

`parse_scan` takes whatever a scanner sends: a GS1 element string (with or without a symbology
identifier such as ``]d2``), the printed human-readable form ``(01)…(17)…``, a GS1 Digital Link
URI or a bare GTIN. Every refusal is an `InvalidBarcode` whose message says what is wrong.

biip supplies the Application Identifier table, per-element validation (patterns, dates with
day 00, the GS1 century rule), check digits and symbology identifiers. The splitting into
elements is done here because `biip.parse()` never raises (it returns ``None`` fields plus error
strings), lets a variable field greedily absorb a dropped separator without telling us, and
reads a 25-character lot as a 20-character lot followed by an unknown AI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import parse_qsl, unquote, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_element_strings import GS1ElementString
from biip.symbology import GS1Symbology, SymbologyIdentifier

from labels.exceptions import InvalidBarcode
from labels.gs1_rules import association_problem, timed_date_problem

GS = "\x1d"

# GS1 "AI encodable character set 82": what (10) and (21) may contain.
GS1_AI82_CHARSET = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
MAX_LOT_LENGTH = 20
MAX_SERIAL_LENGTH = 20
# GS1 leaves (91)-(99) to each company for its own data; the pharmacy's internal vial id goes in
# (91), so a label it prints never claims a manufacturer serial in (21).
INTERNAL_SERIAL_AI = "91"

GTIN_LENGTHS = (8, 12, 13, 14)

# Keyboard-wedge scanners cannot type ASCII 29, so they are configured to send a printable
# stand-in for it. These are the ones seen in practice (and in scanner manuals).
_STAND_IN = re.compile(r"<GS>|\{GS\}|\[GS\]|\^\]|\\x1d|\\u001d|\u241d", re.IGNORECASE)

_HRI_AI = re.compile(r"\((\d{2,4})\)")

# Element names used in messages; anything else uses biip's data title.
_NAMES = {
    "01": "GTIN",
    "10": "Lot",
    "11": "Production date",
    "15": "Best before date",
    "17": "Expiry",
    "21": "Serial",
}
_MAX_LENGTHS = {"10": MAX_LOT_LENGTH, "21": MAX_SERIAL_LENGTH}
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})  # YYMMDD, day 00 allowed (biip checks)
_TIMED_DATE_AIS = frozenset({"7003", "8008"})  # a date and a time: a real day, never 00
_GTIN_AIS = frozenset({"01", "02", "03"})

# Digital Link URIs from before the numeric-only syntax used short names for the keys.
_DIGITAL_LINK_ALIASES = {"gtin": "01", "cpv": "22", "lot": "10", "ser": "21", "exp": "17"}

# Bounds the search for dropped separators: a lot that swallowed "21" + serial + "17" + date is
# at most 20 + 22 + 8 = 50 characters; the slack covers other fixed fields after the date.
_MAX_SPLITTABLE = 80


_Pair = tuple[GS1ApplicationIdentifier | None, str]


@dataclass(frozen=True)
class ScanData:
    raw: str  # the input as received
    gtin: str  # always a valid GTIN-14 (zero padded)
    expiry: date | None  # (17); day 00 -> last day of the month
    lot: str | None  # (10)
    serial: str | None  # (21)
    symbology: str | None  # "]d2", "]C1", "]Q3", ... if a symbology identifier prefixed it
    form: str  # "element_string" | "hri" | "digital_link" | "gtin"
    alternatives: tuple[ScanData, ...] = ()  # other readings when a scanner dropped separators
    # (17) printed with day "00" (last day of the month): valid GS1, but GS1 healthcare guidance
    # no longer allows it on regulated healthcare products, so callers raise a caution.
    expiry_day_00: bool = False
    # (91), company internal: the pharmacy's own vial id on a label it printed for unserialised
    # stock. Never read from (21), which only ever holds the manufacturer's serial.
    internal_serial: str | None = None
    # (11) production date, where the carton carries it: the start of a label's window counted
    # from manufacture (room-temperature storage within N months of it).
    production_date: date | None = None


# ---------------------------------------------------------------------------------------------
# GTINs


def gtin_check_digit(body: str) -> str:
    """The mod-10 check digit for `body` (all digits but the check digit), weights 3/1 from the right."""
    if not isinstance(body, str) or not body or not (body.isascii() and body.isdigit()):
        raise InvalidBarcode(f"Cannot compute a check digit for {body!r}: expected digits")
    return str(gs1_standard_check_digit(body))


def has_valid_check_digit(value: str) -> bool:
    """Whether a GS1 key of digits (GTIN, GSRN, GLN, SSCC) ends in its mod-10 check digit."""
    return (
        isinstance(value, str) and len(value) > 1 and value.isascii() and value.isdigit()
        and gtin_check_digit(value[:-1]) == value[-1]
    )


def is_valid_gtin(value: str) -> bool:
    return (
        isinstance(value, str)
        and len(value) in GTIN_LENGTHS
        and value.isascii()
        and value.isdigit()
        and gtin_check_digit(value[:-1]) == value[-1]
    )


def normalize_gtin(value: str) -> str:
    """Return `value` as a GTIN-14 (zero padded), or raise InvalidBarcode saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidBarcode(f"GTIN must be text, got {type(value).__name__}")
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) not in GTIN_LENGTHS:
        raise InvalidBarcode(
            f"{value!r} is not a GTIN: expected 8, 12, 13 or 14 digits",
            extra={"ai": "01", "value": value},
        )
    expected = gtin_check_digit(value[:-1])
    if expected != value[-1]:
        raise InvalidBarcode(
            f"GTIN {value} has a wrong check digit (expected {expected})",
            extra={"ai": "01", "value": value, "expected_check_digit": expected},
        )
    return value.zfill(14)


# ---------------------------------------------------------------------------------------------
# Building


def element_string(
    *,
    gtin: str,
    expiry: date | None = None,
    lot: str | None = None,
    serial: str | None = None,
    separator: str = GS,
) -> str:
    """The GS1 element string ``01…17…10…<GS>21…`` (no FNC1 in first position).

    Fixed-length fields come first so that only a variable field that is not last needs a
    separator after it.
    """
    parts = ordered_fields(gtin=gtin, expiry=expiry, lot=lot, serial=serial)
    out = ""
    for i, (ai, value) in enumerate(parts):
        out += ai + value
        if ai in _MAX_LENGTHS and i != len(parts) - 1:
            out += separator
    return out


def hri(*, gtin: str, expiry: date | None = None, lot: str | None = None, serial: str | None = None) -> str:
    """The human-readable interpretation ``(01)…(17)…(10)…(21)…`` printed under the barcode."""
    parts = ordered_fields(gtin=gtin, expiry=expiry, lot=lot, serial=serial)
    return "".join(f"({ai}){value}" for ai, value in parts)


def ordered_fields(
    *, gtin: str, expiry: date | None = None, lot: str | None = None, serial: str | None = None
) -> list[tuple[str, str]]:
    """Validated ``[(ai, value), ...]`` in label order: 01, 17, then the variable 10 and 21."""
    parts = [("01", normalize_gtin(gtin))]
    if expiry is not None:
        parts.append(("17", expiry.strftime("%y%m%d")))
    for ai, value in (("10", lot), ("21", serial)):
        if value is not None:
            _check_variable(ai, value)
            parts.append((ai, value))
    return parts


# ---------------------------------------------------------------------------------------------
# Parsing


_LOOKS_LIKE_ELEMENT_STRING = re.compile(r"01\d{14}")


def looks_like_scan(text: str) -> bool:
    """Whether text typed or scanned into a single field is a barcode rather than a lot number: a
    symbology identifier, the parenthesised form, a group separator, a Digital Link, or an element
    string opening with (01) and a GTIN. A lot number is none of these."""
    text = (text or "").strip()
    return (
        text.startswith(("]", "("))
        or "\x1d" in text
        or text[:8].lower().startswith(("http://", "https://"))
        or _LOOKS_LIKE_ELEMENT_STRING.match(text) is not None
    )


def gsrn_from_scan(raw: str) -> str | None:
    """The GSRN of a patient's wristband (AI 8018, GSRN - recipient), from a GS1-128 or DataMatrix
    scan or its parenthesised form; None for anything else."""
    text = (raw or "").strip()
    if "8018" not in text:
        return None
    import biip

    result = biip.parse(text.replace("(8018)", "8018", 1) if text.startswith("(8018)") else text)
    message = result.gs1_message
    element = message.element_strings.get(ai="8018") if message is not None else None
    return element.value if element is not None else None


def parse_scan(raw: str) -> ScanData:
    """Parse one scan. Raises InvalidBarcode (and nothing else) for anything that is not usable."""
    if not isinstance(raw, str):
        raise InvalidBarcode(f"Barcode must be text, got {type(raw).__name__}")
    # strip() also removes a trailing CR/LF ("Enter" from a wedge scanner) and a leading or
    # trailing GS, which some scanners send for the FNC1 in first position.
    text = raw.strip()
    if not text:
        raise InvalidBarcode("Empty barcode")

    symbology = None
    if text.startswith("]"):
        symbology = _symbology(text)
        text = text[len(symbology.value) :].strip()
        if not text:
            raise InvalidBarcode(f"Barcode holds only the symbology identifier {symbology.value}")

    if text[:8].lower().startswith(("http://", "https://")):
        _check_characters(text)
        pairs, form = _digital_link_pairs(text), "digital_link"
    elif text.startswith("("):
        _check_characters(text)
        pairs, form = _hri_pairs(text), "hri"
    else:
        return _parse_element_string(raw, text, symbology)
    return _scan(pairs, raw=raw, symbology=_symbology_value(symbology), form=form)


@dataclass(frozen=True)
class _Symbology:
    """A symbology identifier biip does not know (DotCode): its value and whether it carries GS1 data."""

    value: str
    gs1_symbology: GS1Symbology | None


# DotCode (ISO/IEC 21471) identifiers: ]J0 plain data, ]J1 GS1 (FNC1 in first position), ]J2 FNC1
# in second position, ]J3 with ECI. biip's table lacks the "J" code character.
_DOTCODE = {"]J0": None, "]J1": GS1Symbology.GS1_DOTCODE, "]J2": None, "]J3": None}


def _symbology(text: str) -> SymbologyIdentifier | _Symbology:
    if text[:3] in _DOTCODE:
        return _Symbology(value=text[:3], gs1_symbology=_DOTCODE[text[:3]])
    try:
        return SymbologyIdentifier.extract(text)
    except (ParseError, ValueError, IndexError):
        raise InvalidBarcode(
            f"Unknown symbology identifier at {_excerpt(text, 4)}", extra={"at": text[:4]}
        ) from None


def _symbology_value(symbology: SymbologyIdentifier | None) -> str | None:
    return symbology.value if symbology is not None else None


def _check_characters(text: str) -> None:
    for position, char in enumerate(text):
        if char == GS:
            continue
        if not char.isprintable():
            raise InvalidBarcode(
                f"Barcode contains the control character U+{ord(char):04X} at position {position}",
                extra={"position": position, "char": f"U+{ord(char):04X}"},
            )
        if not char.isascii():
            raise InvalidBarcode(
                f"Barcode contains {char!r}, which is not allowed in GS1 barcodes (position {position})",
                extra={"position": position, "char": f"U+{ord(char):04X}"},
            )


def _parse_element_string(raw: str, text: str, symbology: SymbologyIdentifier | None) -> ScanData:
    gs1_symbology = symbology.gs1_symbology if symbology is not None else None
    if (
        text.isascii()
        and text.isdigit()
        and len(text) in GTIN_LENGTHS
        and gs1_symbology not in GS1Symbology.with_gs1_messages()
    ):
        return ScanData(
            raw=raw,
            gtin=normalize_gtin(text),
            expiry=None,
            lot=None,
            serial=None,
            symbology=_symbology_value(symbology),
            form="gtin",
        )

    # A scanner that sends real GS characters does not also send stand-ins, so only
    # translate stand-ins when there is no GS. "<GS>" is also a legal lot value, hence the
    # fallback to the literal reading when the translated one does not parse.
    if GS not in text and _STAND_IN.search(text):
        try:
            return _parse_elements(raw, _STAND_IN.sub(GS, text), symbology)
        except InvalidBarcode as translated_error:
            try:
                return _parse_elements(raw, text, symbology)
            except InvalidBarcode:
                raise translated_error from None
    return _parse_elements(raw, text, symbology)


def _parse_elements(raw: str, text: str, symbology: SymbologyIdentifier | None) -> ScanData:
    _check_characters(text)
    symbology_value = _symbology_value(symbology)
    if GS in text:
        pairs = [pair for group in text.split(GS) if group for pair in _split_group(group)]
        return _scan(pairs, raw=raw, symbology=symbology_value, form="element_string")

    # Why: some keyboard-wedge scanners drop the GS entirely. Then "10ABC123" + "21XYZ" arrives
    # as "10ABC12321XYZ" and a greedy reader takes the lot to be "ABC12321XYZ". We cannot tell
    # from the data alone which reading is right, so the greedy one is the answer (as GS1 rules
    # read it) and every other plausible split goes into `alternatives` for the caller to match
    # against known lots. If the greedy reading is invalid (a 28-character "lot"), the first
    # valid split takes its place.
    readings = _readings(text, used=frozenset())
    scans: list[ScanData] = []
    first_error: InvalidBarcode | None = None
    for pairs in readings:
        try:
            scan = _scan(pairs, raw=raw, symbology=symbology_value, form="element_string")
        except InvalidBarcode as exc:
            first_error = first_error or exc
            continue
        if all(_values(scan) != _values(seen) for seen in scans):
            scans.append(scan)
    if not scans:
        assert first_error is not None
        raise first_error
    main, *others = scans
    return replace(main, alternatives=tuple(others))


def _values(scan: ScanData) -> tuple:
    return (scan.gtin, scan.expiry, scan.lot, scan.serial, scan.internal_serial)


def _readings(text: str, *, used: frozenset[str]) -> list[list[_Pair]]:
    """Ways to read `text` (which has no GS) as element strings.

    The first reading is the greedy one. In the others a trailing (10) or (21) ends early
    where the rest starts a (10), (21) or (17)+date that is not already present.
    """
    pairs = _split_group(text)
    readings = [pairs]
    last_ai, last_value = pairs[-1]
    if last_ai is None or last_ai.ai not in _MAX_LENGTHS or len(last_value) > _MAX_SPLITTABLE:
        return readings
    head = pairs[:-1]
    used = used | {ai.ai for ai, _ in pairs}
    for cut in range(1, len(last_value)):
        rest = last_value[cut:]
        next_ai = rest[:2]
        if next_ai not in ("10", "21", "17", INTERNAL_SERIAL_AI) or next_ai in used:
            continue
        if next_ai == "17" and not _is_real_yymmdd(rest[2:8]):
            continue
        tails = _readings(rest, used=used)
        readings.extend(head + [(last_ai, last_value[:cut])] + tail for tail in tails)
    return readings


def _split_group(group: str) -> list[_Pair]:
    """Split text between separators into (AI, value) pairs; a variable field runs to the end.

    Text that does not start with a known AI becomes a last pair ``(None, text)``: `_element`
    reports it, after the elements before it, so that the first problem is the one named.
    """
    pairs: list[_Pair] = []
    rest = group
    while rest:
        try:
            ai = GS1ApplicationIdentifier.extract(rest)
        except ParseError:
            pairs.append((None, rest))
            break
        body = rest[len(ai.ai) :]
        length = _fixed_length(ai)
        if length is None:
            pairs.append((ai, body))
            rest = ""
        else:
            pairs.append((ai, body[:length]))
            rest = body[length:]
    return pairs


def _unknown_ai(text: str) -> InvalidBarcode:
    if len(text) < 2:
        return InvalidBarcode(
            f"Barcode is truncated: it ends in an incomplete application identifier '{text}'",
            extra={"at": text},
        )
    return InvalidBarcode(f"Unknown application identifier at {_excerpt(text)}", extra={"at": text[:20]})


def _known_ai(code: str) -> bool:
    try:
        return GS1ApplicationIdentifier.extract(code).ai == code
    except ParseError:
        return False


def _fixed_length(ai: GS1ApplicationIdentifier) -> int | None:
    """Data length of a predefined-length AI (no separator needed after it), else None."""
    if ai.separator_required:
        return None
    match = re.fullmatch(r"N\d\+N(\d+)", ai.format)
    return int(match.group(1)) if match else None


def _excerpt(text: str, length: int = 6) -> str:
    return f"'{text[:length]}…'" if len(text) > length else f"'{text}'"


def _name(ai: GS1ApplicationIdentifier) -> str:
    return _NAMES.get(ai.ai, ai.data_title)


def _is_real_yymmdd(value: str) -> bool:
    if len(value) != 6 or not (value.isascii() and value.isdigit()):
        return False
    try:
        GS1ElementString.parse("17" + value)
    except ParseError:
        return False
    return True


def _check_variable(ai_code: str, value: str) -> None:
    name = _NAMES[ai_code]
    extra = {"ai": ai_code, "value": value}
    if not isinstance(value, str) or not value:
        raise InvalidBarcode(f"{name} ({ai_code}) is empty", extra=extra)
    if len(value) > _MAX_LENGTHS[ai_code]:
        raise InvalidBarcode(
            f"{name} is longer than {_MAX_LENGTHS[ai_code]} characters ({len(value)}): {value!r}",
            extra=extra,
        )
    bad = next((char for char in value if char not in GS1_AI82_CHARSET), None)
    if bad is not None:
        raise InvalidBarcode(
            f"{name} ({ai_code}) contains {bad!r}, which is not allowed in GS1 barcodes",
            extra=extra,
        )


def _element(ai: GS1ApplicationIdentifier | None, value: str) -> GS1ElementString:
    """Validate one element and let biip parse it, with a message that names the problem."""
    if ai is None:
        raise _unknown_ai(value)
    name = _name(ai)
    extra = {"ai": ai.ai, "value": value}
    if ai.ai in _MAX_LENGTHS:
        _check_variable(ai.ai, value)
    if not value:
        raise InvalidBarcode(f"{name} ({ai.ai}) is empty", extra=extra)
    length = _fixed_length(ai)
    if length is not None:
        if len(value) < length:
            raise InvalidBarcode(
                f"{name} ({ai.ai}) is truncated: {len(value)} of {length} digits", extra=extra
            )
        if len(value) > length or not (value.isascii() and value.isdigit()):
            raise InvalidBarcode(f"{name} ({ai.ai}) must be {length} digits, got {value!r}", extra=extra)
    if ai.ai in _DATE_AIS and not _is_real_yymmdd(value):
        raise InvalidBarcode(f"{name} {value} is not a real date", extra=extra)
    if ai.ai in _TIMED_DATE_AIS:
        problem = timed_date_problem(ai.ai, value)
        if problem is not None:
            raise InvalidBarcode(f"{name} ({ai.ai}) {value}: {problem}", extra=extra)
    if ai.ai in _GTIN_AIS:
        normalize_gtin(value)
    try:
        return GS1ElementString.parse(ai.ai + value)
    # Why so broad: biip parses every AI it knows (money, GLNs, weights...) and not all of
    # its failures are ParseError. None of those AIs matter to us, but a scan must never
    # crash the request.
    except Exception:  # noqa: BLE001
        raise InvalidBarcode(
            f"{name} ({ai.ai}) value {value!r} does not match the GS1 format {ai.format}",
            extra=extra,
        ) from None


def _scan(
    pairs: list[_Pair], *, raw: str, symbology: str | None, form: str
) -> ScanData:
    elements: dict[str, GS1ElementString] = {}
    for ai, value in pairs:
        element = _element(ai, value)
        previous = elements.get(ai.ai)
        if previous is not None and previous.value != element.value:
            raise InvalidBarcode(
                f"{_name(ai)} ({ai.ai}) appears twice with different values",
                extra={"ai": ai.ai, "values": [previous.value, element.value]},
            )
        elements[ai.ai] = element
    if "01" not in elements:
        raise InvalidBarcode("No GTIN (01) in the barcode")
    problem = association_problem(list(elements), {code: _name(e.ai) for code, e in elements.items()})
    if problem is not None:
        raise InvalidBarcode(problem, code="gs1_rule", extra={"ais": list(elements)})
    expiry = elements.get("17")
    lot = elements.get("10")
    serial = elements.get("21")
    internal = elements.get(INTERNAL_SERIAL_AI)
    production = elements.get("11")
    return ScanData(
        raw=raw,
        gtin=elements["01"].value,
        expiry=expiry.date if expiry is not None else None,
        lot=lot.value if lot is not None else None,
        serial=serial.value if serial is not None else None,
        symbology=symbology,
        form=form,
        expiry_day_00=expiry is not None and expiry.value.endswith("00"),
        internal_serial=internal.value if internal is not None else None,
        production_date=production.date if production is not None else None,
    )


def _hri_pairs(text: str) -> list[_Pair]:
    """Split ``(01)…(17)…(10)…`` into pairs.

    Each value runs to the next ``(digits)``: a lot that itself contains "(21)" cannot be told
    apart from a new field in this form (the element string form has no such problem).
    """
    text = "".join(text.split()).replace(GS, "")
    pairs = []
    position = 0
    while position < len(text):
        match = _HRI_AI.match(text, position)
        if match is None:
            raise InvalidBarcode(
                f"Expected '(AI)' at {_excerpt(text[position:])}", extra={"at": text[position:][:20]}
            )
        code = match.group(1)
        if not _known_ai(code):
            raise InvalidBarcode(
                f"Unknown application identifier at '({code})…'", extra={"at": text[position:][:20]}
            )
        ai = GS1ApplicationIdentifier.extract(code)
        start = match.end()
        following = _HRI_AI.search(text, start)
        end = following.start() if following is not None else len(text)
        pairs.append((ai, text[start:end]))
        position = end
    if not pairs:
        raise InvalidBarcode("No GTIN (01) in the barcode")
    return pairs


def _digital_link_pairs(text: str) -> list[_Pair]:
    """Pairs from ``https://<any host>[/prefix]/01/<gtin>[/10/<lot>][/21/<serial>]?17=<date>``."""
    try:
        url = urlsplit(text)
    except ValueError:
        raise InvalidBarcode(f"Not a valid Digital Link URI: {text[:60]!r}") from None
    segments = url.path.split("/")
    start = next(
        (i for i, segment in enumerate(segments) if _DIGITAL_LINK_ALIASES.get(segment, segment) == "01"),
        None,
    )
    if start is None:
        raise InvalidBarcode("No GTIN (01) in the barcode", extra={"uri": text[:200]})
    path = segments[start:]
    if path and path[-1] == "":
        path = path[:-1]  # a trailing slash
    if len(path) % 2:
        raise InvalidBarcode(
            f"Digital Link path has a key without a value: '/{'/'.join(path)}'",
            extra={"uri": text[:200]},
        )
    raw_pairs = [(path[i], unquote(path[i + 1])) for i in range(0, len(path), 2)]
    # Query parameters that are not AIs (linkType, utm_..., ...) are allowed and ignored.
    raw_pairs += [(key, value) for key, value in parse_qsl(url.query, keep_blank_values=True)]

    pairs = []
    for index, (key, value) in enumerate(raw_pairs):
        code = _DIGITAL_LINK_ALIASES.get(key, key)
        in_path = index < len(path) // 2
        if not (code.isascii() and code.isdigit() and _known_ai(code)):
            if in_path:
                raise InvalidBarcode(
                    f"Unknown application identifier '{key}' in the Digital Link path",
                    extra={"at": key[:20]},
                )
            continue
        ai = GS1ApplicationIdentifier.extract(code)
        if ai.ai == "01" and value.isascii() and value.isdigit() and len(value) in GTIN_LENGTHS:
            value = value.zfill(14)  # Digital Link allows GTIN-8/12/13 unpadded
        pairs.append((ai, value))
    return pairs
