"""Pricing: from the agreed terms (copied on the match) to net invoice lines.

Each line's net is rounded ONCE, half-up to the currency's minor unit (the
cent for EUR), from the exact Decimal product; nothing is rounded before.
Invoice totals are exact sums of rounded lines, so a reader can re-add them.

When each pricing model bills:
- hourly: at WorkCompleted, billable minutes = max(minimum, actual rounded UP
  to the increment); net = rate x minutes / 60.
- package: once, at MatchAccepted, the package price.
- per unit: at WorkCompleted, units x unit price.
- subscription: the period price for each due period (see `subscription`),
  plus, at WorkCompleted, hours beyond the period's included hours at the
  overage rate (no overage rate: the included hours are a soft limit and
  extra hours are not billed).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from delego_shared.events.common import (
    AgreedTerms,
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SubscriptionPricing,
)
from delego_shared.types import Money

from .errors import PricingError
from .subscription import SubscriptionPeriod

_HOURS_Q = Decimal("0.0001")


@dataclass(frozen=True)
class PricedLine:
    """A net line before VAT, commission and tax credit are applied.

    `quantity` is for display (hours to 4 decimals, units, periods); `net` is
    computed from exact inputs, not from `quantity x unit_price`.
    """

    kind: str  # service | package | per_unit | subscription_period | overage
    label_code: str
    quantity: Decimal
    unit_price: Money
    net: Money
    intervention_minutes: int | None = None  # billed duration, for per-intervention rules
    period_key: str | None = None


def billable_minutes(actual_minutes: Decimal, minimum_minutes: int, increment_minutes: int) -> int:
    """max(minimum, actual rounded up to the next multiple of the increment)."""
    if actual_minutes < 0:
        raise PricingError("actual duration cannot be negative")
    if increment_minutes < 1:
        raise PricingError("increment must be at least one minute")
    actual_minutes = actual_minutes.quantize(Decimal("0.000001"))  # minutes/60*60 residue
    steps = (actual_minutes / increment_minutes).to_integral_value(rounding=ROUND_CEILING)
    return max(minimum_minutes, int(steps) * increment_minutes)


def price_hourly(pricing: HourlyPricing, category: str, actual_hours: Decimal) -> PricedLine:
    minutes = billable_minutes(
        actual_hours * 60, pricing.minimum_minutes, pricing.increment_minutes
    )
    exact = Money(
        amount=pricing.rate.amount * minutes / Decimal(60), currency=pricing.rate.currency
    )
    return PricedLine(
        kind="service",
        label_code=f"hourly:{category}",
        quantity=(Decimal(minutes) / Decimal(60)).quantize(_HOURS_Q),
        unit_price=pricing.rate,
        net=exact.rounded(),
        intervention_minutes=minutes,
    )


def price_package(pricing: PackagePricing, category: str) -> PricedLine:
    return PricedLine(
        kind="package",
        label_code=f"package:{category}",
        quantity=Decimal(1),
        unit_price=pricing.price,
        net=pricing.price.rounded(),
    )


def price_per_unit(pricing: PerUnitPricing, category: str, units: int) -> PricedLine:
    if units < 0:
        raise PricingError("units cannot be negative")
    return PricedLine(
        kind="per_unit",
        label_code=f"per_unit:{category}:{pricing.unit_name}",
        quantity=Decimal(units),
        unit_price=pricing.unit_price,
        net=(pricing.unit_price * units).rounded(),
    )


def price_subscription_period(
    pricing: SubscriptionPricing, category: str, period: SubscriptionPeriod
) -> PricedLine:
    return PricedLine(
        kind="subscription_period",
        label_code=f"subscription:{category}:{period.key}",
        quantity=Decimal(1),
        unit_price=pricing.price_per_period,
        net=pricing.price_per_period.rounded(),
        period_key=period.key,
    )


def overage_hours(included: Decimal, used_before: Decimal, hours: Decimal) -> Decimal:
    """Hours of this work beyond the period's included hours, given what was used before."""
    if used_before < 0 or hours < 0:
        raise PricingError("hours cannot be negative")
    over_after = max(Decimal(0), used_before + hours - included)
    over_before = max(Decimal(0), used_before - included)
    return over_after - over_before


def price_overage(
    pricing: SubscriptionPricing,
    category: str,
    period: SubscriptionPeriod,
    used_before: Decimal,
    hours: Decimal,
) -> PricedLine | None:
    """The overage line for work done in `period`, or None when nothing is billable."""
    extra = overage_hours(pricing.included_hours, used_before, hours)
    if extra == 0 or pricing.overage_rate is None:
        return None
    return PricedLine(
        kind="overage",
        label_code=f"overage:{category}:{period.key}",
        quantity=extra.quantize(_HOURS_Q),
        unit_price=pricing.overage_rate,
        net=(pricing.overage_rate * extra).rounded(),
        period_key=period.key,
    )


def price_at_acceptance(terms: AgreedTerms, first_period: SubscriptionPeriod) -> list[PricedLine]:
    """Lines billed when the match is accepted: the package, or the first period."""
    match terms.pricing:
        case PackagePricing():
            return [price_package(terms.pricing, terms.category)]
        case SubscriptionPricing():
            return [price_subscription_period(terms.pricing, terms.category, first_period)]
        case HourlyPricing() | PerUnitPricing():
            return []


def price_work_completed(
    terms: AgreedTerms,
    *,
    actual_hours: Decimal | None,
    units: int | None,
    period: SubscriptionPeriod | None = None,
    period_hours_used_before: Decimal = Decimal(0),
) -> list[PricedLine]:
    """Lines billed when work is completed (WorkCompleted carries hours or units).

    For subscriptions, `period` is the period containing the completion and
    `period_hours_used_before` the hours already used in it (the edge tracks them).
    Zero-amount lines (no units, zero billable time) are dropped: nothing to bill.
    """
    lines = _work_lines(terms, actual_hours, units, period, period_hours_used_before)
    return [ln for ln in lines if ln.net.amount != 0]


def _work_lines(
    terms: AgreedTerms,
    actual_hours: Decimal | None,
    units: int | None,
    period: SubscriptionPeriod | None,
    period_hours_used_before: Decimal,
) -> list[PricedLine]:
    p = terms.pricing
    match p:
        case HourlyPricing():
            if actual_hours is None:
                raise PricingError("hourly work needs actual_hours")
            return [price_hourly(p, terms.category, actual_hours)]
        case PerUnitPricing():
            if units is None:
                raise PricingError("per-unit work needs units")
            return [price_per_unit(p, terms.category, units)]
        case PackagePricing():
            return []  # billed at acceptance
        case SubscriptionPricing():
            if actual_hours is None:
                return []
            if period is None:
                raise PricingError("subscription work needs the period it falls in")
            line = price_overage(p, terms.category, period, period_hours_used_before, actual_hours)
            return [] if line is None else [line]
