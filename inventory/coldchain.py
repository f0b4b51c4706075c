"""The cold chain: temperature readings per storage location, excursions found in them, the vials
held because of them, and the pharmacist's disposition (release against the label's
room-temperature allowance, or waste).

An excursion is a stretch of readings outside the location's range that lasts longer than the
location's grace period: from the first reading out of range to the first one back in range (or,
while none has come back, to the last reading). Every vial that stood in the location at any
moment of it is held, found from the vials' own history (simple-history rows say where each vial
was, and in which state, from when), so a vial moved in after the excursion is not touched and a
vial moved out since is held wherever it is now.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound
from core.history import audited_bulk_create, audited_create, audited_save
from inventory.models import (
    Excursion,
    ExcursionVial,
    Lot,
    Product,
    ReadingBatch,
    StorageLocation,
    TemperatureReading,
    Vial,
)
from inventory.services import close_excursion_if_settled, lock_vial, require_reason

# One request records at most this many readings (a logger file goes through import_readings).
MAX_READINGS_PER_REQUEST = 1000
# A data logger's file: a year of readings every 5 minutes, and some.
MAX_READINGS_PER_FILE = 200_000
# Readings a little ahead of the server's clock are a logger's clock drifting, not the future.
CLOCK_SKEW = timedelta(minutes=5)
# A reading dated before this comes from a logger whose clock was never set.
EARLIEST = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
# Outside this a reading is a broken probe or a wrong column, not a temperature of a fridge or a shelf.
PLAUSIBLE_C = (Decimal("-80"), Decimal("80"))

ON_SHELF = (Vial.Status.IN_STOCK, Vial.Status.QUARANTINED)


class ReadingRefused(InvalidInput):
    code = "invalid_reading"


class ReadingConflict(Conflict):
    code = "reading_conflict"


class DispositionRefused(Conflict):
    code = "disposition_refused"


class UnknownExcursion(NotFound):
    code = "unknown_excursion"


@dataclass(frozen=True)
class ReadingIn:
    taken_at: datetime
    celsius: Decimal
    where: str  # "line 14" of a file, "reading 3" of a request: what a refusal names


@dataclass
class RecordedReadings:
    batch: ReadingBatch | None
    recorded: int
    already_recorded: int
    excursions: list[Excursion] = field(default_factory=list)


def fahrenheit_to_celsius(value: Decimal) -> Decimal:
    return ((value - 32) * 5 / 9).quantize(Decimal("0.01"))


def _out_of_range(celsius: Decimal, low: Decimal | None, high: Decimal | None) -> bool:
    return (low is not None and celsius < low) or (high is not None and celsius > high)


def _checked(readings: list[ReadingIn], *, now: datetime) -> dict[datetime, ReadingIn]:
    """The readings by moment, each checked; a moment given twice with two values is refused."""
    by_moment: dict[datetime, ReadingIn] = {}
    for reading in readings:
        if timezone.is_naive(reading.taken_at):
            raise ReadingRefused(f"{reading.where.capitalize()}: the time has no time zone.", code="reading_without_timezone")
        if reading.taken_at < EARLIEST:
            raise ReadingRefused(
                f"{reading.where.capitalize()}: {reading.taken_at:%Y-%m-%d} is before {EARLIEST:%Y}. Check the logger's clock.",
                code="reading_too_old",
            )
        if reading.taken_at > now + CLOCK_SKEW:
            raise ReadingRefused(
                f"{reading.where.capitalize()}: {reading.taken_at:%Y-%m-%d %H:%M} is in the future. Check the logger's clock.",
                code="reading_in_future",
            )
        low, high = PLAUSIBLE_C
        if not (low <= reading.celsius <= high):
            raise ReadingRefused(
                f"{reading.where.capitalize()}: {reading.celsius} °C is not a plausible storage temperature "
                f"({low} to {high} °C). Check the column and the unit.",
                code="implausible_temperature",
            )
        earlier = by_moment.get(reading.taken_at)
        if earlier is not None and earlier.celsius != reading.celsius:
            raise ReadingRefused(
                f"{reading.where.capitalize()} gives {reading.celsius} °C for {reading.taken_at:%Y-%m-%d %H:%M:%S}, "
                f"{earlier.where} gave {earlier.celsius} °C.",
                code="conflicting_readings",
            )
        by_moment[reading.taken_at] = reading
    return by_moment


@transaction.atomic
def readings_record(
    *, location: StorageLocation, readings: list[ReadingIn], actor: User | None,
    source: str = ReadingBatch.Source.API, filename: str = "", sha256: str = "", limit: int = MAX_READINGS_PER_REQUEST,
) -> RecordedReadings:
    """Record readings of one location, all or none, then look for excursions around them.

    A reading already on record (same moment, same value: a file imported twice) is skipped; the
    same moment with another value is refused."""
    if not readings:
        raise ReadingRefused("No readings were given.", code="no_readings")
    if len(readings) > limit:
        raise ReadingRefused(f"At most {limit} readings at once; {len(readings)} were given.", code="too_many_readings")
    # The location's row lock makes two imports for the same fridge take turns, so an excursion
    # spanning both is found once.
    location = StorageLocation.objects.select_for_update().get(pk=location.pk)
    now = timezone.now()
    by_moment = _checked(readings, now=now)
    first, last = min(by_moment), max(by_moment)
    stored = dict(
        TemperatureReading.objects.filter(location=location, taken_at__gte=first, taken_at__lte=last)
        .values_list("taken_at", "celsius")
    )
    new = []
    for moment in sorted(by_moment):
        reading = by_moment[moment]
        if moment in stored:
            if stored[moment] != reading.celsius:
                raise ReadingConflict(
                    f"{reading.where.capitalize()}: {location.code} already has {stored[moment]} °C recorded for "
                    f"{moment:%Y-%m-%d %H:%M:%S}, not {reading.celsius} °C. Nothing was recorded.",
                    extra={"where": reading.where},
                )
            continue
        new.append(reading)
    if not new:
        return RecordedReadings(batch=None, recorded=0, already_recorded=len(by_moment))
    batch = audited_create(
        ReadingBatch, actor=actor, reason=f"{len(new)} readings of {location.code} recorded",
        location=location, source=source, filename=filename[:255], sha256=sha256, readings=len(new),
        first_at=new[0].taken_at, last_at=new[-1].taken_at, recorded_by=actor,
    )
    TemperatureReading.objects.bulk_create(
        [TemperatureReading(location=location, taken_at=r.taken_at, celsius=r.celsius, batch=batch) for r in new],
        batch_size=500,
    )
    excursions = excursions_detect(location=location, first=new[0].taken_at, last=new[-1].taken_at, actor=actor, now=now)
    return RecordedReadings(batch=batch, recorded=len(new), already_recorded=len(by_moment) - len(new),
                            excursions=excursions)


# --- finding excursions ----------------------------------------------------------------------------


@dataclass
class _Run:
    start: datetime
    last_out: datetime
    lowest: Decimal
    highest: Decimal
    end: datetime | None = None  # the first reading back in range

    def add(self, moment: datetime, celsius: Decimal) -> None:
        self.last_out = moment
        self.lowest = min(self.lowest, celsius)
        self.highest = max(self.highest, celsius)

    @property
    def length(self) -> timedelta:
        return (self.end or self.last_out) - self.start


def _runs(rows, low, high) -> list[_Run]:
    runs, current = [], None
    for moment, celsius in rows:
        if _out_of_range(celsius, low, high):
            if current is None:
                current = _Run(start=moment, last_out=moment, lowest=celsius, highest=celsius)
            else:
                current.add(moment, celsius)
        elif current is not None:
            current.end = moment
            runs.append(current)
            current = None
    if current is not None:
        runs.append(current)
    return runs


def _in_range(location: StorageLocation, low, high):
    readings = TemperatureReading.objects.filter(location=location)
    if low is not None:
        readings = readings.filter(celsius__gte=low)
    if high is not None:
        readings = readings.filter(celsius__lte=high)
    return readings


def excursions_detect(
    *, location: StorageLocation, first: datetime, last: datetime, actor: User | None, now: datetime
) -> list[Excursion]:
    """Excursions among the readings around [first, last] (the location locked by the caller):
    new ones are opened, ones that grew are extended, and the vials they reach are held."""
    low, high = location.temperature_range()
    if low is None and high is None:
        return []
    # Widen to the readings in range on either side, so that a stretch out of range that began
    # before these readings (or goes on after them) is seen whole.
    in_range = _in_range(location, low, high)
    since = in_range.filter(taken_at__lt=first).order_by("-taken_at").values_list("taken_at", flat=True).first()
    until = in_range.filter(taken_at__gt=last).order_by("taken_at").values_list("taken_at", flat=True).first()
    rows = TemperatureReading.objects.filter(location=location)
    if since is not None:
        rows = rows.filter(taken_at__gte=since)
    if until is not None:
        rows = rows.filter(taken_at__lte=until)
    found = []
    for run in _runs(rows.order_by("taken_at").values_list("taken_at", "celsius").iterator(), low, high):
        if run.length <= location.grace:
            continue
        excursion = _excursion_for(location, run, low=low, high=high, actor=actor)
        _hold_vials(excursion, actor=actor, now=now)
        found.append(excursion)
    return found


def _excursion_for(location: StorageLocation, run: _Run, *, low, high, actor) -> Excursion:
    reach = run.end or run.last_out
    existing = (
        Excursion.objects.select_for_update()
        .filter(location=location, started_at__lte=reach)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=run.start))
        .order_by("started_at", "pk")
        .first()
    )
    if existing is None:
        return audited_create(
            Excursion, actor=actor,
            reason=f"cold-chain excursion in {location.code}: {run.lowest}–{run.highest} °C from {run.start:%Y-%m-%d %H:%M}",
            location=location, started_at=run.start, ended_at=run.end, lowest_c=run.lowest, highest_c=run.highest,
            range_min_c=low, range_max_c=high, detected_by=actor,
        )
    changes = {
        "started_at": min(existing.started_at, run.start),
        "ended_at": run.end if run.end is None or existing.ended_at is None else max(existing.ended_at, run.end),
        "lowest_c": min(existing.lowest_c, run.lowest),
        "highest_c": max(existing.highest_c, run.highest),
    }
    if all(getattr(existing, name) == value for name, value in changes.items()):
        return existing
    for name, value in changes.items():
        setattr(existing, name, value)
    return audited_save(existing, actor=actor, reason="cold-chain excursion extended by new readings")


def vials_in_location_between(location_id: int, start: datetime, end: datetime) -> dict[int, tuple[datetime, datetime]]:
    """Each vial that was on a shelf of the location at some moment of [start, end), with the
    first and last moments of it there (its history rows say where it was from when on)."""
    history = Vial.history.model
    ever_here = history.objects.filter(location_id=location_id, status__in=ON_SHELF, history_date__lt=end).values("id")
    rows = (
        history.objects.filter(id__in=ever_here, history_date__lt=end)
        .order_by("id", "history_date", "history_id")
        .values_list("id", "history_date", "location_id", "status")
    )
    exposures: dict[int, tuple[datetime, datetime]] = {}
    by_vial: dict[int, list] = defaultdict(list)
    for row in rows.iterator():
        by_vial[row[0]].append(row)
    for vial_id, states in by_vial.items():
        for index, (_, since, where, status) in enumerate(states):
            until = states[index + 1][1] if index + 1 < len(states) else end
            if where != location_id or status not in ON_SHELF:
                continue
            begin, finish = max(since, start), min(until, end)
            if begin >= finish:
                continue
            if vial_id in exposures:
                begin, finish = min(begin, exposures[vial_id][0]), max(finish, exposures[vial_id][1])
            exposures[vial_id] = (begin, finish)
    return exposures


def _hold_vials(excursion: Excursion, *, actor, now: datetime) -> None:
    until = excursion.ended_at or now
    exposures = vials_in_location_between(excursion.location_id, excursion.started_at, until)
    entries = {e.vial_id: e for e in ExcursionVial.objects.select_for_update().filter(excursion=excursion)}
    reason = (f"cold-chain excursion in {excursion.location.code} from "
              f"{timezone.localtime(excursion.started_at):%Y-%m-%d %H:%M}: held for a pharmacist's decision")
    # An excursion that goes on has no end yet: a vial still in the location is exposed until it ends.
    for vial_id, entry in entries.items():
        if vial_id in exposures:
            begin, finish = exposures[vial_id]
            finish = None if excursion.ended_at is None and finish >= until else finish
            if (entry.exposed_from, entry.exposed_until) != (begin, finish) and entry.outcome == ExcursionVial.Outcome.PENDING:
                entry.exposed_from, entry.exposed_until = begin, finish
                audited_save(entry, actor=actor, reason="exposure updated: the excursion was extended")
    new = []
    for vial_id in sorted(set(exposures) - set(entries)):
        vial = lock_vial(vial_id)
        begin, finish = exposures[vial_id]
        finish = None if excursion.ended_at is None and finish >= until else finish
        entry = ExcursionVial(excursion=excursion, vial=vial, exposed_from=begin, exposed_until=finish,
                              status_when_found=vial.status)
        if vial.status in ON_SHELF:
            if vial.cold_chain_hold_id is None:
                vial.cold_chain_hold = excursion
            vial.status = Vial.Status.QUARANTINED
            audited_save(vial, actor=actor, reason=reason)
        else:
            entry.outcome = ExcursionVial.Outcome.NOT_HELD
        new.append(entry)
    if new:
        audited_bulk_create(ExcursionVial, new, actor=actor, reason=reason)
    if any(e.outcome == ExcursionVial.Outcome.PENDING for e in new) and excursion.status == Excursion.Status.CLOSED:
        excursion.status = Excursion.Status.OPEN
        audited_save(excursion, actor=actor, reason="reopened: the excursion reached more vials")
    elif excursion.status == Excursion.Status.OPEN and excursion.ended_at is not None:
        close_excursion_if_settled(excursion.pk, actor=actor)


# --- the pharmacist's disposition --------------------------------------------------------------------

RELEASE, WASTE = "release", "waste"


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h"


def release_refusal(excursion: Excursion, product: Product) -> DispositionRefused | None:
    """Why the label does not let this product's vials be released after this excursion."""
    if excursion.ongoing:
        return DispositionRefused(
            f"The excursion in {excursion.location.code} is still going on (no reading back in range yet): "
            "its length is not known, so nothing can be released against an allowance. Waste, or wait for readings.",
            code="excursion_ongoing",
        )
    if product.room_temp_allowance_days is None:
        return DispositionRefused(
            f"{product.brand} has no room-temperature allowance on its label: its vials cannot be released after "
            "an excursion. Waste them.",
            code="no_room_temperature_allowance",
        )
    if excursion.highest_c > product.room_temp_max_c:
        return DispositionRefused(
            f"The excursion reached {excursion.highest_c} °C; {product.brand}'s label allows at most "
            f"{product.room_temp_max_c} °C. Waste the vials.",
            code="excursion_too_warm",
        )
    if excursion.lowest_c < product.fridge_min_c:
        return DispositionRefused(
            f"The excursion went down to {excursion.lowest_c} °C, below {product.brand}'s {product.fridge_min_c} °C "
            "(it may have frozen). Waste the vials.",
            code="excursion_too_cold",
        )
    return None


@transaction.atomic
def excursion_dispose(
    *, excursion: Excursion, product: Product, decision: str, reason: str, actor: User, vial_ids: list[int] | None = None
) -> list[ExcursionVial]:
    """The pharmacist's decision for one product's vials held by an excursion (or some of them):
    release them against the label's room-temperature allowance, or waste them. All or nothing."""
    reason = require_reason(reason)
    excursion = Excursion.objects.select_for_update().select_related("location").get(pk=excursion.pk)
    pending = ExcursionVial.objects.select_for_update().filter(
        excursion=excursion, outcome=ExcursionVial.Outcome.PENDING, vial__lot__product=product
    )
    if vial_ids is not None:
        missing = sorted(set(vial_ids) - set(pending.filter(vial_id__in=vial_ids).values_list("vial_id", flat=True)))
        if missing:
            raise DispositionRefused(
                f"Vial(s) {', '.join(map(str, missing))} do not await a decision for {product.brand} in this excursion.",
                code="not_awaiting_disposition", extra={"vials": missing},
            )
        pending = pending.filter(vial_id__in=vial_ids)
    entries = list(pending.order_by("vial_id"))
    if not entries:
        raise DispositionRefused(
            f"No vial of {product.brand} awaits a decision in this excursion.", code="not_awaiting_disposition"
        )
    now = timezone.now()
    vials = {entry.vial_id: lock_vial(entry.vial_id) for entry in entries}
    if decision == RELEASE:
        refusal = release_refusal(excursion, product)
        if refusal is not None:
            raise refusal
        plans = [(entry, vials[entry.vial_id], _release_plan(entry, vials[entry.vial_id], product, now=now))
                 for entry in entries]
        short = [vial.serial for _, vial, plan in plans if plan is None]
        if short:
            raise DispositionRefused(
                f"The excursion used more than what is left of {product.brand}'s room-temperature allowance "
                f"for vial(s) {', '.join(short)}. Waste them (or decide the others on their own).",
                code="allowance_exceeded", extra={"serials": short},
            )
        for entry, vial, plan in plans:
            _release(entry, vial, plan, excursion=excursion, reason=reason, actor=actor, now=now)
    elif decision == WASTE:
        for entry in entries:
            _waste(entry, vials[entry.vial_id], excursion=excursion, reason=reason, actor=actor, now=now)
    else:
        raise InvalidInput(f"Decision must be {RELEASE} or {WASTE}.", code="invalid_decision")
    close_excursion_if_settled(excursion.pk, actor=actor)
    return entries


@dataclass(frozen=True)
class _Plan:
    used: timedelta  # what the excursion takes from the allowance
    start_clock: datetime | None  # where the label allows no way back, the clock runs from the excursion on


def _release_plan(entry: ExcursionVial, vial: Vial, product: Product, *, now: datetime) -> _Plan | None:
    """How the release spends the vial's allowance, or None when not enough of it is left."""
    exposure = entry.exposure(now)
    remaining = vial.room_temp_remaining(now, product)
    window = vial.room_temp_window_end(product)
    if window is not None and window < timezone.localtime(entry.exposed_until or now).date():
        return None
    if vial.room_temp_since is not None:
        # The clock runs already; from before the excursion (a product with no way back, released
        # after an earlier excursion) it counts this one too.
        used = timedelta(0) if vial.room_temp_since <= entry.exposed_from else exposure
        return _Plan(used=used, start_clock=None) if remaining - used > timedelta(0) else None
    if not product.may_return_to_fridge:
        # The label allows room temperature once, then use or discard: the excursion starts that
        # time, and it runs on in the fridge.
        needed = now - entry.exposed_from
        return _Plan(used=timedelta(0), start_clock=entry.exposed_from) if remaining - needed > timedelta(0) else None
    return _Plan(used=exposure, start_clock=None) if remaining - exposure > timedelta(0) else None


def _release(entry, vial: Vial, plan: _Plan, *, excursion: Excursion, reason: str, actor, now) -> None:
    before = vial.beyond_use_date
    vial.room_temp_used += plan.used
    if plan.start_clock is not None and vial.room_temp_since is None:
        vial.room_temp_since = plan.start_clock
    vial.beyond_use_date = vial.compute_beyond_use_date()
    entry.outcome = ExcursionVial.Outcome.RELEASED
    entry.allowance_used = entry.exposure(now)
    entry.beyond_use_before, entry.beyond_use_after = before, vial.beyond_use_date
    entry.reason, entry.decided_by, entry.decided_at = reason, actor, now
    audited_save(entry, actor=actor, reason=f"released: {reason}")
    _lift_hold(vial, excursion=excursion)
    audited_save(vial, actor=actor, reason=(
        f"cold-chain excursion {excursion.pk} released: {_hours(entry.allowance_used)} of the room-temperature "
        f"allowance used, beyond-use date {before:%Y-%m-%d} → {vial.beyond_use_date:%Y-%m-%d}; {reason}"))


def _waste(entry, vial: Vial, *, excursion: Excursion, reason: str, actor, now) -> None:
    entry.outcome = ExcursionVial.Outcome.WASTED
    entry.reason, entry.decided_by, entry.decided_at = reason, actor, now
    audited_save(entry, actor=actor, reason=f"wasted: {reason}")
    vial.status = Vial.Status.WASTED
    vial.location = None
    vial.cold_chain_hold = None
    # The vial is gone: whatever else it waited for is settled with it.
    for other in ExcursionVial.objects.select_for_update().filter(
        vial=vial, outcome=ExcursionVial.Outcome.PENDING).exclude(pk=entry.pk).order_by("pk"):
        other.outcome, other.reason, other.decided_by, other.decided_at = (
            ExcursionVial.Outcome.WASTED, f"wasted after excursion {excursion.pk}: {reason}", actor, now)
        audited_save(other, actor=actor, reason=other.reason)
        close_excursion_if_settled(other.excursion_id, actor=actor)
    audited_save(vial, actor=actor, reason=f"wasted after cold-chain excursion {excursion.pk}: {reason}")


def _lift_hold(vial: Vial, *, excursion: Excursion) -> None:
    """The hold passes to another excursion the vial still awaits, or ends: the vial goes back in
    stock unless its lot is out of use or it sits in a quarantine location."""
    other = (
        ExcursionVial.objects.filter(vial=vial, outcome=ExcursionVial.Outcome.PENDING)
        .exclude(excursion=excursion).order_by("excursion_id").values_list("excursion_id", flat=True).first()
    )
    vial.cold_chain_hold_id = other
    if other is None and vial.status == Vial.Status.QUARANTINED:
        in_quarantine = vial.location is not None and vial.location.kind == StorageLocation.Kind.QUARANTINE
        if vial.lot.status == Lot.Status.RELEASED and not in_quarantine:
            vial.status = Vial.Status.IN_STOCK


def excursion_by_id(excursion_id: int) -> Excursion:
    try:
        return Excursion.objects.select_related("location").get(pk=excursion_id)
    except Excursion.DoesNotExist:
        raise UnknownExcursion(f"No excursion has id {excursion_id}.") from None
