"""Retry schedule: exponential backoff with full jitter (AWS architecture blog recipe).

Full jitter spreads the retries of many failed sends over the whole window
instead of letting them hit a recovering receiver in lock-step. The random
source is passed in so the schedule is reproducible in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class Rng(Protocol):
    """Anything with `random() -> float in [0, 1)`, e.g. `random.Random(seed)`."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts every attempt, the first one included."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("base must be positive and at most cap")

    def ceiling(self, attempt: int) -> timedelta:
        """Upper bound of the wait after the `attempt`-th failure: min(cap, base * 2^(n-1))."""
        if attempt < 1:
            raise ValueError("attempts are counted from 1")
        seconds = self.base.total_seconds() * 2.0 ** min(attempt - 1, 64)
        return self.cap if seconds >= self.cap.total_seconds() else timedelta(seconds=seconds)

    def delay(self, attempt: int, rng: Rng) -> timedelta | None:
        """Wait before the next attempt after `attempt` failed ones; None once exhausted."""
        if attempt >= self.max_attempts:
            return None
        r = rng.random()
        if not 0.0 <= r < 1.0:
            raise ValueError("rng.random() must return a float in [0, 1)")
        return self.ceiling(attempt) * r

    def next_attempt_at(self, now: datetime, attempt: int, rng: Rng) -> datetime | None:
        d = self.delay(attempt, rng)
        return None if d is None else now + d

    def schedule(self, rng: Rng) -> list[timedelta]:
        """The waits between all attempts (length max_attempts - 1)."""
        return [d for n in range(1, self.max_attempts) if (d := self.delay(n, rng)) is not None]
