from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from traceability.models import (
    Administration,
    AdministrationStep,
    AdverseReaction,
    HomeInfusion,
    VialFate,
    BrandSwitchFlag,
    Dispense,
    InfusionSession,
    Patient,
)


class NoDeleteAdmin(SimpleHistoryAdmin):
    """Clinical records are never deleted; corrections are new, audited actions."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(SimpleHistoryAdmin):
    list_display = ["mrn", "name", "date_of_birth", "iga_deficient"]
    search_fields = ["mrn", "name"]


@admin.register(InfusionSession)
class InfusionSessionAdmin(NoDeleteAdmin):
    list_display = ["id", "patient", "scheduled_date", "indication", "ordered_grams", "status"]
    list_filter = ["status", "indication"]
    list_select_related = ["patient"]
    raw_id_fields = ["patient"]


@admin.register(Dispense)
class DispenseAdmin(NoDeleteAdmin):
    list_display = ["id", "session", "vial", "grams", "status", "dispensed_by", "dispensed_at"]
    list_select_related = ["session__patient", "vial__presentation__product", "vial__lot", "dispensed_by"]
    raw_id_fields = ["session", "vial"]


@admin.register(BrandSwitchFlag)
class BrandSwitchFlagAdmin(NoDeleteAdmin):
    list_display = ["id", "session", "kind", "from_product", "to_product", "status"]
    list_filter = ["status", "kind"]
    list_select_related = ["from_product", "to_product", "session__patient"]


@admin.register(AdverseReaction)
class AdverseReactionAdmin(NoDeleteAdmin):
    list_display = ["id", "session", "type", "severity", "onset_at"]


class AdministrationStepInline(admin.TabularInline):
    model = AdministrationStep
    extra = 0
    can_delete = False
    fields = ["kind", "at", "rate_ml_per_h", "rate_ml_per_kg_per_h", "reason", "recorded_by"]
    readonly_fields = fields


@admin.register(Administration)
class AdministrationAdmin(NoDeleteAdmin):
    list_display = ["id", "session", "status", "started_at", "ended_at", "started_by"]
    list_filter = ["status"]
    list_select_related = ["session__patient", "started_by"]
    raw_id_fields = ["session"]
    inlines = [AdministrationStepInline]


@admin.register(VialFate)
class VialFateAdmin(NoDeleteAdmin):
    list_display = ["id", "administration", "dispense", "fate", "volume_left_ml", "recorded_by"]
    list_filter = ["fate"]
    raw_id_fields = ["administration", "dispense"]


@admin.register(HomeInfusion)
class HomeInfusionAdmin(NoDeleteAdmin):
    list_display = ["id", "session", "infused_on", "sites", "recorded_by"]
    list_select_related = ["session__patient", "recorded_by"]
    raw_id_fields = ["session"]
