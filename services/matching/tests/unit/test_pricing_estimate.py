from decimal import Decimal

import pytest
from delego_shared.events.common import PackagePricing, PerUnitPricing, SubscriptionPricing
from delego_shared.types import Money
from matching.domain.pricing_estimate import (
    BudgetCheck,
    billable_minutes,
    check_budget,
    estimate_price,
    work_hours,
    work_units,
)

from .builders import hourly


@pytest.mark.parametrize(
    ("effort", "minutes"),
    [("0.5", 60), ("1", 60), ("1.1", 75), ("1.25", 75), ("1.26", 90), ("2", 120)],
)
def test_hourly_rounds_up_to_increment_then_minimum(effort, minutes):
    assert billable_minutes(hourly(minimum=60, inc=15), Decimal(effort)) == minutes


def test_hourly_price_is_rate_times_billable_hours_to_the_cent():
    got = estimate_price(hourly("16.25"), Decimal("1.1"), 1)
    assert got.price == Money.of("20.31", "EUR")  # 75 min x 16.25/h = 20.3125


def test_package_is_its_price_unless_effort_exceeds_included_hours():
    pkg = PackagePricing(price=Money.of("650", "EUR"), hours_included=Decimal(40))
    assert estimate_price(pkg, Decimal(40), 1).price == Money.of("650.00", "EUR")
    over = estimate_price(pkg, Decimal(41), 1)
    assert over.price is None
    assert over.problem is not None
    assert "40" in over.problem


def test_subscription_adds_overage_beyond_included_hours():
    sub = SubscriptionPricing(
        price_per_period=Money.of("50", "EUR"),
        included_hours=Decimal(5),
        overage_rate=Money.of("12", "EUR"),
    )
    assert estimate_price(sub, Decimal(3), 1).price == Money.of("50.00", "EUR")
    assert estimate_price(sub, Decimal("6.5"), 1).price == Money.of("68.00", "EUR")


def test_subscription_without_overage_rate_cannot_price_extra_hours():
    sub = SubscriptionPricing(price_per_period=Money.of("15", "EUR"), included_hours=Decimal(2))
    assert estimate_price(sub, Decimal(2), 1).price == Money.of("15.00", "EUR")
    assert estimate_price(sub, Decimal(3), 1).price is None


def test_per_unit_is_units_times_unit_price():
    pu = PerUnitPricing(unit_name="module", unit_price=Money.of("10", "EUR"))
    assert estimate_price(pu, Decimal(9), 3).price == Money.of("30.00", "EUR")


def test_hours_and_units_derive_from_each_other_through_typical_effort():
    assert work_hours(Decimal(2), None, Decimal(3)) == Decimal(2)
    assert work_hours(None, 4, Decimal("1.5")) == Decimal(6)
    assert work_units(None, 4, Decimal("1.5")) == 4
    assert work_units(Decimal(4), None, Decimal("1.5")) == 3  # ceil(4 / 1.5)
    assert work_units(Decimal("0.1"), None, Decimal(3)) == 1
    with pytest.raises(ValueError, match="effort"):
        work_hours(None, None, Decimal(1))


def test_budget_check():
    price = Money.of("60.00", "EUR")
    assert check_budget(price, None) is BudgetCheck.OK
    assert check_budget(price, Money.of("60", "EUR")) is BudgetCheck.OK
    assert check_budget(price, Money.of("59.99", "EUR")) is BudgetCheck.OVER
    assert check_budget(price, Money.of("100", "USD")) is BudgetCheck.CURRENCY_MISMATCH
