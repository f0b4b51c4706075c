"""The administration record and home use: what the nurse records at the bedside (start, rate
steps, pauses, the end, each vial's fate) and the home infusions a patient reports later.

Every function is atomic, locks the rows it changes and leaves history rows naming who and why.
Lock order, as in traceability.services: session, then administration, then vial, then dispense.
Whoever writes a fate or a home use holds the session lock first, so a reader holding it (the
dispense return and waste services) sees the fates as they stand.
"""

from collections import Counter
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput
from core.history import audited_create, audited_save
from core.text import grams_text
from inventory.models import Vial, local_today
from inventory.services import lock_vial
from traceability.exceptions import (
    AdministrationEnded,
    AdministrationExists,
    AdministrationPaused,
    AdministrationNotPaused,
    FateContradictsDispense,
    HomeVialsUnavailable,
    NotAHomeSupply,
    NothingDispensed,
    SessionStateConflict,
    StepOutOfOrder,
    VialFatesMissing,
    WeightUnknown,
)
from traceability.models import (
    Administration,
    AdministrationStep,
    Dispense,
    HomeInfusion,
    HomeInfusionVial,
    InfusionSession,
    VialFate,
)
from traceability.selectors import GIVEN_STATUSES

# A rate is typed at the bedside: anything past this is a slip of the finger (IVIG runs up to
# about 8 mL/kg/h, SCIG pumps far lower), not a rate to record.
MAX_RATE_ML_PER_H = Decimal("1000")
RATE_ML = Decimal("0.1")
RATE_ML_KG = Decimal("0.001")
# A tablet's clock and the server's differ by a little; a time further ahead is a typing slip.
CLOCK_SKEW = timedelta(minutes=2)
MAX_HOME_SITES = 12


def _lock_session(session: InfusionSession) -> InfusionSession:
    return InfusionSession.objects.select_for_update(of=("self",)).select_related("patient").get(pk=session.pk)


def _lock_administration(administration: Administration) -> tuple[InfusionSession, Administration]:
    session = _lock_session(InfusionSession(pk=administration.session_id))
    administration = Administration.objects.select_for_update().get(pk=administration.pk)
    return session, administration


def _when(at: datetime | None, *, now: datetime) -> datetime:
    """The time of a step: now, or the time the nurse gives (a step recorded a little late)."""
    if at is None:
        return now
    if timezone.is_naive(at):
        # A time without a zone is the site's local time (settings.TIME_ZONE).
        at = timezone.make_aware(at)
    if at > now + CLOCK_SKEW:
        raise InvalidInput(f"{_local(at)} is in the future.", code="invalid_time")
    return at


def _local(at: datetime) -> str:
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M}"


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"Say why the infusion is {what}.", code="reason_required")
    return reason


def rate_pair(
    *, ml_per_h: Decimal | None, ml_per_kg_per_h: Decimal | None, weight_kg: Decimal | None
) -> tuple[Decimal, Decimal | None]:
    """A rate as the nurse gives it (mL/h, or mL/kg/h for the patient's weight) in both units;
    mL/kg/h is None when the weight is unknown and the rate was given in mL/h."""
    if (ml_per_h is None) == (ml_per_kg_per_h is None):
        raise InvalidInput("Give the rate either in mL/h or in mL/kg/h (one of the two).", code="invalid_rate")
    if ml_per_kg_per_h is not None:
        if weight_kg is None:
            raise WeightUnknown("The patient has no recorded weight: give the rate in mL/h.")
        ml_per_h = (ml_per_kg_per_h * weight_kg).quantize(RATE_ML, rounding=ROUND_HALF_UP)
    else:
        ml_per_h = ml_per_h.quantize(RATE_ML, rounding=ROUND_HALF_UP)
        ml_per_kg_per_h = (ml_per_h / weight_kg).quantize(RATE_ML_KG, rounding=ROUND_HALF_UP) if weight_kg else None
    if not (0 < ml_per_h <= MAX_RATE_ML_PER_H):
        raise InvalidInput(
            f"A rate of {grams_text(ml_per_h)} mL/h is not possible (more than 0, at most "
            f"{grams_text(MAX_RATE_ML_PER_H)} mL/h).",
            code="invalid_rate",
        )
    if ml_per_kg_per_h is not None:
        ml_per_kg_per_h = ml_per_kg_per_h.quantize(RATE_ML_KG, rounding=ROUND_HALF_UP)
    return ml_per_h, ml_per_kg_per_h


def _last_step(administration: Administration) -> AdministrationStep | None:
    return administration.steps.order_by("-at", "-pk").first()


def _step(administration: Administration, *, kind: str, at: datetime, actor, reason: str = "",
          rate: tuple[Decimal, Decimal | None] | None = None, history_reason: str) -> AdministrationStep:
    last = _last_step(administration)
    if last is not None and at < last.at:
        raise StepOutOfOrder(
            f"{_local(at)} is before the last step recorded ({last.get_kind_display()} at {_local(last.at)}).",
            extra={"last_step_at": last.at.isoformat()},
        )
    ml_h, ml_kg_h = rate if rate is not None else (None, None)
    # audited_save, not audited_create: a step has a field called `reason` of its own.
    step = AdministrationStep(administration=administration, kind=kind, at=at, rate_ml_per_h=ml_h,
                              rate_ml_per_kg_per_h=ml_kg_h, reason=reason, recorded_by=actor)
    return audited_save(step, actor=actor, reason=history_reason)


def _ensure_not_ended(administration: Administration) -> None:
    if administration.ended:
        raise AdministrationEnded(
            f"The infusion of session {administration.session_id} was {administration.get_status_display()} at "
            f"{_local(administration.ended_at)}: nothing more can be recorded in it.",
            extra={"administration": administration.pk, "status": administration.status},
        )


def _rate_words(rate: tuple[Decimal, Decimal | None]) -> str:
    ml_h, ml_kg_h = rate
    return f"{grams_text(ml_h)} mL/h" + (f" ({ml_kg_h.normalize():f} mL/kg/h)" if ml_kg_h is not None else "")


# --- the bedside ------------------------------------------------------------------------------------


@transaction.atomic
def administration_start(
    *,
    session: InfusionSession,
    actor,
    rate_ml_per_h: Decimal | None = None,
    rate_ml_per_kg_per_h: Decimal | None = None,
    premedication: str = "",
    at: datetime | None = None,
) -> Administration:
    """Start the infusion of a session given here, at its first rate. The vials must have been
    dispensed to the session first; a home supply's infusions are reported, not started."""
    now = timezone.now()
    at = _when(at, now=now)
    session = _lock_session(session)
    if session.setting == InfusionSession.Setting.HOME:
        raise SessionStateConflict(
            f"Session {session.pk} is a home supply: record the infusions the patient reports instead.",
            code="home_supply",
        )
    if session.status not in (InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED):
        raise NothingDispensed(
            f"Session {session.pk} is {session.get_status_display()}: no vial was dispensed to it to infuse.",
            extra={"session": session.pk, "status": session.status},
        )
    existing = Administration.objects.filter(session=session).first()
    if existing is not None:
        raise AdministrationExists(
            f"The infusion of session {session.pk} was already started at {_local(existing.started_at)}.",
            extra={"administration": existing.pk},
        )
    first = (
        Dispense.objects.filter(session=session, status__in=GIVEN_STATUSES).order_by("dispensed_at").first()
    )
    if first is None:
        raise NothingDispensed(f"Session {session.pk} has no vial dispensed to it to infuse.")
    if at < first.dispensed_at:
        raise StepOutOfOrder(
            f"The infusion cannot start at {_local(at)}, before its first vial was dispensed ({_local(first.dispensed_at)}).",
            code="start_before_dispense",
        )
    weight = session.patient.weight_kg
    rate = rate_pair(ml_per_h=rate_ml_per_h, ml_per_kg_per_h=rate_ml_per_kg_per_h, weight_kg=weight)
    history_reason = f"infusion started in session {session.pk} at {_rate_words(rate)}"
    administration = audited_create(
        Administration, actor=actor, reason=history_reason, session=session, started_at=at, started_by=actor,
        premedication=(premedication or "").strip(), weight_kg=weight,
    )
    _step(administration, kind=AdministrationStep.Kind.START, at=at, actor=actor, rate=rate,
          history_reason=history_reason)
    return administration


@transaction.atomic
def administration_rate(
    *,
    administration: Administration,
    actor,
    rate_ml_per_h: Decimal | None = None,
    rate_ml_per_kg_per_h: Decimal | None = None,
    at: datetime | None = None,
) -> AdministrationStep:
    """Step the rate of a running infusion (a paused one is resumed at a rate instead)."""
    at = _when(at, now=timezone.now())
    session, administration = _lock_administration(administration)
    _ensure_not_ended(administration)
    if administration.status == Administration.Status.PAUSED:
        raise AdministrationPaused(
            f"The infusion of session {session.pk} is paused: resume it at a rate.",
            extra={"administration": administration.pk},
        )
    rate = rate_pair(ml_per_h=rate_ml_per_h, ml_per_kg_per_h=rate_ml_per_kg_per_h, weight_kg=administration.weight_kg)
    return _step(administration, kind=AdministrationStep.Kind.RATE, at=at, actor=actor, rate=rate,
                 history_reason=f"rate {_rate_words(rate)} in session {session.pk}")


@transaction.atomic
def administration_pause(*, administration: Administration, reason: str, actor, at: datetime | None = None
                         ) -> AdministrationStep:
    reason = _reason(reason, "paused")
    at = _when(at, now=timezone.now())
    session, administration = _lock_administration(administration)
    _ensure_not_ended(administration)
    if administration.status == Administration.Status.PAUSED:
        raise AdministrationPaused(f"The infusion of session {session.pk} is already paused.",
                                   extra={"administration": administration.pk})
    step = _step(administration, kind=AdministrationStep.Kind.PAUSE, at=at, actor=actor, reason=reason,
                 history_reason=f"infusion paused in session {session.pk}: {reason}")
    administration.status = Administration.Status.PAUSED
    audited_save(administration, actor=actor, reason=f"infusion paused: {reason}")
    return step


@transaction.atomic
def administration_resume(
    *,
    administration: Administration,
    actor,
    rate_ml_per_h: Decimal | None = None,
    rate_ml_per_kg_per_h: Decimal | None = None,
    at: datetime | None = None,
) -> AdministrationStep:
    at = _when(at, now=timezone.now())
    session, administration = _lock_administration(administration)
    _ensure_not_ended(administration)
    if administration.status != Administration.Status.PAUSED:
        raise AdministrationNotPaused(f"The infusion of session {session.pk} is running, not paused.",
                                      extra={"administration": administration.pk})
    rate = rate_pair(ml_per_h=rate_ml_per_h, ml_per_kg_per_h=rate_ml_per_kg_per_h, weight_kg=administration.weight_kg)
    step = _step(administration, kind=AdministrationStep.Kind.RESUME, at=at, actor=actor, rate=rate,
                 history_reason=f"infusion resumed at {_rate_words(rate)} in session {session.pk}")
    administration.status = Administration.Status.RUNNING
    audited_save(administration, actor=actor, reason=f"infusion resumed at {_rate_words(rate)}")
    return step


def fate_conflict(dispense: Dispense, fate: str) -> str | None:
    """Why a fate contradicts its dispense, in words; None when they agree.

    A vial infused whole is still out to the session (not wasted as partly used, not returned); a
    part-infused vial was opened (out, or wasted); an unopened vial was not wasted as given."""
    S, F = Dispense.Status, VialFate.Fate
    allowed = {
        F.INFUSED: (S.DISPENSED,),
        F.PARTIAL: (S.DISPENSED, S.WASTED),
        F.NOT_OPENED: (S.DISPENSED, S.RETURNED_TO_STOCK),
    }[fate]
    if dispense.status in allowed:
        return None
    return (
        f"Vial {dispense.vial.serial} cannot be recorded as {VialFate.Fate(fate).label}: its dispense says "
        f"{dispense.get_status_display()}."
    )


def _check_volume(dispense: Dispense, fate: str, volume_left_ml: Decimal | None) -> Decimal | None:
    if fate != VialFate.Fate.PARTIAL:
        if volume_left_ml not in (None, Decimal("0")):
            raise InvalidInput(f"Only a part-infused vial has a volume left (vial {dispense.vial.serial}).",
                               code="invalid_volume")
        return None
    volume = dispense.vial.presentation.volume_ml
    if volume_left_ml is None or volume_left_ml <= 0 or (volume is not None and volume_left_ml >= volume):
        bound = f" and less than its {grams_text(volume)} mL" if volume is not None else ""
        raise InvalidInput(
            f"Give the volume left in part-infused vial {dispense.vial.serial}: more than 0 mL{bound}.",
            code="invalid_volume",
        )
    return volume_left_ml


def _record_fate(administration: Administration, dispense: Dispense, *, fate: str, volume_left_ml, actor,
                 session: InfusionSession) -> VialFate:
    """Record one vial's fate; a part-infused vial still out to the session is wasted with it, as
    dispense_waste would (the rest of it is thrown away)."""
    if dispense.status == Dispense.Status.DISPENSED and fate == VialFate.Fate.PARTIAL:
        vial = lock_vial(dispense.vial_id)
        dispense = Dispense.objects.select_for_update(of=("self",)).select_related("vial__presentation").get(pk=dispense.pk)
        why = f"part infused in session {session.pk}: {grams_text(volume_left_ml)} mL left, wasted"
        vial.status = Vial.Status.WASTED
        vial.location = None
        audited_save(vial, actor=actor, reason=why)
        dispense.status = Dispense.Status.WASTED
        dispense.closed_reason = why[:200]
        dispense.closed_by = actor
        dispense.closed_at = timezone.now()
        audited_save(dispense, actor=actor, reason=why)
    return audited_create(
        VialFate, actor=actor,
        reason=f"vial {dispense.vial.serial} {VialFate.Fate(fate).label} in session {session.pk}",
        administration=administration, dispense=dispense, fate=fate, volume_left_ml=volume_left_ml,
        recorded_by=actor,
    )


@transaction.atomic
def administration_finish(
    *,
    administration: Administration,
    actor,
    fates: list[dict] = (),
    stop_reason: str = "",
    at: datetime | None = None,
) -> Administration:
    """End the infusion: finished, or stopped early with `stop_reason`. Every vial given to the
    session must have its fate, given here as [{"dispense": id, "fate": …, "volume_left_ml": …}]
    (a vial returned to stock unopened is recorded as not opened by itself). All or nothing: one
    fate that contradicts its dispense and nothing is recorded."""
    stopping = bool((stop_reason or "").strip())
    at = _when(at, now=timezone.now())
    session, administration = _lock_administration(administration)
    _ensure_not_ended(administration)
    dispenses = {
        d.pk: d
        for d in Dispense.objects.filter(session=session).select_related("vial__presentation", "vial__lot")
        .order_by("pk")
    }
    recorded = set(VialFate.objects.filter(dispense_id__in=dispenses).values_list("dispense_id", flat=True))
    wanted: dict[int, tuple[str, Decimal | None]] = {}
    for entry in fates:
        pk, fate = entry["dispense"], entry["fate"]
        dispense = dispenses.get(pk)
        if dispense is None:
            raise InvalidInput(f"Dispense {pk} is not of session {session.pk}.", code="dispense_not_in_session",
                               extra={"dispense": pk})
        if fate not in VialFate.Fate.values:
            raise InvalidInput(f"Unknown fate {fate!r}; use one of {', '.join(VialFate.Fate.values)}.",
                               code="invalid_fate")
        if pk in recorded or pk in wanted:
            raise InvalidInput(f"The fate of vial {dispense.vial.serial} is already recorded.",
                               code="fate_already_recorded", extra={"dispense": pk})
        conflict = fate_conflict(dispense, fate)
        if conflict:
            raise FateContradictsDispense(conflict, extra={"dispense": pk, "dispense_status": dispense.status})
        wanted[pk] = (fate, _check_volume(dispense, fate, entry.get("volume_left_ml")))
    for pk, dispense in dispenses.items():
        if pk not in recorded and pk not in wanted and dispense.status == Dispense.Status.RETURNED_TO_STOCK:
            wanted[pk] = (VialFate.Fate.NOT_OPENED, None)
    missing = [d for pk, d in dispenses.items() if pk not in recorded and pk not in wanted]
    if missing:
        raise VialFatesMissing(
            "Say what became of each vial before ending the infusion: "
            + ", ".join(f"{d.vial.serial} (lot {d.vial.lot.lot_number})" for d in missing) + ".",
            extra={"dispenses": [d.pk for d in missing]},
        )
    kind = AdministrationStep.Kind.STOP if stopping else AdministrationStep.Kind.FINISH
    reason = (stop_reason or "").strip()
    history_reason = (f"infusion stopped early in session {session.pk}: {reason}" if stopping
                      else f"infusion finished in session {session.pk}")
    _step(administration, kind=kind, at=at, actor=actor, reason=reason, history_reason=history_reason)
    for pk, (fate, volume_left) in wanted.items():
        _record_fate(administration, dispenses[pk], fate=fate, volume_left_ml=volume_left, actor=actor,
                     session=session)
    administration.status = Administration.Status.STOPPED if stopping else Administration.Status.FINISHED
    administration.ended_at = at
    administration.ended_by = actor
    administration.stop_reason = reason
    return audited_save(administration, actor=actor, reason=history_reason)


def rate_at(administration: Administration, moment: datetime) -> tuple[Decimal, Decimal | None] | None:
    """The rate running at `moment`: the last rated step at or before it; 0 while paused; None
    before the start or after the end (nothing was running)."""
    rate = None
    for step in administration.steps.order_by("at", "pk"):
        if step.at > moment:
            break
        if step.kind in AdministrationStep.RATED:
            rate = (step.rate_ml_per_h, step.rate_ml_per_kg_per_h)
        elif step.kind == AdministrationStep.Kind.PAUSE:
            rate = (Decimal("0"), Decimal("0") if administration.weight_kg else None)
        else:  # finish, stop
            rate = None
    return rate


# --- home use -----------------------------------------------------------------------------------


@transaction.atomic
def home_infusion_report(
    *,
    session: InfusionSession,
    infused_on: date,
    sites: int,
    vials: list[dict],
    actor,
    reported_by_text: str = "",
    notes: str = "",
) -> HomeInfusion:
    """Record an infusion the patient gave at home from the session's home supply, as reported:
    the day, the number of sites, and how many vials of which lot ([{"lot": "LE12A045", "count":
    2}]). The vials are taken from the supply's vials of that lot not yet reported used, so the
    lookback of the lot names the patient and the day. All or nothing."""
    if not vials:
        raise InvalidInput("Say which vials were used (lot and count).", code="vials_required")
    wanted: Counter[str] = Counter()
    for entry in vials:
        lot, count = (entry.get("lot") or "").strip(), entry.get("count") or 0
        if not lot or count < 1:
            raise InvalidInput("Each line needs a lot number and a count of at least 1.", code="invalid_vials")
        wanted[lot] += count
    if not (1 <= sites <= MAX_HOME_SITES):
        raise InvalidInput(f"A home infusion uses 1 to {MAX_HOME_SITES} sites.", code="invalid_sites")
    if infused_on > local_today():
        raise InvalidInput(f"{infused_on:%Y-%m-%d} is in the future.", code="invalid_date")
    session = _lock_session(session)
    if session.setting != InfusionSession.Setting.HOME:
        raise NotAHomeSupply(f"Session {session.pk} was given here, not supplied for home use.",
                             extra={"session": session.pk})
    if session.status not in (InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED):
        raise NothingDispensed(f"Session {session.pk} is {session.get_status_display()}: nothing was supplied.")
    unused = list(
        Dispense.objects.select_for_update(of=("self",))
        .filter(session=session, status=Dispense.Status.DISPENSED, home_use__isnull=True)
        .select_related("vial__lot")
        .order_by("vial__serial", "pk")
    )
    first = min((d.dispensed_at for d in Dispense.objects.filter(session=session, status__in=GIVEN_STATUSES)),
                default=None)
    if first is not None and infused_on < timezone.localtime(first).date():
        raise InvalidInput(
            f"{infused_on:%Y-%m-%d} is before the supply was dispensed ({_local(first)}).", code="invalid_date")
    chosen: list[Dispense] = []
    short = {}
    for lot, count in sorted(wanted.items()):
        of_lot = [d for d in unused if d.vial.lot.lot_number == lot]
        if len(of_lot) < count:
            short[lot] = len(of_lot)
        chosen.extend(of_lot[:count])
    if short:
        listing = ", ".join(f"lot {lot}: {wanted[lot]} reported, {left} left" for lot, left in short.items())
        raise HomeVialsUnavailable(
            f"The home supply of session {session.pk} has not that many unused vials ({listing}).",
            extra={"available": short},
        )
    home = audited_create(
        HomeInfusion, actor=actor, reason=f"home infusion of {infused_on:%Y-%m-%d} reported for session {session.pk}",
        session=session, infused_on=infused_on, sites=sites, reported_by_text=(reported_by_text or "").strip(),
        notes=notes or "", recorded_by=actor,
    )
    for dispense in chosen:
        audited_create(HomeInfusionVial, actor=actor,
                       reason=f"vial {dispense.vial.serial} used at home on {infused_on:%Y-%m-%d}",
                       home_infusion=home, dispense=dispense)
    return home
