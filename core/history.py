"""Audited writes: every save of a model with HistoricalRecords names who and why."""

from collections.abc import Iterable

from django.db import models
from simple_history.utils import bulk_create_with_history, bulk_update_with_history


def audited_save(obj: models.Model, *, actor, reason: str, update_fields: Iterable[str] | None = None) -> models.Model:
    obj._history_user = actor
    obj._change_reason = reason
    if update_fields is not None:
        obj.save(update_fields=list(update_fields))
    else:
        obj.save()
    return obj


def audited_create(model: type[models.Model], *, actor, reason: str, **fields) -> models.Model:
    return audited_save(model(**fields), actor=actor, reason=reason)


def audited_bulk_create(model: type[models.Model], objs: list, *, actor, reason: str) -> list:
    # Note: bulk_create_with_history writes one history row per object, with the same user and reason.
    return bulk_create_with_history(objs, model, default_user=actor, default_change_reason=reason)


def audited_bulk_update(model: type[models.Model], objs: list, fields: list[str], *, actor, reason: str) -> int:
    return bulk_update_with_history(objs, model, fields, default_user=actor, default_change_reason=reason)
