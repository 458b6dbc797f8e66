"""Pricing rules and the reference price used to filter and sort offers.

Four models come from the market (Officeo by the hour, NetDatingAssistant's
40 h package, MyConciergerie/MaxiCours monthly plans, TutoClic per module).
They are not comparable per hour, so search compares one *reference price*
per model, the amount a client pays for the smallest thing they can buy:

- hourly: the hourly rate
- package: the package price
- subscription: the price per period (month)
- per_unit: the unit price

Only prices in the same currency are compared; there is no FX conversion.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from delego_shared.events.common import (
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SubscriptionPricing,
)
from delego_shared.types import Money

from .errors import Issues
from .text import contact_data_problem

AnyPricing = HourlyPricing | PackagePricing | SubscriptionPricing | PerUnitPricing

HOUR_DIVISORS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)
"""Billing increments that cut an hour evenly, so increment x rate stays exact."""
MAX_INCLUDED_HOURS_PER_MONTH = Decimal(31 * 24)

_INDEX_INT_DIGITS = 15
_INDEX_FRACTION_DIGITS = 4
MAX_AMOUNT = Decimal(10) ** _INDEX_INT_DIGITS
"""Prices must stay below this (what the search key can index; no real offer comes close)."""


def reference_price(pricing: AnyPricing) -> Money:
    """The amount search filters and sorts on (see the module docstring)."""
    match pricing:
        case HourlyPricing():
            return pricing.rate
        case PackagePricing():
            return pricing.price
        case SubscriptionPricing():
            return pricing.price_per_period
        case PerUnitPricing():
            return pricing.unit_price


REFERENCE_FIELD = {
    "hourly": "rate",
    "package": "price",
    "subscription": "price_per_period",
    "per_unit": "unit_price",
}
"""Where `reference_price` is in each pricing model's JSON form (read models map the
published JSON without building the models)."""


def reference_price_key(pricing: AnyPricing) -> str:
    """A fixed-width string that sorts like the reference amount, for a store index.

    Useful where a Decimal128 index is not available (FerretDB): "16.25" becomes
    "000000000000016.2500". Currency is not part of it: filter on currency first.
    """
    return amount_key(reference_price(pricing).amount)


def amount_key(amount: Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
    """`reference_price_key` of any amount, rounded to the key's 4 decimals with `rounding`.

    Raises ValueError for negative amounts and amounts of 10^15 or more.
    """
    if amount < 0:
        raise ValueError("reference prices are positive")
    try:
        q = amount.quantize(Decimal(1).scaleb(-_INDEX_FRACTION_DIGITS), rounding=rounding)
    except ArithmeticError as exc:  # decimal.InvalidOperation on absurd exponents
        raise ValueError(f"amount {amount} is too large to index") from exc
    text = f"{q:f}"
    whole, _, frac = text.partition(".")
    if len(whole) > _INDEX_INT_DIGITS:
        raise ValueError(f"amount {amount} is too large to index")
    return f"{whole.zfill(_INDEX_INT_DIGITS)}.{frac}"


def monies(pricing: AnyPricing) -> list[tuple[str, Money]]:
    """Every amount in the pricing with its field name (for currency and sign checks)."""
    match pricing:
        case HourlyPricing():
            return [("rate", pricing.rate)]
        case PackagePricing():
            return [("price", pricing.price)]
        case SubscriptionPricing():
            found = [("price_per_period", pricing.price_per_period)]
            if pricing.overage_rate is not None:
                found.append(("overage_rate", pricing.overage_rate))
            return found
        case PerUnitPricing():
            return [("unit_price", pricing.unit_price)]


def check_pricing(
    pricing: AnyPricing,
    currency: str | None,
    typical_effort_hours: Decimal | None,
    issues: Issues,
    field: str = "pricing",
) -> None:
    """Record every pricing problem.

    `currency` is the offer's currency (None when it is itself invalid: then
    the mismatch check is skipped to avoid a second, derived error).
    """
    for name, money in monies(pricing):
        path = f"{field}.{name}"
        if money.amount <= 0:
            issues.add(path, f"must be greater than zero, got {money}")
        elif money.amount >= MAX_AMOUNT:
            issues.add(path, f"must be less than {MAX_AMOUNT:f}, got {money}")
        elif money.rounded().amount != money.amount:
            issues.add(
                path,
                f"{money} has more decimals than {money.currency} allows ({money.minor_units})",
            )
        if currency is not None and money.currency != currency:
            issues.add(
                f"{path}.currency",
                f"{money.currency} differs from the offer currency {currency}",
            )
    match pricing:
        case HourlyPricing():
            _check_hourly(pricing, typical_effort_hours, issues, field)
        case PackagePricing():
            if pricing.label:
                _no_contact(pricing.label, f"{field}.label", issues)
        case SubscriptionPricing():
            if pricing.included_hours > MAX_INCLUDED_HOURS_PER_MONTH:
                issues.add(
                    f"{field}.included_hours",
                    f"cannot exceed {MAX_INCLUDED_HOURS_PER_MONTH} h a month (31 x 24), "
                    f"got {pricing.included_hours}",
                )
        case PerUnitPricing():
            if not pricing.unit_name.strip():
                issues.add(f"{field}.unit_name", "must not be blank (e.g. 'module')")
            else:
                _no_contact(pricing.unit_name, f"{field}.unit_name", issues)


def _check_hourly(
    p: HourlyPricing, typical_effort_hours: Decimal | None, issues: Issues, field: str
) -> None:
    """Increments cut an hour evenly; the minimum is reachable by whole increments.

    A minimum above the offer's typical effort would bill every typical job
    for time not worked, so it is refused.
    """
    if p.increment_minutes not in HOUR_DIVISORS:
        issues.add(
            f"{field}.increment_minutes",
            "must divide an hour evenly (one of "
            f"{', '.join(str(d) for d in HOUR_DIVISORS)}), got {p.increment_minutes}",
        )
    elif p.minimum_minutes % p.increment_minutes:
        issues.add(
            f"{field}.minimum_minutes",
            f"{p.minimum_minutes} is not a multiple of increment_minutes ({p.increment_minutes})",
        )
    if (
        typical_effort_hours is not None
        and typical_effort_hours.is_finite()
        and typical_effort_hours > 0
        and Decimal(p.minimum_minutes) > typical_effort_hours * 60
    ):
        issues.add(
            f"{field}.minimum_minutes",
            f"{p.minimum_minutes} min exceeds the typical effort of the offer "
            f"({typical_effort_hours} h)",
        )


def _no_contact(text: str, field: str, issues: Issues) -> None:
    problem = contact_data_problem(text)
    if problem:
        issues.add(field, problem)
