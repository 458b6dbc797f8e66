"""The one way to consume events: decode, dispatch, retry, park, then commit.

Each record is decoded into an `Envelope` (a malformed one — invalid JSON,
schema mismatch, unknown `ce_type` — is parked on the DLQ at once), handed to
the handler registered for its type, retried with exponential backoff on
failure and parked on the DLQ after the last attempt. Only then is the offset
committed (AckPolicy.NACK_ON_ERROR: commit after handling; if even parking
fails the record is rewound and redelivered, never skipped).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from ..events.base import Event, Topic
from ..events.envelope import Envelope, MalformedEvent
from ..logging import get_logger
from ..settings import Settings
from .dead_letter import DeadLetterQueue, RawRecord
from .inbox import Inbox
from .publisher import EventPublisher

log = get_logger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]


class PermanentError(Exception):
    """A handler failure that retrying cannot fix: parked on the DLQ at once."""


class EventConsumer:
    """Registers handlers per event type and subscribes one consumer group to topics."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: Settings,
        *,
        group: str | None = None,
        inbox: Inbox | None = None,
        max_attempts: int | None = None,
        backoff_initial_s: float | None = None,
        backoff_max_s: float | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.group = group or settings.consumer_group
        self.inbox = inbox
        self.max_attempts = max_attempts or settings.consumer_max_attempts
        self.backoff_initial_s = backoff_initial_s or settings.consumer_backoff_initial_s
        self.backoff_max_s = backoff_max_s or settings.consumer_backoff_max_s
        self.workers = settings.consumer_workers
        self.dlq = DeadLetterQueue(EventPublisher(broker, settings), self.group)
        self._handlers: dict[str, Handler] = {}
        self._sleep = sleep

    def on(self, *event_types: type[Event]) -> Callable[[Handler], Handler]:
        """Decorator: `@consumer.on(OfferPublished, OfferUpdated)`."""

        def register(fn: Handler) -> Handler:
            for et in event_types:
                if et.event_type in self._handlers:
                    raise ValueError(f"two handlers for {et.event_type}")
                self._handlers[et.event_type] = fn
            return fn

        return register

    def subscribe(self, topics: Iterable[Topic | str], **options: Any) -> None:
        """Create the FastStream subscribers (one consumer group) for these topics.

        One subscriber per topic, each with `consumer_workers` consumers of the
        group in this process: partitions are handled concurrently, each
        partition in order, and each consumer commits only its own partitions
        after handling (FastStream allows concurrent manual commits on one topic
        per subscriber only).
        """
        names = [self.settings.topic(t.name if isinstance(t, Topic) else t) for t in topics]

        async def decoder(msg: Any) -> Any:  # keep the raw bytes: we decode ourselves
            return msg.body

        for name in names:

            @self.broker.subscriber(  # type: ignore[untyped-decorator]
                name,
                group_id=self.group,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                auto_offset_reset="earliest",
                decoder=decoder,
                title=f"{self.group}:{name}",
                max_workers=self.workers,
                **options,
            )
            async def _consume(body: bytes, message: KafkaMessage) -> None:
                await self.handle(RawRecord.of(message.raw_message))

    async def handle(self, record: RawRecord) -> None:
        """Process one record to completion (applied, ignored or parked)."""
        try:
            envelope = Envelope.from_record(record.headers, record.value)
        except MalformedEvent as exc:
            log.warning(
                "event.malformed",
                topic=record.topic,
                offset=record.offset,
                partition=record.partition,
                reason=str(exc),
            )
            await self.dlq.park(record, exc, attempts=0)
            return
        handler = self._handlers.get(envelope.type)
        if handler is None:
            return  # another consumer's business; a known type we do not need
        with structlog.contextvars.bound_contextvars(
            correlation_id=envelope.correlation_id,
            event_id=envelope.id,
            event_type=envelope.type,
            consumer_group=self.group,
        ):
            if self.inbox is not None and await self.inbox.seen(envelope.id):
                log.info("event.duplicate_skipped")
                return
            await self._run(handler, envelope, record)

    async def _run(self, handler: Handler, envelope: Envelope, record: RawRecord) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(envelope)
            except Exception as exc:
                permanent = isinstance(exc, PermanentError)
                if permanent or attempt >= self.max_attempts:
                    log.error(
                        "event.parked",
                        attempts=attempt,
                        error_type=type(exc).__name__,
                        error=str(exc),
                    )
                    await self.dlq.park(record, exc, attempts=attempt)
                    return
                delay = self._backoff(attempt)
                log.warning(
                    "event.retry",
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error_type=type(exc).__name__,
                    error=str(exc),
                )
                await self._sleep(delay)
                continue
            if self.inbox is not None:
                await self.inbox.mark(envelope.id, envelope.type)
            log.debug("event.applied", attempts=attempt)
            return

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (50–100 % of the step), capped."""
        step = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))
        return float(step * (0.5 + random.random() / 2))
