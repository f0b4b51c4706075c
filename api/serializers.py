"""Small helpers shared by the API modules."""

import copy

from rest_framework import serializers

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


class ModelSerializer(serializers.ModelSerializer):
    """DRF's ModelSerializer, with its fields worked out from the model once per class.

    DRF introspects the model and builds every field again for each serializer instance, nested
    ones included: most of the time of a small response (a scan card builds ten of them). Here
    the first instance of a class builds them and later instances get a deep copy, which is what
    DRF itself does for declared fields: each instance still owns fresh, unbound field objects.
    """

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            cls._fields_built_once = built
        return copy.deepcopy(built)
