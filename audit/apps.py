from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Note: the seal is infrastructure, not a rule: it is written for every history row however
        # the row came to be (a service, the admin, a data fix), in the transaction that wrote it.
        from simple_history.signals import post_create_historical_record

        from audit.chain import on_history_batch, on_history_row, on_history_rows, record_schemas
        from core.history import history_batch_written, history_rows_created

        post_create_historical_record.connect(on_history_row, dispatch_uid="audit.seal_history_row")
        history_rows_created.connect(on_history_rows, dispatch_uid="audit.seal_history_rows")
        history_batch_written.connect(on_history_batch, dispatch_uid="audit.seal_history_batch")
        post_migrate.connect(record_schemas, sender=self, dispatch_uid="audit.record_schemas")
