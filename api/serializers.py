"""Small helpers shared by the API modules."""

import copy
from collections.abc import Mapping

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers
from rest_framework.fields import Field, SkipField
from rest_framework.relations import PKOnlyObject

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


_PROTOTYPES: dict[type, serializers.Serializer] = {}


def rendered(serializer_class: type[serializers.Serializer], instance) -> dict:
    """What `serializer_class(instance).data` gives, from one instance of the class kept for the
    process: DRF builds (deep-copies) every field of a serialiser and of each nested one for each
    new instance, most of the time of a small response such as a scan card. For output
    serialisers that read nothing from a context; the kept instance holds no per-call state
    (`to_representation` reads the instance it is given), so threads may share it."""
    prototype = _PROTOTYPES.get(serializer_class)
    if prototype is None:
        prototype = _PROTOTYPES[serializer_class] = serializer_class()
    return prototype.to_representation(instance)


class PlainOutput:
    """Output without DRF's per-field machinery: the same fields, read the same way, faster.

    DRF's `to_representation` asks each field for its attribute through several layers (source
    lookups, callable checks, SkipField handling) on every row; a list of thousands of rows spends
    most of its time there. Here each serialiser instance makes a plan once, (name, attribute
    path, the field's own `to_representation`), and follows it: values are still formatted by the
    fields themselves. A missing link in a path (a null foreign key) gives None, as DRF does for
    nullable fields. tests/api/test_output.py checks it gives what DRF gives, serialiser by
    serialiser.
    """

    def to_representation(self, instance):
        plan = self.__dict__.get("_plain_plan")
        if plan is None:
            plan = self._plain_plan = [
                (
                    field.field_name,
                    tuple(field.source_attrs),
                    field.to_representation,
                    # Fields that read their attribute their own way (a related field reads only the
                    # foreign key's id, never the row) keep doing so.
                    field.get_attribute if type(field).get_attribute is not Field.get_attribute else None,
                )
                for field in self._readable_fields
            ]
        ret = {}
        for name, attrs, represent, own_getter in plan:
            value = instance
            try:
                if own_getter is not None:
                    value = own_getter(instance)
                else:
                    for attr in attrs:
                        if value is None:
                            break
                        value = value[attr] if isinstance(value, Mapping) else getattr(value, attr)
            except ObjectDoesNotExist:
                value = None
            except (AttributeError, KeyError):
                # Missing, as opposed to null: the field decides (its default, null, or left out).
                try:
                    value = self.fields[name].get_attribute(instance)
                except SkipField:
                    continue
            except SkipField:
                continue
            if isinstance(value, PKOnlyObject):
                ret[name] = None if value.pk is None else represent(value)
            else:
                ret[name] = None if value is None else represent(value)
        return ret


class ModelSerializer(PlainOutput, serializers.ModelSerializer):
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
