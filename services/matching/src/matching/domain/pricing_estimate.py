"""Estimated price of a request under an offer's pricing model (Decimal only).

The estimate is what the client is shown and what the budget filter compares;
billing prices the real invoice later from the agreed terms and actual work.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from delego_shared.events.common import (
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SubscriptionPricing,
)
from delego_shared.types import Money

AnyPricing = HourlyPricing | PackagePricing | SubscriptionPricing | PerUnitPricing


def work_hours(effort_hours: Decimal | None, units: int | None, typical_hours: Decimal) -> Decimal:
    """Hours of work the request represents for an offer.

    The client's estimate wins; a request given only in units takes the offer's
    typical effort per unit.
    """
    if effort_hours is not None:
        return effort_hours
    if units is not None:
        return typical_hours * units
    raise ValueError("a request needs effort hours or units")


def work_units(effort_hours: Decimal | None, units: int | None, typical_hours: Decimal) -> int:
    """Units the request represents (per-unit pricing); from hours when not given."""
    if units is not None:
        return units
    if effort_hours is not None:
        return max(1, int((effort_hours / typical_hours).to_integral_value(rounding=ROUND_CEILING)))
    raise ValueError("a request needs effort hours or units")


@dataclass(frozen=True, slots=True)
class PriceEstimate:
    """Either a price, or the reason this offer cannot price the request."""

    price: Money | None
    problem: str | None = None


def billable_minutes(pricing: HourlyPricing, effort_hours: Decimal) -> int:
    """Effort rounded up to the increment, then raised to the minimum."""
    return billable_minutes_of(effort_hours, pricing.increment_minutes, pricing.minimum_minutes)


def billable_minutes_of(effort_hours: Decimal, increment: int, minimum: int) -> int:
    """`billable_minutes` from the pricing's increment and minimum (minutes)."""
    minutes = effort_hours * 60
    steps = (minutes / increment).to_integral_value(rounding=ROUND_CEILING)
    return max(minimum, int(steps) * increment)


def estimate_price(pricing: AnyPricing, effort_hours: Decimal, units: int) -> PriceEstimate:
    """Price per model: hourly, package, subscription (+ overage), per unit."""
    match pricing:
        case HourlyPricing():
            minutes = billable_minutes(pricing, effort_hours)
            amount = pricing.rate.amount * minutes / 60
            return PriceEstimate(Money(amount=amount, currency=pricing.rate.currency).rounded())
        case PackagePricing():
            if pricing.hours_included is not None and effort_hours > pricing.hours_included:
                return PriceEstimate(
                    None,
                    f"package covers {pricing.hours_included} h, request needs {effort_hours} h",
                )
            return PriceEstimate(pricing.price.rounded())
        case SubscriptionPricing():
            extra = max(Decimal(0), effort_hours - pricing.included_hours)
            if extra == 0:
                return PriceEstimate(pricing.price_per_period.rounded())
            if pricing.overage_rate is None:
                return PriceEstimate(
                    None,
                    f"plan includes {pricing.included_hours} h and has no overage rate, "
                    f"request needs {effort_hours} h",
                )
            return PriceEstimate(
                (pricing.price_per_period + pricing.overage_rate * extra).rounded()
            )
        case PerUnitPricing():
            return PriceEstimate((pricing.unit_price * units).rounded())


class BudgetCheck(StrEnum):
    OK = "ok"
    CURRENCY_MISMATCH = "currency_mismatch"
    OVER = "over"


def check_budget(price: Money, budget: Money | None) -> BudgetCheck:
    """No conversion: a price in another currency than the budget is excluded."""
    if budget is None:
        return BudgetCheck.OK
    if price.currency != budget.currency:
        return BudgetCheck.CURRENCY_MISMATCH
    return BudgetCheck.OK if price.amount <= budget.amount else BudgetCheck.OVER
