from django.contrib import admin

from audit.models import Checkpoint, ExportEvent, ExportJob, HistoryPurge, PatientAccess
from core.admin import ReadOnlyAdmin


@admin.register(ExportEvent)
class ExportEventAdmin(ReadOnlyAdmin):
    """Who exported the history, when, with which filters: read-only, never deleted."""

    list_display = ["exported_at", "exported_by", "operator", "channel", "row_count", "file_name"]
    list_filter = ["channel"]
    list_select_related = ["exported_by"]
    search_fields = ["exported_by__username", "operator", "file_name"]
    date_hierarchy = "exported_at"
    readonly_fields = [f.name for f in ExportEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "requested_by", "status", "rows_done", "rows_total", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["requested_by"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PatientAccess)
class PatientAccessAdmin(admin.ModelAdmin):
    """Who saw which patient, when, through which route: read-only, never deleted."""

    list_display = ["at", "user", "patient", "via", "method", "path"]
    list_filter = ["via"]
    list_select_related = ["user", "patient"]
    search_fields = ["user__username", "patient__mrn", "via"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in PatientAccess._meta.fields]
    show_full_result_count = False  # the log grows with every read; no COUNT(*) of all of it per page

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """The signed Merkle roots over the sealed history: read-only, never deleted."""

    list_display = ["sequence", "created_at", "trigger", "last_seal", "leaves", "root"]
    list_filter = ["trigger"]
    readonly_fields = [f.name for f in Checkpoint._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HistoryPurge)
class HistoryPurgeAdmin(ReadOnlyAdmin):
    """What the retention period removed, who ran it and why: read-only, never deleted."""

    list_display = ["purged_at", "operator", "reason", "retention_days", "up_to_checkpoint"]
    readonly_fields = [f.name for f in HistoryPurge._meta.fields]
