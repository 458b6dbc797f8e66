import random
from datetime import UTC, datetime, timedelta

import pytest
from notifications.domain import RetryPolicy


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


POLICY = RetryPolicy(max_attempts=6, base=timedelta(seconds=10), cap=timedelta(minutes=2))


def test_ceiling_doubles_then_caps():
    assert [POLICY.ceiling(n).total_seconds() for n in range(1, 7)] == [10, 20, 40, 80, 120, 120]


def test_full_jitter_spans_zero_to_the_ceiling():
    assert POLICY.delay(3, Fixed(0.0)) == timedelta(0)
    assert POLICY.delay(3, Fixed(0.5)) == timedelta(seconds=20)
    assert POLICY.delay(3, Fixed(0.999)) < POLICY.ceiling(3)


def test_schedule_bounds_hold_for_many_seeds():
    for seed in range(200):
        schedule = POLICY.schedule(random.Random(seed))
        assert len(schedule) == POLICY.max_attempts - 1
        for n, d in enumerate(schedule, start=1):
            assert timedelta(0) <= d < POLICY.ceiling(n)
            assert d <= POLICY.cap


def test_jitter_actually_varies_and_is_reproducible():
    a = POLICY.schedule(random.Random(1))
    assert a == POLICY.schedule(random.Random(1))
    assert a != POLICY.schedule(random.Random(2))


def test_no_retry_once_attempts_are_exhausted():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert POLICY.next_attempt_at(now, 5, Fixed(0.5)) == now + timedelta(minutes=1)
    assert POLICY.delay(6, Fixed(0.5)) is None
    assert POLICY.next_attempt_at(now, 6, Fixed(0.5)) is None
    assert RetryPolicy(max_attempts=1).schedule(Fixed(0.5)) == []


def test_huge_attempt_numbers_do_not_overflow():
    p = RetryPolicy(max_attempts=10_000)
    assert p.ceiling(5_000) == p.cap


@pytest.mark.parametrize(
    "kw",
    [
        {"max_attempts": 0},
        {"base": timedelta(0)},
        {"base": timedelta(minutes=5), "cap": timedelta(minutes=1)},
    ],
)
def test_invalid_policies_are_rejected(kw):
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**kw)


def test_a_bad_random_source_is_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        POLICY.delay(1, Fixed(1.0))
