"""DRF permission classes, one per resource, built from the capability table in core.roles.

Each class admits its `read` capability to safe methods and its `write` capability to the rest;
who holds which capability is decided in core.roles alone.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.roles import may


def capability_permission(name: str, *, read: str, write: str) -> type[BasePermission]:
    """A permission class for a resource: `read` for safe methods, `write` for the rest."""

    class CapabilityPermission(BasePermission):
        message = "Your role may not do this."
        capabilities = {"read": read, "write": write}

        def has_permission(self, request, view) -> bool:
            return may(request.user, read if request.method in SAFE_METHODS else write)

    CapabilityPermission.__name__ = name
    CapabilityPermission.__qualname__ = name
    return CapabilityPermission


InventoryPermission = capability_permission("InventoryPermission", read="inventory.read", write="stock.change")
CatalogPermission = capability_permission("CatalogPermission", read="inventory.read", write="catalog.change")
LotDecisionPermission = capability_permission("LotDecisionPermission", read="inventory.read", write="lots.decide")
ScanPermission = capability_permission("ScanPermission", read="scan", write="scan")
PatientPermission = capability_permission("PatientPermission", read="patients.read", write="patients.change")
SessionPermission = capability_permission("SessionPermission", read="sessions.read", write="sessions.change")
DispensePermission = capability_permission("DispensePermission", read="dispenses.read", write="dispenses.change")
FlagPermission = capability_permission("FlagPermission", read="flags.read", write="flags.decide")
RecallPermission = capability_permission("RecallPermission", read="recalls.read", write="recalls.change")
HistoryPermission = capability_permission("HistoryPermission", read="history.read", write="history.read")
OverridePermission = capability_permission("OverridePermission", read="dispenses.read", write="dispenses.change")
OverrideDecisionPermission = capability_permission(
    "OverrideDecisionPermission", read="overrides.decide", write="overrides.decide")
