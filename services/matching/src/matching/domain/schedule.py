"""Working-time arithmetic: when a provider really works, as UTC instants.

Semantics (a deliberate choice, relied on by the tests): a span `day start-end`
covers every instant whose wall-clock reading in the provider's zone lies in
[start, end) on that local day (end on the next day when the span crosses
midnight). Wall times are turned into instants only at span edges, with the
zone's real offsets; everything after that is UTC arithmetic. Consequences:

- spring forward: wall minutes that never exist are not covered, so a
  01:30-03:30 span on the night Paris jumps 02:00→03:00 is one real hour;
- fall back: the repeated hour is read twice on the wall clock and is covered
  twice, so it counts as the real elapsed time it is (01:30-03:30 = 3 h);
- a zone without DST (Asia/Kolkata) is a constant offset.

The walk assumes at most one offset change inside one span (true of every
current zone: transitions are months apart).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from delego_shared.events.common import Weekday, WorkingSpan

Interval = tuple[datetime, datetime]
"""[start, end) in UTC."""

_MIDNIGHT = time(0, 0)
_MICRO = timedelta(microseconds=1)
_WORKDAYS = frozenset({Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI})


def _offset(aware: datetime) -> timedelta:
    off = aware.utcoffset()
    if off is None:  # pragma: no cover - ZoneInfo always answers
        raise ValueError("zone without offset")
    return off


def _offset_at(zone: ZoneInfo, instant: datetime) -> timedelta:
    return _offset(instant.astimezone(zone))


def _wall_offsets(zone: ZoneInfo, wall: datetime) -> set[timedelta]:
    """Both readings of a wall time (they differ only in a gap or a fold)."""
    return {_offset(wall.replace(tzinfo=zone, fold=0)), _offset(wall.replace(tzinfo=zone, fold=1))}


def _transition(zone: ZoneInfo, a: datetime, b: datetime) -> datetime:
    """First whole second in (a, b] whose offset differs from the offset at `a`."""
    off_a = _offset_at(zone, a)
    lo, hi = 0, max(1, int((b - a).total_seconds()))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(zone, a + timedelta(seconds=mid)) == off_a:
            lo = mid
        else:
            hi = mid
    return a + timedelta(seconds=hi)


def _where_offset(zone: ZoneInfo, a: datetime, b: datetime, offset: timedelta) -> list[Interval]:
    """Sub-intervals of [a, b) during which the zone's offset equals `offset`."""
    out: list[Interval] = []
    cur = a
    while cur < b:
        off = _offset_at(zone, cur)
        nxt = b if _offset_at(zone, b - _MICRO) == off else _transition(zone, cur, b - _MICRO)
        if off == offset:
            out.append((cur, nxt))
        cur = nxt
    return out


def _merge(pieces: list[Interval]) -> tuple[Interval, ...]:
    pieces.sort()
    merged: list[Interval] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)


@lru_cache(maxsize=262_144)
def wall_span_instants(zone: ZoneInfo, start: datetime, end: datetime) -> tuple[Interval, ...]:
    """UTC intervals during which the wall clock of `zone` reads within [start, end).

    `start`/`end` are naive local wall times. Cached: the same spans recur for
    every request and every provider of a zone.
    """
    offsets = _wall_offsets(zone, start) | _wall_offsets(zone, end)
    if len(offsets) == 1:
        (o,) = offsets
        return (((start - o).replace(tzinfo=UTC), (end - o).replace(tzinfo=UTC)),)
    pieces: list[Interval] = []
    for o in offsets:
        a = (start - o).replace(tzinfo=UTC)
        b = (end - o).replace(tzinfo=UTC)
        pieces.extend(_where_offset(zone, a, b, o))
    return _merge(pieces)


def first_instant_at(zone: ZoneInfo, wall: datetime) -> datetime:
    """The first instant the clock of `zone` reads `wall` (or, in a gap, when the gap ends)."""
    candidates = []
    for fold in (0, 1):
        inst = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if inst.astimezone(zone).replace(tzinfo=None) == wall:
            candidates.append(inst)
    if candidates:
        return min(candidates)
    a = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    b = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    return _transition(zone, lo, hi)


def iso_week(d: date) -> str:
    """ISO week label of a local date, e.g. `2026-W10`."""
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """A provider's weekly spans compiled for fast walking (minutes per weekday)."""

    zone: ZoneInfo
    by_weekday: tuple[tuple[tuple[int, int], ...], ...]
    """Index 0 = Monday; each item (start minute of day, length in minutes)."""
    _hash: int = field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.zone, self.by_weekday)))

    def __hash__(self) -> int:
        """Computed once: schedules key the matcher's caches, thousands of times a request."""
        return self._hash

    @classmethod
    def of(cls, spans: Sequence[WorkingSpan], zone_name: str) -> WeeklySchedule:
        days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for s in spans:
            days[s.day.number].append((WorkingSpan.minutes(s.start), s.length_minutes))
        return cls(ZoneInfo(zone_name), tuple(tuple(sorted(d)) for d in days))

    @property
    def is_empty(self) -> bool:
        return not any(self.by_weekday)

    def intervals(self, first: date, last: date) -> Iterator[tuple[date, datetime, datetime]]:
        """(local day the span starts on, UTC start, UTC end), days `first`..`last`."""
        d = first
        one = timedelta(days=1)
        while d <= last:
            base = datetime.combine(d, _MIDNIGHT)
            for start_min, length in self.by_weekday[d.weekday()]:
                s = base + timedelta(minutes=start_min)
                for a, b in wall_span_instants(self.zone, s, s + timedelta(minutes=length)):
                    yield d, a, b
            d += one

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()


def hours_to_timedelta(hours: Decimal) -> timedelta:
    """Effort in hours → whole seconds, rounded up (never promise too early)."""
    seconds = (hours * 3600).to_integral_value(rounding=ROUND_CEILING)
    return timedelta(seconds=int(seconds))


@dataclass(frozen=True, slots=True)
class WorkPlan:
    """Result of the walk: when the work ends and how much falls in each ISO week.

    `finish` is None when the effort cannot be completed before the limit; the
    weekly split then covers what could be done. Weeks are the ISO weeks of the
    provider-local day each span starts on (a shift belongs to the week it starts).
    """

    finish: datetime | None
    seconds_by_week: tuple[tuple[str, int], ...]

    def hours_by_week(self) -> dict[str, Decimal]:
        return {w: (Decimal(s) / 3600).quantize(Decimal("0.0001")) for w, s in self.seconds_by_week}


def plan_work(
    schedule: WeeklySchedule,
    now: datetime,
    effort: timedelta,
    *,
    not_after: datetime | None = None,
    horizon: timedelta = timedelta(weeks=8),
) -> WorkPlan:
    """Earliest finish: consume `effort` inside working spans from `now` on.

    Stops at `not_after` (usually the client's deadline) or `now + horizon`:
    work that starts after that limit is not planned, so the walk is cheap for
    providers who cannot make it anyway.
    """
    if effort <= timedelta(0):
        return WorkPlan(now, ())
    if schedule.is_empty:
        return WorkPlan(None, ())
    limit = now + horizon
    if not_after is not None and not_after < limit:
        limit = not_after
    first = schedule.local_date(now) - timedelta(days=1)  # yesterday's span may cross midnight
    last = schedule.local_date(limit) + timedelta(days=1)
    remaining = effort
    cursor = now
    weeks: dict[str, timedelta] = {}
    for day, a, b in schedule.intervals(first, last):
        if b <= cursor:
            continue
        a = max(a, cursor)
        if a >= limit:
            break
        take = min(b - a, remaining)
        wk = iso_week(day)
        weeks[wk] = weeks.get(wk, timedelta(0)) + take
        remaining -= take
        cursor = a + take
        if remaining <= timedelta(0):
            return WorkPlan(cursor, _weeks(weeks))
    return WorkPlan(None, _weeks(weeks))


def _weeks(weeks: dict[str, timedelta]) -> tuple[tuple[str, int], ...]:
    return tuple((w, int(t.total_seconds())) for w, t in sorted(weeks.items()))


def working_overlap(schedule: WeeklySchedule, start: datetime, end: datetime) -> timedelta:
    """How much of [start, end) falls inside the provider's working spans."""
    if end <= start or schedule.is_empty:
        return timedelta(0)
    total = timedelta(0)
    first = schedule.local_date(start) - timedelta(days=1)
    for _, a, b in schedule.intervals(first, schedule.local_date(end)):
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            total += hi - lo
    return total


def next_working_day_start(
    now: datetime,
    zone_name: str,
    *,
    start: str = "09:00",
    workdays: Collection[Weekday] = _WORKDAYS,
) -> datetime:
    """First working-day start strictly after `now`, in UTC.

    "By the start of my next working day": at 18:30 on a Tuesday that is
    Wednesday 09:00; at 07:00 on a Tuesday it is the same Tuesday 09:00; on a
    Friday evening it is Monday 09:00 (local, in the client's zone).
    """
    if not workdays:
        raise ValueError("at least one working day is needed")
    zone = ZoneInfo(zone_name)
    minutes = WorkingSpan.minutes(start)
    day = now.astimezone(zone).date()
    indexes = {w.number for w in workdays}
    for i in range(0, 9):
        d = day + timedelta(days=i)
        if d.weekday() not in indexes:
            continue
        instant = first_instant_at(
            zone, datetime.combine(d, _MIDNIGHT) + timedelta(minutes=minutes)
        )
        if instant > now:
            return instant
    raise AssertionError("unreachable: a working day occurs within 8 days")  # pragma: no cover


def in_zone(instant: datetime, zone_name: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone_name))
