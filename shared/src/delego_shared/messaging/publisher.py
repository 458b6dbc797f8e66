"""The one way to put an event on a topic (outbox, DLQ, tools)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from ..events.envelope import Envelope
from ..settings import Settings


@dataclass(frozen=True)
class OutgoingRecord:
    """One record to send; `logical` topics get the deployment's prefix."""

    topic: str
    key: str | bytes | None
    headers: Mapping[str, str]
    body: bytes
    logical: bool = True


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
        await self.send_all([OutgoingRecord(logical_topic, key, headers, body)])

    async def publish_physical(
        self, topic: str, key: str | bytes | None, headers: Mapping[str, str], body: bytes
    ) -> None:
        await self.send_all([OutgoingRecord(topic, key, headers, body, logical=False)])

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Send in order, then wait for every acknowledgement (acks=all) together.

        Records are handed to the producer one after the other, so records of
        one key keep their order (the idempotent producer keeps it on retries);
        waiting for the acks together costs one round trip, not one per record.
        """
        pending: list[asyncio.Future[object]] = []
        try:
            for r in records:
                topic = self.settings.topic(r.topic) if r.logical else r.topic
                key = r.key.encode() if isinstance(r.key, str) else r.key
                fut = await self.broker.publish(
                    r.body, topic=topic, key=key, headers=dict(r.headers), no_confirm=True
                )
                pending.append(fut)
        finally:
            if pending:
                results = await asyncio.gather(*pending, return_exceptions=True)
                for res in results:
                    if isinstance(res, BaseException):
                        raise res
