"""Weekly capacity bookkeeping keys and arithmetic (pure; the edge stores the counters).

Key the edge must use for its counters: `capacity_key(provider_id, iso_week)`,
i.e. `"<provider_id>:<ISO year>-W<week>"` where the ISO week is taken in the
*provider's* zone, on the local day the working span starts. One Mongo document
per key holding `reserved_hours`; a reservation is a conditional
`find_one_and_update({_id: key, reserved_hours <= capacity - hours}, $inc)` per
week of `Proposal.hours_by_week`, released by the opposite `$inc` on decline,
expiry or cancellation. Single-document updates keep N replicas from
overbooking a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from zoneinfo import ZoneInfo

from .schedule import WeeklySchedule, WorkPlan, iso_week


def capacity_key(provider_id: str, week: str) -> str:
    return f"{provider_id}:{week}"


def week_key(provider_id: str, instant: datetime, provider_zone: str) -> str:
    """Capacity key of the week containing `instant`, in the provider's zone."""
    return capacity_key(provider_id, iso_week(instant.astimezone(ZoneInfo(provider_zone)).date()))


def weeks_between(first: date, last: date) -> list[str]:
    """ISO weeks of every local date from `first` to `last` (inclusive), in order."""
    out: list[str] = []
    d = first
    while d <= last:
        w = iso_week(d)
        if not out or out[-1] != w:
            out.append(w)
        d += timedelta(days=1)
    return out


def planning_keys(
    provider_id: str, provider_zone: str, now: datetime, limit: datetime
) -> list[str]:
    """Capacity keys a plan from `now` to `limit` can touch, plus the current week.

    The same local-date range `plan_work` walks (one day of margin each side),
    so reading these keys by `_id` gives the matcher every reserved amount it
    can look at: a handful of point reads instead of a query over the
    provider's whole capacity history.
    """
    zone = ZoneInfo(provider_zone)
    today = now.astimezone(zone).date()
    last = max(today, limit.astimezone(zone).date())
    return [
        capacity_key(provider_id, w)
        for w in weeks_between(today - timedelta(days=1), last + timedelta(days=1))
    ]


def reservation_keys(provider_id: str, plan: WorkPlan) -> dict[str, Decimal]:
    """Hours to reserve per capacity key for a planned piece of work.

    The per-week hours always add up to the planned effort (rounding goes to
    the last week) so that reserve and release cancel out exactly.
    """
    hours = plan.hours_by_week()
    if not hours:
        return {}
    total = (Decimal(sum(s for _, s in plan.seconds_by_week)) / 3600).quantize(Decimal("0.0001"))
    weeks = list(hours)
    hours[weeks[-1]] = total - sum((hours[w] for w in weeks[:-1]), Decimal(0))
    return {capacity_key(provider_id, w): h for w, h in hours.items()}


_E4 = Decimal("0.0001")


@lru_cache(maxsize=65_536)
def nominal_weekly_hours(schedule: WeeklySchedule) -> Decimal:
    """Wall-clock hours of the schedule: what the catalog's weekly circle counts."""
    minutes = sum(length for day in schedule.by_weekday for _, length in day)
    return Decimal(minutes) / 60


@lru_cache(maxsize=65_536)
def real_week_hours(schedule: WeeklySchedule, week: str) -> Decimal:
    """Real (UTC) hours the schedule gives in one ISO week of the provider's zone.

    Spans belong to the week of the local day they start on, as in
    `plan_work`, so a week with a fall-back night is longer and a week with a
    spring-forward night shorter than the wall-clock sum.
    """
    year, w = week.split("-W")
    monday = date.fromisocalendar(int(year), int(w), 1)
    seconds = sum(
        (b - a).total_seconds()
        for _, a, b in schedule.intervals(monday, monday + timedelta(days=6))
    )
    return (Decimal(int(seconds)) / 3600).quantize(_E4)


def week_capacity(declared: Decimal, schedule: WeeklySchedule, week: str) -> Decimal:
    """Hours bookable in one ISO week: the declared capacity, measured in real hours.

    A declared capacity below the schedule's wall-clock hours is a deliberate
    limit and stays as declared. One that covers the whole schedule means
    "as much as I work", so it never forbids what the schedule allows that
    week: in a fall-back week it grows to the week's real hours (a Toronto
    Sunday 00:00-04:00 is 5 real hours on that night).
    """
    return bookable_hours(declared, schedule, partial(real_week_hours, schedule, week))


def bookable_hours(
    declared: Decimal, schedule: WeeklySchedule, real_hours: Callable[[], Decimal]
) -> Decimal:
    """`week_capacity`'s rule, with the week's real hours from wherever the caller has
    them (asked only when the declared capacity covers the whole schedule)."""
    if declared < nominal_weekly_hours(schedule):
        return declared
    return max(declared, real_hours())


def week_capacities(
    provider_id: str, declared: Decimal, schedule: WeeklySchedule, keys: Iterable[str]
) -> dict[str, Decimal]:
    """`week_capacity` per capacity key of this provider (what a reservation checks)."""
    prefix = f"{provider_id}:"
    return {
        k: week_capacity(declared, schedule, k.removeprefix(prefix))
        for k in keys
        if k.startswith(prefix)
    }


def remaining_capacity(capacity: Decimal, reserved: Mapping[str, Decimal], key: str) -> Decimal:
    """Hours still bookable in one week (never below zero)."""
    return max(Decimal(0), capacity - reserved.get(key, Decimal(0)))


def fits(
    capacity: Mapping[str, Decimal], reserved: Mapping[str, Decimal], need: Mapping[str, Decimal]
) -> bool:
    """True when every week of the reservation has room for its share (capacity per key)."""
    return all(
        remaining_capacity(capacity.get(k, Decimal(0)), reserved, k) >= h for k, h in need.items()
    )
