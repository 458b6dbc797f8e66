"""`estimate_price` for many price classes at once, in integers (numpy).

Each price class (equal pricing and typical effort, `OfferRow.price_class`)
gets its pricing's parameters as integers when it is first seen
(`ClassParams.add`): amounts in 10⁻⁶ of the currency unit, the currency's
minor units, the hourly increment and minimum, and ordinals of its included
hours and typical effort (Decimals, kept once each). For one request shape
(effort hours, units), the estimate of every class a request needs is then a
few array operations: the Decimal parts that depend on the request only
(hours and units per typical effort, billable minutes per increment, hours
beyond the included ones) are computed once per distinct value with the
specification's own functions, and the roundings are integer arithmetic
(half up to the minor unit, as `Money.rounded`). Exact: every amount is an
integer count of 10⁻⁶ (a class whose amounts are not stays on the Python
path, `KIND_PYTHON`), and a rational of denominator 60 is never within
Decimal's 28 digits of a rounding boundary without being on it
(Hypothesis-checked against `estimate_price`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

import numpy as np
import numpy.typing as npt
from delego_shared.events.common import (
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SubscriptionPricing,
)
from delego_shared.types import Money

from .pricing_estimate import AnyPricing, billable_minutes_of, work_hours, work_units
from .schedule import hours_to_timedelta

I64 = npt.NDArray[np.int64]
PRICE_SCALE = 1_000_000
"""Prices in the columns are integers of 10⁻⁶ of the currency unit."""
_LIMIT = 10**12
"""Largest amount (in 10⁻⁶) taken on the vector path: products stay within 64 bits."""
KIND_PYTHON, KIND_HOURLY, KIND_PACKAGE, KIND_SUBSCRIPTION, KIND_PER_UNIT = range(5)
_US = timedelta(microseconds=1)


def grown(a: npt.NDArray[np.generic], size: int) -> npt.NDArray[np.generic]:
    """`a` with room for `size` items (doubling; new items zero)."""
    if size <= len(a):
        return a
    out = np.zeros(max(size, 2 * len(a), 64), dtype=a.dtype)
    out[: len(a)] = a
    return out


def _scaled(money: Money | None) -> int | None:
    """The amount in 10⁻⁶ when exact, non-negative and small enough, else None."""
    if money is None:
        return None
    x = money.amount * PRICE_SCALE
    if x != x.to_integral_value() or not 0 <= x <= _LIMIT:
        return None
    return int(x)


class PriceColumns:
    """One request shape's estimates per price class, as arrays (the budget filter and
    the price bound of a whole request in a few array operations). `state`: 0 not
    estimated yet, 1 the pricing cannot price the work, 2 priced, 3 priced but only
    the Python path compares it."""

    def __init__(self) -> None:
        self.state = np.zeros(0, dtype=np.int8)
        self.currency = np.zeros(0, dtype=np.int64)
        self.amount = np.zeros(0, dtype=np.int64)
        self.effort = np.zeros(0, dtype=np.int64)
        self.most_e4 = np.zeros(0, dtype=np.int64)

    def room(self, n: int) -> None:
        self.state = grown(self.state, n)  # type: ignore[assignment]
        self.currency = grown(self.currency, n)  # type: ignore[assignment]
        self.amount = grown(self.amount, n)  # type: ignore[assignment]
        self.effort = grown(self.effort, n)  # type: ignore[assignment]
        self.most_e4 = grown(self.most_e4, n)  # type: ignore[assignment]


class ClassParams:
    """The integer parameters of every price class (by class id)."""

    FIELDS = ("kind", "currency", "minor", "a", "b", "increment", "minimum", "included", "typical")

    def __init__(self) -> None:
        self.kind = np.zeros(0, dtype=np.int64)
        self.currency = np.zeros(0, dtype=np.int64)
        self.minor = np.zeros(0, dtype=np.int64)
        self.a = np.zeros(0, dtype=np.int64)
        """Hourly rate, package price (rounded), subscription price per period, unit price."""
        self.b = np.zeros(0, dtype=np.int64)
        """Subscription: the overage rate (-1: none)."""
        self.increment = np.zeros(0, dtype=np.int64)
        self.minimum = np.zeros(0, dtype=np.int64)
        self.included = np.zeros(0, dtype=np.int64)
        """Ordinal of the included hours in `hours` (-1: none)."""
        self.typical = np.zeros(0, dtype=np.int64)
        """Ordinal of the typical effort in `hours`."""
        self.hours: list[Decimal] = []
        self._hours: dict[Decimal, int] = {}
        self.n = 0
        """Classes recorded."""

    def _hour(self, h: Decimal) -> int:
        got = self._hours.get(h)
        if got is None:
            got = self._hours[h] = len(self.hours)
            self.hours.append(h)
        return got

    def add(self, cid: int, pricing: AnyPricing, typical: Decimal, currency_code: int) -> None:
        """Record class `cid` (ids are dense, given in order: `cid` is `n`)."""
        self.n = cid + 1
        for name in self.FIELDS:
            setattr(self, name, grown(getattr(self, name), cid + 1))
        values = self._params(pricing)
        if values is None:
            self.kind[cid] = KIND_PYTHON
            return
        kind, money, a, b, inc, low, included = values
        self.kind[cid] = kind
        self.currency[cid] = currency_code
        self.minor[cid] = money.minor_units
        self.a[cid], self.b[cid] = a, b
        self.increment[cid], self.minimum[cid] = inc, low
        self.included[cid] = -1 if included is None else self._hour(included)
        self.typical[cid] = self._hour(typical)

    @staticmethod
    def _params(
        p: AnyPricing,
    ) -> tuple[int, Money, int, int, int, int, Decimal | None] | None:
        match p:
            case HourlyPricing():
                rate = _scaled(p.rate)
                if rate is None or p.rate.minor_units > 6:
                    return None
                return KIND_HOURLY, p.rate, rate, 0, p.increment_minutes, p.minimum_minutes, None
            case PackagePricing():
                price = _scaled(p.price.rounded())
                if price is None or p.price.minor_units > 6:
                    return None
                return KIND_PACKAGE, p.price, price, 0, 0, 0, p.hours_included
            case SubscriptionPricing():
                period = _scaled(p.price_per_period)
                over = _scaled(p.overage_rate)
                if period is None or p.price_per_period.minor_units > 6:
                    return None
                if p.overage_rate is not None and (
                    over is None or p.overage_rate.currency != p.price_per_period.currency
                ):
                    return None
                b = -1 if over is None else over
                return KIND_SUBSCRIPTION, p.price_per_period, period, b, 0, 0, p.included_hours
            case PerUnitPricing():
                unit = _scaled(p.unit_price)
                if unit is None or p.unit_price.minor_units > 6:
                    return None
                return KIND_PER_UNIT, p.unit_price, unit, 0, 0, 0, None
        return None  # pragma: no cover - every pricing model is matched above


def most_per_week(effort: int) -> Decimal:
    """An upper bound of any week's share in `reservation_keys` (hours to 4 decimals,
    rounded up) for an effort in µs."""
    hours = Decimal(effort // 1_000_000) / 3600
    return hours.quantize(Decimal("0.0001"), rounding=ROUND_CEILING)


def _per_value(keys: I64, mask: npt.NDArray[np.bool_], fn: Callable[[int], int]) -> I64:
    """`fn` of each distinct key where `mask`, spread back over `keys` (0 elsewhere):
    the Decimal parts run once per distinct value."""
    out = np.zeros(len(keys), dtype=np.int64)
    if mask.any():
        distinct, inverse = np.unique(keys[mask], return_inverse=True)
        values = np.array([fn(int(k)) for k in distinct.tolist()], dtype=np.int64)
        out[mask] = values[inverse]
    return out


def _round_half_up(value: I64, scale: I64) -> I64:
    """Non-negative `value` rounded half up to a multiple of `scale` (`Money.rounded`)."""
    return (2 * value + scale) // (2 * scale) * scale


def estimate(
    params: ClassParams, classes: I64, effort_hours: Decimal | None, units: int | None
) -> tuple[I64, I64, I64, I64, I64]:
    """For each class of `classes` (none `KIND_PYTHON`): (state, amount in 10⁻⁶, currency
    code, effort in µs, largest weekly share in 1/10 000 h). State 1: cannot price
    the work (`estimate_price` gives no price), 2: priced, 3: left to the Python path
    (an intermediate amount too large for 64 bits, or hours beyond the included ones
    finer than 10⁻⁶)."""
    every = np.ones(len(classes), dtype=bool)
    hours_of = params.hours

    def hours(t: int) -> Decimal:
        return work_hours(effort_hours, units, hours_of[t])

    typical = params.typical[classes]
    effort = _per_value(typical, every, lambda t: hours_to_timedelta(hours(t)) // _US)
    most = _per_value(effort, every, lambda e: int(most_per_week(e) * 10_000))
    kind = params.kind[classes]
    a, b = params.a[classes], params.b[classes]
    unit6 = 10 ** (6 - params.minor[classes])
    state = np.full(len(classes), 2, dtype=np.int64)
    amount = np.zeros(len(classes), dtype=np.int64)
    incl = params.included[classes]
    by_included = typical * (1 << 20) + np.maximum(incl, 0)

    hourly = kind == KIND_HOURLY
    if hourly.any():
        key = (typical * 1441 + params.increment[classes]) * 1441 + params.minimum[classes]

        def minutes(k: int) -> int:
            t, rest = divmod(k, 1441 * 1441)
            return billable_minutes_of(hours(t), *divmod(rest, 1441))

        mins = _per_value(key, hourly, minutes)
        # rate × minutes / 60, rounded half up: (2·r·m + 60·u) // (120·u) · u
        rounded = (2 * a * mins + 60 * unit6) // (120 * unit6) * unit6
        amount = np.where(hourly, rounded, amount)
        state = np.where(hourly & (a * mins.astype(np.float64) > 4e18), 3, state)

    package = kind == KIND_PACKAGE
    if package.any():

        def over(k: int) -> int:
            t, i = divmod(k, 1 << 20)
            return int(hours(t) > hours_of[i])

        exceeded = (_per_value(by_included, package & (incl >= 0), over) == 1) & (incl >= 0)
        state = np.where(package & exceeded, 1, state)
        amount = np.where(package, a, amount)

    sub = kind == KIND_SUBSCRIPTION
    if sub.any():

        def extra(k: int) -> int:
            t, i = divmod(k, 1 << 20)
            x = max(Decimal(0), hours(t) - hours_of[i]) * PRICE_SCALE
            return int(x) if x == x.to_integral_value() and x <= _LIMIT else -1

        x = _per_value(by_included, sub, extra)
        over_rate = np.maximum(b, 0)
        # (period + overage × extra) in 10⁻¹², rounded half up to the minor unit
        total = a * PRICE_SCALE + over_rate * np.maximum(x, 0)
        with_extra = _round_half_up(total, unit6 * PRICE_SCALE) // PRICE_SCALE
        amount = np.where(sub, np.where(x == 0, _round_half_up(a, unit6), with_extra), amount)
        big = a * float(PRICE_SCALE) + over_rate * np.maximum(x, 0).astype(np.float64) > 4e18
        state = np.where(sub & (x != 0) & (b < 0), 1, state)
        state = np.where(sub & (x != 0) & (b >= 0) & ((x < 0) | big), 3, state)

    per_unit = kind == KIND_PER_UNIT
    if per_unit.any():
        n = _per_value(typical, per_unit, lambda t: work_units(effort_hours, units, hours_of[t]))
        amount = np.where(per_unit, _round_half_up(a * n, unit6), amount)
        state = np.where(per_unit & (a * n.astype(np.float64) > 4e18), 3, state)

    return state, amount, params.currency[classes], effort, most
