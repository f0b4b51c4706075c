"""Rules of presentation that every floor shares, written once."""

import re
from decimal import Decimal


def grams_text(value) -> str:
    """Grams as people write them, the same on every database: 12.50 → "12.5", 30.00 → "30"."""
    if value is None:
        return "?"
    return f"{Decimal(value).normalize():f}"


# Characters that XML 1.0, and so an .xlsx cell, cannot carry. Scanner input brings ASCII 29 (the
# GS1 group separator); pasted notes bring others.
_UNSAFE_IN_CELLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def spreadsheet_text(text: str) -> str:
    """Text that a spreadsheet cell can hold without losing anything: each control character is
    written as Excel's own escape (`_x001D_` for the group separator), which Excel shows as the
    character itself, and a literal "_x" is escaped the way Excel does (`_x005F_x`) so that text
    such as "_x0041_" is not read back as "A". Dropping control characters instead would silently
    change a lot number or a note."""
    if "_x" in text:
        text = text.replace("_x", "_x005F_x")
    if _UNSAFE_IN_CELLS.search(text) is None:
        return text
    return _UNSAFE_IN_CELLS.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def has_spreadsheet_unsafe(text: str) -> bool:
    return _UNSAFE_IN_CELLS.search(text) is not None


def person_text(username: str, full_name: str = "") -> str:
    """A user as people name them in a record: "tech (Tina Tech)", or the login alone."""
    full_name = (full_name or "").strip()
    return f"{username} ({full_name})" if full_name and full_name != username else username


def user_text(user) -> str:
    if user is None:
        return "(none)"
    return person_text(user.get_username(), user.get_full_name())


# How much text each kind of input may hold. The API states them in its schema and refuses more;
# nothing a person types or a scanner sends needs more, and the bounds keep one request small.
REASON_MAX_LENGTH = 200  # why an action was taken (the longest column a reason is kept in)
NOTE_MAX_LENGTH = 2000  # free-text notes: allergies, an infusion's notes, a notification's outcome
BARCODE_MAX_LENGTH = 512  # one scan: a GS1 DataMatrix holds far less
CODE_MAX_LENGTH = 40  # a location code, as printed on its shelf label
SEARCH_MAX_LENGTH = 120  # what is typed into a filter or a look-up field


# Characters no text column can keep: PostgreSQL refuses NUL in text, and a lone UTF-16 surrogate
# (which JSON's \ud800 escapes can produce) cannot be encoded as UTF-8 at all.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """The first character of `text` that no database can store, as U+XXXX, or None."""
    found = _UNSTORABLE.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"
