"""Work reported in exact minutes (matching `actual_minutes`) is billed on those minutes."""

from decimal import Decimal

import pytest
from billing.domain.pricing import billable_minutes, price_hourly
from delego_shared.events.common import HourlyPricing
from delego_shared.types import Money


@pytest.mark.parametrize(("increment", "billed"), [(1, 70), (5, 70), (15, 75)])
def test_minutes_turned_into_hours_and_back_are_not_rounded_up_by_the_residue(
    increment: int, billed: int
) -> None:
    hours = Decimal(70) / 60  # 1.166…67: what billing derives from 70 minutes
    assert billable_minutes(hours * 60, 0, increment) == billed


def test_seventy_minutes_at_forty_an_hour() -> None:
    p = HourlyPricing(rate=Money.of("40.00", "EUR"), minimum_minutes=0, increment_minutes=1)
    line = price_hourly(p, "tutoring", Decimal(70) / 60)
    assert line.intervention_minutes == 70
    assert line.net == Money.of("46.67", "EUR")
    assert line.quantity == Decimal("1.1667")
