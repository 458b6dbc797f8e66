"""The one way to consume events: decode, check, dispatch, retry, park, then commit.

Each record is decoded into an `Envelope` (a malformed one — invalid JSON,
schema mismatch, unknown `ce_type` — is parked on the DLQ at once), checked
against its topic's owner (a forged `ce_source` is parked at once), and handed
to the handler registered for its type. Only then is the offset committed
(`commits.py`: after handling, several records' offsets in one commit).

Failures are told apart:

- **transient** (`is_transient`: store or broker unreachable, timeouts): the
  record is not at fault. The same record is retried with capped backoff for as
  long as it takes; this consumer's partitions wait behind it (in order, no
  busy loop), `health()` reports it as degraded, and it never goes to the DLQ;
- **permanent** (`PermanentError`, validation, domain rules, bugs): retried
  `max_attempts` times with backoff, then parked on `<topic>.dlq` with the
  reason and the consumer group.

Parking itself and the inbox are retried the same way until they succeed: a
record is never skipped unparked, and a parked record never blocks the
partition (`dead_letter.py` makes every copy fit).

A record replayed from the DLQ carries the group it is meant for
(`delego_replay_group`); other groups skip it without touching the store.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import structlog
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from pymongo.errors import ConnectionFailure, PyMongoError

from .. import tracing
from ..events.base import Event, Topic
from ..events.envelope import Envelope, MalformedEvent
from ..logging import get_logger
from ..metrics import HandlingTimer
from ..settings import Settings
from .commits import OffsetCommits
from .dead_letter import H_REPLAY_GROUP, DeadLetterQueue, RawRecord
from .inbox import Inbox
from .owners import ForgedEvent, check_provenance
from .publisher import EventPublisher

log = get_logger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]
T = TypeVar("T")


class PermanentError(Exception):
    """A handler failure that retrying cannot fix: parked on the DLQ at once."""


class TransientError(Exception):
    """A handler failure that is not the record's fault (a dependency is down): the same
    record is retried for as long as it takes, never parked."""


_KAFKA_TRANSIENT = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)


def is_transient(exc: BaseException) -> bool:
    """Store or broker unavailable, or a timeout (here or in an explicit `raise ... from`)."""
    seen: BaseException | None = exc
    for _ in range(5):  # a short cause chain: `raise DomainError(...) from AutoReconnect()`
        if seen is None or isinstance(seen, PermanentError):
            return False
        if isinstance(seen, TransientError | ConnectionFailure | ConnectionError | TimeoutError):
            # ConnectionFailure: AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
            return True
        if isinstance(seen, PyMongoError) and seen.timeout:
            return True
        if isinstance(seen, KafkaError) and (
            isinstance(seen, _KAFKA_TRANSIENT) or bool(getattr(seen, "retriable", False))
        ):
            return True
        seen = seen.__cause__
    return False


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
        self._waiting: dict[tuple[str, int], dict[str, Any]] = {}
        self.commits = OffsetCommits(settings.consumer_commit_interval_s)
        self.topics: list[str] = []
        """Physical topics subscribed (the lag metric reads them on a slow timer)."""

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
        self.topics.extend(names)

        async def decoder(msg: Any) -> Any:
            # The handler gets FastStream's message itself as its one argument: we
            # decode the record ourselves. A `message: KafkaMessage` parameter is a
            # context field that FastStream resolves in a worker thread, per record.
            return msg

        for name in names:

            @self.broker.subscriber(  # type: ignore[untyped-decorator]
                name,
                group_id=self.group,
                ack_policy=AckPolicy.MANUAL,  # committed by `self.commits`, after handling
                auto_offset_reset="earliest",
                decoder=decoder,
                title=f"{self.group}:{name}",
                max_workers=self.workers,
                **options,
            )
            async def _consume(message: Any) -> None:
                record = RawRecord.of(message.raw_message)
                await self.handle(record)
                await self.commits.handled(
                    message.consumer, record.topic, record.partition, record.offset
                )

    def health(self) -> dict[str, Any]:
        """`degraded` while a record waits for the store or the broker to come back."""
        now = time.time()
        waiting = [
            {"topic": t, "partition": p, "waiting_s": round(now - w["since"], 1), **w["error"]}
            for (t, p), w in sorted(self._waiting.items())
        ]
        return {"status": "degraded" if waiting else "ok", "waiting": waiting}

    async def handle(self, record: RawRecord) -> None:
        """Process one record to completion (applied, ignored or parked)."""
        replay_for = record.header(H_REPLAY_GROUP)
        if replay_for is not None and replay_for != self.group:
            return  # replayed for another group, which failed on it; we applied it already
        timer = HandlingTimer(self.settings.logical_topic(record.topic), self.group)
        try:
            envelope = Envelope.from_record(record.headers, record.value)
            check_provenance(self.settings.logical_topic(record.topic), envelope)
        except (MalformedEvent, ForgedEvent) as exc:
            log.warning(
                "event.forged" if isinstance(exc, ForgedEvent) else "event.malformed",
                topic=record.topic,
                offset=record.offset,
                partition=record.partition,
                reason=str(exc)[:500],
            )
            timer.received("forged" if isinstance(exc, ForgedEvent) else "malformed")
            await self._park(record, exc, attempts=0)
            timer.done("parked")
            return
        timer.received(envelope.type)
        handler = self._handlers.get(envelope.type)
        if handler is None:
            timer.done("ignored")
            return  # another consumer's business; a known type we do not need
        with (
            tracing.consuming(record.headers, record.topic, self.group, envelope.type) as span,
            structlog.contextvars.bound_contextvars(
                correlation_id=envelope.correlation_id,
                event_id=envelope.id,
                event_type=envelope.type,
                consumer_group=self.group,
            ),
        ):
            inbox = self.inbox
            if inbox is not None and await self._until_done(
                record, "inbox", lambda: inbox.seen(envelope.id), timer
            ):
                log.info("event.duplicate_skipped")
                timer.done("duplicate")
                return
            applied = await self._run(handler, envelope, record, timer)
            if not applied:
                tracing.failed(span, "parked")
            if applied and inbox is not None:
                await self._until_done(
                    record, "inbox", lambda: inbox.mark(envelope.id, envelope.type), timer
                )
            timer.done("applied" if applied else "parked")

    async def _run(
        self, handler: Handler, envelope: Envelope, record: RawRecord, timer: HandlingTimer
    ) -> bool:
        """Apply the handler; True when applied, False when parked."""
        attempt = 0  # failures that count towards parking; transient ones do not
        waits = 0
        while True:
            try:
                await handler(envelope)
            except Exception as exc:
                if is_transient(exc):
                    waits += 1
                    timer.retried("dependency")
                    await self._wait(record, "handler", exc, waits)
                    continue
                attempt += 1
                if isinstance(exc, PermanentError) or attempt >= self.max_attempts:
                    log.error(
                        "event.parked",
                        attempts=attempt,
                        error_type=type(exc).__name__,
                        error=str(exc),
                    )
                    await self._park(record, exc, attempts=attempt, timer=timer)
                    return False
                timer.retried("error")
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
            self._recovered(record)
            log.debug("event.applied", attempts=attempt + 1)
            return True

    async def _park(
        self,
        record: RawRecord,
        error: BaseException,
        attempts: int,
        timer: HandlingTimer | None = None,
    ) -> None:
        await self._until_done(record, "dlq", lambda: self.dlq.park(record, error, attempts), timer)

    async def _until_done(
        self,
        record: RawRecord,
        step: str,
        action: Callable[[], Awaitable[T]],
        timer: HandlingTimer | None = None,
    ) -> T:
        """Our own infrastructure steps (inbox, DLQ): the record is not at fault, so any
        failure is waited out, never turned into a parked or a skipped record."""
        waits = 0
        while True:
            try:
                result = await action()
            except Exception as exc:
                waits += 1
                if timer is not None:
                    timer.retried("dependency")
                await self._wait(record, step, exc, waits)
                continue
            if waits:
                self._recovered(record)
            return result

    async def _wait(self, record: RawRecord, step: str, exc: BaseException, waits: int) -> None:
        """Keep the record and wait (capped backoff): this consumer's partitions pause."""
        tp = (record.topic, record.partition)
        error = {"step": step, "error_type": type(exc).__name__}
        self._waiting.setdefault(tp, {"since": time.time(), "error": error})["error"] = error
        delay = self._backoff(waits)
        log.warning(
            "event.waiting_for_dependency",
            step=step,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            waits=waits,
            delay_s=round(delay, 3),
            error_type=type(exc).__name__,
            error=str(exc)[:300],
        )
        await self._sleep(delay)

    def _recovered(self, record: RawRecord) -> None:
        if self._waiting.pop((record.topic, record.partition), None) is not None:
            log.info("event.dependency_back", topic=record.topic, partition=record.partition)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter (50–100 % of the step), capped."""
        step = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(attempt - 1, 30))
        return float(step * (0.5 + random.random() / 2))
