from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from delego_shared.types import Money
from hypothesis import given
from hypothesis import strategies as st
from matching.domain.policy import MatchingPolicy
from matching.domain.rating import (
    RatingPrior,
    RatingStats,
    bayesian_average,
    rating_component,
)
from matching.domain.scoring import (
    awake_us,
    breakdown,
    load_component,
    price_component,
    slack_component,
    slack_us,
    trusted_providers,
)

from .builders import utc


def forty_reviews_averaging_4_8() -> RatingStats:
    stats = RatingStats()
    for stars in [5] * 32 + [4] * 8:
        stats = stats.add(stars)
    return stats


def test_one_five_star_review_does_not_beat_forty_at_4_8():
    one = RatingStats().add(5)
    forty = forty_reviews_averaging_4_8()
    assert forty.mean == pytest.approx(4.8)
    prior = RatingPrior(mean=4.0, weight=10)
    assert bayesian_average(one, prior) == pytest.approx(45 / 11)  # 4.09
    assert bayesian_average(forty, prior) == pytest.approx(232 / 50)  # 4.64
    assert rating_component(forty, prior) > rating_component(one, prior)


def test_a_new_provider_sits_at_the_prior():
    assert bayesian_average(RatingStats()) == 4.0
    assert rating_component(None) == pytest.approx(0.75)


def test_ratings_outside_1_to_5_are_refused():
    with pytest.raises(ValueError, match="1 to 5"):
        RatingStats().add(6)


def test_slack_is_the_share_of_time_left_before_the_deadline():
    now, deadline = utc(2026, 2, 10, 0), utc(2026, 2, 10, 10)
    assert slack_component(now, utc(2026, 2, 10, 2), deadline) == pytest.approx(0.8)
    assert slack_component(now, deadline, deadline) == 0.0
    assert slack_component(now, now - timedelta(hours=1), deadline) == 1.0


def test_price_relative_to_budget_or_cheapest():
    eur = Money.of
    assert price_component(eur("30", "EUR"), eur("120", "EUR")) == pytest.approx(0.75)
    assert price_component(eur("120", "EUR"), eur("120", "EUR")) == 0.0
    assert price_component(eur("60", "EUR"), None, eur("30", "EUR")) == pytest.approx(0.5)
    assert price_component(eur("30", "EUR"), None, eur("30", "EUR")) == 1.0


def test_load_prefers_providers_with_free_capacity():
    assert load_component(Decimal(0), Decimal(40)) == 1.0
    assert load_component(Decimal(30), Decimal(40)) == pytest.approx(0.25)
    assert load_component(Decimal(50), Decimal(40)) == 0.0


def test_total_is_the_weighted_sum_and_reports_weights():
    weights = {
        "slack": 0.5,
        "rating": 0.2,
        "price": 0.1,
        "load": 0.1,
        "trust_bonus": 0.1,
        "awake": 0.0,
    }
    comps = {"slack": 0.8, "rating": 0.5, "price": 1.0, "load": 0.0, "trust_bonus": 1.0}
    b = breakdown(comps, weights)
    assert b.total == pytest.approx(0.5 * 0.8 + 0.2 * 0.5 + 0.1 * 1.0 + 0.0 + 0.1 * 1.0)
    assert (b.slack, b.rating, b.price, b.load, b.trust_bonus) == (0.8, 0.5, 1.0, 0.0, 1.0)
    assert b.weights == weights


def test_trusted_providers_are_those_rated_4_or_more():
    assert trusted_providers([("a", 5), ("b", 3), ("c", 4), ("b", 2)]) == {"a", "c"}


def test_policy_rejects_unknown_or_negative_weights():
    with pytest.raises(ValueError, match="unknown"):
        MatchingPolicy(weights={"speed": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        MatchingPolicy(weights={"slack": -1.0})


_instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@given(a=_instants, b=_instants, c=_instants)
def test_slack_and_awake_on_integers_are_the_floats_of_the_timedelta_formulas(a, b, c):
    """The ranking scores from µs integers: the same floats as `total_seconds` gives."""
    us = timedelta(microseconds=1)
    a_us, b_us, c_us = ((x - datetime(1970, 1, 1, tzinfo=UTC)) // us for x in (a, b, c))
    window = (c - a).total_seconds()
    slack = 0.0 if window <= 0 else min(1.0, max(0.0, (c - b).total_seconds() / window))
    assert slack_us(a_us, b_us, c_us) == slack
    wait = (b - a).total_seconds()
    awake = 1.0 if wait <= 0 else 0.0 if window <= 0 else min(1.0, max(0.0, 1 - wait / window))
    assert awake_us(a_us, b_us, c_us) == awake
