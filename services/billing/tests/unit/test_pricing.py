from __future__ import annotations

from decimal import Decimal

import pytest
from billing.domain.errors import PricingError
from billing.domain.pricing import (
    billable_minutes,
    overage_hours,
    price_at_acceptance,
    price_hourly,
    price_overage,
    price_package,
    price_per_unit,
    price_work_completed,
)
from billing.domain.subscription import period
from delego_shared.events.common import (
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SubscriptionPricing,
)

from .conftest import ISSUED, eur

D = Decimal


@pytest.mark.parametrize(
    ("actual", "minimum", "increment", "expected"),
    [
        (D(0), 60, 15, 60),  # nothing done: the minimum
        (D(59), 60, 15, 60),  # just under the minimum
        (D(60), 60, 15, 60),  # exactly the minimum
        (D(61), 60, 15, 75),  # one minute over rounds up a whole increment
        (D(75), 60, 15, 75),  # exactly on an increment: no rounding
        (D("75.01"), 60, 15, 90),  # a fraction of a minute over still rounds up
        (D(7), 0, 10, 10),
        (D(0), 0, 10, 0),
        (D(121), 30, 60, 180),
    ],
)
def test_billable_minutes_minimum_and_increment(actual, minimum, increment, expected):
    assert billable_minutes(actual, minimum, increment) == expected


def test_billable_minutes_rejects_negative():
    with pytest.raises(PricingError):
        billable_minutes(D(-1), 0, 15)


def test_hourly_line_uses_billable_minutes_and_rounds_half_up_once():
    p = HourlyPricing(rate=eur("25.00"), minimum_minutes=30, increment_minutes=10)
    line = price_hourly(p, "tutoring", D("0.5833"))  # 34.998 min -> 40 min
    assert line.intervention_minutes == 40
    # 25 * 40 / 60 = 16.666... -> 16.67
    assert line.net == eur("16.67")
    assert line.quantity == D("0.6667")
    assert line.label_code == "hourly:tutoring"


def test_hourly_half_cent_rounds_up():
    # 0.03 EUR/h for 15 minutes = 0.0075 -> 0.01 (half-up at the cent)
    p = HourlyPricing(rate=eur("0.03"), minimum_minutes=0, increment_minutes=15)
    assert price_hourly(p, "x", D("0.25")).net == eur("0.01")
    # 0.10 EUR/h for 15 minutes = 0.025 exactly -> 0.03 (half-up, not banker's 0.02)
    p2 = HourlyPricing(rate=eur("0.10"), minimum_minutes=0, increment_minutes=15)
    assert price_hourly(p2, "x", D("0.25")).net == eur("0.03")


def test_package_is_price_once():
    p = PackagePricing(price=eur("650.00"), hours_included=D(40), label="6 dates")
    line = price_package(p, "dating_assistance")
    assert (line.net, line.quantity, line.kind) == (eur("650.00"), D(1), "package")


def test_per_unit_multiplies_units():
    p = PerUnitPricing(unit_name="module", unit_price=eur("10.00"))
    assert price_per_unit(p, "tutoring", 3).net == eur("30.00")
    assert price_per_unit(p, "tutoring", 0).net == eur("0.00")
    with pytest.raises(PricingError):
        price_per_unit(p, "tutoring", -1)


@pytest.mark.parametrize(
    ("included", "before", "hours", "expected"),
    [
        (D(5), D(0), D(3), D(0)),
        (D(5), D(3), D(2), D(0)),  # exactly reaching the included hours
        (D(5), D(3), D(3), D(1)),
        (D(5), D(7), D(2), D(2)),  # already over: all of it is overage
        (D(0), D(0), D("1.5"), D("1.5")),
    ],
)
def test_overage_hours(included, before, hours, expected):
    assert overage_hours(included, before, hours) == expected


def test_overage_line_and_soft_limit_without_rate():
    per = period(ISSUED, 0)
    with_rate = SubscriptionPricing(
        price_per_period=eur("15"), included_hours=D(2), overage_rate=eur("12.50")
    )
    line = price_overage(with_rate, "concierge", per, D("1.5"), D(2))
    assert line is not None
    assert line.quantity == D("1.5000")
    assert line.net == eur("18.75")
    assert line.period_key == "2026-03"
    soft = SubscriptionPricing(price_per_period=eur("15"), included_hours=D(2))
    assert price_overage(soft, "concierge", per, D(0), D(10)) is None


def test_acceptance_bills_package_or_first_period_only(make_terms):
    first = period(ISSUED, 0)
    pkg = make_terms(pricing={"model": "package", "price": {"amount": "650", "currency": "EUR"}})
    assert [ln.net for ln in price_at_acceptance(pkg, first)] == [eur("650.00")]
    sub = make_terms(
        pricing={
            "model": "subscription",
            "price_per_period": {"amount": "10", "currency": "EUR"},
            "included_hours": "2",
        }
    )
    (line,) = price_at_acceptance(sub, first)
    assert line.kind == "subscription_period"
    assert line.label_code == "subscription:tutoring:2026-03"
    assert price_at_acceptance(make_terms(), first) == []


def test_work_completed_per_model(make_terms):
    hourly = make_terms()
    (line,) = price_work_completed(hourly, actual_hours=D("1.1"), units=None)
    assert line.net == eur("50.00")  # 66 min -> 75 min at 40/h
    with pytest.raises(PricingError):
        price_work_completed(hourly, actual_hours=None, units=None)
    pkg = make_terms(pricing={"model": "package", "price": {"amount": "650", "currency": "EUR"}})
    assert price_work_completed(pkg, actual_hours=D(40), units=None) == []
    unit = make_terms(
        pricing={
            "model": "per_unit",
            "unit_name": "module",
            "unit_price": {"amount": "10", "currency": "EUR"},
        }
    )
    assert price_work_completed(unit, actual_hours=None, units=4)[0].net == eur("40.00")
    with pytest.raises(PricingError):
        price_work_completed(unit, actual_hours=None, units=None)


def test_zero_amount_work_is_not_billed(make_terms):
    unit = make_terms(
        pricing={
            "model": "per_unit",
            "unit_name": "module",
            "unit_price": {"amount": "10", "currency": "EUR"},
        }
    )
    assert price_work_completed(unit, actual_hours=None, units=0) == []
    free_min = make_terms(
        pricing={
            "model": "hourly",
            "rate": {"amount": "40", "currency": "EUR"},
            "minimum_minutes": 0,
        }
    )
    assert price_work_completed(free_min, actual_hours=D(0), units=None) == []
