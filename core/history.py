"""Audited writes: every save of a model with HistoricalRecords names who and why.

Every history row is sealed in the write's own transaction (audit.chain): simple_history sends
`post_create_historical_record` for a single save, and the bulk writes below send
`history_rows_created` with the rows they wrote (simple_history's bulk helpers send nothing). The
audit app listens to both; this floor knows nothing of what it does with them.
"""

from collections.abc import Iterable

from django.db import models, transaction
from django.dispatch import Signal
from simple_history.utils import get_history_manager_for_model

# Sent inside the write's transaction, after a bulk write, with `rows`: the history rows it created.
history_rows_created = Signal()


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
    """Insert the objects and one history row each (same user and reason), in one transaction.

    Note: what simple_history's bulk_create_with_history does on PostgreSQL and SQLite >= 3.35
    (both return the new primary keys), kept here so that the history rows it writes are at hand
    to be sealed.
    """
    history = get_history_manager_for_model(model)
    with transaction.atomic(savepoint=False):
        created = model._default_manager.bulk_create(objs)
        if created and created[0].pk is None:  # pragma: no cover - older SQLite without RETURNING
            raise RuntimeError("bulk_create returned no primary keys; SQLite 3.35 or later is needed.")
        rows = history.bulk_history_create(created, default_user=actor, default_change_reason=reason) or []
        history_rows_created.send(sender=history.model, rows=rows)
    return created


def audited_bulk_update(model: type[models.Model], objs: list, fields: list[str], *, actor, reason: str) -> int:
    history = get_history_manager_for_model(model)
    with transaction.atomic(savepoint=False):
        count = model._default_manager.bulk_update(objs, fields) if fields and objs else 0
        rows = history.bulk_history_create(objs, update=True, default_user=actor, default_change_reason=reason) or []
        history_rows_created.send(sender=history.model, rows=rows)
    return count
