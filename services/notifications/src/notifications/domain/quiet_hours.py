"""Quiet hours: when a non-critical notification must wait, and until when.

Everything is computed on the recipient's local wall clock (IANA zone), so a
window such as 21:00-08:00 keeps meaning "until 08:00 on the clock" on the
days the clocks change. Instants in and out are aware datetimes; results are UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

RULE_NOT_EMPTY = "quiet hours need different start and end"


def _wall_clock_schema(schema: dict[str, Any]) -> None:
    """A local time of day, without offset: JSON schema's `time` format requires one."""
    schema.pop("format", None)
    schema["pattern"] = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$"


class QuietHours(BaseModel):
    """A daily window `[start, end)` in local time; `end < start` crosses midnight."""

    model_config = ConfigDict(frozen=True)

    start: time = Field(json_schema_extra=_wall_clock_schema)
    end: time = Field(json_schema_extra=_wall_clock_schema)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError(f"{RULE_NOT_EMPTY} (e.g. 21:00-08:00)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall-clock times, without offset")
        return self

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def contains(self, wall: time) -> bool:
        """Whether a local time of day falls in the window (start inclusive, end exclusive)."""
        if self.crosses_midnight:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end


def _aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _first_instant_at_wall(day: date, at: time, zone: ZoneInfo, after: datetime) -> datetime:
    """First UTC instant after `after` at which the local clock reads `at` on `day`.

    Handles the two DST oddities: a wall time skipped by a spring-forward gap
    resolves to the transition itself (the first instant whose clock is past
    it); a wall time repeated by a fall-back fold resolves to the occurrence
    that comes after `after`, the earlier one when both do.
    """
    naive = datetime.combine(day, at)
    candidates = sorted({naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)})
    real = [c for c in candidates if _wall(c, zone) == naive]
    if not real:  # skipped by a gap: bisect (whole seconds) for the transition
        lo, hi = int(candidates[0].timestamp()), int(candidates[-1].timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _wall(datetime.fromtimestamp(mid, UTC), zone) >= naive:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)
    later = [c for c in real if c > after]
    return later[0] if later else real[-1]


def quiet_until(quiet: QuietHours, zone: str, t: datetime) -> datetime | None:
    """If `t` falls in the quiet window in `zone`, the UTC instant it ends; else None."""
    _aware(t)
    tz = ZoneInfo(zone)
    local = _wall(t, tz)
    if not quiet.contains(local.time()):
        return None
    day = local.date()
    if quiet.crosses_midnight and local.time() >= quiet.start:
        day += timedelta(days=1)
    return _first_instant_at_wall(day, quiet.end, tz, after=t.astimezone(UTC))


def in_quiet_hours(quiet: QuietHours | None, zone: str, t: datetime) -> bool:
    return quiet is not None and quiet_until(quiet, zone, t) is not None
