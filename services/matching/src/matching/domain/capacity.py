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

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from .schedule import WorkPlan, iso_week


def capacity_key(provider_id: str, week: str) -> str:
    return f"{provider_id}:{week}"


def week_key(provider_id: str, instant: datetime, provider_zone: str) -> str:
    """Capacity key of the week containing `instant`, in the provider's zone."""
    return capacity_key(provider_id, iso_week(instant.astimezone(ZoneInfo(provider_zone)).date()))


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


def remaining_capacity(
    weekly_capacity: Decimal, reserved: Mapping[str, Decimal], key: str
) -> Decimal:
    """Hours still bookable in one week (never below zero)."""
    return max(Decimal(0), weekly_capacity - reserved.get(key, Decimal(0)))


def fits(
    weekly_capacity: Decimal, reserved: Mapping[str, Decimal], need: Mapping[str, Decimal]
) -> bool:
    """True when every week of the reservation has room for its share."""
    return all(remaining_capacity(weekly_capacity, reserved, k) >= h for k, h in need.items())
