"""The roles, and the questions asked of them: the one place that says who may do what.

Roles are Django groups. The migration that creates them, the post-migrate hook that restores them
after a database flush, the demo users, the API's permission classes and the pages all read the
names and the capability table below; none of them spells a role out again.

| capability               | technician | pharmacist | recall coordinator | auditor |
| ------------------------ | ---------- | ---------- | ------------------ | ------- |
| inventory.read           | yes        | yes        | yes                | yes     |
| scan                     | yes        | yes        | yes                | yes     |
| stock.change             | yes        | yes        |                    |         |
| catalog.change           |            | yes        |                    |         |
| lots.decide              |            | yes        |                    |         |
| patients.read            |            | yes        |                    | yes     |
| patients.read_upcoming   | yes        |            |                    |         |
| patients.change          |            | yes        |                    |         |
| sessions.read            |            | yes        |                    | yes     |
| sessions.read_upcoming   | yes        |            |                    |         |
| sessions.order           |            | yes        |                    |         |
| sessions.complete        | yes        | yes        |                    |         |
| reactions.record         |            | yes        |                    |         |
| dispenses.read           | yes        | yes        |                    | yes     |
| dispenses.change         | yes        | yes        |                    |         |
| flags.read               | yes        | yes        |                    | yes     |
| flags.decide             |            | yes        |                    |         |
| overrides.decide         |            | yes        |                    |         |
| recalls.read             |            | yes        | yes                | yes     |
| recalls.change           |            | yes        | yes                |         |
| history.read             |            |            |                    | yes     |

Patients, and the sessions, flags and history that name them, are seen whole by pharmacists and
auditors. A technician sees them only for the patients with an open session in the coming days
(`*.read_upcoming`, the window is UPCOMING_DAYS): enough to dispense, no more. A recall
coordinator sees patients only through a recall: the look-up, the lookback and the notifications
(`recalls.read`). Sessions are ordered, started and cancelled by pharmacists (`sessions.order`);
technicians dispense into them and complete them. `patient_scope()` says which of these applies.

The nurse, and the rows of the administration record, the lot signal and FHIR:

| capability        | technician | pharmacist | recall coordinator | auditor | nurse |
| ----------------- | ---------- | ---------- | ------------------ | ------- | ----- |
| infusions.read    | yes        | yes        |                    | yes     | yes   |
| infusions.record  |            | yes        |                    |         | yes   |
| signals.read      |            | yes        | yes                | yes     |       |
| fhir.read         |            | yes        |                    | yes     | yes   |

A nurse holds only these rows: the infusion page and its API show the sessions, patients and vials
the nurse gives, and record administrations, the home infusions a patient reports, and reactions.
Technicians read the administration record and home infusions only for the sessions of the
coming days, as the sessions themselves (`api.administrations.in_reach`).

The cold chain (readings and excursions are read with `inventory.read`):

| capability        | technician | pharmacist | recall coordinator | auditor | nurse |
| ----------------- | ---------- | ---------- | ------------------ | ------- | ----- |
| readings.record   | yes        | yes        |                    |         |       |
| excursions.decide |            | yes        |                    |         |       |

Technicians and pharmacists record a location's temperatures (or import a logger's file); only a
pharmacist decides what becomes of the vials an excursion holds (release or waste).

Treatment authorisations (what each patient is approved to receive), the dose calculator and
the authorisation reports:

| capability            | technician | pharmacist | recall coordinator | auditor | nurse |
| --------------------- | ---------- | ---------- | ------------------ | ------- | ----- |
| authorisations.read   |            | yes        |                    | yes     |       |
| authorisations.change |            | yes        |                    |         |       |
| doses.calculate       |            | yes        |                    |         |       |

A technician meets a session's authorisation on the scan card (its doses left and end date) and
in the refusals of a dispense outside it, not as a list of patients.

Superusers pass every check.
"""

from collections.abc import Iterable

TECHNICIAN = "technician"
PHARMACIST = "pharmacist"
AUDITOR = "auditor"
RECALL_COORDINATOR = "recall_coordinator"
NURSE = "nurse"
ROLES = (TECHNICIAN, PHARMACIST, AUDITOR, RECALL_COORDINATOR, NURSE)
SUPERUSER = "superuser"

# Roles as a person reads them, on pages and in exports.
ROLE_WORDS = {
    TECHNICIAN: "technician",
    PHARMACIST: "pharmacist",
    AUDITOR: "auditor",
    RECALL_COORDINATOR: "recall coordinator",
    NURSE: "nurse",
    SUPERUSER: "administrator",
}

ALL_ROLES = ROLES
STOCK_ROLES = (TECHNICIAN, PHARMACIST)

CAPABILITIES: dict[str, tuple[str, ...]] = {
    "inventory.read": ALL_ROLES,
    "scan": ALL_ROLES,
    "stock.change": STOCK_ROLES,
    "catalog.change": (PHARMACIST,),
    "lots.decide": (PHARMACIST,),
    "patients.read": (PHARMACIST, AUDITOR),
    "patients.read_upcoming": (TECHNICIAN,),
    "patients.change": (PHARMACIST,),
    "sessions.read": (PHARMACIST, AUDITOR),
    "sessions.read_upcoming": (TECHNICIAN,),
    "sessions.order": (PHARMACIST,),
    "sessions.complete": STOCK_ROLES,
    "reactions.record": (PHARMACIST,),
    "dispenses.read": (TECHNICIAN, PHARMACIST, AUDITOR),
    "dispenses.change": STOCK_ROLES,
    "flags.read": (TECHNICIAN, PHARMACIST, AUDITOR),
    "flags.decide": (PHARMACIST,),
    "overrides.decide": (PHARMACIST,),
    "recalls.read": (PHARMACIST, RECALL_COORDINATOR, AUDITOR),
    "recalls.change": (PHARMACIST, RECALL_COORDINATOR),
    "history.read": (AUDITOR,),
    # The administration record: what ran, when, how fast, and what became of each vial.
    "infusions.read": (TECHNICIAN, PHARMACIST, AUDITOR, NURSE),
    "infusions.record": (PHARMACIST, NURSE),
    # Reactions per lot against the rest of the brand: for whoever decides on recalls.
    "signals.read": (PHARMACIST, RECALL_COORDINATOR, AUDITOR),
    # FHIR R4 for the hospital's EHR: patients, dispenses, administrations, adverse events.
    "fhir.read": (PHARMACIST, AUDITOR, NURSE),
    # The cold chain: temperatures of storage locations, and the disposition of an excursion's vials.
    "readings.record": STOCK_ROLES,
    "excursions.decide": (PHARMACIST,),
    # Treatment authorisations: recorded and revoked by pharmacists, read by auditors too; the
    # reports (ending soon, the discrepancy queue) are reads. The dose calculator serves ordering.
    "authorisations.read": (PHARMACIST, AUDITOR),
    "authorisations.change": (PHARMACIST,),
    "doses.calculate": (PHARMACIST,),
}

# How far ahead a technician sees patients: today, the day before (an infusion that ran late) and
# this many days to come.
UPCOMING_DAYS = 7

# Which patients a user sees (patient_scope): all of them, or those with an open session in the
# coming days. None: no patient at all outside a recall.
SCOPE_ALL = "all"
SCOPE_UPCOMING = "upcoming"


def user_roles(user) -> frozenset[str]:
    """The user's roles (group names), read once per user object and kept on it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_role_cache", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._role_cache = cached
    return frozenset(cached)


def remember_roles(user, names: Iterable[str]) -> None:
    """Fill the role cache from groups fetched in bulk (a prefetch), so no query per user follows."""
    user._role_cache = frozenset(names)


def effective_roles(user) -> frozenset[str]:
    """The user's roles, with SUPERUSER added for a superuser."""
    roles = user_roles(user)
    if getattr(user, "is_superuser", False) and getattr(user, "is_authenticated", False):
        roles = roles | {SUPERUSER}
    return roles


def has_role(user, *roles: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser) or bool(user_roles(user) & set(roles))


def roles_may(roles: Iterable[str], capability: str) -> bool:
    """Whether a user holding `roles` (as effective_roles gives them) has `capability`."""
    roles = set(roles)
    return SUPERUSER in roles or bool(roles & set(CAPABILITIES[capability]))


def may(user, capability: str) -> bool:
    return roles_may(effective_roles(user), capability)


def may_any(user, *capabilities: str) -> bool:
    roles = effective_roles(user)
    return any(roles_may(roles, capability) for capability in capabilities)


def patient_scope(user) -> str | None:
    """Which patients (and the sessions and flags that name them) the user sees outside a recall."""
    roles = effective_roles(user)
    if roles_may(roles, "patients.read"):
        return SCOPE_ALL
    if roles_may(roles, "patients.read_upcoming"):
        return SCOPE_UPCOMING
    return None


def primary_role(user) -> str:
    """The user's role(s) as stored, for logs and exports: "superuser", or the group names joined."""
    if user is None:
        return ""
    if getattr(user, "is_superuser", False):
        return SUPERUSER
    return ",".join(sorted(user_roles(user)))


def role_words(user) -> str:
    """The user's role(s) as words: "recall coordinator", "pharmacist, technician"."""
    roles = sorted(effective_roles(user))
    return ", ".join(ROLE_WORDS.get(role, role) for role in roles)


def ensure_roles(group_model, *, using: str = "default") -> None:
    """Create any missing role group. Called by the roles migration and after every migrate."""
    for name in ROLES:
        group_model.objects.using(using).get_or_create(name=name)
