"""The integer estimates of many price classes at once (`price_columns.estimate`) are
exactly `estimate_price` (Decimal), for every pricing model, currencies with 0, 2 and 3
minor units, roundings on the half, and request shapes in hours or in units."""

from decimal import Decimal

import numpy as np
from delego_shared.events.common import (
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SubscriptionPricing,
)
from delego_shared.types import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching.domain.price_columns import (
    KIND_PYTHON,
    PRICE_SCALE,
    ClassParams,
    PriceColumns,
    estimate,
    most_per_week,
)
from matching.domain.pricing_estimate import estimate_price, work_hours, work_units
from matching.domain.schedule import hours_to_timedelta

CURRENCIES = {"EUR": 0, "JPY": 1, "KWD": 2}
amounts = st.decimals(min_value=0, max_value=5000, places=3).map(lambda d: d.normalize())
money = st.builds(lambda a, c: Money.of(a, c), amounts, st.sampled_from(list(CURRENCIES)))
hours = st.decimals(min_value=Decimal("0.25"), max_value=60, places=2)
pricings = st.one_of(
    st.builds(
        lambda r, inc, low: HourlyPricing(rate=r, increment_minutes=inc, minimum_minutes=low),
        money,
        st.sampled_from([1, 7, 15, 30, 60]),
        st.sampled_from([0, 30, 60, 90]),
    ),
    st.builds(
        lambda p, h: PackagePricing(price=p, hours_included=h),
        money,
        st.one_of(st.none(), hours),
    ),
    st.builds(
        lambda p, h, o: SubscriptionPricing(
            price_per_period=p,
            included_hours=h,
            overage_rate=None if o is None else Money.of(o, p.currency),
        ),
        money,
        st.decimals(min_value=0, max_value=20, places=2),
        st.one_of(st.none(), amounts),
    ),
    st.builds(lambda p: PerUnitPricing(unit_name="page", unit_price=p), money),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(pricings, st.sampled_from(["1", "1.5", "2", "3.25"])), min_size=1),
    st.one_of(hours, st.none()),
    st.one_of(st.none(), st.integers(1, 12)),
)
def test_integer_estimates_are_the_decimal_ones(classes, effort_hours, units):
    if effort_hours is None and units is None:
        units = 3
    params, cols = ClassParams(), PriceColumns()
    half = len(classes) // 2
    # in two rounds, as the catalog grows between requests: the second one extends the
    # shape's tables
    for lo, hi in ((0, half), (half, len(classes))):
        for cid in range(lo, hi):
            pricing, typical = classes[cid]
            money = getattr(pricing, "rate", None) or getattr(pricing, "price", None)
            money = money or getattr(pricing, "price_per_period", None) or pricing.unit_price
            params.add(cid, pricing, Decimal(typical), CURRENCIES[money.currency])
        cols.room(hi)
        ids = np.flatnonzero(params.kind[lo:hi] != KIND_PYTHON) + lo
        estimate(params, cols, ids, effort_hours, units)
    ids = np.flatnonzero(params.kind[: len(classes)] != KIND_PYTHON)
    state, amount, code = cols.state[ids], cols.amount[ids], cols.currency[ids]
    effort, most = cols.effort[ids], cols.most_e4[ids]
    for k, cid in enumerate(ids.tolist()):
        pricing, typical = classes[cid]
        h = work_hours(effort_hours, units, Decimal(typical))
        want = estimate_price(pricing, h, work_units(effort_hours, units, Decimal(typical)))
        us = hours_to_timedelta(h).total_seconds() * 1_000_000
        assert effort[k] == us
        assert most[k] == most_per_week(int(us)) * 10_000
        if state[k] == 3:
            continue
        if want.price is None:
            assert state[k] == 1
        else:
            assert state[k] == 2
            assert Decimal(int(amount[k])) / PRICE_SCALE == want.price.amount
            assert code[k] == CURRENCIES[want.price.currency]


def _one_class(pricing, effort_hours="6", typical="2"):
    params, cols = ClassParams(), PriceColumns()
    params.add(0, pricing, Decimal(typical), 0)
    cols.room(1)
    estimate(params, cols, np.array([0]), Decimal(effort_hours), None)
    return int(cols.state[0]), int(cols.amount[0])


def test_ordinary_prices_stay_on_the_vector_path():
    """Everyday amounts are far from 64 bits: each model is priced in the columns (state
    2), not left to the one-by-one Python estimate (state 3)."""
    eur = lambda a: Money.of(a, "EUR")  # noqa: E731
    cases = [
        HourlyPricing(rate=eur("60"), increment_minutes=15, minimum_minutes=60),
        PackagePricing(price=eur("650"), hours_included=Decimal("40")),
        SubscriptionPricing(
            price_per_period=eur("50"), included_hours=Decimal("3"), overage_rate=eur("29")
        ),
        SubscriptionPricing(price_per_period=eur("15"), included_hours=Decimal("10")),
        PerUnitPricing(unit_name="module", unit_price=eur("10")),
    ]
    for pricing in cases:
        want = estimate_price(pricing, Decimal("6"), 3).price
        assert want is not None
        assert _one_class(pricing) == (2, int(want.amount * PRICE_SCALE)), pricing


def test_products_beyond_64_bits_are_left_to_the_python_path():
    """An overage rate times the extra hours past int64 is not computed in the columns."""
    huge = SubscriptionPricing(
        price_per_period=Money.of("50", "EUR"),
        included_hours=Decimal("0"),
        overage_rate=Money.of("900000", "EUR"),
    )
    # 900 000 EUR is 9·10¹¹ in 10⁻⁶, 6 extra hours 6·10⁶ in 10⁻⁶ h: 5.4·10¹⁸ > 4·10¹⁸
    assert _one_class(huge)[0] == 3
