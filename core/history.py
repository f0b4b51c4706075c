"""Audited writes: every save of a model with HistoricalRecords names who and why.

History rows are built by `history_records()`: the change reason is text (a reason typed by a user
plus the action's own words has no natural bound, and PostgreSQL enforces a varchar's length where
SQLite does not), and each row keeps the username of who acted (`history_username`), so that "who"
survives even if the account it points to were ever removed.

Every history row is sealed in the write's own transaction (audit.chain): simple_history sends
`post_create_historical_record` for a single save, and the bulk writes below send
`history_rows_created` with the rows they wrote (simple_history's bulk helpers send nothing). The
audit app listens to both; this floor knows nothing of what it does with them.
"""

import threading
from collections.abc import Iterable
from contextlib import contextmanager

from django.apps import apps as global_apps
from django.db import models, transaction
from django.dispatch import Signal
from simple_history.manager import HistoryManager
from simple_history.models import HistoricalRecords
from simple_history.utils import get_history_manager_for_model

# Sent inside the write's transaction, after a bulk write, with `rows`: the history rows it created.
history_rows_created = Signal()
# Sent inside the write's transaction at the end of a history_batch() block, with `rows`: the
# (historical model, history row) pairs written in the block, in the order they were written.
history_batch_written = Signal()

_batches = threading.local()


@contextmanager
def history_batch():
    """Inside the block, the history rows single saves write are announced together when it ends
    (history_batch_written, still inside the transaction) rather than one by one: a service that
    writes several objects' history in one transaction has them sealed in two statements instead of
    two per row. Nothing is announced when the block raises: its transaction is rolled back.

    The block must not catch a database error and carry on after a rolled-back savepoint within
    it (the rows of that savepoint would be announced); a service whose block raises on such an
    error is fine."""
    stack = getattr(_batches, "stack", None)
    if stack is None:
        stack = _batches.stack = []
    rows: list = []
    stack.append(rows)
    try:
        yield
    finally:
        stack.pop()
    # Only reached when the block did not raise. A batch inside another joins it.
    if stack:
        stack[-1].extend(rows)
    elif rows:
        history_batch_written.send(sender=None, rows=rows)


def pending_history_batch() -> list | None:
    """The open history_batch()'s rows, to which a single save's history row is added; None outside one."""
    stack = getattr(_batches, "stack", None)
    return stack[-1] if stack else None


class HistoryWho(models.Model):
    """Added to every historical model: who acted, by name, as it was when they acted."""

    history_username = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        abstract = True


class CachedHistoryManager(HistoryManager):
    """simple_history's manager, whose class is built once per queryset class: `Model.history`
    (which every history row written reads) builds its manager's class on each access otherwise,
    a type() and an inspection of the queryset's methods each time."""

    _classes: dict = {}

    @classmethod
    def from_queryset(cls, queryset_class, class_name=None):
        key = (cls, queryset_class, class_name)
        built = CachedHistoryManager._classes.get(key)
        if built is None:
            built = CachedHistoryManager._classes[key] = super().from_queryset(queryset_class, class_name)
        return built


def history_records(**options) -> HistoricalRecords:
    """HistoricalRecords as every audited model of this project declares it."""
    options.setdefault("bases", [HistoryWho])
    options.setdefault("history_manager", CachedHistoryManager)
    options.setdefault("history_change_reason_field", models.TextField(null=True))
    return HistoricalRecords(**options)


def username_of(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return user.get_username()


def remember_username(sender, history_instance, history_user=None, **kwargs) -> None:
    """pre_create_historical_record receiver (core.apps): the history row keeps the username."""
    if hasattr(history_instance, "history_username") and not history_instance.history_username:
        history_instance.history_username = username_of(history_user)


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


def _who(model: type[models.Model], actor) -> dict:
    history = get_history_manager_for_model(model)
    return {"history_username": username_of(actor)} if hasattr(history.model, "history_username") else {}


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
        rows = history.bulk_history_create(
            created, default_user=actor, default_change_reason=reason, custom_historical_attrs=_who(model, actor)
        ) or []
        history_rows_created.send(sender=history.model, rows=rows)
    return created


def audited_bulk_update(model: type[models.Model], objs: list, fields: list[str], *, actor, reason: str) -> int:
    history = get_history_manager_for_model(model)
    with transaction.atomic(savepoint=False):
        count = model._default_manager.bulk_update(objs, fields) if fields and objs else 0
        rows = history.bulk_history_create(
            objs, update=True, default_user=actor, default_change_reason=reason,
            custom_historical_attrs=_who(model, actor),
        ) or []
        history_rows_created.send(sender=history.model, rows=rows)
    return count


def history_models() -> list[type[models.Model]]:
    """The historical model of every audited model."""
    return [
        model.history.model
        for model in global_apps.get_models()
        if getattr(model._meta, "simple_history_manager_attribute", None) == "history"
    ]


def user_has_history(user) -> bool:
    """Whether any history row names this user: such a user is deactivated, never deleted."""
    return any(history.objects.filter(history_user_id=user.pk).exists() for history in history_models())


def backfill_history_usernames(app_label: str):
    """A RunPython step for the migration that adds `history_username`: rows written before it get
    the username of the account they point to."""

    def forwards(apps, schema_editor) -> None:
        User = apps.get_model("auth", "User")
        for model in apps.get_app_config(app_label).get_models():
            if not model.__name__.startswith("Historical") or not hasattr(model, "history_username"):
                continue
            username = User.objects.filter(pk=models.OuterRef("history_user_id")).values("username")[:1]
            model.objects.filter(history_user__isnull=False).update(
                history_username=models.functions.Coalesce(models.Subquery(username), models.Value(""))
            )

    return forwards
