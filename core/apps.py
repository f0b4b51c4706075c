from django.apps import AppConfig
from django.db.models.signals import post_migrate


def restore_roles(sender, using="default", **kwargs) -> None:
    """The roles come from a migration; a database flush (as transactional tests do) empties the
    groups table, and post_migrate, which a flush emits, puts them back."""
    from django.contrib.auth.models import Group

    from core.roles import ensure_roles

    ensure_roles(Group, using=using)


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # This app has no models, so post_migrate is not sent for it: hang on to auth's.
        from django.apps import apps

        post_migrate.connect(restore_roles, sender=apps.get_app_config("auth"), dispatch_uid="core.restore_roles")

        from simple_history.signals import pre_create_historical_record

        from core.history import remember_username

        pre_create_historical_record.connect(remember_username, dispatch_uid="core.remember_username")

        # The `in_ids` lookup (a list of ids as one parameter) on every field: core.compiled.
        import core.compiled  # noqa: F401
