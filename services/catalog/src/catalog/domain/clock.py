"""Time handling for the rules: `now` is always passed in, never read from a clock."""

from __future__ import annotations

from datetime import UTC, datetime


def require_utc(now: datetime) -> datetime:
    """Reject naive datetimes (a programming error at the edge) and normalise to UTC."""
    if now.tzinfo is None or now.tzinfo.utcoffset(now) is None:
        raise ValueError("now must be timezone-aware (pass delego_shared.types.utcnow())")
    return now.astimezone(UTC)
