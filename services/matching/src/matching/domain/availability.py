"""Precomputed availability: a schedule's working time as integer UTC intervals per week.

`plan_work` and `response_window` (schedule.py, response.py) are the
specification: they walk wall-clock spans and convert them to instants with
the zone's real offsets, which costs tens of microseconds per span. Matching
needs the same answers for thousands of offers per request, so each
(schedule, local ISO week) is converted ONCE, with that same DST-correct code
(`WeeklySchedule.intervals`), into a tuple of `(local day ordinal, start µs,
end µs)` since the epoch, and the walks below run on plain integers. Every
span of one local ISO week belongs to that week's capacity key, so a table
has a single week label. Tables are cached per schedule object, which
providers with the same hours and zone share (`readmodel._schedule`).

Exactness: instants are integer microseconds, the walk is the same algorithm
in the same order, so results are identical (tests compare both on random
schedules across the Paris and New York DST weeks).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from zoneinfo import ZoneInfo

from .response import ResponseWindow
from .schedule import WeeklySchedule, WorkPlan, iso_week

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(instant: datetime) -> int:
    """An aware instant as integer microseconds since the epoch (exact)."""
    return (instant - EPOCH) // _US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class WeekTable:
    label: str
    """ISO week of the provider-local days (`2026-W13`): the capacity key's week."""
    spans: tuple[tuple[int, int, int], ...]
    """(local day ordinal, UTC start µs, UTC end µs), in `intervals` order."""
    reach: tuple[int, ...]
    """Running maximum of the span ends: every span before `bisect_right(reach, t)`
    ends at or before `t`, so a walk from `t` skips them without looking."""

    def first_after(self, cursor: int) -> int:
        """Index of the first span a walk at `cursor` can use (the ones before end by then)."""
        return bisect_right(self.reach, cursor)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_US = 86_400_000_000
_MINUTE_US = 60_000_000


@lru_cache(maxsize=65_536)
def _steady_offset(zone: ZoneInfo, monday: int) -> int | None:
    """The zone's offset in µs when it is the same at every local midnight from the
    Sunday before to the Monday after this week (no transition can touch its spans,
    which end at the latest on that Monday), else None."""
    offsets = {zone.utcoffset(datetime.fromordinal(d)) for d in range(monday - 1, monday + 9)}
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    return None if offset is None else offset // _US


@lru_cache(maxsize=65_536)
def _template(schedule: WeeklySchedule) -> tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]:
    """The week's spans relative to local Monday 00:00 (day index, start µs, end µs) and
    the running maximum of their ends: a week whose offset is steady is this template
    shifted by one constant, so its table costs a few additions on first use."""
    spans = tuple(
        (d, d * _DAY_US + start * _MINUTE_US, d * _DAY_US + (start + length) * _MINUTE_US)
        for d in range(7)
        for start, length in schedule.by_weekday[d]
    )
    return spans, _reach(spans)


def _reach(spans: tuple[tuple[int, int, int], ...]) -> tuple[int, ...]:
    reach: list[int] = []
    top = -1
    for _, _, b in spans:
        top = b if b > top else top
        reach.append(top)
    return tuple(reach)


@lru_cache(maxsize=4_096)
def week_label(monday: int) -> str:
    """ISO week label of the week starting on `monday` (a date ordinal)."""
    return iso_week(date.fromordinal(monday))


@lru_cache(maxsize=262_144)
def week_table(schedule: WeeklySchedule, monday: int) -> WeekTable:
    """The working intervals of the local ISO week starting on `monday` (a date ordinal).

    A week without an offset change is the schedule's template shifted by the
    week's local midnight (what `wall_span_instants` answers for a single
    offset); a week with one goes through the schedule's own DST-aware
    conversion.
    """
    offset = _steady_offset(schedule.zone, monday)
    if offset is None:
        first = date.fromordinal(monday)
        spans = tuple(
            (d.toordinal(), to_us(a), to_us(b))
            for d, a, b in schedule.intervals(first, first + timedelta(days=6))
        )
        return WeekTable(week_label(monday), spans, _reach(spans))
    rel, reach = _template(schedule)
    shift = (monday - _EPOCH_ORDINAL) * _DAY_US - offset
    return WeekTable(
        week_label(monday),
        tuple((monday + d, a + shift, b + shift) for d, a, b in rel),
        tuple(r + shift for r in reach),
    )


_E4 = Decimal("0.0001")


def real_week_hours_fast(schedule: WeeklySchedule, week: str) -> Decimal:
    """`capacity.real_week_hours` from the week's table: the same intervals, summed in
    µs (whole seconds each, as there), without converting the spans again."""
    us = sum(b - a for _, a, b in week_table(schedule, week_monday(week)).spans)
    return hours_of_us(us)


@lru_cache(maxsize=4_096)
def hours_of_us(us: int) -> Decimal:
    """A week's real hours from its spans' µs (whole seconds, as `real_week_hours`);
    few distinct values recur."""
    return (Decimal(us // 1_000_000) / 3600).quantize(_E4)


@lru_cache(maxsize=4_096)
def week_monday(week: str) -> int:
    """The Monday (date ordinal) of an ISO week label (`week_label`'s inverse)."""
    year, w = week.split("-W")
    return date.fromisocalendar(int(year), int(w), 1).toordinal()


def _tables(schedule: WeeklySchedule, first: int, last: int) -> Iterator[WeekTable]:
    """The week tables from `first` to `last` (date ordinals), fetched as the walk goes:
    a walk usually ends within a day or two of an eight-week horizon."""
    for monday in range(first - (first - 1) % 7, last + 1, 7):
        yield week_table(schedule, monday)


@dataclass(frozen=True, slots=True)
class FastPlan:
    """`WorkPlan` in integers: finish in µs (None: not finished before the limit)."""

    finish: int | None
    seconds_by_week: tuple[tuple[str, int], ...]

    def work_plan(self) -> WorkPlan:
        return WorkPlan(None if self.finish is None else from_us(self.finish), self.seconds_by_week)


def _local_ordinal(schedule: WeeklySchedule, us: int) -> int:
    """The provider-local date (ordinal) of an instant: arithmetic when the zone's offset
    is steady around that week (a local date is within a day of the UTC one)."""
    return _zone_ordinal(schedule.zone, us)


def _zone_ordinal(zone: ZoneInfo, us: int) -> int:
    utc = us // _DAY_US + _EPOCH_ORDINAL
    offset = _steady_offset(zone, utc - (utc - 1) % 7)
    if offset is not None:
        return (us + offset) // _DAY_US + _EPOCH_ORDINAL
    return from_us(us).astimezone(zone).date().toordinal()


_shared_ordinal = lru_cache(maxsize=4_096)(_zone_ordinal)
"""`_zone_ordinal` of the instants every candidate of a request shares (its `now`, the
horizon's end): computed once per zone and request."""


def local_week_label(zone: ZoneInfo, us: int) -> str:
    """ISO week label of the local date of an instant (`capacity.week_key`'s week), by
    date arithmetic where the zone's offset is steady (cached per zone and instant)."""
    day = _shared_ordinal(zone, us)
    return week_label(day - (day - 1) % 7)


def fast_plan(
    schedule: WeeklySchedule, now: int, effort: int, not_after: int | None, horizon: int
) -> FastPlan:
    """`plan_work` on the week tables (all arguments in µs); same result."""
    if effort <= 0:
        return FastPlan(now, ())
    if schedule.is_empty:
        return FastPlan(None, ())
    limit = now + horizon
    if not_after is not None and not_after < limit:
        limit = not_after
    first = _local_ordinal(schedule, now) - 1
    last = _local_ordinal(schedule, limit) + 1
    remaining, cursor = effort, now
    weeks: dict[str, int] = {}
    for table in _tables(schedule, first, last):
        label = table.label
        for day, a, b in islice(table.spans, table.first_after(cursor), None):
            if day < first or day > last or b <= cursor:
                continue
            if a < cursor:
                a = cursor
            if a >= limit:
                return FastPlan(None, _weeks(weeks))
            take = b - a if b - a < remaining else remaining
            weeks[label] = weeks.get(label, 0) + take
            remaining -= take
            cursor = a + take
            if remaining <= 0:
                return FastPlan(cursor, _weeks(weeks))
    return FastPlan(None, _weeks(weeks))


def _weeks(weeks: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple((w, us // 1_000_000) for w, us in sorted(weeks.items()))


def fast_finish(
    schedule: WeeklySchedule, now: int, effort: int, not_after: int | None, horizon: int
) -> int | None:
    """`fast_plan(...).finish` without the weekly split: what the deadline filter reads
    for every candidate (the split is computed only when capacity needs it)."""
    if effort <= 0:
        return now
    if schedule.is_empty:
        return None
    limit = now + horizon
    if not_after is not None and not_after < limit:
        limit = not_after
    first = _local_ordinal(schedule, now) - 1
    monday = first - (first - 1) % 7
    j = week_table(schedule, monday).first_after(now)
    return _finish_from(schedule, monday, j, now, effort, limit)


def fast_answer(schedule: WeeklySchedule, now: int, window: int, horizon: int) -> tuple[int, int]:
    """`response_window` in µs: (answer_from, answer_by); no datetime on the hot path."""
    answer_from, answer_by, _ = fast_answer_finish(schedule, now, window, horizon, now, 0, None)
    return answer_from, answer_by


def fast_answer_finish(
    schedule: WeeklySchedule,
    now: int,
    window: int,
    horizon: int,
    earliest: int,
    effort: int,
    not_after: int | None,
) -> tuple[int, int, int | None]:
    """`fast_answer`, then `fast_finish` of `effort` from max(earliest, answer_by): what
    every candidate needs, in one walk. When the work starts where the answer window
    ends, the plan goes on from the span the window ended in: every span walked
    before it ends by then (the cursor only moves forward), so a walk from there
    would skip them all. Same results as the two calls (tests compare them)."""
    answer_from: int | None = None
    if not schedule.is_empty:
        limit = now + horizon
        remaining, cursor = window, now
        first = _shared_ordinal(schedule.zone, now) - 1
        last = _shared_ordinal(schedule.zone, limit) + 1
        monday = first - (first - 1) % 7
        while monday <= last:
            table = week_table(schedule, monday)
            spans = table.spans
            for j in range(table.first_after(cursor), len(spans)):
                day, a, b = spans[j]
                if day < first or day > last or b <= cursor:
                    continue
                if a < cursor:
                    a = cursor
                if a >= limit:
                    break
                if answer_from is None:
                    answer_from = a
                take = b - a if b - a < remaining else remaining
                remaining -= take
                cursor = a + take
                if remaining <= 0:
                    if cursor >= earliest and effort > 0:
                        stop = cursor + horizon
                        if not_after is not None and not_after < stop:
                            stop = not_after
                        finish = _finish_from(schedule, monday, j, cursor, effort, stop)
                    else:
                        start = cursor if cursor > earliest else earliest
                        finish = fast_finish(schedule, start, effort, not_after, horizon)
                    return answer_from, cursor, finish
            else:
                monday += 7
                continue
            break
    answer_by = now + window
    start = answer_by if answer_by > earliest else earliest
    return (
        now if answer_from is None else answer_from,
        answer_by,
        fast_finish(schedule, start, effort, not_after, horizon),
    )


def _finish_from(
    schedule: WeeklySchedule, monday: int, j: int, cursor: int, remaining: int, limit: int
) -> int | None:
    """The walk of `fast_finish` from `cursor`, starting at span `j` of the week of
    `monday`. It needs no filter on days: a span (at most 24 h of wall time) of a day
    before the start's eve ends before the start, and one of a day after the limit's
    morrow begins after the limit."""
    end = limit // _DAY_US + _EPOCH_ORDINAL + 2
    while monday <= end:
        for _, a, b in islice(week_table(schedule, monday).spans, j, None):
            if b <= cursor:
                continue
            if a < cursor:
                a = cursor
            if a >= limit:
                return None
            if b - a >= remaining:
                return a + remaining
            remaining -= b - a
            cursor = b
        monday += 7
        j = 0
    return None


def fast_response(
    schedule: WeeklySchedule, asked_at: datetime, window: timedelta, horizon: timedelta
) -> ResponseWindow:
    """`response_window` on the week tables; same result."""
    answer_from, answer_by = fast_answer(schedule, to_us(asked_at), window // _US, horizon // _US)
    return ResponseWindow(asked_at, from_us(answer_from), from_us(answer_by))
