"""The vectorised walks (cumulative working time, `timeline`) give exactly the Python
walks' results (`fast_answer_finish`, `fast_finish`, hence `plan_work`), DST weeks and
overlapping or midnight-crossing spans included, and say when they cannot decide."""

from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching.domain.availability import (
    fast_answer_finish,
    fast_finish,
    fast_plan,
    hours_of_us,
    real_week_hours_fast,
    to_us,
    week_label,
)
from matching.domain.schedule import WeeklySchedule
from matching.domain.timeline import Timeline

from .builders import spans
from .test_availability import DAYS, ZONES, hhmm, moments, schedules

US = timedelta(microseconds=1)


@st.composite
def overlapping(draw: st.DrawFn) -> WeeklySchedule:
    """Two spans a day, which may overlap each other or the next day's."""
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    zone = draw(st.sampled_from(ZONES))
    first = spans(days, draw(hhmm), draw(hhmm))
    second = spans(days, draw(hhmm), draw(hhmm))
    return WeeklySchedule.of([*first, *second], zone)


def _timeline(scheds: list[WeeklySchedule], around_us: int, weeks_before: int, weeks_after: int):
    day = around_us // 86_400_000_000 + 719_163  # date ordinal of the UTC day
    monday = day - (day - 1) % 7
    return Timeline(scheds, monday - 7 * weeks_before, monday + 7 * weeks_after)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(schedules(), overlapping()), min_size=1, max_size=4),
    moments(),
    st.sampled_from([5, 15, 60, 600]),
    st.integers(-3 * 3600, 30 * 3600),
    st.integers(0, 40 * 3600),
    st.integers(1, 10 * 24),
    st.sampled_from([timedelta(weeks=8), timedelta(days=2)]),
    st.integers(0, 1),
    st.integers(0, 10),
)
def test_vectorised_walk_is_the_python_walk(
    scheds, now, minutes, not_before_s, effort_s, deadline_h, horizon, before, after
):
    """Decided results equal the walk's (the weekly split of the plan too); with enough
    weeks built, every one is decided."""
    t, h = to_us(now), horizon // US
    earliest = t + max(0, not_before_s) * 1_000_000
    effort, deadline = effort_s * 1_000_000, to_us(now + timedelta(hours=deadline_h))
    tl = _timeline(scheds, t, before, after)
    if not tl.covers(t):
        return
    k = len(scheds)
    s = np.arange(k, dtype=np.int64)
    af, ab, fin, state, f_now = tl.answer_finish(
        s,
        t,
        np.full(k, minutes * 60_000_000, dtype=np.int64),
        h,
        earliest,
        np.full(k, effort, dtype=np.int64),
        deadline,
    )
    aw, aw_state = tl.finish(
        s,
        np.full(k, earliest, dtype=np.int64),
        np.full(k, effort, dtype=np.int64),
        np.full(k, min(earliest + h, deadline), dtype=np.int64),
        f_now if earliest == t else None,  # F(now), as the matcher passes it
    )
    # the matcher's form: one start and one limit for all (scalars), same results
    aw1, aw1_state = tl.finish(
        s, earliest, np.full(k, effort, dtype=np.int64), min(earliest + h, deadline)
    )
    assert aw1_state.tolist() == aw_state.tolist()
    decided = aw_state == 1
    assert aw1[decided].tolist() == aw[decided].tolist()
    enough = tl.hi > min(t + 2 * h, deadline + 2 * h) + 3 * 86_400_000_000
    for i, sched in enumerate(scheds):
        want = fast_answer_finish(sched, t, minutes * 60_000_000, h, earliest, effort, deadline)
        awake = fast_finish(sched, earliest, effort, deadline, h)
        if state[i] >= 0:
            got_finish = int(fin[i]) if state[i] == 1 else None
            assert (int(af[i]), int(ab[i]), got_finish) == want
            if got_finish is not None and effort > 0:
                # the plan's weekly split, from the same pieces
                start = max(int(ab[i]), earliest)
                plan = fast_plan(sched, start, effort, deadline, h)
                assert plan.finish == got_finish
                assert tl.split(i, start, got_finish) == plan.seconds_by_week
        else:
            assert not enough
        if aw_state[i] >= 0:
            assert (int(aw[i]) if aw_state[i] == 1 else None) == awake
        else:
            assert not enough


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(schedules(), overlapping()), min_size=1, max_size=4),
    moments(),
    st.integers(0, 2),
)
def test_week_hours_are_the_week_tables(scheds, now, weeks):
    """`week_us` (what a week's ceiling reads) is the sum `real_week_hours_fast` takes
    of the week table, for every schedule and week held (DST weeks included); None
    outside them."""
    tl = _timeline(scheds, to_us(now), 1, weeks)
    for i, sched in enumerate(scheds):
        for monday in range(tl.first_monday, tl.last_monday + 1, 7):
            us = tl.week_us(i, monday)
            assert us is not None
            assert hours_of_us(us) == real_week_hours_fast(sched, week_label(monday))
        assert tl.week_us(i, tl.last_monday + 7) is None
        assert tl.week_us(i, tl.first_monday - 7) is None
    assert tl.week_us(len(scheds), tl.first_monday) is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(schedules(), overlapping()), min_size=1, max_size=4),
    moments(),
    st.integers(0, 2),
    st.data(),
)
def test_searches_started_from_the_tables_are_the_binary_searches(scheds, now, weeks, data):
    """The walks' searches start from a per-day and a per-4-hours table and step from
    there: the same pieces as a binary search of the whole arrays, at any instant and
    any working time of each schedule, piece boundaries and totals included."""
    tl = _timeline(scheds, to_us(now), 1, weeks)
    n = st.integers(1, 24)
    s = np.array(data.draw(st.lists(st.integers(0, len(scheds) - 1), min_size=1, max_size=24)))
    off = s * tl.span - tl.t0
    ends = (tl.pe[tl.seg[: len(tl.pe)] == k] - (k * tl.span - tl.t0) for k in s.tolist())
    t = np.array(
        [
            data.draw(
                st.one_of(
                    st.integers(tl.t0, tl.t0 + tl.span - 2),
                    st.sampled_from([*(int(e) - d for e in end for d in (-1, 0, 1)), tl.t0]),
                ).filter(lambda x: tl.t0 <= x <= tl.t0 + tl.span - 2)
            )
            for end in ends
        ],
        dtype=np.int64,
    )
    key = off + t
    assert tl._first_end_after(s, t, key).tolist() == tl.pe.searchsorted(key, "right").tolist()
    v = np.array(
        [
            data.draw(
                st.one_of(
                    st.integers(1, tl.span),
                    st.sampled_from([int(tl.total[k]) + d for d in (-1, 0, 1)]),
                    n.map(lambda h: h * 4 * 3_600_000_000),
                ).filter(lambda x: 1 <= x <= tl.span)
            )
            for k in s.tolist()
        ],
        dtype=np.int64,
    )
    key = s * tl.span + v
    got = tl._first_total_from(s, v, key).tolist()
    assert got == tl.ce_key.searchsorted(key, "left").tolist()
