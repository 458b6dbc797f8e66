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
_PRODUCT_LIMIT = 4 * 10**18
"""Largest intermediate product computed in int64 (which ends at about 9.2 × 10¹⁸; the
half-up rounding doubles it)."""
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
        self.by_combo = np.zeros(0, dtype=np.int64)
        """This shape's value of each `ClassParams.combos` entry (filled as they come)."""
        self.effort_by_hours = np.zeros(0, dtype=np.int64)
        """The work in µs per typical effort (`ClassParams.hours`), and its largest
        weekly share in 1/10 000 h."""
        self.most_by_hours = np.zeros(0, dtype=np.int64)
        self.combos_done = 0

    def room(self, n: int) -> None:
        self.state = grown(self.state, n)  # type: ignore[assignment]
        self.currency = grown(self.currency, n)  # type: ignore[assignment]
        self.amount = grown(self.amount, n)  # type: ignore[assignment]
        self.effort = grown(self.effort, n)  # type: ignore[assignment]
        self.most_e4 = grown(self.most_e4, n)  # type: ignore[assignment]


class ClassParams:
    """The integer parameters of every price class (by class id)."""

    FIELDS = ("kind", "currency", "minor", "a", "b", "combo", "typical")

    def __init__(self) -> None:
        self.kind = np.zeros(0, dtype=np.int64)
        self.currency = np.zeros(0, dtype=np.int64)
        self.minor = np.zeros(0, dtype=np.int64)
        self.a = np.zeros(0, dtype=np.int64)
        """Hourly rate, package price (rounded), subscription price per period, unit price."""
        self.b = np.zeros(0, dtype=np.int64)
        """Subscription: the overage rate (-1: none)."""
        self.combo = np.zeros(0, dtype=np.int64)
        """Ordinal in `combos` of what the Decimal part of the estimate depends on."""
        self.typical = np.zeros(0, dtype=np.int64)
        """Ordinal of the typical effort in `hours`."""
        self.hours: list[Decimal] = []
        self._hours: dict[Decimal, int] = {}
        self.combos: list[tuple[int, int, int, int]] = []
        """(kind, typical, increment or included hours ordinal, minimum): the part of an
        estimate that needs Decimal arithmetic depends on these only (a few hundred
        distinct), so a shape computes it once per entry (`_combo_value`)."""
        self._combos: dict[tuple[int, int, int, int], int] = {}
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
        t = self._hour(typical)
        self.typical[cid] = t
        i = -1 if included is None else self._hour(included)
        key = (kind, t, inc, low) if kind == KIND_HOURLY else (kind, t, i, 0)
        combo = self._combos.get(key)
        if combo is None:
            combo = self._combos[key] = len(self.combos)
            self.combos.append(key)
        self.combo[cid] = combo

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


def _round_half_up(value: I64, scale: I64) -> I64:
    """Non-negative `value` rounded half up to a multiple of `scale` (`Money.rounded`)."""
    return (2 * value + scale) // (2 * scale) * scale


def _tables(
    params: ClassParams, cols: PriceColumns, effort_hours: Decimal | None, units: int | None
) -> None:
    """Bring the shape's per-combo and per-hours tables up to the params (Decimal, once
    per entry added since)."""
    hours_of = params.hours

    def hours(t: int) -> Decimal:
        return work_hours(effort_hours, units, hours_of[t])

    done = cols.combos_done
    if done < len(params.combos):
        table = np.zeros(len(params.combos), dtype=np.int64)
        table[:done] = cols.by_combo[:done]
        for c in range(done, len(params.combos)):
            kind, t, x, low = params.combos[c]
            if kind == KIND_HOURLY:
                table[c] = billable_minutes_of(hours(t), x, low)
            elif kind == KIND_PACKAGE:
                table[c] = int(x >= 0 and hours(t) > hours_of[x])
            elif kind == KIND_SUBSCRIPTION:
                extra = max(Decimal(0), hours(t) - hours_of[x]) * PRICE_SCALE
                exact = extra == extra.to_integral_value() and extra <= _LIMIT
                table[c] = int(extra) if exact else -1
            else:
                table[c] = work_units(effort_hours, units, hours_of[t])
        cols.by_combo, cols.combos_done = table, len(params.combos)
    have = len(cols.effort_by_hours)
    if have < len(hours_of):
        effort = [hours_to_timedelta(hours(t)) // _US for t in range(have, len(hours_of))]
        most = [int(most_per_week(e) * 10_000) for e in effort]
        cols.effort_by_hours = np.append(cols.effort_by_hours, effort).astype(np.int64)
        cols.most_by_hours = np.append(cols.most_by_hours, most).astype(np.int64)


def estimate(
    params: ClassParams,
    cols: PriceColumns,
    classes: I64,
    effort_hours: Decimal | None,
    units: int | None,
) -> None:
    """Fill `cols` (one request shape) for `classes` (none `KIND_PYTHON`): state 1 when
    the pricing cannot price the work (`estimate_price` gives no price), 2 priced,
    3 left to the Python path (an intermediate amount beyond 64 bits, or hours beyond
    the included ones finer than 10⁻⁶); the amount in 10⁻⁶, its currency code, the
    work in µs and its largest weekly share in 1/10 000 h. Gathers and integer
    arithmetic only: the Decimal parts are in the shape's tables (`_tables`)."""
    _tables(params, cols, effort_hours, units)
    typical = params.typical[classes]
    x = cols.by_combo[params.combo[classes]]
    kind = params.kind[classes]
    a, b = params.a[classes], params.b[classes]
    unit6 = 10 ** (6 - params.minor[classes])
    hourly = kind == KIND_HOURLY
    package = kind == KIND_PACKAGE
    sub = kind == KIND_SUBSCRIPTION
    per_unit = kind == KIND_PER_UNIT
    # each model's amount (the other models' lanes compute garbage, never selected)
    n = np.where(hourly | per_unit, x, 0)
    # hourly: rate × minutes / 60, rounded half up: (2·r·m + 60·u) // (120·u) · u
    by_hour = (2 * a * n + 60 * unit6) // (120 * unit6) * unit6
    by_unit = _round_half_up(a * n, unit6)
    # subscription: (period + overage × extra) in 10⁻¹², rounded half up to the minor unit
    extra = np.where(sub, np.maximum(x, 0), 0)
    over_rate = np.maximum(b, 0)
    with_extra = _round_half_up(a * PRICE_SCALE + over_rate * extra, unit6 * PRICE_SCALE)
    by_sub = np.where(x == 0, _round_half_up(a, unit6), with_extra // PRICE_SCALE)
    amount = np.where(hourly, by_hour, np.where(per_unit, by_unit, np.where(sub, by_sub, a)))
    # lanes whose products would pass _PRODUCT_LIMIT (int64 overflow) go to the Python
    # path; checked by integer division, so the amounts never leave the integers
    top = _PRODUCT_LIMIT
    mult = np.where(hourly | per_unit, n, 0)
    big = (mult > 0) & (a > top // np.maximum(mult, 1))
    room = top - np.minimum(a, top // PRICE_SCALE) * PRICE_SCALE
    big |= sub & (
        (a > top // PRICE_SCALE) | ((extra > 0) & (over_rate > room // np.maximum(extra, 1)))
    )
    state = np.full(len(classes), 2, dtype=np.int8)
    state[big | (sub & (x < 0) & (b >= 0))] = 3
    state[(package & (x == 1)) | (sub & (x != 0) & (b < 0))] = 1
    cols.state[classes] = state
    cols.amount[classes] = amount
    cols.currency[classes] = params.currency[classes]
    cols.effort[classes] = cols.effort_by_hours[typical]
    cols.most_e4[classes] = cols.most_by_hours[typical]
