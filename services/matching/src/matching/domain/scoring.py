"""Ranking of qualified offers: five components in [0, 1], weighted by policy data.

- slack: share of the time until the deadline left after the promised finish
  (a provider who finishes early leaves room for surprises);
- rating: Bayesian average (see rating.py);
- price: 1 - price/budget with a budget; cheapest/price among the qualified
  offers in the same currency without one;
- load: 1 - reserved/capacity for the provider's current week (spreads work);
- trust_bonus: 1 when this client already rated the provider ≥ 4;
- awake: 1 when the provider can answer at once; minus the share of the time
  until the deadline they sleep before they can (a sleeper barely loses
  against a week-long deadline, a lot against an overnight one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from delego_shared.events.matching import ScoreBreakdown
from delego_shared.types import Money

from .policy import SCORE_COMPONENTS


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(instant: datetime) -> int:
    return (instant - _EPOCH) // _US


def slack_component(now: datetime, finish: datetime, deadline: datetime) -> float:
    return slack_us(_us(now), _us(finish), _us(deadline))


def awake_component(earliest: datetime, answer_from: datetime, deadline: datetime) -> float:
    """1 - (time until the provider can answer) / (time from the earliest start to the deadline)."""
    return awake_us(_us(earliest), _us(answer_from), _us(deadline))


def slack_us(now: int, finish: int, deadline: int) -> float:
    """`slack_component` on instants in µs (the matcher's integers). Seconds are the µs
    count divided by 10**6, as `timedelta.total_seconds` does: the same floats."""
    window = (deadline - now) / 1_000_000
    if window <= 0:
        return 0.0
    return _clamp((deadline - finish) / 1_000_000 / window)


def awake_us(earliest: int, answer_from: int, deadline: int) -> float:
    """`awake_component` on instants in µs (same floats)."""
    window = (deadline - earliest) / 1_000_000
    wait = (answer_from - earliest) / 1_000_000
    if wait <= 0:
        return 1.0
    if window <= 0:
        return 0.0
    return _clamp(1 - wait / window)


def _score(fraction: Decimal) -> float:
    """A dimensionless fraction, clamped to [0, 1] in Decimal, as a score component.

    Money stays Decimal: only the ratio of two amounts becomes a (float) score.
    """
    clamped = min(Decimal(1), max(Decimal(0), fraction))
    return float(clamped.quantize(Decimal("0.000001")))


def price_component(price: Money, budget: Money | None, cheapest: Money | None = None) -> float:
    if budget is not None and budget.currency == price.currency and budget.amount > 0:
        return _score(1 - price.amount / budget.amount)
    if cheapest is not None and cheapest.currency == price.currency and price.amount > 0:
        return _score(cheapest.amount / price.amount)
    return 1.0 if price.amount == 0 else 0.5


def load_component(reserved_hours: Decimal, weekly_capacity: Decimal) -> float:
    if weekly_capacity <= 0:
        return 0.0
    return _score(1 - reserved_hours / weekly_capacity)


def weight_pairs(weights: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """The weights as floats in `SCORE_COMPONENTS` order (missing ones 0): what
    `weighted_sum` takes, resolved once by a caller that scores many fits."""
    return tuple((k, float(weights.get(k, 0.0))) for k in SCORE_COMPONENTS)


def weighted_sum(components: Mapping[str, float], pairs: Iterable[tuple[str, float]]) -> float:
    """Weighted sum of the clamped components (rounded: stable ordering and equality).
    (`_clamp` inlined, a list rather than a generator: ranking runs this for every
    fit it scores.)"""
    get = components.get
    return round(sum([min(1.0, max(0.0, get(k, 0.0))) * w for k, w in pairs]), 6)


def weighted_total(components: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """`weighted_sum` with the weights as the policy gives them."""
    return weighted_sum(components, weight_pairs(weights))


def breakdown(components: Mapping[str, float], weights: Mapping[str, float]) -> ScoreBreakdown:
    """Weighted sum; missing weights count as 0, every component is reported."""
    values = {k: _clamp(components.get(k, 0.0)) for k in SCORE_COMPONENTS}
    pairs = weight_pairs(weights)
    w = dict(pairs)
    return ScoreBreakdown(
        total=weighted_sum(values, pairs),
        slack=round(values["slack"], 6),
        rating=round(values["rating"], 6),
        price=round(values["price"], 6),
        load=round(values["load"], 6),
        trust_bonus=values["trust_bonus"],
        weights=w,
        awake=round(values["awake"], 6),
    )


def trusted_providers(
    past_ratings: Iterable[tuple[str, int]], threshold: int = 4
) -> frozenset[str]:
    """Providers this client rated ≥ threshold at least once (input: (provider, stars))."""
    return frozenset(p for p, stars in past_ratings if stars >= threshold)
