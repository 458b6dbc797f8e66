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

from .schedule import WeeklySchedule


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


@lru_cache(maxsize=16_384)
def response_window(
    schedule: WeeklySchedule, asked_at: datetime, window: timedelta, horizon: timedelta
) -> ResponseWindow:
    """The window of one provider for a proposal made at `asked_at`: one walk of their
    spans, as `plan_work` would consume `window` (cached: one provider has several
    offers and is evaluated again on every re-proposal)."""
    limit = asked_at + horizon
    first = schedule.local_date(asked_at) - timedelta(days=1)
    last = schedule.local_date(limit) + timedelta(days=1)
    answer_from: datetime | None = None
    remaining, cursor = window, asked_at
    for _, a, b in schedule.intervals(first, last) if not schedule.is_empty else ():
        if b <= cursor:
            continue
        a = max(a, cursor)
        if a >= limit:
            break
        if answer_from is None:
            answer_from = a
        take = min(b - a, remaining)
        remaining -= take
        cursor = a + take
        if remaining <= timedelta(0):
            return ResponseWindow(asked_at, answer_from, cursor)
    # no working time at all, or not enough of it within the horizon: wall-clock window
    return ResponseWindow(asked_at, answer_from or asked_at, asked_at + window)
