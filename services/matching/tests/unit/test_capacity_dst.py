"""Weekly capacity in real (UTC) hours of the real week, across DST transitions.

A provider working Sunday 00:00-04:00 (wall clock) has 4 h in an ordinary
week, 5 real hours in the week the clocks go back and 3 in the week they go
forward (30 minutes either way on Lord Howe Island).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from matching.domain.capacity import (
    fits,
    nominal_weekly_hours,
    real_week_hours,
    week_capacities,
    week_capacity,
)
from matching.domain.filters import Filter
from matching.domain.index import CandidateIndex
from matching.domain.matcher import Qualified, Rejection, evaluate, find_matches
from matching.domain.readmodel import ProviderEntry
from matching.domain.schedule import WeeklySchedule

from .builders import at, offer, provider, spans, spec

SUNDAY_NIGHT = spans(["sun"], "00:00", "04:00")

# (zone, ordinary week, fall-back week, its real hours, spring-forward week, its real hours)
TRANSITIONS = [
    ("America/Toronto", "2026-W42", "2026-W44", "5", "2026-W10", "3"),
    ("Europe/Paris", "2026-W42", "2026-W43", "5", "2026-W13", "3"),
    ("Australia/Sydney", "2026-W20", "2026-W14", "5", "2026-W40", "3"),
    ("Australia/Lord_Howe", "2026-W20", "2026-W14", "4.5", "2026-W40", "3.5"),
]


@pytest.mark.parametrize(("zone", "plain", "back", "back_h", "fwd", "fwd_h"), TRANSITIONS)
def test_real_week_hours_have_the_true_length_of_transition_weeks(
    zone: str, plain: str, back: str, back_h: str, fwd: str, fwd_h: str
) -> None:
    s = WeeklySchedule.of(SUNDAY_NIGHT, zone)
    assert nominal_weekly_hours(s) == Decimal(4)
    assert real_week_hours(s, plain) == Decimal(4)
    assert real_week_hours(s, back) == Decimal(back_h)
    assert real_week_hours(s, fwd) == Decimal(fwd_h)


@pytest.mark.parametrize(("zone", "plain", "back", "back_h", "fwd", "fwd_h"), TRANSITIONS)
def test_a_full_schedule_capacity_follows_the_real_week_but_never_shrinks(
    zone: str, plain: str, back: str, back_h: str, fwd: str, fwd_h: str
) -> None:
    s = WeeklySchedule.of(SUNDAY_NIGHT, zone)
    assert week_capacity(Decimal(4), s, back) == Decimal(back_h)
    assert week_capacity(Decimal(4), s, plain) == Decimal(4)
    # the short week keeps the declared figure: the schedule walk itself limits it
    assert week_capacity(Decimal(4), s, fwd) == Decimal(4)


def test_a_deliberately_lower_capacity_stays_as_declared_in_a_long_week() -> None:
    s = WeeklySchedule.of(SUNDAY_NIGHT, "America/Toronto")
    assert week_capacity(Decimal(3), s, "2026-W44") == Decimal(3)


def test_week_capacities_per_key_and_fit() -> None:
    s = WeeklySchedule.of(SUNDAY_NIGHT, "America/Toronto")
    caps = week_capacities("p", Decimal(4), s, ["p:2026-W44", "p:2026-W45", "q:2026-W44"])
    assert caps == {"p:2026-W44": Decimal(5), "p:2026-W45": Decimal(4)}
    assert fits(caps, {}, {"p:2026-W44": Decimal("4.5")})
    assert not fits(caps, {"p:2026-W44": Decimal(1)}, {"p:2026-W44": Decimal("4.5")})
    assert not fits(caps, {}, {"p:2026-W45": Decimal("4.5")})


def _toronto(capacity: str):
    return provider("prv_to", zone="America/Toronto", schedule=SUNDAY_NIGHT, capacity=capacity)


# Saturday 31 October 2026 noon in Toronto; the clocks go back on Sunday 1 November at 02:00
SATURDAY = at("America/Toronto", 2026, 10, 31, 12)
MONDAY = at("America/Toronto", 2026, 11, 2, 9)


def test_the_toronto_fall_back_night_takes_a_job_longer_than_its_wall_clock_hours() -> None:
    p, o = _toronto("4"), offer("off_to", "prv_to")
    r = evaluate(o, ProviderEntry.of(p), spec(deadline=MONDAY, effort="4.5"), SATURDAY)
    assert isinstance(r, Qualified)
    # answers 00:00-00:15 EDT, then 4.5 real hours = 03:45 EST (01:00-02:00 is lived twice)
    assert r.finish == at("America/Toronto", 2026, 11, 1, 3, 45)
    assert r.reservation == {"prv_to:2026-W44": Decimal("4.5000")}
    assert r.capacity == {"prv_to:2026-W44": Decimal(5)}


def test_a_declared_capacity_below_the_job_still_refuses_it() -> None:
    p, o = _toronto("3"), offer("off_to", "prv_to")
    r = evaluate(o, ProviderEntry.of(p), spec(deadline=MONDAY, effort="3.5"), SATURDAY)
    assert r == Rejection(Filter.CAPACITY)


def test_an_ordinary_week_still_has_only_its_wall_clock_hours() -> None:
    idx = CandidateIndex.build([_toronto("4")], [offer("off_to", "prv_to")])
    a_week_later = SATURDAY + timedelta(days=7)
    s = spec(deadline=a_week_later + timedelta(days=2), effort="4.5")
    out = find_matches(idx, s, a_week_later)
    assert out.best is None
    assert [r.filter for r in out.reasons] == ["deadline"]  # 4 h that night, job 4.5 h
