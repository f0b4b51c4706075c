"""Recall services: create a recall (lots recalled, shelf stock quarantined, one notification task
per patient, in one transaction), record notifications, close the recall, dispose of its stock.

Locks are taken in one order everywhere: recall, then lots by primary key, then vials by primary key,
then notification tasks, so two of these services never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.history import audited_bulk_create, audited_bulk_update, audited_save
from core.errors import InvalidInput
from inventory.exceptions import ReasonRequired
from inventory.models import Lot, Vial, local_today
from recalls.exceptions import (
    AmbiguousLots,
    NothingToDispose,
    NotificationsPending,
    RecallClosed,
    RecallReferenceExists,
    UnknownLots,
)
from recalls.models import ACTION_WITHIN, CLASSES_OF_SCHEME, NotificationTask, Recall, RecallLot
from recalls.selectors import ON_HAND, affected_dispenses, lot_number_suggestions_for, patients_from


LotRef = Lot | int | str


@dataclass(frozen=True)
class DisposeAction:
    vial_status: str
    label: str


DISPOSE_ACTIONS = {
    "return": DisposeAction(Vial.Status.RETURNED, "return to supplier"),
    "waste": DisposeAction(Vial.Status.WASTED, "waste"),
}


# The most lots one recall names. Real notices name a handful to a few hundred; the bound keeps one
# request from holding a worker (and the lot query within every database's parameter limit).
MAX_RECALL_LOTS = 1000


def lot_numbers_from_text(text: str) -> list[str]:
    """One lot number per line, as pasted from a notice: trimmed, blank lines skipped, first
    occurrence kept. Case is kept: lot numbers are case sensitive."""
    # dict.fromkeys: first occurrence kept, in linear time (a list scan made 40,000 lines take 32 s).
    return list(dict.fromkeys(number for line in (text or "").splitlines() if (number := line.strip())))


def _check_lot_count(count: int) -> None:
    if count > MAX_RECALL_LOTS:
        raise InvalidInput(
            f"A recall names at most {MAX_RECALL_LOTS} lots ({count} given): split the notice into several recalls.",
            code="too_many_lots",
            extra={"max_lots": MAX_RECALL_LOTS},
        )


def _resolve_lots(refs: Sequence[LotRef], *, brand: str | None) -> tuple[list[Lot], list[str]]:
    """Lots named by instance, id or lot number → (lots, lot numbers that match nothing).

    Unknown ids always refuse (they come from a picker, not a notice); a lot number shared by
    lots of several products refuses unless `brand` says which."""
    _check_lot_count(len(refs))
    lot_ids = [ref.pk if isinstance(ref, Lot) else ref for ref in refs if isinstance(ref, (Lot, int))]
    numbers = list(dict.fromkeys(ref.strip() for ref in refs if isinstance(ref, str) and ref.strip()))

    lots = list(Lot.objects.filter(pk__in=lot_ids).select_related("product"))
    missing_ids = sorted(set(lot_ids) - {lot.pk for lot in lots})
    if missing_ids:
        raise UnknownLots(
            f"No lot with id {', '.join(map(str, missing_ids))}.",
            extra={"unknown_lots": missing_ids, "suggestions": {}},
        )

    by_number: dict[str, list[Lot]] = {}
    if numbers:
        named = Lot.objects.filter(lot_number__in=numbers).select_related("product")
        if brand:
            named = named.filter(product__brand__iexact=brand.strip())
        for lot in named.order_by("product__brand", "pk"):
            by_number.setdefault(lot.lot_number, []).append(lot)
    ambiguous = {n: [lot.product.brand for lot in found] for n, found in by_number.items() if len(found) > 1}
    if ambiguous:
        listing = "; ".join(f"{n}: {', '.join(brands)}" for n, brands in ambiguous.items())
        raise AmbiguousLots(
            f"These lot numbers belong to several products; give the brand: {listing}.",
            extra={"ambiguous_lots": ambiguous},
        )
    for number in numbers:
        lots.extend(by_number.get(number, []))
    unknown = [n for n in numbers if n not in by_number]

    unique: dict[int, Lot] = {}
    for lot in lots:
        unique.setdefault(lot.pk, lot)
    return list(unique.values()), unknown


# Suggestions cost a similarity pass over the lot numbers each: a pasted notice of thousands of
# unknown numbers (the wrong file) gets them for the first few only, not a timed-out request.
SUGGESTED_UNKNOWN_LOTS = 25


def _refuse_unknown(unknown: list[str]) -> None:
    shown = ", ".join(unknown[:SUGGESTED_UNKNOWN_LOTS]) + (f" and {len(unknown) - SUGGESTED_UNKNOWN_LOTS} more"
                                                          if len(unknown) > SUGGESTED_UNKNOWN_LOTS else "")
    raise UnknownLots(
        f"Unknown lot numbers: {shown}. Nothing was created.",
        extra={"unknown_lots": unknown, "suggestions": lot_number_suggestions_for(unknown[:SUGGESTED_UNKNOWN_LOTS])},
    )


def _validate_class(*, scheme: str, recall_class: str, action_due: datetime | None) -> None:
    if scheme not in Recall.Scheme.values:
        raise InvalidInput(f"Unknown recall scheme {scheme!r}; use fda or mhra.", code="invalid_scheme")
    classes = CLASSES_OF_SCHEME[scheme]
    if recall_class not in classes:
        raise InvalidInput(
            f"{Recall.Scheme(scheme).label} has no recall class {recall_class!r}; use {', '.join(classes)}.",
            code="invalid_recall_class",
            extra={"scheme": scheme, "classes": list(classes)},
        )
    if action_due is not None and timezone.is_naive(action_due):
        raise InvalidInput("The action deadline needs a time zone.", code="invalid_action_due")


def _validate_recall_fields(
    *, reference: str, source: str, scheme: str, recall_class: str, reason: str, action_due: datetime | None
) -> None:
    if not reference:
        raise InvalidInput(
            "A recall needs its reference (the manufacturer's or regulator's number).", code="reference_required"
        )
    if source not in Recall.Source.values:
        raise InvalidInput(f"Unknown source {source!r}.", code="invalid_source")
    _validate_class(scheme=scheme, recall_class=recall_class, action_due=action_due)
    if not reason:
        raise ReasonRequired("Say why the lots are recalled (from the notice).")


def action_deadline(*, scheme: str, recall_class: str, start: datetime, given: datetime | None = None) -> datetime | None:
    """The deadline for acting on a recall: the one the notice gives, else the one its class
    implies counted from `start` (MHRA 1 immediately, 2 within 48 hours, 3 within 5 days), else none."""
    if given is not None:
        return given
    within = ACTION_WITHIN.get((scheme, recall_class))
    return start + within if within is not None else None


@transaction.atomic
def recall_create(
    *,
    reference: str,
    source: str,
    recall_class: str,
    reason: str,
    lots: Sequence[LotRef],
    actor,
    scheme: str = Recall.Scheme.FDA,
    action_due: datetime | None = None,
    recall_date: date | None = None,
    brand: str | None = None,
    allow_unknown: bool = False,
) -> Recall:
    """Record a recall and act on it at once: its lots become recalled, every vial of them on a
    shelf is quarantined where it stands, and each patient given one of its vials gets one
    notification task listing all their vials.

    `lots` are Lot instances, ids or lot numbers (`brand` narrows lot numbers). Lot numbers that
    match nothing refuse the whole recall (UnknownLots, with suggestions) unless `allow_unknown`,
    in which case they are kept on the recall as `unmatched_lot_numbers`.

    `scheme` and `recall_class` are the notice's (FDA I/II/III, market withdrawal; MHRA 1-4; or
    not yet classified). `action_due` is the notice's deadline; without one, the class's (see
    action_deadline) counts from now."""
    reference, reason = (reference or "").strip(), (reason or "").strip()
    _validate_recall_fields(reference=reference, source=source, scheme=scheme, recall_class=recall_class,
                            reason=reason, action_due=action_due)
    if Recall.objects.filter(reference=reference).exists():
        raise RecallReferenceExists(f"Recall {reference} is already recorded.")
    found, unknown = _resolve_lots(lots, brand=brand)
    if unknown and not allow_unknown:
        _refuse_unknown(unknown)
    if not found:
        raise InvalidInput("Name at least one known lot.", code="no_lots", extra={"unknown_lots": unknown})

    audit_reason = f"recall {reference}"
    locked = list(Lot.objects.select_for_update().filter(pk__in=[lot.pk for lot in found]).order_by("pk"))
    try:
        # A savepoint, so a reference taken by a concurrent request surfaces as a conflict.
        with transaction.atomic():
            now = timezone.now()
            recall = Recall(
                reference=reference,
                source=source,
                scheme=scheme,
                recall_class=recall_class,
                action_due=action_deadline(scheme=scheme, recall_class=recall_class, start=now, given=action_due),
                reason=reason,
                recall_date=recall_date or local_today(),
                created_by=actor,
                created_at=now,
                unmatched_lot_numbers=unknown,
            )
            audited_save(recall, actor=actor, reason=audit_reason)
    except IntegrityError:
        raise RecallReferenceExists(f"Recall {reference} is already recorded.") from None
    audited_bulk_create(
        RecallLot, [RecallLot(recall=recall, lot=lot) for lot in locked], actor=actor, reason=audit_reason
    )

    to_recall = [lot for lot in locked if lot.status != Lot.Status.RECALLED]
    for lot in to_recall:
        lot.status = Lot.Status.RECALLED
    audited_bulk_update(Lot, to_recall, ["status"], actor=actor, reason=audit_reason)

    # Quarantined where they stand: the location is kept so the shelf can be found and emptied.
    shelf = list(
        Vial.objects.select_for_update()
        .filter(lot_id__in=[lot.pk for lot in locked], status=Vial.Status.IN_STOCK)
        .order_by("pk")
    )
    for vial in shelf:
        vial.status = Vial.Status.QUARANTINED
    audited_bulk_update(Vial, shelf, ["status"], actor=actor, reason=audit_reason)

    exposures = patients_from(affected_dispenses(lot.pk for lot in locked))
    tasks = audited_bulk_create(
        NotificationTask,
        [NotificationTask(recall=recall, patient=e.patient) for e in exposures],
        actor=actor,
        reason=audit_reason,
    )
    Through = NotificationTask.vials.through
    Through.objects.bulk_create(
        [
            Through(notificationtask_id=task.pk, vial_id=vial.pk)
            for task, exposure in zip(tasks, exposures, strict=True)
            for vial in exposure.vials
        ]
    )
    return recall


def recall_create_from_text(
    *,
    reference: str,
    source: str,
    recall_class: str,
    reason: str,
    lots_text: str,
    actor,
    scheme: str = Recall.Scheme.FDA,
    action_due: datetime | None = None,
    recall_date: date | None = None,
    brand: str | None = None,
    allow_unknown: bool = False,
) -> Recall:
    """A recall from lot numbers pasted from a notice, one per line (see lot_numbers_from_text).
    Unknown lot numbers refuse the recall unless `allow_unknown` (then: `unmatched_lot_numbers`)."""
    numbers = lot_numbers_from_text(lots_text)
    if not numbers:
        raise InvalidInput("Paste at least one lot number, one per line.", code="no_lots")
    _check_lot_count(len(numbers))
    return recall_create(
        reference=reference,
        source=source,
        recall_class=recall_class,
        reason=reason,
        lots=numbers,
        actor=actor,
        scheme=scheme,
        action_due=action_due,
        recall_date=recall_date,
        brand=brand,
        allow_unknown=allow_unknown,
    )


def _locked_recall(recall: Recall) -> Recall:
    return Recall.objects.select_for_update().get(pk=recall.pk)


@transaction.atomic
def recall_close(*, recall: Recall, reason: str, actor) -> Recall:
    """Close a recall, recording who, when and why. Refused when already closed, and while any
    patient's notification is still pending: mark it contacted, unreachable or not required first."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("Say why the recall is closed.")
    recall = _locked_recall(recall)
    if recall.status == Recall.Status.CLOSED:
        closed_on = timezone.localtime(recall.closed_at)
        raise RecallClosed(f"Recall {recall.reference} was already closed on {closed_on:%Y-%m-%d}.")
    pending = recall.notifications.filter(status=NotificationTask.Status.PENDING).count()
    if pending:
        raise NotificationsPending(
            f"{pending} patient notification(s) of recall {recall.reference} are still pending.",
            extra={"pending": pending},
        )
    recall.status = Recall.Status.CLOSED
    recall.closed_by = actor
    recall.closed_at = timezone.now()
    recall.close_reason = reason
    return audited_save(recall, actor=actor, reason=f"close recall {recall.reference}: {reason}")


# simple_history keeps a change reason in 100 characters (a hard limit on PostgreSQL).
HISTORY_REASON_MAX = 100


def _history_reason(text: str) -> str:
    return text if len(text) <= HISTORY_REASON_MAX else text[: HISTORY_REASON_MAX - 1] + "…"


@transaction.atomic
def recall_classify(
    *, recall: Recall, scheme: str, recall_class: str, reason: str, actor, action_due: datetime | None = None
) -> Recall:
    """Record the class a notice was given later (or a corrected one). The deadline the new class
    implies counts from now, when it became known, unless `action_due` gives the notice's own.
    Refused once the recall is closed, and when nothing would change."""
    reason = (reason or "").strip()
    _validate_class(scheme=scheme, recall_class=recall_class, action_due=action_due)
    if not reason:
        raise ReasonRequired("Say where the class comes from (e.g. the regulator's update).")
    recall = _locked_recall(recall)
    if recall.status == Recall.Status.CLOSED:
        raise RecallClosed(f"Recall {recall.reference} is closed; its class is final.")
    if (recall.scheme, recall.recall_class) == (scheme, recall_class) and action_due in (None, recall.action_due):
        # The same class again must not restart its clock.
        raise InvalidInput(f"Recall {recall.reference} already has this class and deadline.", code="nothing_to_change")
    deadline = action_deadline(scheme=scheme, recall_class=recall_class, start=timezone.now(), given=action_due)
    recall.scheme, recall.recall_class, recall.action_due = scheme, recall_class, deadline
    named = f"{Recall.Scheme(scheme).label} {Recall.RecallClass(recall_class).label}"
    return audited_save(recall, actor=actor, reason=_history_reason(f"recall {recall.reference} classified {named}: {reason}"))


@transaction.atomic
def notification_update(*, task: NotificationTask, status: str, actor, note: str | None = None) -> NotificationTask:
    """Record the outcome of notifying a patient. `not_required` needs a note saying why; a note
    given replaces the previous one (history keeps every version). Refused once the recall is closed."""
    if status not in NotificationTask.Status.values:
        raise InvalidInput(
            f"Unknown status {status!r}; use one of {', '.join(NotificationTask.Status.values)}.",
            code="invalid_status",
        )
    note = (note or "").strip()
    if status == NotificationTask.Status.NOT_REQUIRED and not note:
        raise ReasonRequired("Say why this patient need not be notified.", code="note_required")
    # The recall first (the order recall_close locks in), so a close never races a task update.
    recall = Recall.objects.select_for_update().get(pk=task.recall_id)
    task = NotificationTask.objects.select_for_update().select_related("patient").get(pk=task.pk)
    if recall.status == Recall.Status.CLOSED:
        raise RecallClosed(f"Recall {recall.reference} is closed; its notifications are final.")
    task.recall = recall
    task.status = status
    if note:
        task.note = note
    task.updated_by = actor
    task.updated_at = timezone.now()
    return audited_save(task, actor=actor, reason=f"recall {recall.reference}: patient {task.patient.mrn} {status}")


@transaction.atomic
def recall_bulk_dispose(*, recall: Recall, action: str, reason: str, actor) -> list[Vial]:
    """Return to the supplier, or waste, every vial of the recall's lots still on hand (quarantined,
    or back in stock), all or nothing. Allowed while the recall is open as well as after it is
    closed: sending stock back does not wait for the last patient call."""
    if action not in DISPOSE_ACTIONS:
        raise InvalidInput(f"Unknown action {action!r}; use return or waste.", code="invalid_action")
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("Say why the vials are disposed of (e.g. the supplier's return authorisation).")
    recall = _locked_recall(recall)
    lot_ids = list(RecallLot.objects.filter(recall=recall).values_list("lot_id", flat=True))
    vials = list(
        Vial.objects.select_for_update().filter(Q(lot_id__in=lot_ids) & Q(status__in=ON_HAND)).order_by("pk")
    )
    if not vials:
        raise NothingToDispose(f"No vial of recall {recall.reference} is on hand.")
    disposal = DISPOSE_ACTIONS[action]
    for vial in vials:
        vial.status = disposal.vial_status
        vial.location = None
    audit_reason = f"recall {recall.reference}: {disposal.label}: {reason}"
    audited_bulk_update(Vial, vials, ["status", "location"], actor=actor, reason=audit_reason)
    return vials


# --- lots named before they arrive ---------------------------------------------------------------


def _open_recalls_naming(lot_number: str) -> list[Recall]:
    # Unmatched lot numbers are a short JSON list on few open recalls: read them, rather than
    # a JSON containment lookup SQLite does not have.
    return [
        recall
        for recall in Recall.objects.filter(status=Recall.Status.OPEN).exclude(unmatched_lot_numbers=[]).order_by("pk")
        if lot_number in recall.unmatched_lot_numbers
    ]


def recall_hold_on_lot_number(sender, *, product, lot_number: str, **kwargs) -> str | None:
    """inventory.signals.lot_number_held: a lot number an open recall named before the lot arrived."""
    recalls = _open_recalls_naming(lot_number)
    return ", ".join(f"recall {r.reference}" for r in recalls) or None


def recall_lot_arrived(sender, *, lot: Lot, actor, **kwargs) -> None:
    """inventory.signals.lot_arrived: a lot an open recall named has arrived. It joins the recall
    (a RecallLot, so the lookback shows it and its vials), and leaves the unmatched numbers. Runs
    inside the receipt's transaction, which created the lot recalled already."""
    for recall in _open_recalls_naming(lot.lot_number):
        recall = Recall.objects.select_for_update().get(pk=recall.pk)
        if lot.lot_number not in recall.unmatched_lot_numbers:
            continue
        reason = f"recall {recall.reference}: lot {lot.lot_number} arrived after the recall named it"
        recall.unmatched_lot_numbers = [n for n in recall.unmatched_lot_numbers if n != lot.lot_number]
        audited_save(recall, actor=actor, reason=reason)
        audited_save(RecallLot(recall=recall, lot=lot), actor=actor, reason=reason)
