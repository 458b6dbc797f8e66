"""Reading what really reached a topic (for assertions in integration tests)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from ..messaging.topics_admin import end_offsets


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


async def read_records(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    timeout: float = 20.0,
    idle: float = 1.5,
) -> list[Record]:
    """All records of `topic` from the beginning: stops at `expect` records, or when
    nothing new arrived for `idle` seconds (after the first one), or at `timeout`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[Record] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_new = loop.time()
    try:
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                for r in recs:
                    out.append(
                        Record(
                            r.topic,
                            r.partition,
                            r.offset,
                            r.key,
                            r.value,
                            {k: v.decode() for k, v in (r.headers or ())},
                        )
                    )
                    last_new = loop.time()
            if expect is not None and len(out) >= expect:
                break
            if expect is None and out and loop.time() - last_new > idle:
                break
    finally:
        await consumer.stop()
    return out


async def topic_length(bootstrap: str, topic: str) -> int:
    """How many records `topic` holds right now (sum of its partitions' end offsets)."""
    return sum((await end_offsets(bootstrap, [topic])).values())
