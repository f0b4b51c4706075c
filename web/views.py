"""Server-rendered pages. They carry no rules of their own: every action calls the JSON API."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from api.access import record_patient_access
from api.permissions import (
    AUDITOR,
    PHARMACIST,
    RECALL_COORDINATOR,
    TECHNICIAN,
    effective_roles,
)
from inventory.models import StorageLocation, local_today


def _can(roles: set[str], *wanted: str) -> bool:
    return "superuser" in roles or bool(roles & set(wanted))


@login_required
@ensure_csrf_cookie
def scan_station(request):
    roles = effective_roles(request.user)
    sessions = list(_todays_open_sessions()) if _can(roles, TECHNICIAN, PHARMACIST) else []
    # The session list names patients: the page is logged like any other read of patient data.
    record_patient_access(request, [s.patient_id for s in sessions], via="scan-station")
    context = {
        "roles": sorted(roles),
        "can_handle_stock": _can(roles, TECHNICIAN, PHARMACIST),
        "can_decide_lots": _can(roles, PHARMACIST),
        "locations": _locations_fridges_first(),
        "sessions": sessions,
        "today": local_today(),
    }
    return render(request, "web/scan.html", context)


KIND_ORDER = [StorageLocation.Kind.REFRIGERATOR, StorageLocation.Kind.ROOM_TEMPERATURE, StorageLocation.Kind.QUARANTINE]


def _locations_fridges_first() -> list[StorageLocation]:
    # Most stock goes into a fridge; quarantine is chosen on purpose, never by default.
    locations = StorageLocation.objects.filter(active=True)
    return sorted(locations, key=lambda l: (KIND_ORDER.index(l.kind), l.name))


def _todays_open_sessions():
    from traceability.models import InfusionSession

    return (
        InfusionSession.objects.filter(scheduled_date=local_today(), status__in=InfusionSession.OPEN_STATUSES)
        .select_related("patient")
        .order_by("patient__name", "pk")
    )


@login_required
@ensure_csrf_cookie
def recall_lookup(request):
    roles = effective_roles(request.user)
    context = {
        "roles": sorted(roles),
        "can_look_up": _can(roles, PHARMACIST, RECALL_COORDINATOR, AUDITOR),
        "can_manage_recalls": _can(roles, PHARMACIST, RECALL_COORDINATOR),
        "initial_lot": request.GET.get("lot", "").strip(),
    }
    return render(request, "web/recall.html", context, status=200 if context["can_look_up"] else 403)
