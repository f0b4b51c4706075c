"""DRF permission classes, one per resource (or action), built from the capability table in core.roles.

Each class admits its `read` capabilities to safe methods and its `write` capabilities to the rest
(any one of them suffices); who holds which capability is decided in core.roles alone. Which rows
of a resource a reader sees (a technician's coming days) is core.roles.patient_scope's answer,
applied by the views' querysets.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.roles import may_any


def capability_permission(name: str, *, read, write) -> type[BasePermission]:
    """A permission class: `read` for safe methods, `write` for the rest (a capability or a tuple)."""
    read = (read,) if isinstance(read, str) else tuple(read)
    write = (write,) if isinstance(write, str) else tuple(write)

    class CapabilityPermission(BasePermission):
        message = "Your role may not do this."
        capabilities = {"read": read, "write": write}

        def has_permission(self, request, view) -> bool:
            return may_any(request.user, *(read if request.method in SAFE_METHODS else write))

    CapabilityPermission.__name__ = name
    CapabilityPermission.__qualname__ = name
    return CapabilityPermission


PATIENT_READERS = ("patients.read", "patients.read_upcoming")
SESSION_READERS = ("sessions.read", "sessions.read_upcoming")

InventoryPermission = capability_permission("InventoryPermission", read="inventory.read", write="stock.change")
CatalogPermission = capability_permission("CatalogPermission", read="inventory.read", write="catalog.change")
LotDecisionPermission = capability_permission("LotDecisionPermission", read="inventory.read", write="lots.decide")
ScanPermission = capability_permission("ScanPermission", read="scan", write="scan")
PatientPermission = capability_permission("PatientPermission", read=PATIENT_READERS, write="patients.change")
SessionPermission = capability_permission("SessionPermission", read=SESSION_READERS, write="sessions.order")
SessionCompletePermission = capability_permission(
    "SessionCompletePermission", read=SESSION_READERS, write="sessions.complete"
)
ReactionPermission = capability_permission("ReactionPermission", read=SESSION_READERS, write="reactions.record")
DispensePermission = capability_permission("DispensePermission", read="dispenses.read", write="dispenses.change")
FlagPermission = capability_permission("FlagPermission", read="flags.read", write="flags.decide")
RecallPermission = capability_permission("RecallPermission", read="recalls.read", write="recalls.change")
HistoryPermission = capability_permission("HistoryPermission", read="history.read", write="history.read")
OverridePermission = capability_permission("OverridePermission", read="dispenses.read", write="dispenses.change")
OverrideDecisionPermission = capability_permission(
    "OverrideDecisionPermission", read="overrides.decide", write="overrides.decide")
ReadingPermission = capability_permission("ReadingPermission", read="inventory.read", write="readings.record")
ExcursionPermission = capability_permission("ExcursionPermission", read="inventory.read", write="excursions.decide")
AuthorisationPermission = capability_permission(
    "AuthorisationPermission", read="authorisations.read", write="authorisations.change")
DoseCalculatorPermission = capability_permission(
    "DoseCalculatorPermission", read="doses.calculate", write="doses.calculate")
