"""The webhook call itself: body (structured CloudEvent) and signed headers.

The body is the CloudEvents 1.0 JSON structured form of the event we
received, so receivers get the same contract as Kafka consumers. Events hold
no contact data, so forwarding them leaks none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from delego_shared.events import Envelope

from .recipient import WebhookEndpoint
from .signature import webhook_headers


@dataclass(frozen=True)
class WebhookRequest:
    """What the edge POSTs; the body bytes are exactly the signed ones."""

    endpoint_id: str
    url: str
    headers: dict[str, str]
    body: bytes


def webhook_body(envelope: Envelope) -> bytes:
    doc = {
        "specversion": "1.0",
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject": envelope.subject,
        "time": envelope.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "correlationid": envelope.correlation_id,
        "data": envelope.data.model_dump(mode="json"),
    }
    if envelope.causation_id:
        doc["causationid"] = envelope.causation_id
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def build_webhook_request(
    endpoint: WebhookEndpoint, envelope: Envelope, *, now: datetime, delivery_id: str | None = None
) -> WebhookRequest:
    """Sign at `now` (each retry re-signs with a fresh timestamp)."""
    body = webhook_body(envelope)
    headers = webhook_headers(
        secret=endpoint.secret,
        body=body,
        event_id=envelope.id,
        event_type=envelope.type,
        now=now,
        delivery_id=delivery_id,
    )
    return WebhookRequest(
        endpoint_id=endpoint.endpoint_id, url=endpoint.url, headers=headers, body=body
    )
