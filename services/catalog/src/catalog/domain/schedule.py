"""Weekly working schedule rules (fair work: declared hours and capacity).

A schedule is a set of spans in the provider's local time on a weekly circle:
Monday 00:00 is minute 0 and Sunday 24:00 wraps back to it. A span whose end
is <= its start crosses midnight; Sunday 22:00-02:00 ends on Monday 02:00,
so it can collide with a Monday span. Overlaps are checked on that circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from delego_shared.events.common import WorkingSpan

from .errors import Issues

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_WEEKLY_HOURS = Decimal(7 * 24)
MAX_SPANS = 70
"""Ten spans a day is already a fragmented week; more is almost certainly a bug."""


def describe(span: WorkingSpan) -> str:
    return f"{span.day.value} {span.start}-{span.end}"


def week_intervals(span: WorkingSpan) -> list[tuple[int, int]]:
    """Half-open minute intervals on the weekly circle, split where Sunday wraps to Monday."""
    start = span.start_minute
    end = start + span.length_minutes
    if end <= MINUTES_PER_WEEK:
        return [(start, end)]
    return [(start, MINUTES_PER_WEEK), (0, end - MINUTES_PER_WEEK)]


def _overlap(a: WorkingSpan, b: WorkingSpan) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in week_intervals(a) for s2, e2 in week_intervals(b))


def weekly_minutes(schedule: Sequence[WorkingSpan]) -> int:
    """Minutes covered by the schedule per week (the union, so overlaps count once)."""
    intervals = sorted(iv for span in schedule for iv in week_intervals(span))
    total, cur_start, cur_end = 0, -1, -1
    for s, e in intervals:
        if s > cur_end:
            total += cur_end - cur_start
            cur_start, cur_end = s, e
        else:
            cur_end = max(cur_end, e)
    return total + (cur_end - cur_start)


def weekly_hours(schedule: Sequence[WorkingSpan]) -> Decimal:
    return Decimal(weekly_minutes(schedule)) / 60


def _local_midnight(zone: ZoneInfo, d: date) -> datetime:
    """UTC instant of local 00:00 on `d` (first reading; a gap at midnight ends it)."""
    wall = datetime.combine(d, time(0))
    inst = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if inst.astimezone(zone).replace(tzinfo=None) != wall:  # in a gap
        inst = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return inst


def longest_real_week_hours(
    schedule: Sequence[WorkingSpan], zone_name: str, today: date, weeks: int = 53
) -> Decimal:
    """Most real (UTC) hours the schedule gives in one local week, over the next `weeks`.

    The wall-clock sum, except in a week where the clocks go back over a
    working span: the repeated wall time is worked twice (a Toronto Sunday
    00:00-04:00 lasts 5 h that night). Only weeks whose offset changes are
    walked, minute by minute on the UTC axis (offsets and spans are whole
    minutes); weeks run from local Monday 00:00.
    """
    covered = bytearray(MINUTES_PER_WEEK)
    for span in schedule:
        for s, e in week_intervals(span):
            covered[s:e] = b"\x01" * (e - s)
    best = sum(covered)
    zone = ZoneInfo(zone_name)
    monday = today - timedelta(days=today.weekday())
    one_minute = timedelta(minutes=1)
    for i in range(weeks):
        start = _local_midnight(zone, monday + timedelta(weeks=i))
        end = _local_midnight(zone, monday + timedelta(weeks=i + 1))
        if start.astimezone(zone).utcoffset() == end.astimezone(zone).utcoffset():
            continue  # no transition inside (they are months apart)
        total, t = 0, start
        while t < end:
            local = t.astimezone(zone)
            total += covered[local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute]
            t += one_minute
        best = max(best, total)
    return Decimal(best) / 60


def check_schedule(
    schedule: Sequence[WorkingSpan], issues: Issues, field: str = "schedule"
) -> bool:
    """Record every span problem; True when the schedule is usable for the capacity check.

    A span starting at 24:00 or with start == end is rejected: the first is not
    a start of day, the second would silently mean "24 hours" (write 00:00-24:00).
    """
    if not schedule:
        issues.add(field, "at least one working span is required")
        return False
    if len(schedule) > MAX_SPANS:
        issues.add(field, f"at most {MAX_SPANS} working spans, got {len(schedule)}")
        return False
    usable = True
    for i, span in enumerate(schedule):
        if span.start == "24:00":
            issues.add(f"{field}.{i}.start", "24:00 is an end of day, not a start; use 00:00")
            usable = False
        elif span.start == span.end:
            issues.add(
                f"{field}.{i}",
                f"zero-length span ({describe(span)}): start and end are equal; "
                "a whole day is written 00:00-24:00",
            )
            usable = False
    if not usable:
        return False
    for j, later in enumerate(schedule):
        for i in range(j):
            earlier = schedule[i]
            if _overlap(earlier, later):
                issues.add(
                    f"{field}.{j}",
                    f"{describe(later)} overlaps {field}.{i} ({describe(earlier)})",
                )
                usable = False
    return usable


def check_capacity(
    capacity: Decimal,
    schedule: Sequence[WorkingSpan],
    schedule_ok: bool,
    issues: Issues,
    field: str = "weekly_capacity_hours",
    *,
    zone: str | None = None,
    today: date | None = None,
) -> None:
    """Capacity is in (0, 168] and no more than the hours the schedule offers.

    Capacity above the scheduled hours is an error rather than a silent cap:
    it would let matching book work outside the declared working hours. With
    the provider's `zone` (and `today`), "the hours the schedule offers" are
    those of its longest real week in the coming year, so a capacity that
    covers a fall-back night's extra hour is accepted (matching checks each
    week against its own real hours).
    """
    if not capacity.is_finite():
        issues.add(field, "must be a finite number of hours")
        return
    if capacity <= 0:
        issues.add(field, f"must be greater than 0 hours, got {capacity}")
        return
    if capacity > MAX_WEEKLY_HOURS:
        issues.add(field, f"must be at most {MAX_WEEKLY_HOURS} hours (7 x 24), got {capacity}")
        return
    if schedule_ok:
        scheduled = weekly_hours(schedule)
        if capacity > scheduled and zone is not None and today is not None:
            try:
                scheduled = longest_real_week_hours(schedule, zone, today)
            except (ZoneInfoNotFoundError, ValueError):
                pass  # an unknown zone is reported by `check_zone`
        if capacity > scheduled:
            issues.add(
                field,
                f"{capacity} h exceeds the {_fmt_hours(scheduled)} h of the weekly schedule; "
                "add working spans or lower the capacity",
            )


def _fmt_hours(h: Decimal) -> str:
    q = h.quantize(Decimal("0.01"))
    return f"{q.normalize():f}"
