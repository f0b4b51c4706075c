"""The admin of patients and their infusions. Sessions, dispenses, brand-switch flags and reactions
change only through traceability.services (with their checks and reasons): the admin shows them
and their history and changes nothing."""

from django.contrib import admin

from core.admin import HistoryAdmin, ReadOnlyAdmin
from traceability.models import (
    Administration,
    AdministrationStep,
    AdverseReaction,
    HomeInfusion,
    VialFate,
    BrandSwitchFlag,
    Dispense,
    DispenseOverride,
    InfusionSession,
    Patient,
    TreatmentAuthorisation,
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


class AdministrationStepInline(admin.TabularInline):
    model = AdministrationStep
    extra = 0
    can_delete = False
    fields = ["kind", "at", "rate_ml_per_h", "rate_ml_per_kg_per_h", "reason", "recorded_by"]
    readonly_fields = fields


@admin.register(Administration)
class AdministrationAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "status", "started_at", "ended_at", "started_by"]
    list_filter = ["status"]
    list_select_related = ["session__patient", "started_by"]
    raw_id_fields = ["session"]
    inlines = [AdministrationStepInline]


@admin.register(VialFate)
class VialFateAdmin(ReadOnlyAdmin):
    list_display = ["id", "administration", "dispense", "fate", "volume_left_ml", "recorded_by"]
    list_filter = ["fate"]
    raw_id_fields = ["administration", "dispense"]


@admin.register(HomeInfusion)
class HomeInfusionAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "infused_on", "sites", "recorded_by"]
    list_select_related = ["session__patient", "recorded_by"]
    raw_id_fields = ["session"]


@admin.register(TreatmentAuthorisation)
class TreatmentAuthorisationAdmin(ReadOnlyAdmin):
    """Recorded and revoked through traceability.authorisations (with their checks and reasons)."""

    list_display = ["id", "patient", "payer_reference", "indication", "product", "route", "doses", "valid_from",
                    "valid_until", "status"]
    list_filter = ["status", "indication", "route"]
    list_select_related = ["patient", "product"]
    search_fields = ["payer_reference", "patient__mrn", "patient__name"]
