from django.contrib import admin

from recalls.models import NotificationTask, Recall, RecallLot
from traceability.admin import NoDeleteAdmin


class RecallLotInline(admin.TabularInline):
    model = RecallLot
    extra = 0
    raw_id_fields = ["lot"]
    can_delete = False


@admin.register(Recall)
class RecallAdmin(NoDeleteAdmin):
    list_display = ["reference", "source", "scheme", "recall_class", "action_due", "recall_date", "status"]
    list_filter = ["scheme", "recall_class", "status"]
    inlines = [RecallLotInline]


@admin.register(NotificationTask)
class NotificationTaskAdmin(NoDeleteAdmin):
    list_display = ["recall", "patient", "status", "updated_by", "updated_at"]
    list_filter = ["status"]
