"""(a) the limit: a raw aiokafka chain of three hops on the same broker and store.

Each hop consumes one record, inserts one document idempotently (a duplicate
key is ignored), updates one document by `_id` (`$inc` + `$set`) in the same
FerretDB (PyMongo async), produces the record to the next topic (acks=all,
idempotent producer, waiting for the acknowledgement) and commits the offset
of that one record: the work the platform's consumers do per event, without
the platform's code. Messages/s through the three hops = flows/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

PARTITIONS = 6  # as the platform's topics
HOPS = 3
AGGREGATES = 64


@dataclass
class ChainResult:
    sent: int
    arrived: int
    seconds: float

    @property
    def rate(self) -> float | None:
        return self.arrived / self.seconds if self.seconds > 0 and self.arrived else None


async def _create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def _assigned(bootstrap: str, topic: str, group: str | None) -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await c.start()
    c.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    return c


async def _hop(
    i: int,
    bootstrap: str,
    topic_in: str,
    topic_out: str,
    group: str,
    mongo: AsyncMongoClient[dict[str, object]],
    database: str,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    consumer = await _assigned(bootstrap, topic_in, group)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    db = mongo[database]
    inbox, aggregates = db[f"hop{i}_inbox"], db[f"hop{i}_aggregates"]
    ready.set()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=100)
            for tp, records in batches.items():
                for r in records:
                    key = (r.key or b"").decode()
                    msg_id = (r.value or b"").decode()
                    with contextlib.suppress(DuplicateKeyError):
                        await inbox.insert_one({"_id": msg_id, "at": datetime.now(UTC)})
                    await aggregates.update_one(
                        {"_id": f"agg-{hash(key) % AGGREGATES}"},
                        {"$inc": {"n": 1}, "$set": {"last": msg_id}},
                    )
                    await producer.send_and_wait(topic_out, r.value, key=r.key)
                    await consumer.commit({tp: OffsetAndMetadata(r.offset + 1, "")})
    finally:
        await producer.stop()
        await consumer.stop()


async def run_chain(
    bootstrap: str, mongodb_url: str, messages: int, timeout: float, tag: str
) -> ChainResult:
    """Inject `messages` records into hop 1 at once; time until all left hop 3."""
    run = f"bench.raw.{tag}.{uuid.uuid4().hex[:6]}"
    topics = [f"{run}.t{k}" for k in range(HOPS + 1)]
    await _create_topics(bootstrap, topics)
    await asyncio.sleep(1.0)  # leaders of the new partitions
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    database = "bench_raw"
    for k in range(HOPS):
        await mongo[database][f"hop{k}_aggregates"].delete_many({})
        await mongo[database][f"hop{k}_aggregates"].insert_many(
            [{"_id": f"agg-{a}", "n": 0} for a in range(AGGREGATES)]
        )
        await mongo[database][f"hop{k}_inbox"].delete_many({})
    readies = [asyncio.Event() for _ in range(HOPS)]
    stop = asyncio.Event()
    hops = [
        asyncio.create_task(
            _hop(
                k,
                bootstrap,
                topics[k],
                topics[k + 1],
                f"{run}.hop{k}",
                mongo,
                database,
                readies[k],
                stop,
            )
        )
        for k in range(HOPS)
    ]
    sink = await _assigned(bootstrap, topics[-1], None)
    injector = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await injector.start()
    try:
        for t in topics:  # metadata (and leaders) of the new topics before timing
            await asyncio.wait_for(injector.partitions_for(t), 30)
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        t0 = time.monotonic()
        for n in range(messages):
            await injector.send(topics[0], f"m{n:07d}".encode(), key=f"flow-{n % 997}".encode())
        await injector.flush()
        arrived, last = 0, t0
        deadline = t0 + timeout
        while arrived < messages and time.monotonic() < deadline:
            batches = await sink.getmany(timeout_ms=200, max_records=1000)
            got = sum(len(v) for v in batches.values())
            if got:
                arrived += got
                last = time.monotonic()
        return ChainResult(messages, arrived, last - t0)
    finally:
        stop.set()  # hops finish the batch in hand and stop cleanly
        _, late = await asyncio.wait(hops, timeout=30)
        for h in late:
            h.cancel()
        for h in hops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await h
        await injector.stop()
        await sink.stop()
        await mongo.close()
