"""What a shelf label can carry: its location code is printed as Code 128 and sent to ZPL printers."""

import re

_LOCATION_CODE = re.compile(r"[\x20-\x7e]{1,40}")
# ZPL reads these as the start of a command, whatever field they are in.
ZPL_UNSAFE = frozenset("^~>")

LOCATION_CODE_RULE = "1-40 printable ASCII characters except ^ ~ >"


def printable_location_code(code) -> bool:
    """Whether a shelf label can carry this code: 1-40 printable ASCII characters (Code 128), none
    of which a ZPL printer would read as a command."""
    return isinstance(code, str) and _LOCATION_CODE.fullmatch(code) is not None and not (ZPL_UNSAFE & set(code))
