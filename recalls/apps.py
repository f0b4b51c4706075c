from django.apps import AppConfig


class RecallsConfig(AppConfig):
    name = "recalls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A recall may name a lot not held yet: receiving asks, and tells, through these signals.
        from inventory.signals import lot_arrived, lot_number_held
        from recalls.services import recall_hold_on_lot_number, recall_lot_arrived

        lot_number_held.connect(recall_hold_on_lot_number, dispatch_uid="recalls.hold_on_lot_number")
        lot_arrived.connect(recall_lot_arrived, dispatch_uid="recalls.lot_arrived")
