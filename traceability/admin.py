"""The admin of patients and their infusions. Sessions, dispenses, brand-switch flags and reactions
change only through traceability.services (with their checks and reasons): the admin shows them
and their history and changes nothing."""

from django.contrib import admin

from core.admin import HistoryAdmin, ReadOnlyAdmin
from traceability.models import (
    AdverseReaction,
    BrandSwitchFlag,
    Dispense,
    DispenseOverride,
    InfusionSession,
    Patient,
)


@admin.register(Patient)
class PatientAdmin(HistoryAdmin):
    """Patients are corrected, never deleted: sessions, dispenses and the access log name them."""

    list_display = ["mrn", "name", "date_of_birth", "iga_deficient"]
    search_fields = ["mrn", "name"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InfusionSession)
class InfusionSessionAdmin(ReadOnlyAdmin):
    list_display = ["id", "patient", "scheduled_date", "indication", "ordered_grams", "status"]
    list_filter = ["status", "indication"]
    list_select_related = ["patient"]


@admin.register(Dispense)
class DispenseAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "vial", "grams", "status", "dispensed_by", "dispensed_at"]
    list_select_related = ["session__patient", "vial__presentation__product", "vial__lot", "dispensed_by"]


@admin.register(BrandSwitchFlag)
class BrandSwitchFlagAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "kind", "from_product", "to_product", "status"]
    list_filter = ["status", "kind"]
    list_select_related = ["from_product", "to_product", "session__patient"]


@admin.register(AdverseReaction)
class AdverseReactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "type", "severity", "onset_at"]


@admin.register(DispenseOverride)
class DispenseOverrideAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "product", "check_code", "status", "requested_by", "decided_by"]
    list_filter = ["status", "check_code"]
    list_select_related = ["session__patient", "product", "requested_by", "decided_by"]
