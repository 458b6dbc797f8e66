"""Monthly subscription periods anchored on the acceptance instant.

Period n starts n months after acceptance, on the acceptance's day of month in
the client's zone, at the same local time. When that day does not exist in a
month the period starts on the month's last day (accepted 31 Jan -> 28/29 Feb
-> 31 Mar: the anchor is always the ORIGINAL day, so it never drifts to the
28th). Each period is billed in advance, at its start, and has a stable key
"YYYY-MM" (the local month in which it starts; unique because each period
starts in a different month) so the edge can bill it exactly once.

Cancellation ends the subscription after the current period: a period is due
when it starts at or before `now` and strictly before `cancelled_at`.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from .errors import BillingError


@dataclass(frozen=True)
class SubscriptionPeriod:
    index: int  # 0 for the period that starts at acceptance
    key: str  # "2026-03"
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive (start of the next period)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise BillingError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _anchored_date(anchor: date, months: int) -> date:
    """The anchor's day of month, `months` later, clamped to the month's end."""
    total = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor.day, last))


def period_start(accepted_at: datetime, index: int, zone: str = "UTC") -> datetime:
    """UTC start of period `index` (0 = acceptance itself)."""
    accepted = _aware("accepted_at", accepted_at)
    if index < 0:
        raise BillingError("period index must be >= 0")
    if index == 0:
        return accepted
    tz = ZoneInfo(zone)
    local = accepted.astimezone(tz)
    d = _anchored_date(local.date(), index)
    return datetime.combine(d, local.timetz().replace(tzinfo=None), tzinfo=tz).astimezone(UTC)


def period(accepted_at: datetime, index: int, zone: str = "UTC") -> SubscriptionPeriod:
    start = period_start(accepted_at, index, zone)
    local = start.astimezone(ZoneInfo(zone))
    return SubscriptionPeriod(
        index=index,
        key=f"{local.year:04d}-{local.month:02d}",
        start=start,
        end=period_start(accepted_at, index + 1, zone),
    )


def period_containing(
    accepted_at: datetime, instant: datetime, zone: str = "UTC"
) -> SubscriptionPeriod:
    """The period in which `instant` falls (e.g. to attribute overage hours)."""
    at = _aware("instant", instant)
    accepted = _aware("accepted_at", accepted_at)
    if at < accepted:
        raise BillingError("instant is before the subscription started")
    # Jump close to the answer by month arithmetic, then walk (at most a step or two).
    local_acc, local_at = accepted.astimezone(ZoneInfo(zone)), at.astimezone(ZoneInfo(zone))
    i = max(0, (local_at.year - local_acc.year) * 12 + local_at.month - local_acc.month - 1)
    while period_start(accepted, i + 1, zone) <= at:
        i += 1
    while i > 0 and period_start(accepted, i, zone) > at:
        i -= 1
    return period(accepted, i, zone)


def periods_due(
    accepted_at: datetime,
    cancelled_at: datetime | None,
    now: datetime,
    zone: str = "UTC",
) -> list[SubscriptionPeriod]:
    """Every period that must have been billed by `now`, oldest first.

    The edge bills those whose key it has not billed yet; calling this again
    later returns the same periods with the same keys plus any new ones.
    """
    accepted = _aware("accepted_at", accepted_at)
    current = _aware("now", now)
    stop = _aware("cancelled_at", cancelled_at) if cancelled_at is not None else None
    out: list[SubscriptionPeriod] = []
    i = 0
    while True:
        start = period_start(accepted, i, zone)
        if start > current or (stop is not None and start >= stop):
            return out
        out.append(period(accepted, i, zone))
        i += 1
