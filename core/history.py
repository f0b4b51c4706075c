"""Audited writes: every save of a model with HistoricalRecords names who and why.

History rows are built by `history_records()`: the change reason is text (a reason typed by a user
plus the action's own words has no natural bound, and PostgreSQL enforces a varchar's length where
SQLite does not), and each row keeps the username of who acted (`history_username`), so that "who"
survives even if the account it points to were ever removed.
"""

from collections.abc import Iterable

from django.apps import apps as global_apps
from django.db import models
from simple_history.models import HistoricalRecords
from simple_history.utils import bulk_create_with_history, bulk_update_with_history


class HistoryWho(models.Model):
    """Added to every historical model: who acted, by name, as it was when they acted."""

    history_username = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        abstract = True


def history_records(**options) -> HistoricalRecords:
    """HistoricalRecords as every audited model of this project declares it."""
    options.setdefault("bases", [HistoryWho])
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


def audited_bulk_create(model: type[models.Model], objs: list, *, actor, reason: str) -> list:
    # Note: bulk_create_with_history writes one history row per object, with the same user and reason.
    return bulk_create_with_history(
        objs, model, default_user=actor, default_change_reason=reason,
        custom_historical_attrs={"history_username": username_of(actor)},
    )


def audited_bulk_update(model: type[models.Model], objs: list, fields: list[str], *, actor, reason: str) -> int:
    return bulk_update_with_history(
        objs, model, fields, default_user=actor, default_change_reason=reason,
        custom_historical_attrs={"history_username": username_of(actor)},
    )


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
