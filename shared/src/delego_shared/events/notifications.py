"""Events published by the notifications service on `notifications.deliveries.v1`
(key: recipient id). Ids, channel and status only.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from ..types import Identifier, UtcInstant
from .base import Event, event
from .topics import DELIVERIES


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    INAPP = "inapp"


class _DeliveryEvent(Event):
    delivery_id: Identifier
    recipient_id: Identifier
    channel: Channel
    kind: str = Field(examples=["invoice_issued"])
    source_event_id: str
    attempts: int = Field(ge=1)

    def key(self) -> str:
        return self.recipient_id


@event("delego.notifications.NotificationDelivered.v1", DELIVERIES)
class NotificationDelivered(_DeliveryEvent):
    delivered_at: UtcInstant


@event("delego.notifications.NotificationFailed.v1", DELIVERIES)
class NotificationFailed(_DeliveryEvent):
    error_code: str = Field(examples=["smtp_bounce", "webhook_http_500"])
    failed_at: UtcInstant
