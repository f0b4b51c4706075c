"""Proposing the vials for an infusion session. Dispensing is still a scan per vial: this only
says which vials to take from the shelf.

The proposal is the best combination under this order (each rule only breaks ties of the ones
before it):

1. Brand. The session's own brand when vials are already dispensed to it, else the patient's
   current brand (that of the last completed infusion), when its stock alone reaches the dose.
   Otherwise a single other brand (one switch to review). Mixing brands only when no single brand
   reaches the dose.
2. Earliest beyond-use date first. Vials of one presentation (same product, same size) are
   interchangeable, so they are always taken earliest beyond-use date first: a later-dated vial is
   never proposed while an earlier-dated one of the same presentation stays on the shelf (among
   vials with the same date, which ones to take is left to rule 4). This rule is a hard
   constraint rather than a trade against overfill, because the remainder of an opened vial is
   certain waste while a later-dated vial left on the shelf is not.
3. Least overfill (grams above the dose), then fewest vials.
4. Fewest lots (one lot if possible: fewer lots to trace in a recall).
5. Then earlier beyond-use dates overall, then lower vial ids, so the answer is deterministic.

The search is exact. Vial sizes are a small discrete set (0.5 to 40 g), so grams are counted in
units of their greatest common divisor and a bounded knapsack over counts per presentation finds
the reachable totals with the fewest vials; every combination reaching the best (total, count) is
then enumerated to apply rules 4 and 5. Only "minimal" combinations matter (removing any vial
drops below the dose), so no total above dose + largest size - 1 unit is considered.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import combinations
from math import ceil, gcd

from core.text import grams_text
from inventory.models import Lot, Product, Vial, local_today
from inventory.rules import dispense_refusal
from traceability.exceptions import InsufficientStock
from traceability.clinical import contraindicated_products
from traceability.authorisations import authorised_product
from traceability.models import DispenseOverride, InfusionSession, Patient, TreatmentAuthorisation
from traceability.selectors import GIVEN_STATUSES, current_products
from traceability.services import ensure_session_open

# Enough to cover every realistic tie; beyond it the first combinations found are compared.
MAX_TIED_COMBINATIONS = 5000


@dataclass
class Effort:
    """How much searching a pick took: tied count-combinations compared and lot sets tried. Kept
    on the pick so tests can hold the search to its polynomial bound without timing it."""

    combinations: int = 0
    lot_sets: int = 0


@dataclass
class Pick:
    vials: list[Vial]
    needed_grams: Decimal
    already_dispensed_grams: Decimal
    total_grams: Decimal
    overfill_grams: Decimal
    products: list[Product] = field(default_factory=list)
    # (from, to) when dispensing the proposal would switch the patient's brand.
    brand_switch: tuple[Product, Product] | None = None
    mixes_brands: bool = False
    effort: Effort = field(default_factory=Effort)


def _centigrams(grams: Decimal) -> int:
    return int((grams * 100).to_integral_value())


def _candidate_vials(today: date, on: date) -> list[Vial]:
    vials = (
        Vial.objects.filter(
            status=Vial.Status.IN_STOCK,
            lot__status=Lot.Status.RELEASED,
            lot__expiry_date__gte=on,
            beyond_use_date__gte=on,
        )
        .select_related("lot", "presentation__product__manufacturer", "location")
        .order_by("beyond_use_date", "lot__expiry_date", "pk")
    )
    # The database filter narrows; the one written rule decides.
    return [v for v in vials if dispense_refusal(v, today, on=on) is None]


def _best_combination(vials: list[Vial], need_cg: int, effort: Effort) -> list[Vial] | None:
    """The best set of vials reaching need_cg centigrams under rules 2 to 5, or None."""
    by_presentation: dict[int, list[Vial]] = defaultdict(list)
    for vial in vials:  # already in beyond-use order
        by_presentation[vial.presentation_id].append(vial)
    groups = [group for group in by_presentation.values()]
    if not groups:
        return None

    unit = 0
    for group in groups:
        unit = gcd(unit, _centigrams(group[0].presentation.grams))
    sizes = [_centigrams(group[0].presentation.grams) // unit for group in groups]
    need = -(-need_cg // unit)
    limit = need + max(sizes) - 1
    caps = [min(len(group), ceil(need / size)) for group, size in zip(groups, sizes)]

    # fewest[i][t]: the fewest vials from the first i groups totalling exactly t units.
    INF = float("inf")
    fewest = [[INF] * (limit + 1) for _ in range(len(groups) + 1)]
    fewest[0][0] = 0
    for i, (size, cap) in enumerate(zip(sizes, caps)):
        row, nxt = fewest[i], fewest[i + 1]
        for t, count in enumerate(row):
            if count == INF:
                continue
            for k in range(cap + 1):
                total = t + k * size
                if total > limit:
                    break
                if count + k < nxt[total]:
                    nxt[total] = count + k
    final = fewest[len(groups)]
    target = next((t for t in range(need, limit + 1) if final[t] != INF), None)
    if target is None:
        return None

    tied: list[list[int]] = []

    def walk(i: int, t: int, count: int, ks: list[int]) -> None:
        if len(tied) >= MAX_TIED_COMBINATIONS:
            return
        if i == 0:
            if t == 0 and count == 0:
                tied.append(ks[::-1])
            return
        size = sizes[i - 1]
        for k in range(min(caps[i - 1], count) + 1):
            rest = t - k * size
            if rest < 0:
                break
            if fewest[i - 1][rest] == count - k:
                walk(i - 1, rest, count - k, ks + [k])

    walk(len(groups), target, final[target], [])

    effort.combinations += len(tied)
    best = min((_fill(groups, ks, effort) for ks in tied), key=_tie_key)
    return sorted(best, key=lambda v: (v.beyond_use_date, v.pk))


def _tie_key(vials: list[Vial]):
    """Rules 4 and 5."""
    return (len({v.lot_id for v in vials}), sorted(v.beyond_use_date for v in vials), sorted(v.pk for v in vials))


def _fill(groups: list[list[Vial]], ks: list[int], effort: Effort) -> list[Vial]:
    """The vials for k of each presentation. Vials of a presentation are taken by beyond-use date;
    where the k-th vial falls among several with the same date (possibly of several lots), which
    of those to take is free, and is chosen to use the fewest lots overall.

    Vials of one lot in one such tier are interchangeable, so the search is over which lots to
    draw from, never over vials: the fewest lots (beyond those the fixed vials already use) whose
    capacity covers every tier, tried smallest set first. With the handful of lots that share a
    date in practice that is a few dozen sets; past SUBSET_BUDGET it falls back to a greedy cover,
    so the time stays polynomial whatever the stock."""
    fixed: list[Vial] = []
    partial: list[tuple[list[Vial], int]] = []
    for group, k in zip(groups, ks):
        if k == 0:
            continue
        edge = group[k - 1].beyond_use_date
        before = [v for v in group[:k] if v.beyond_use_date < edge]
        tier = [v for v in group if v.beyond_use_date == edge]
        fixed += before
        partial.append((tier, k - len(before)))

    used = {v.lot_id for v in fixed}
    capacity = [Counter(v.lot_id for v in tier) for tier, _ in partial]
    wanted = [w for _, w in partial]

    def covers(lots: set[int]) -> bool:
        return all(sum(cap[lot] for lot in lots if lot in cap) >= w for cap, w in zip(capacity, wanted))

    expiry_of = {v.lot_id: v.lot.expiry_date for tier, _ in partial for v in tier}
    others = sorted(
        {lot for cap in capacity for lot in cap} - used,
        key=lambda lot: (-sum(cap.get(lot, 0) for cap in capacity), expiry_of[lot], lot),
    )
    allowed = _fewest_lots_covering(others, used, covers, effort)

    picked = list(fixed)
    for tier, w in partial:
        ranked = sorted(
            (v for v in tier if v.lot_id in allowed),
            key=lambda v: (v.lot_id not in used, v.lot.expiry_date, v.lot_id, v.pk),
        )
        picked += ranked[:w]
        used |= {v.lot_id for v in ranked[:w]}
    return picked


# Sets of lots tried before the greedy cover takes over (C(12, 6) is 924: far beyond real stock).
SUBSET_BUDGET = 5000


def _fewest_lots_covering(others: list[int], used: set[int], covers, effort: Effort) -> set[int]:
    tried = 0
    for size in range(len(others) + 1):
        for subset in combinations(others, size):
            tried += 1
            effort.lot_sets += 1
            if tried > SUBSET_BUDGET:
                return _greedy_cover(others, used, covers)
            lots = used | set(subset)
            if covers(lots):
                return lots
    return used | set(others)


def _greedy_cover(others: list[int], used: set[int], covers) -> set[int]:
    """Add the lots in their order (most capacity first) until every tier is covered."""
    lots = set(used)
    for lot in others:
        if covers(lots):
            break
        lots.add(lot)
    return lots


def pick_vials(*, session: InfusionSession, today: date | None = None) -> Pick:
    """Propose the vials that complete the session's dose (what is still missing after the vials
    already dispensed to it). Refused with `insufficient_stock` when no combination reaches it."""
    ensure_session_open(session)
    today = today or local_today()
    given = [d for d in session.dispenses.select_related("product").order_by("dispensed_at", "pk") if d.status in GIVEN_STATUSES]
    already = sum((d.grams for d in given), Decimal("0"))
    needed = max(session.ordered_grams - already, Decimal("0"))
    previous = current_products(session.patient, exclude=session)
    pick = Pick(
        vials=[], needed_grams=needed, already_dispensed_grams=already, total_grams=Decimal("0"),
        overfill_grams=Decimal("0"),
    )
    if needed == 0:
        return pick

    # Vials must still be usable on the infusion day, which may be later than today.
    on = max(today, session.scheduled_date)
    candidates = _candidate_vials(today, on)
    # Products a clinical check rules out for this patient are not proposed, unless a pharmacist
    # has already overridden every such check for this session.
    products = {v.presentation.product_id: v.presentation.product for v in candidates}
    granted = set(
        DispenseOverride.objects.filter(session=session, status=DispenseOverride.Status.GRANTED)
        .values_list("product_id", "check_code")
    )
    excluded = {
        pid for pid, findings in contraindicated_products(session=session, products=list(products.values())).items()
        if any((pid, f.check) not in granted for f in findings)
    }
    candidates = [v for v in candidates if v.presentation.product_id not in excluded]
    # Only what the session's authorisation covers: its brand, or any brand of its route.
    authorisation = session.authorisation
    if authorisation is not None:
        candidates = [v for v in candidates if authorised_product(authorisation, v.presentation.product)]
    by_product: dict[int, list[Vial]] = defaultdict(list)
    for vial in candidates:
        by_product[vial.presentation.product_id].append(vial)
    need_cg = _centigrams(needed)

    preferred = given[0].product if given else (previous[0] if previous else None)
    result = _choose(candidates, by_product, need_cg, preferred, pick.effort)
    if result is None:
        available = sum((v.presentation.grams for v in candidates), Decimal("0"))
        raise InsufficientStock(
            f"The dose needs {grams_text(needed)} g more; only {grams_text(available)} g of dispensable stock is on the shelves.",
            extra={"needed_grams": grams_text(needed), "available_grams": grams_text(available)},
        )

    pick.vials = result
    pick.total_grams = sum((v.presentation.grams for v in result), Decimal("0"))
    pick.overfill_grams = pick.total_grams - needed
    products = {v.presentation.product_id: v.presentation.product for v in result}
    pick.products = sorted(products.values(), key=lambda p: p.brand)
    pick.mixes_brands = len(products) > 1 or any(d.product_id not in products for d in given)
    if previous and not set(products) <= {p.pk for p in previous}:
        new = next(p for p in pick.products if p.pk not in {q.pk for q in previous})
        pick.brand_switch = (previous[0], new)
    return pick


def _choose(candidates: list[Vial], by_product: dict[int, list[Vial]], need_cg: int, preferred: Product | None,
            effort: Effort) -> list[Vial] | None:
    """Rule 1: the preferred brand alone, else the best single brand, else brands mixed."""
    result = None
    if preferred is not None:
        result = _best_combination(by_product.get(preferred.pk, []), need_cg, effort)
    if result is None:
        singles = [_best_combination(vials, need_cg, effort) for pid, vials in sorted(by_product.items())
                   if preferred is None or pid != preferred.pk]
        singles = [s for s in singles if s is not None]
        if singles:
            result = min(singles, key=lambda s: _rank(s, need_cg))
    if result is None:
        result = _best_combination(candidates, need_cg, effort)
    return result


def pick_for_dose(*, patient: Patient, authorisation: TreatmentAuthorisation, grams: Decimal,
                  today: date | None = None) -> Pick:
    """The vials from stock that make up `grams` for the patient under the authorisation, wasting
    least, by the same rules as a session's pick: its products only, none a clinical check rules
    out, the patient's current brand first. Changes nothing; refused with `insufficient_stock`."""
    today = today or local_today()
    # An order not yet made: the clinical checks read the patient and the route from it.
    draft = InfusionSession(patient=patient, route=authorisation.route, scheduled_date=today)
    candidates = [v for v in _candidate_vials(today, today) if authorised_product(authorisation, v.presentation.product)]
    products = {v.presentation.product_id: v.presentation.product for v in candidates}
    excluded = set(contraindicated_products(session=draft, products=list(products.values())))
    candidates = [v for v in candidates if v.presentation.product_id not in excluded]
    by_product: dict[int, list[Vial]] = defaultdict(list)
    for vial in candidates:
        by_product[vial.presentation.product_id].append(vial)
    previous = current_products(patient)
    pick = Pick(vials=[], needed_grams=grams, already_dispensed_grams=Decimal("0"), total_grams=Decimal("0"),
                overfill_grams=Decimal("0"))
    result = _choose(candidates, by_product, _centigrams(grams), previous[0] if previous else None, pick.effort)
    if result is None:
        available = sum((v.presentation.grams for v in candidates), Decimal("0"))
        raise InsufficientStock(
            f"The dose needs {grams_text(grams)} g; only {grams_text(available)} g of stock that the authorisation "
            "covers is on the shelves.",
            extra={"needed_grams": grams_text(grams), "available_grams": grams_text(available)})
    pick.vials = result
    pick.total_grams = sum((v.presentation.grams for v in result), Decimal("0"))
    pick.overfill_grams = pick.total_grams - grams
    chosen = {v.presentation.product_id: v.presentation.product for v in result}
    pick.products = sorted(chosen.values(), key=lambda p: p.brand)
    pick.mixes_brands = len(chosen) > 1
    if previous and not set(chosen) <= {p.pk for p in previous}:
        pick.brand_switch = (previous[0], next(p for p in pick.products if p.pk not in {q.pk for q in previous}))
    return pick


def _rank(vials: list[Vial], need_cg: int):
    """Rules 3 to 5, for comparing the best proposals of different brands."""
    total = sum(_centigrams(v.presentation.grams) for v in vials)
    return (
        total - need_cg,
        len(vials),
        len({v.lot_id for v in vials}),
        sorted(v.beyond_use_date for v in vials),
        sorted(v.pk for v in vials),
    )
