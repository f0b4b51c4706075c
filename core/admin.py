"""The user admin, hardened: a user who appears in the history is deactivated, never deleted, so that
every history row keeps pointing at the account that acted."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from core.history import user_has_history

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
