"""What to do after a failed send: retry later, move to the next channel, or give up.

Transient failures are retried on the same channel with backoff; a failure
"for good" (permanent error, or retries exhausted) moves to the next usable
channel in the recipient's order. Subscription webhooks have no other
channel: they give up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .recipient import Recipient, WebhookEndpoint
from .retry import RetryPolicy, Rng
from .routing import PlannedDelivery, person_delivery, usable_channels


@dataclass(frozen=True)
class Failure:
    code: str
    permanent: bool


def webhook_failure(status: int | None) -> Failure:
    """`None` = no HTTP answer (timeout, connection refused). 4xx is final, except
    408/425/429 which ask us to come back later; 5xx is transient."""
    if status is None:
        return Failure("webhook_unreachable", permanent=False)
    if 400 <= status < 500 and status not in (408, 425, 429):
        return Failure(f"webhook_http_{status}", permanent=True)
    return Failure(f"webhook_http_{status}", permanent=False)


def email_failure(smtp_code: int | None, *, bounced: bool = False) -> Failure:
    """A bounce (DSN) or an SMTP 5xx is final; 4xx and no answer are transient."""
    if bounced:
        return Failure("smtp_bounce", permanent=True)
    if smtp_code is None:
        return Failure("smtp_unreachable", permanent=False)
    return Failure(f"smtp_{smtp_code}", permanent=500 <= smtp_code < 600)


@dataclass(frozen=True)
class RetryAt:
    at: datetime
    attempt: int
    """The number the next attempt will carry."""


@dataclass(frozen=True)
class FailOver:
    failed_code: str
    next: PlannedDelivery


@dataclass(frozen=True)
class GiveUp:
    failed_code: str


Decision = RetryAt | FailOver | GiveUp


def next_delivery(
    planned: PlannedDelivery,
    recipient: Recipient,
    endpoints: Iterable[WebhookEndpoint],
    *,
    now: datetime,
) -> PlannedDelivery | None:
    """The same notification on the next usable channel after the failed one, if any."""
    if planned.via_subscription:
        return None
    usable = usable_channels(
        recipient, planned.kind, planned.event_type, critical=planned.critical, endpoints=endpoints
    )
    order = [ch for ch, _ in usable]
    if planned.channel in order:
        later = usable[order.index(planned.channel) + 1 :]
    else:
        later = [(ch, ep) for ch, ep in usable if ch is not planned.channel]
    if not later:
        return None
    channel, endpoint_id = later[0]
    return person_delivery(
        event_id=planned.event_id,
        event_type=planned.event_type,
        kind=planned.kind,
        critical=planned.critical,
        recipient=recipient,
        channel=channel,
        endpoint_id=endpoint_id,
        now=now,
    )


def after_failure(
    planned: PlannedDelivery,
    *,
    attempts: int,
    failure: Failure,
    policy: RetryPolicy,
    rng: Rng,
    now: datetime,
    recipient: Recipient,
    endpoints: Iterable[WebhookEndpoint],
) -> Decision:
    """Decide after `attempts` failed attempts on `planned.channel`."""
    if not failure.permanent:
        at = policy.next_attempt_at(now, attempts, rng)
        if at is not None:
            return RetryAt(at=at, attempt=attempts + 1)
    nxt = next_delivery(planned, recipient, endpoints, now=now)
    return FailOver(failure.code, nxt) if nxt is not None else GiveUp(failure.code)
