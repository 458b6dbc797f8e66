"""Builders of the service's own events: ids, channel, kind and status only.

An error code is a short snake_case code by construction, so an SMTP reply
or an HTTP body (which may quote an address) can never slip into a topic.
"""

from __future__ import annotations

import re
from datetime import datetime

from delego_shared.events.notifications import NotificationDelivered, NotificationFailed

from .routing import PlannedDelivery

ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def delivered_event(
    planned: PlannedDelivery, *, attempts: int, at: datetime
) -> NotificationDelivered:
    return NotificationDelivered(
        delivery_id=planned.key,
        recipient_id=planned.recipient_id,
        channel=planned.channel,
        kind=planned.kind,
        source_event_id=planned.event_id,
        attempts=attempts,
        delivered_at=at,
    )


def failed_event(
    planned: PlannedDelivery, *, attempts: int, error_code: str, at: datetime
) -> NotificationFailed:
    if not ERROR_CODE.match(error_code):
        raise ValueError("error_code must be a snake_case code such as 'smtp_bounce'")
    return NotificationFailed(
        delivery_id=planned.key,
        recipient_id=planned.recipient_id,
        channel=planned.channel,
        kind=planned.kind,
        source_event_id=planned.event_id,
        attempts=attempts,
        error_code=error_code,
        failed_at=at,
    )
