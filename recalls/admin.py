"""The admin of recalls: shown with their lots, notifications and history; they change only through
recalls.services (which quarantine stock and create the notification tasks in one transaction)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from recalls.models import NotificationTask, Recall, RecallLot


class RecallLotInline(admin.TabularInline):
    model = RecallLot
    extra = 0
    can_delete = False
    fields = ["lot"]
    readonly_fields = ["lot"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Recall)
class RecallAdmin(ReadOnlyAdmin):
    list_display = ["reference", "source", "scheme", "recall_class", "action_due", "recall_date", "status"]
    list_filter = ["scheme", "recall_class", "status"]
    inlines = [RecallLotInline]


@admin.register(NotificationTask)
class NotificationTaskAdmin(ReadOnlyAdmin):
    list_display = ["recall", "patient", "status", "updated_by", "updated_at"]
    list_filter = ["status"]
