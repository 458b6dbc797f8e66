"""The one way to put an event on a topic (used by the outbox relay and the DLQ)."""

from __future__ import annotations

from collections.abc import Mapping

from faststream.kafka import KafkaBroker

from ..events.envelope import Envelope
from ..settings import Settings


class EventPublisher:
    def __init__(self, broker: KafkaBroker, settings: Settings) -> None:
        self.broker = broker
        self.settings = settings

    async def publish(self, envelope: Envelope) -> None:
        """Publish directly. Services publish through the outbox; this is for tools and tests."""
        await self.publish_raw(
            envelope.topic, envelope.subject, envelope.headers(), envelope.body()
        )

    async def publish_raw(
        self, logical_topic: str, key: str | bytes | None, headers: Mapping[str, str], body: bytes
    ) -> None:
        await self.publish_physical(self.settings.topic(logical_topic), key, headers, body)

    async def publish_physical(
        self, topic: str, key: str | bytes | None, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Send and wait for the broker's acknowledgement (acks=all)."""
        k = key.encode() if isinstance(key, str) else key
        await self.broker.publish(body, topic=topic, key=k, headers=dict(headers))
