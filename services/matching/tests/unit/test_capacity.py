from datetime import timedelta
from decimal import Decimal

from matching.domain.capacity import (
    capacity_key,
    fits,
    remaining_capacity,
    reservation_keys,
    week_key,
)
from matching.domain.schedule import WeeklySchedule, plan_work

from .builders import WEEKDAYS, at, spans, utc


def test_week_key_uses_the_providers_zone():
    # Sunday 23:30 in Paris is already Monday in Sydney
    instant = at("Europe/Paris", 2026, 2, 15, 23, 30)
    assert week_key("prv_1", instant, "Europe/Paris") == "prv_1:2026-W07"
    assert week_key("prv_1", instant, "Australia/Sydney") == "prv_1:2026-W08"


def test_iso_week_year_boundary():
    assert week_key("p", utc(2026, 12, 31, 12), "UTC") == "p:2026-W53"
    assert week_key("p", utc(2027, 1, 4, 12), "UTC") == "p:2027-W01"


def test_reservation_keys_split_per_week_and_sum_to_the_effort():
    s = WeeklySchedule.of(spans(WEEKDAYS, "09:00", "18:00"), "Europe/Paris")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 13, 17, 40), timedelta(hours=1))
    keys = reservation_keys("prv_1", plan)
    assert keys == {
        capacity_key("prv_1", "2026-W07"): Decimal("0.3333"),
        capacity_key("prv_1", "2026-W08"): Decimal("0.6667"),
    }
    assert sum(keys.values()) == Decimal("1.0000")


def test_remaining_capacity_and_fit():
    reserved = {"p:2026-W07": Decimal(38)}
    assert remaining_capacity(Decimal(40), reserved, "p:2026-W07") == Decimal(2)
    assert remaining_capacity(Decimal(40), reserved, "p:2026-W08") == Decimal(40)
    assert remaining_capacity(Decimal(30), reserved, "p:2026-W07") == Decimal(0)
    cap = {"p:2026-W07": Decimal(40), "p:2026-W08": Decimal(40)}
    assert fits(cap, reserved, {"p:2026-W07": Decimal(2)})
    assert not fits(cap, reserved, {"p:2026-W07": Decimal("2.5")})
    assert fits(cap, reserved, {"p:2026-W07": Decimal(1), "p:2026-W08": Decimal(30)})
    assert not fits(cap, reserved, {"p:2026-W09": Decimal(1)})  # a week with no ceiling
