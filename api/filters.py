"""Filters shared by the list endpoints."""

import django_filters
from django import forms

from api.serializers import MAX_ID


class IdFilter(django_filters.NumberFilter):
    """A primary key: whole numbers from 1 to MAX_ID only, so "1.5" or an id beyond any integer
    column is a 400 rather than a query the database cannot run."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
