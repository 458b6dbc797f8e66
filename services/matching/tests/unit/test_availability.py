"""The integer week tables give exactly what the datetime walks give, DST weeks included."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching.domain.availability import (
    fast_answer,
    fast_answer_finish,
    fast_finish,
    fast_plan,
    fast_response,
    from_us,
    local_week_label,
    real_week_hours_fast,
    to_us,
    week_table,
)
from matching.domain.capacity import real_week_hours, week_key
from matching.domain.response import response_window
from matching.domain.schedule import WeeklySchedule, iso_week, plan_work

from .builders import at, spans

ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "Asia/Kathmandu"]
# the transitions of 2026: Paris 29 Mar / 25 Oct, New York 8 Mar / 1 Nov, Sydney 5 Apr / 4 Oct
DST_MOMENTS = [
    at("Europe/Paris", 2026, 3, 27, 12),
    at("Europe/Paris", 2026, 10, 23, 12),
    at("America/New_York", 2026, 3, 6, 12),
    at("America/New_York", 2026, 10, 30, 12),
    at("Australia/Sydney", 2026, 4, 3, 12),
]
US = timedelta(microseconds=1)
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

hhmm = st.builds(
    lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45])
)


@st.composite
def schedules(draw: st.DrawFn) -> WeeklySchedule:
    days = draw(st.lists(st.sampled_from(DAYS), min_size=0, max_size=7, unique=True))
    start, end = draw(hhmm), draw(hhmm)
    return WeeklySchedule.of(spans(days, start, end), draw(st.sampled_from(ZONES)))


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    base = draw(st.sampled_from(DST_MOMENTS))
    return base + timedelta(
        minutes=draw(st.integers(0, 5 * 24 * 60)), microseconds=draw(st.integers(0, 999_999))
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedules(),
    moments(),
    st.integers(1, 40 * 3600),
    st.integers(1, 10 * 24),
    st.sampled_from([timedelta(weeks=8), timedelta(days=2)]),
)
def test_fast_plan_is_plan_work(schedule, now, effort_s, deadline_h, horizon):
    deadline = now + timedelta(hours=deadline_h)
    want = plan_work(
        schedule, now, timedelta(seconds=effort_s), not_after=deadline, horizon=horizon
    )
    got = fast_plan(schedule, to_us(now), effort_s * 1_000_000, to_us(deadline), horizon // US)
    assert got.work_plan() == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), moments(), st.sampled_from([5, 15, 60, 600]))
def test_fast_response_is_response_window(schedule, asked_at, minutes):
    window, horizon = timedelta(minutes=minutes), timedelta(weeks=8)
    assert fast_response(schedule, asked_at, window, horizon) == response_window(
        schedule, asked_at, window, horizon
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedules(),
    moments(),
    st.sampled_from([5, 15, 60, 600]),
    st.integers(-3 * 3600, 30 * 3600),
    st.integers(0, 40 * 3600),
    st.integers(1, 10 * 24),
    st.sampled_from([timedelta(weeks=8), timedelta(days=2)]),
)
def test_one_walk_answers_and_finishes_like_the_two(
    schedule, now, minutes, not_before_s, effort_s, deadline_h, horizon
):
    """The matcher's single walk = `fast_answer`, then `fast_finish` from the later of the
    answer and the earliest start (a `not_before` may be before or after the answer),
    which is `plan_work`'s finish."""
    t, h = to_us(now), horizon // US
    earliest = t + max(0, not_before_s) * 1_000_000
    effort, deadline = effort_s * 1_000_000, to_us(now + timedelta(hours=deadline_h))
    answer_from, answer_by = fast_answer(schedule, t, minutes * 60_000_000, h)
    start = max(earliest, answer_by)
    want = (answer_from, answer_by, fast_finish(schedule, start, effort, deadline, h))
    got = fast_answer_finish(schedule, t, minutes * 60_000_000, h, earliest, effort, deadline)
    assert got == want
    plan = plan_work(
        schedule,
        from_us(start),
        timedelta(seconds=effort_s),
        not_after=from_us(deadline),
        horizon=horizon,
    )
    assert want[2] == (None if plan.finish is None else to_us(plan.finish))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), moments(), st.integers(-2 * 24 * 60, 9 * 24 * 60))
def test_first_after_skips_exactly_the_spans_a_walk_would_skip(schedule, moment, minutes):
    """Every span before `first_after(t)` ends by `t`; the one at it (if any) has a span
    ending after `t` at or before it, so it is where a walk from `t` has to look."""
    monday = moment.date().toordinal() - moment.date().weekday()
    table = week_table(schedule, monday)
    t = to_us(moment) + minutes * 60_000_000
    i = table.first_after(t)
    assert all(b <= t for _, _, b in table.spans[:i])
    if i < len(table.spans):
        assert max(b for _, _, b in table.spans[: i + 1]) > t


def test_a_dst_week_table_is_shorter_in_spring_and_longer_in_autumn():
    """Paris 01:00-04:00 every night: 3 h, but 2 h on 29 March and 4 h on 25 October."""
    schedule = WeeklySchedule.of(spans(DAYS, "01:00", "04:00"), "Europe/Paris")

    def hours_on(monday: datetime, weekday: int) -> float:
        table = week_table(schedule, monday.date().toordinal())
        day = monday.date().toordinal() + weekday
        return sum(b - a for d, a, b in table.spans if d == day) / 3.6e9

    spring = datetime(2026, 3, 23, tzinfo=UTC)
    autumn = datetime(2026, 10, 19, tzinfo=UTC)
    assert [hours_on(spring, d) for d in (5, 6)] == [3.0, 2.0]
    assert [hours_on(autumn, d) for d in (5, 6)] == [3.0, 4.0]
    assert week_table(schedule, autumn.date().toordinal()).label == "2026-W43"


def test_micro_second_conversions_round_trip():
    t = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)
    assert from_us(to_us(t)) == t


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), moments())
def test_real_week_hours_from_the_week_table_are_the_intervals_ones(schedule, moment):
    """The matcher's weekly capacity reads the real hours of a week from its table."""
    week = iso_week(moment.date())
    assert real_week_hours_fast(schedule, week) == real_week_hours(schedule, week)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ZONES), moments())
def test_local_week_label_is_the_capacity_keys_week(zone, moment):
    """The matcher's load component reads the current week by date arithmetic: the same
    week as `week_key` (the local date in the provider's zone), across DST weeks."""
    assert local_week_label(ZoneInfo(zone), to_us(moment)) == week_key("", moment, zone)[1:]
