"""Roles are Django groups (created by a migration); every view names the roles it admits.

| role               | reads inventory | changes stock | patients / sessions | flags ack | recalls     | audit export |
| ------------------ | --------------- | ------------- | ------------------- | --------- | ----------- | ------------ |
| technician         | yes             | yes           | read + dispense     | no        | no          | no           |
| pharmacist         | yes             | yes           | yes                 | yes       | manage      | no           |
| recall_coordinator | yes             | no            | read                | no        | manage      | no           |
| auditor            | yes             | no            | read                | no        | read        | yes          |
Superusers pass every check.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

TECHNICIAN = "technician"
PHARMACIST = "pharmacist"
AUDITOR = "auditor"
RECALL_COORDINATOR = "recall_coordinator"
ROLES = (TECHNICIAN, PHARMACIST, AUDITOR, RECALL_COORDINATOR)


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._role_cache = cached
    return cached


def has_role(user, *roles: str) -> bool:
    if not user or not user.is_authenticated:
        return False
    return user.is_superuser or bool(user_roles(user) & set(roles))


def primary_role(user) -> str:
    if user is None:
        return ""
    if getattr(user, "is_superuser", False):
        return "superuser"
    roles = sorted(user_roles(user))
    return ",".join(roles)


def roles_permission(name: str, *, read: tuple[str, ...], write: tuple[str, ...] = ()) -> type[BasePermission]:
    """A permission class admitting `read` roles to safe methods and `write` roles to the rest."""

    class RolePermission(BasePermission):
        message = "Your role may not do this."

        def has_permission(self, request, view) -> bool:
            allowed = read if request.method in SAFE_METHODS else write
            return has_role(request.user, *allowed)

    RolePermission.__name__ = name
    RolePermission.__qualname__ = name
    return RolePermission


ALL_ROLES = ROLES
STOCK_ROLES = (TECHNICIAN, PHARMACIST)

# Catalog, lots, locations, vials: everyone reads; technicians and pharmacists change stock;
# quarantine/release of lots is a pharmacist's decision.
InventoryAccess = roles_permission("InventoryAccess", read=ALL_ROLES, write=STOCK_ROLES)
CatalogAccess = roles_permission("CatalogAccess", read=ALL_ROLES, write=(PHARMACIST,))
LotDecision = roles_permission("LotDecision", read=ALL_ROLES, write=(PHARMACIST,))
ScanAccess = roles_permission("ScanAccess", read=ALL_ROLES, write=ALL_ROLES)

# Patient data: only roles that need it.
PatientAccess = roles_permission(
    "PatientAccess", read=(TECHNICIAN, PHARMACIST, RECALL_COORDINATOR, AUDITOR), write=(PHARMACIST,)
)
SessionAccess = roles_permission(
    "SessionAccess", read=(TECHNICIAN, PHARMACIST, RECALL_COORDINATOR, AUDITOR), write=(TECHNICIAN, PHARMACIST)
)
DispenseAccess = roles_permission("DispenseAccess", read=(TECHNICIAN, PHARMACIST, AUDITOR), write=STOCK_ROLES)
FlagAccess = roles_permission("FlagAccess", read=(TECHNICIAN, PHARMACIST, AUDITOR), write=(PHARMACIST,))

RecallAccess = roles_permission(
    "RecallAccess", read=(PHARMACIST, RECALL_COORDINATOR, AUDITOR), write=(PHARMACIST, RECALL_COORDINATOR)
)
AuditAccess = roles_permission("AuditAccess", read=(AUDITOR,), write=(AUDITOR,))


def effective_roles(user) -> set[str]:
    roles = set(user_roles(user))
    if getattr(user, "is_superuser", False):
        roles.add("superuser")
    return roles
