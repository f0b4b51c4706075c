from django.apps import AppConfig


class RecallsConfig(AppConfig):
    name = "recalls"
    default_auto_field = "django.db.models.BigAutoField"
