"""Small helpers shared by the API modules."""

from rest_framework import serializers

from core.text import BARCODE_MAX_LENGTH, CODE_MAX_LENGTH, NOTE_MAX_LENGTH, REASON_MAX_LENGTH

# The largest value a (big) integer primary key can hold. An id beyond it names no row, and some
# databases refuse to even compare a column with it (SQLite raises OverflowError), so it is a 400.
MAX_ID = 2**63 - 1


def validated(serializer_class: type[serializers.Serializer], data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class IdField(serializers.IntegerField):
    """A row id sent in a body: a whole number from 1 to MAX_ID."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, except that a naive time at the very edge of the calendar
    (9999-12-31T23:59) is a 400: making it aware overflows, and DRF only guards aware input."""

    def enforce_timezone(self, value):
        try:
            return super().enforce_timezone(value)
        except OverflowError:
            self.fail("overflow")


class ReasonField(serializers.CharField):
    """Why an action is taken: required, 1 to REASON_MAX_LENGTH characters. A blank reason reaches
    the service, which refuses it with its own code (`reason_required`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", REASON_MAX_LENGTH)
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("help_text", f"Why, in words (required, at most {REASON_MAX_LENGTH} characters)")
        super().__init__(**kwargs)


def note_field(**kwargs) -> serializers.CharField:
    """Free text a person types: optional, at most NOTE_MAX_LENGTH characters."""
    kwargs.setdefault("max_length", NOTE_MAX_LENGTH)
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    return serializers.CharField(**kwargs)


def barcode_field(**kwargs) -> serializers.CharField:
    """One raw scan, exactly as the scanner sent it (leading and trailing characters matter)."""
    kwargs.setdefault("max_length", BARCODE_MAX_LENGTH)
    kwargs.setdefault("trim_whitespace", False)
    return serializers.CharField(**kwargs)


def location_code_field(**kwargs) -> serializers.CharField:
    kwargs.setdefault("max_length", CODE_MAX_LENGTH)
    kwargs.setdefault("help_text", "The location's scannable code (as printed on its shelf label)")
    return serializers.CharField(**kwargs)
