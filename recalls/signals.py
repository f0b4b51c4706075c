"""The lot-level reaction signal: reactions per 1,000 infusions for each lot, against the rest of
its brand, with an exact test, so that a lot that makes more patients react than its brand's
other lots is put before the recall coordinator with the patients and reactions behind it.

An infusion is a session given here with a vial of the lot given in it (dispensed, or opened and
wasted), or a home infusion the patient reported with a vial of the lot. A reaction counts for
every lot given in its infusion (the lots cannot be told apart at the bedside).

The test is the exact conditional test for two Poisson rates (as R's `poisson.test` with two
samples): given k reactions over the lot's n infusions and K over the rest of the brand's N, k
is binomial with k + K trials and probability n / (n + N) when the rates are equal; the p-value
is the one-sided chance of k or more (scipy.stats.binomtest). A lot is a signal when that is
below LOT_SIGNAL_ALPHA and it has at least LOT_SIGNAL_MIN_REACTIONS reactions. It is a screen
over many lots, not a verdict: a signal asks for a look at the reactions, not a recall.

Five queries whatever the number of lots and infusions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from scipy.stats import binomtest

from inventory.models import Lot
from traceability.models import AdverseReaction, Dispense, HomeInfusionVial, InfusionSession, Patient
from traceability.selectors import GIVEN_STATUSES

PER = 1000

Unit = tuple[str, int]  # ("session", id) or ("home", id): one infusion


@dataclass
class LotSignal:
    lot: Lot
    infusions: int
    reactions: int
    brand_infusions: int
    brand_reactions: int
    rest_infusions: int
    rest_reactions: int
    p_value: float | None  # None: the brand has no other lot to compare with
    signal: bool
    reaction_list: list[AdverseReaction] = field(default_factory=list)

    @property
    def rate_per_1000(self) -> float:
        return PER * self.reactions / self.infusions if self.infusions else 0.0

    @property
    def brand_rate_per_1000(self) -> float:
        return PER * self.brand_reactions / self.brand_infusions if self.brand_infusions else 0.0

    @property
    def rest_rate_per_1000(self) -> float:
        return PER * self.rest_reactions / self.rest_infusions if self.rest_infusions else 0.0

    @property
    def patients(self) -> list[Patient]:
        seen: dict[int, Patient] = {}
        for reaction in self.reaction_list:
            seen.setdefault(reaction.session.patient_id, reaction.session.patient)
        return sorted(seen.values(), key=lambda p: (p.name, p.mrn))


def exact_poisson_p(k: int, n: int, k_rest: int, n_rest: int) -> float | None:
    """One-sided p-value that the lot's rate (k over n) exceeds the rest's (k_rest over n_rest)."""
    if n == 0 or n_rest == 0:
        return None
    if k == 0:
        return 1.0
    return float(binomtest(k, k + k_rest, n / (n + n_rest), alternative="greater").pvalue)


def _infusions() -> tuple[dict[Unit, set[int]], dict[int, int]]:
    """Each infusion and the lots given in it; each lot's product."""
    lots_of: dict[Unit, set[int]] = defaultdict(set)
    product_of: dict[int, int] = {}
    given = (
        Dispense.objects.filter(
            status__in=GIVEN_STATUSES,
            session__setting=InfusionSession.Setting.CLINIC,
            session__status__in=[InfusionSession.Status.IN_PROGRESS, InfusionSession.Status.COMPLETED],
        )
        .values_list("session_id", "vial__lot_id", "vial__lot__product_id")
        .distinct()
    )
    for session_id, lot_id, product_id in given:
        lots_of[("session", session_id)].add(lot_id)
        product_of[lot_id] = product_id
    home = HomeInfusionVial.objects.values_list(
        "home_infusion_id", "dispense__vial__lot_id", "dispense__vial__lot__product_id").distinct()
    for home_id, lot_id, product_id in home:
        lots_of[("home", home_id)].add(lot_id)
        product_of[lot_id] = product_id
    return lots_of, product_of


def lot_signals(*, include_all: bool = False, alpha: float | None = None,
                min_reactions: int | None = None) -> list[LotSignal]:
    """The lots whose reaction rate stands out from the rest of their brand (all lots with an
    infusion when `include_all`), most significant first, with the reactions behind each."""
    alpha = settings.LOT_SIGNAL_ALPHA if alpha is None else alpha
    min_reactions = settings.LOT_SIGNAL_MIN_REACTIONS if min_reactions is None else min_reactions
    lots_of, product_of = _infusions()
    reactions_of: dict[Unit, list[int]] = defaultdict(list)
    for pk, session_id, home_id in AdverseReaction.objects.values_list("pk", "session_id", "home_infusion_id"):
        unit = ("home", home_id) if home_id is not None else ("session", session_id)
        if unit in lots_of:
            reactions_of[unit].append(pk)

    units_of_lot: dict[int, set[Unit]] = defaultdict(set)
    units_of_product: dict[int, set[Unit]] = defaultdict(set)
    for unit, lots in lots_of.items():
        for lot_id in lots:
            units_of_lot[lot_id].add(unit)
            units_of_product[product_of[lot_id]].add(unit)

    def reactions(units) -> list[int]:
        return [pk for unit in units for pk in reactions_of.get(unit, ())]

    found = []
    for lot_id, units in units_of_lot.items():
        brand_units = units_of_product[product_of[lot_id]]
        rest = brand_units - units
        k, k_brand, k_rest = len(reactions(units)), len(reactions(brand_units)), len(reactions(rest))
        p = exact_poisson_p(k, len(units), k_rest, len(rest))
        signal = p is not None and p < alpha and k >= min_reactions
        if signal or include_all:
            found.append((lot_id, LotSignal(
                lot=None, infusions=len(units), reactions=k, brand_infusions=len(brand_units),
                brand_reactions=k_brand, rest_infusions=len(rest), rest_reactions=k_rest, p_value=p, signal=signal,
            ), reactions(units)))
    if not found:
        return []
    lots = Lot.objects.select_related("product__manufacturer").in_bulk([lot_id for lot_id, _, _ in found])
    wanted = {pk for _, _, pks in found for pk in pks}
    by_pk = AdverseReaction.objects.select_related("session__patient", "recorded_by").in_bulk(wanted)
    results = []
    for lot_id, signal, pks in found:
        signal.lot = lots[lot_id]
        signal.reaction_list = sorted((by_pk[pk] for pk in set(pks)), key=lambda r: (r.onset_at, r.pk))
        results.append(signal)
    return sorted(results, key=lambda s: (not s.signal, s.p_value if s.p_value is not None else 2.0,
                                          s.lot.product.brand, s.lot.lot_number))
