"""Operator actions on the broker: list/create topics, read records, replay the DLQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from delego_shared.events import ALL_TOPICS
from delego_shared.messaging import ensure_topics
from delego_shared.messaging.dead_letter import (
    DLQ_HEADERS,
    H_BODY_OMITTED,
    H_GROUP,
    H_REPLAY_GROUP,
    H_REPLAY_OF,
    H_TOPIC,
)
from delego_shared.messaging.topics_admin import Kafka, end_offsets
from delego_shared.settings import KafkaAccess, Settings


class BrokerUnreachable(RuntimeError):
    pass


def operator_access(bootstrap: str) -> KafkaAccess:
    """The operators' way into Kafka: `DELEGO_KAFKA_SECURITY_PROTOCOL` and
    `DELEGO_KAFKA_SASL_PASSWORD` as for a service, as user `admin` (the broker's super
    user) unless `DELEGO_KAFKA_SASL_USERNAME` says otherwise."""
    return Settings(kafka_bootstrap=bootstrap, service_name="admin").kafka_access


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    messages: int


async def _admin(kafka: Kafka) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(**KafkaAccess.of(kafka).client_options(), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), timeout=8)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        raise BrokerUnreachable(
            f"cannot reach Kafka at {KafkaAccess.of(kafka).bootstrap}: {exc or type(exc).__name__}"
        ) from None
    return admin


async def create_topics(kafka: Kafka, prefix: str = "") -> list[str]:
    await (await _admin(kafka)).close()  # clear error when unreachable
    return await ensure_topics(kafka, ALL_TOPICS, prefix=prefix)


async def list_topics(kafka: Kafka) -> list[TopicInfo]:
    admin = await _admin(kafka)
    try:
        names = sorted(t for t in await admin.list_topics() if not t.startswith("__"))
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    consumer = AIOKafkaConsumer(
        **KafkaAccess.of(kafka).client_options(),
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    await consumer.start()
    counts: dict[str, int] = {}
    try:
        await consumer.topics()  # load metadata of every topic before asking offsets
        for n in names:
            tps = [TopicPartition(n, p) for p in range(partitions.get(n, 0))]
            try:
                begin = await consumer.beginning_offsets(tps)
                end = await consumer.end_offsets(tps)
            except KafkaError:
                counts[n] = -1
                continue
            counts[n] = sum(end[tp] - begin[tp] for tp in tps)
    finally:
        await consumer.stop()
    return [TopicInfo(n, partitions.get(n, 0), counts.get(n, -1)) for n in names]


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header_map(self) -> dict[str, str]:
        return {k: v.decode(errors="replace") for k, v in self.headers}


async def read(
    kafka: Kafka,
    topic: str,
    *,
    from_beginning: bool,
    follow: bool,
    limit: int | None = None,
    idle_s: float = 2.0,
) -> AsyncIterator[Record]:
    await (await _admin(kafka)).close()
    consumer = AIOKafkaConsumer(
        topic,
        **KafkaAccess.of(kafka).client_options(),
        group_id=f"delego-cli-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    seen = 0
    loop = asyncio.get_running_loop()
    last = loop.time()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                for r in recs:
                    yield Record(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value or b"",
                        list(r.headers or ()),
                    )
                    seen += 1
                    last = loop.time()
                    if limit is not None and seen >= limit:
                        return
            if not follow and loop.time() - last > idle_s:
                return
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Parked:
    """A parked record of a DLQ, and whether `replay` has put it back already."""

    record: Record
    replayed: bool

    @property
    def group(self) -> str | None:
        return self.record.header_map().get(H_GROUP)

    @property
    def replayable(self) -> bool:
        return self.record.header_map().get(H_BODY_OMITTED) != "true"


async def parked_records(kafka: Kafka, dlq_topic: str) -> list[Parked]:
    """Every parked record of `dlq_topic` in order; replay markers say which were replayed."""
    records = [r async for r in read(kafka, dlq_topic, from_beginning=True, follow=False)]
    markers = [r.header_map().get(H_REPLAY_OF) for r in records]
    replayed = {int(m) for m in markers if m is not None and m.isdigit()}
    return [
        Parked(r, r.offset in replayed) for r, m in zip(records, markers, strict=True) if m is None
    ]


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    already_replayed: int
    not_replayable: list[int]
    """DLQ offsets whose body was too large to keep: they can only be inspected."""


async def replay_dlq(
    kafka: Kafka,
    dlq_topic: str,
    *,
    group: str | None = None,
    offsets: set[int] | None = None,
) -> ReplayResult:
    """Re-publish parked records (of `group`, or at `offsets`) to their original topic,
    each for the consumer group that failed on it, once.

    Each replayed record carries `delego_replay_group`: the other groups, which
    applied it the first time, skip it. After each one a marker (`dlq_replay_of`)
    is appended to the DLQ, so a second run does not resend it; a crash between
    the two resends one record once, which its consumer's inbox absorbs.
    """
    producer = AIOKafkaProducer(
        **KafkaAccess.of(kafka).client_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    n, already, unreplayable = 0, 0, []
    try:
        for p in await parked_records(kafka, dlq_topic):
            rec = p.record
            if offsets is not None and rec.offset not in offsets:
                continue
            if group is not None and p.group != group:
                continue
            if p.replayed:
                already += 1
                continue
            if not p.replayable:
                unreplayable.append(rec.offset)
                continue
            headers = rec.header_map()
            target = headers.get(H_TOPIC) or dlq_topic.removesuffix(".dlq")
            kept = [(k, v) for k, v in rec.headers if k not in DLQ_HEADERS and k != H_REPLAY_GROUP]
            if p.group:  # records parked before groups were recorded go to every group
                kept.append((H_REPLAY_GROUP, p.group.encode()))
            await producer.send_and_wait(target, rec.value, key=rec.key, headers=kept)
            marker = [(H_REPLAY_OF, str(rec.offset).encode()), (H_GROUP, (p.group or "").encode())]
            await producer.send_and_wait(dlq_topic, b"", headers=marker)
            n += 1
    finally:
        await producer.stop()
    return ReplayResult(n, already, unreplayable)


async def consumer_lag(kafka: Kafka, group: str, topics: list[str]) -> int:
    """Records on `topics` not yet committed by consumer group `group`."""
    admin = await _admin(kafka)
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    end = await end_offsets(kafka, topics)
    lag = 0
    for tp, last in end.items():
        meta = committed.get(tp)
        lag += last - (meta.offset if meta is not None and meta.offset >= 0 else 0)
    return lag
