"""The admin's two kinds of page for audited models: records that only services change (read-only,
with their history) and master data the admin edits through the same services as the API; and the
user admin, hardened: a user who appears in the history is deactivated, never deleted.

Either way the history is shown in words ("(none)" for an empty relation, people by name) and is
never reverted: a correction is a new, audited action with a reason, not a return to an old row.
"""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from core.history import user_has_history
from core.text import user_text


class NamedChanges(HistoricalRecordContextHelper):
    """The history view's changes: "(none)" for an empty relation (simple_history would say
    "Deleted storage location (pk=None)"), people as "tech (Tess Technician)"."""

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        if value is None or (isinstance(value, DeletedObject) and value.pk is None):
            return "(none)"
        if isinstance(value, DeletedObject):
            return f"{value.model._meta.verbose_name} {value.pk} (deleted)"
        if hasattr(value, "get_full_name") and hasattr(value, "get_username"):
            return user_text(value)
        field = self.model._meta.get_field(change.field)
        if field.choices:
            return dict(field.flatchoices).get(value, value)
        return value


class HistoryAdmin(SimpleHistoryAdmin):
    """Any audited model's admin: its history shown in words; no revert (the button is hidden by
    SIMPLE_HISTORY_REVERT_DISABLED, and a POST to an old version is refused here)."""

    object_history_list_template = "admin/core/object_history_list.html"

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def get_historical_record_context_helper(self, request, historical_record):
        return NamedChanges(self.model, historical_record)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        for record in historical_records:
            record.history_user_text = user_text(record.history_user) if record.history_user_id else "(none)"


class ReadOnlyAdmin(HistoryAdmin):
    """Records that only their services change (stock, dispenses, sessions, flags, recalls): the
    admin shows them and their history, and refuses add, change, delete and revert, to superusers
    too, since a direct edit would pass every rule the services keep."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ServiceAdmin(HistoryAdmin):
    """Master data the admin edits through the same service as the API (`save_with`); never
    deleted (lots and vials point at it)."""

    def save_with(self, *, obj, actor, changes: dict, creating: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def save_model(self, request, obj, form, change) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        if change:
            saved = self.save_with(obj=obj, actor=request.user, changes=changes, creating=False)
        else:
            fields = {f.name: getattr(obj, f.name) for f in obj._meta.concrete_fields if not f.primary_key}
            saved = self.save_with(obj=obj, actor=request.user, changes=fields, creating=True)
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None) -> bool:
        return False



User = get_user_model()


@admin.action(description="Deactivate the selected users (they can no longer log in)")
def deactivate(modeladmin, request, queryset) -> None:
    for user in queryset.filter(is_active=True):
        user.is_active = False
        user.save(update_fields=["is_active"])
    messages.success(request, "The selected users are deactivated.")


class HistoryKeepingUserAdmin(UserAdmin):
    actions = [deactivate]

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Bulk deletion would not ask about each user's history.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and user_has_history(obj):
            return False
        return super().has_delete_permission(request, obj)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, HistoryKeepingUserAdmin)
