"""Create topics (and their DLQs) with explicit partition counts, idempotently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ..events.base import Topic, dlq_name
from ..logging import get_logger
from ..settings import KafkaAccess

Kafka = KafkaAccess | str
"""The broker and our credentials (`Settings.kafka_access`); a bare bootstrap string
is a PLAINTEXT broker."""

log = get_logger(__name__)


def _admin(kafka: Kafka) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**KafkaAccess.of(kafka).client_options(), client_id="delego-admin")


async def ensure_topics(
    kafka: Kafka,
    topics: Iterable[Topic],
    *,
    prefix: str = "",
    replication_factor: int = 1,
    dlq_partitions: int = 1,
    partitions: int | None = None,
) -> list[str]:
    """Create each topic and its `.dlq` (with the topic's `retention.ms` when it sets
    one; an existing topic is left as it is); returns the names created now.

    `partitions` overrides every topic's own count (tests keep the broker light).
    """
    wanted: dict[str, int] = {}
    configs: dict[str, dict[str, str]] = {}
    for t in topics:
        wanted[prefix + t.name] = partitions or t.partitions
        wanted[dlq_name(prefix + t.name)] = dlq_partitions
        if t.retention_ms is not None:
            configs[prefix + t.name] = {"retention.ms": str(t.retention_ms)}
    admin = _admin(kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, p, replication_factor, topic_configs=configs.get(n))
            for n, p in wanted.items()
            if n not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def delete_topics_with_prefix(kafka: Kafka, prefix: str) -> int:
    """Delete every topic whose name starts with `prefix` (test clean-up)."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = _admin(kafka)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    finally:
        await admin.close()


async def partitions(kafka: Kafka, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics` as the broker describes them (a missing topic has none).

    A bare consumer's `partitions_for_topic` knows only topics it has fetched
    metadata for, and silently answers None for the others (consumer lag then
    read 0; a group-less follower would follow nothing).
    """
    names = list(topics)
    if not names:
        return []
    admin = _admin(kafka)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return [
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if not d.get("error_code")
        for p in d["partitions"]
    ]


async def wait_for_partitions(kafka: Kafka, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, sorted, once each topic exists (a replica that follows
    topics may start before whoever creates them)."""
    names = list(topics)
    while True:
        found = await partitions(kafka, names)
        missing = sorted(set(names) - {tp.topic for tp in found})
        if not missing:
            return sorted(found)
        log.info("topics.waiting", missing=missing)
        await asyncio.sleep(0.5)


async def end_offsets(kafka: Kafka, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of `topics` (a missing topic has none)."""
    tps = await partitions(kafka, topics)
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(**KafkaAccess.of(kafka).client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def consumer_lag(
    kafka: Kafka, group: str, topics: Iterable[str]
) -> dict[TopicPartition, int]:
    """Records on each partition of `topics` not yet committed by `group` (one admin
    request for the committed offsets, one for the end offsets)."""
    admin = _admin(kafka)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    lag: dict[TopicPartition, int] = {}
    for tp, end in (await end_offsets(kafka, topics)).items():
        meta = committed.get(tp)
        lag[tp] = max(0, end - (meta.offset if meta is not None and meta.offset >= 0 else 0))
    return lag


async def follow_partitions(
    kafka: Kafka,
    client_id: str,
    followed: Iterable[TopicPartition],
    positions: dict[tuple[str, int], int],
) -> AIOKafkaConsumer:
    """A started consumer of no group on these partitions, each at its position (else from
    the beginning): for a replica that follows topics itself and keeps its own positions.
    The caller stops it."""
    consumer = AIOKafkaConsumer(
        **KafkaAccess.of(kafka).client_options(),
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = list(followed)
        consumer.assign(tps)
        for tp in tps:
            at = positions.get((tp.topic, tp.partition))
            if at is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, at)
    except BaseException:
        await consumer.stop()
        raise
    return consumer
