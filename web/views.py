"""Server-rendered pages. They carry no rules of their own: every action calls the JSON API, and
what a page shows comes from the selectors and the role questions of core.roles."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from audit.services import patient_access_record
from core.roles import ROLE_WORDS, effective_roles, roles_may
from inventory.models import local_today
from inventory.selectors import locations_for_placing
from traceability.models import AdverseReaction, BrandSwitchFlag, VialFate
from recalls.models import CLASSES_OF_SCHEME, Recall, class_text
from traceability.selectors import todays_open_sessions


def _words(roles) -> list[str]:
    """Roles as a person reads them, for the top bar."""
    return [ROLE_WORDS.get(role, role) for role in sorted(roles)]


@login_required
@ensure_csrf_cookie
def scan_station(request):
    roles = effective_roles(request.user)
    if not roles_may(roles, "scan"):
        raise PermissionDenied("Your role may not use the scan station.")
    sessions = list(todays_open_sessions()) if roles_may(roles, "dispenses.change") else []
    # The session list names patients: the page is logged like any other read of patient data.
    patient_access_record(user=request.user, patient_ids=[s.patient_id for s in sessions], via="scan-station",
                          request=request)
    context = {
        "roles": _words(roles),
        "can_handle_stock": roles_may(roles, "stock.change"),
        "can_decide_lots": roles_may(roles, "lots.decide"),
        "can_review": roles_may(roles, "overrides.decide"),
        "locations": locations_for_placing(),
        "sessions": sessions,
        "today": local_today(),
    }
    return render(request, "web/scan.html", context)


@login_required
@ensure_csrf_cookie
def recall_lookup(request):
    roles = effective_roles(request.user)
    context = {
        "roles": _words(roles),
        "can_look_up": roles_may(roles, "recalls.read"),
        "can_manage_recalls": roles_may(roles, "recalls.change"),
        "can_see_signals": roles_may(roles, "signals.read"),
        "signal_alpha": settings.LOT_SIGNAL_ALPHA,
        "signal_min_reactions": settings.LOT_SIGNAL_MIN_REACTIONS,
        "initial_lot": request.GET.get("lot", "").strip(),
        # The recall just opened here: its message is shown again, from the server, after a refresh.
        "initial_recall": request.GET.get("recall", "") if request.GET.get("recall", "").isdigit() else "",
        # The classes each scheme uses, in the notice's words (the form offers only these).
        "recall_schemes": [
            {
                "value": scheme.value,
                "label": scheme.label,
                "classes": [{"value": c.value, "text": class_text(scheme, c)} for c in CLASSES_OF_SCHEME[scheme]],
            }
            for scheme in Recall.Scheme
        ],
    }
    return render(request, "web/recall.html", context, status=200 if context["can_look_up"] else 403)


@login_required
@ensure_csrf_cookie
def review(request):
    """The pharmacist's review: open brand-switch flags, override requests and dose discrepancies,
    each decided here through the API, with the reasons listed; and the treatment authorisations'
    reports (vials given outside one, those ending soon)."""
    roles = effective_roles(request.user)
    allowed = roles_may(roles, "overrides.decide")
    context = {
        "roles": _words(roles),
        "allowed": allowed,
        "flag_reasons": [{"value": value, "label": label[:1].upper() + label[1:]}
                         for value, label in BrandSwitchFlag.Reason.choices],
        "authorisation_days": settings.AUTHORISATION_EXPIRY_WARNING_DAYS,
    }
    return render(request, "web/review.html", context, status=200 if allowed else 403)


@login_required
@ensure_csrf_cookie
def infusion(request):
    """The nurse's page, for a tablet at the bedside: today's sessions, then start, step the rate,
    pause and resume, record a reaction, and finish (or stop) with each vial's fate. Every action
    is an API call; the page decides nothing."""
    roles = effective_roles(request.user)
    allowed = roles_may(roles, "infusions.read")

    def options(choices):
        return [{"value": value, "label": label[:1].upper() + label[1:]} for value, label in choices]

    context = {
        "roles": _words(roles),
        "allowed": allowed,
        "can_record": roles_may(roles, "infusions.record"),
        "choices": {
            "reaction_types": options(AdverseReaction.Type.choices),
            "severities": options(AdverseReaction.Severity.choices),
            "fates": options(VialFate.Fate.choices),
            "today": local_today().isoformat(),
        },
    }
    return render(request, "web/infusion.html", context, status=200 if allowed else 403)
