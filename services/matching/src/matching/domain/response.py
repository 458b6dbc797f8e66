"""Response windows in the provider's working time (pure).

A proposal made while the provider sleeps must not expire before they wake:
the acceptance deadline is `window` of *working* time after the proposal (the
first N minutes of their next working span when it arrives outside one), and
work cannot start before they have answered, so the promise is planned from
that deadline. A provider with no working time within the horizon gets the
plain wall-clock window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from .schedule import WeeklySchedule, plan_work


@dataclass(frozen=True, slots=True)
class ResponseWindow:
    """When a provider asked at `asked_at` can first answer, and by when they must."""

    asked_at: datetime
    answer_from: datetime
    """First instant inside their working time (`asked_at` when they are at work)."""
    answer_by: datetime
    """`window` of their working time after `asked_at`: the proposal's expiry."""

    @property
    def awake(self) -> bool:
        return self.answer_from <= self.asked_at


def next_working_instant(
    schedule: WeeklySchedule, at: datetime, horizon: timedelta
) -> datetime | None:
    """`at` itself when inside a working span, else the start of the next one."""
    if schedule.is_empty:
        return None
    first = schedule.local_date(at) - timedelta(days=1)
    last = schedule.local_date(at + horizon) + timedelta(days=1)
    for _, a, b in schedule.intervals(first, last):
        if b > at:
            return max(a, at)
    return None


@lru_cache(maxsize=16_384)
def response_window(
    schedule: WeeklySchedule, asked_at: datetime, window: timedelta, horizon: timedelta
) -> ResponseWindow:
    """The window of one provider for a proposal made at `asked_at` (cached: one
    provider has several offers and is evaluated again on every re-proposal)."""
    start = next_working_instant(schedule, asked_at, horizon)
    if start is None:
        return ResponseWindow(asked_at, asked_at, asked_at + window)
    plan = plan_work(schedule, asked_at, window, horizon=horizon)
    end = plan.finish if plan.finish is not None else asked_at + window
    return ResponseWindow(asked_at, start, end)
