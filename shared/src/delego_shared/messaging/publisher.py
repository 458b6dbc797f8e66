"""The one way to put an event on a topic (outbox, DLQ, tools)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiokafka
from aiokafka.errors import OutOfOrderSequenceNumber, UnknownProducerId
from faststream.kafka import KafkaBroker

from .. import tracing
from ..events.envelope import Envelope
from ..logging import get_logger
from ..settings import Settings

log = get_logger(__name__)

PRODUCER_LOST = (OutOfOrderSequenceNumber, UnknownProducerId)
"""The idempotent producer's sequence state no longer matches the broker's (a broker
restart while records were in flight): aiokafka never recovers from it by itself
(aio-libs/aiokafka#1017), every later send fails the same way. A new producer
(new producer id) does; the records that failed are sent again by their caller."""


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

    async def renew_producer(self, failed: Any) -> None:
        """Replace the broker's producer (see `PRODUCER_LOST`) if it still is `failed`:
        concurrent senders that saw the same loss renew it once."""
        await _renew_producer(self.broker, failed)

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
        producer = _current_producer(self.broker)
        spans: list[Any] = []  # tracing on: one producer span per record, ended at the acks
        try:
            for r in records:
                topic = self.settings.topic(r.topic) if r.logical else r.topic
                key = r.key.encode() if isinstance(r.key, str) else r.key
                headers = dict(r.headers)
                if tracing.enabled():
                    spans.append(tracing.start_publish(topic, headers))
                fut = await self.broker.publish(
                    r.body, topic=topic, key=key, headers=headers, no_confirm=True
                )
                pending.append(fut)
        except PRODUCER_LOST:
            await self.renew_producer(producer)
            raise
        finally:
            failed: BaseException | None = None
            if pending:
                results = await asyncio.gather(*pending, return_exceptions=True)
                if any(isinstance(res, PRODUCER_LOST) for res in results):
                    await self.renew_producer(producer)
                failed = next((r for r in results if isinstance(r, BaseException)), None)
            if spans:
                tracing.end_publish(spans, failed)
            if failed is not None:
                raise failed


_renewing: dict[int, asyncio.Lock] = {}


def _current_producer(broker: KafkaBroker) -> Any:
    """FastStream has no public way to replace its producer; this and `_renew_producer`
    are the one place that reaches into it (`config.producer`, its connection arguments)."""
    return getattr(getattr(broker.config.producer, "_producer", None), "producer", None)


async def _renew_producer(broker: KafkaBroker, failed: Any) -> None:
    lock = _renewing.setdefault(id(broker), asyncio.Lock())
    fast: Any = broker.config.producer
    async with lock:
        if failed is None or _current_producer(broker) is not failed:
            return  # renewed already (by another sender that saw the same loss)
        log.warning("producer.renewed", reason="idempotent producer state lost")
        kwargs: dict[str, Any] = dict(broker._connection_kwargs)
        await fast.disconnect()
        await fast.connect(
            aiokafka.AIOKafkaProducer(**kwargs),
            serializer=fast.serializer,
            codec=fast.codec,
        )
