"""Demo data: one open recall on a demo lot that is both on a shelf and already given to patients.
Runs after the traceability demo; idempotent (a second run finds the recall and does nothing)."""

from django.db import transaction
from django.db.models import Count

from inventory.models import Lot, Vial
from traceability.models import Dispense
from recalls.models import Recall
from recalls.services import recall_create

DEMO_REFERENCE = "DEMO-FDA-2025-1207"


@transaction.atomic
def load(*, actor) -> None:
    if Recall.objects.filter(reference=DEMO_REFERENCE).exists():
        return
    # Separate filter() calls: one vial on a shelf, another (or the same one, earlier) dispensed.
    # The lot given to the most patients makes the lookback worth looking at.
    lot = (
        Lot.objects.exclude(status=Lot.Status.RECALLED)
        .filter(vials__status=Vial.Status.IN_STOCK)
        .filter(vials__dispenses__status=Dispense.Status.DISPENSED)
        .annotate(patients=Count("vials__dispenses__session__patient", distinct=True))
        .order_by("-patients", "expiry_date", "pk")
        .first()
    )
    if lot is None:
        return
    recall_create(
        reference=DEMO_REFERENCE,
        source=Recall.Source.MANUFACTURER,
        recall_class=Recall.RecallClass.II,
        reason="Demo: elevated levels of procoagulant activity (FXIa) found in retained samples of this lot.",
        lots=[lot],
        actor=actor,
    )
