"""The work list of deliveries still in flight, and how to repair it after a crash.

Every delivery that is not final has one schedule entry (keyed by its delivery
key) saying what to do next and when: `send` at `at` (now, or a retry's
backoff), or `release` at the end of quiet hours. The entry is written before
the delivery and removed once the delivery is final, so the list is bounded by
what is in flight, never by history. Timers scan that small list; everything
else goes by key.

An entry can disagree with its delivery after a crash between two writes
(no multi-document transactions). `repair` says how to bring the entry back in
line with the delivery, which is always the truth. It never drops an entry
whose delivery still needs work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


class State:
    """Delivery states: `held` -> `pending` -> `sending` -> `delivered` | `failed`,
    or `held` -> `digested` (then the digest's final state)."""

    HELD = "held"
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DIGESTED = "digested"
    ALL = ("held", "pending", "sending", "delivered", "failed", "digested")
    FINAL = frozenset({"delivered", "failed", "digested"})


class Op:
    SEND = "send"
    RELEASE = "release"


@dataclass(frozen=True)
class DeliveryStatus:
    """What `repair` needs to know of a stored delivery."""

    state: str
    due_at: datetime | None = None
    lease_until: datetime | None = None
    hold_until: datetime | None = None
    failover_pending: bool = False


@dataclass(frozen=True)
class Drop:
    """The delivery is final (or was never stored): forget the entry."""


@dataclass(frozen=True)
class Reschedule:
    op: str
    at: datetime


@dataclass(frozen=True)
class FinishFailover:
    """Failed, but its successors were recorded and not inserted yet: insert, then drop."""


@dataclass(frozen=True)
class Wait:
    """No delivery yet, but the entry is young: its writer may still be storing it."""


Repair = Drop | Reschedule | FinishFailover | Wait


def repair(
    delivery: DeliveryStatus | None,
    *,
    entry_created_at: datetime,
    now: datetime,
    grace: timedelta,
) -> Repair:
    """How to fix an entry whose delivery could not be claimed when the entry said so."""
    if delivery is None:
        return Drop() if entry_created_at <= now - grace else Wait()
    if delivery.state == State.FAILED and delivery.failover_pending:
        return FinishFailover()
    if delivery.state in State.FINAL:
        return Drop()
    if delivery.state == State.HELD:
        return Reschedule(Op.RELEASE, delivery.hold_until or now)
    if delivery.state == State.SENDING:
        return Reschedule(Op.SEND, delivery.lease_until or now)
    return Reschedule(Op.SEND, delivery.due_at or now)


def retry_timer_delay(at: datetime, now: datetime, *, horizon: timedelta) -> float | None:
    """Seconds until a retry, if the process should wake itself for it (else the sweep will)."""
    delay = at - now
    if delay > horizon:
        return None
    return max(delay.total_seconds(), 0.0)
