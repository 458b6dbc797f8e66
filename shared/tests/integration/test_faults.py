"""Faults that heal themselves and input that cannot hurt, on the real broker and store.

Issue 12: a ~1 MiB poison pill, a store outage longer than the in-line retry
budget, a forged `ce_source`, and the bounded inbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from aiokafka import AIOKafkaProducer
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import (
    EventConsumer,
    EventPublisher,
    Inbox,
    apply_once_filter,
    apply_once_update,
    create_broker,
)
from delego_shared.mongo import Mongo
from delego_shared.testing.kafka_tools import read_records, topic_length
from delego_shared.testing.proxy import TcpProxy
from delego_shared.testing.samples import registered
from delego_shared.testing.waiting import wait_for

pytestmark = pytest.mark.integration

CATALOG = "/delego/catalog"
OUTAGE_S = float(os.environ.get("DELEGO_TEST_STORE_OUTAGE_S", "60"))
"""The issue's 60 s; the old in-line budget was 5 attempts x (5 s server selection + backoff)."""


async def test_a_1_mib_poison_pill_is_parked_and_the_next_record_applied(settings_for):
    settings = settings_for("matching")
    topic = settings.topic(PROVIDERS.name)
    broker = create_broker(settings)
    consumer = EventConsumer(broker, settings)
    handled: list[str] = []

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        handled.append(env.subject)

    consumer.subscribe([PROVIDERS])
    pill = Envelope(registered("prv_pill"), source=CATALOG)
    body = json.dumps({"provider": {"provider_id": "p" * (1024 * 1024 - 3000)}}).encode()
    # the broker accepts it (about 1 MiB); its DLQ copy plus dlq_* headers would not fit
    big = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=2 * 1024 * 1024
    )
    await big.start()
    try:
        meta = await big.send_and_wait(
            topic,
            body,
            key=b"prv_pill",
            partition=0,
            headers=[(k, v.encode()) for k, v in pill.headers().items()],
        )
    finally:
        await big.stop()
    await broker.start()
    try:
        after = Envelope(registered("prv_after_pill"), source=CATALOG)
        await broker.publish(
            after.body(), topic=topic, key=after.key(), headers=after.headers(), partition=0
        )

        async def applied() -> bool:
            return handled == ["prv_after_pill"]

        await wait_for(applied, timeout=30)
    finally:
        await broker.stop()
    [parked] = await read_records(settings.kafka_bootstrap, topic + ".dlq", expect=1)
    h = parked.headers
    assert parked.key == b"prv_pill"
    assert parked.value == b""
    assert h["dlq_body_omitted"] == "true"
    assert h["dlq_body_sha256"] == hashlib.sha256(body).hexdigest()
    assert h["dlq_body_size"] == str(len(body))
    assert (h["dlq_original_topic"], h["dlq_original_partition"]) == (topic, "0")
    assert h["dlq_original_offset"] == str(meta.offset)
    assert h["dlq_error_type"] == "MalformedEvent"
    assert h["ce_id"] == pill.id and h["ce_type"] == pill.type
    assert h["dlq_consumer_group"] == settings.consumer_group


async def test_a_forged_source_is_parked_as_forged_and_never_applied(settings_for):
    settings = settings_for("notifications")
    broker = create_broker(settings)
    consumer = EventConsumer(broker, settings)
    handled: list[str] = []

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        handled.append(env.subject)

    consumer.subscribe([PROVIDERS])
    await broker.start()
    try:
        publisher = EventPublisher(broker, settings)
        # valid in every other way, but not from the topic's owner (catalog)
        await publisher.publish(Envelope(registered("prv_forged"), source="/delego/billing"))
        await publisher.publish(Envelope(registered("prv_real"), source=CATALOG))

        async def real_applied() -> bool:
            return "prv_real" in handled

        await wait_for(real_applied, timeout=30)
    finally:
        await broker.stop()
    [parked] = await read_records(
        settings.kafka_bootstrap, settings.topic(PROVIDERS.name) + ".dlq", expect=1
    )
    assert handled == ["prv_real"]
    assert parked.key == b"prv_forged"
    assert parked.headers["dlq_error_type"] == "ForgedEvent"
    assert parked.headers["dlq_error_message"] == (
        f"forged: ce_source '/delego/billing' is not the owner of {PROVIDERS.name} "
        f"(expected {CATALOG})"
    )


async def test_a_store_outage_under_traffic_parks_nothing_and_applies_everything(settings_for):
    """The store is cut for OUTAGE_S (connections refused and reset) while events keep
    coming; the shared store itself is never stopped (a proxy in front of it is).

    Two consumer groups: billing with an inbox (the outage hits the inbox first) and
    notifications without one (it hits the handler, which used to park after its
    attempts)."""
    base = settings_for("billing")
    url = urlsplit(base.mongodb_url)
    proxy = await TcpProxy(url.hostname or "127.0.0.1", url.port or 27017).start()
    proxied = f"mongodb://127.0.0.1:{proxy.port}/"
    groups = [settings_for(s, mongodb_url=proxied) for s in ("billing", "notifications")]
    direct = [Mongo(base.mongodb_url, s.database) for s in groups]
    via_proxy = [Mongo(proxied, s.database) for s in groups]
    brokers, consumers = [], []
    for settings, mongo, with_inbox in zip(groups, via_proxy, (True, False), strict=True):
        broker = create_broker(settings)
        inbox = Inbox(mongo, settings.consumer_group) if with_inbox else None
        consumer = EventConsumer(broker, settings, inbox=inbox)

        @consumer.on(type(registered()))
        async def handle(env: Envelope, mongo: Mongo = mongo) -> None:
            await mongo.db["applied"].update_one(
                apply_once_filter({"_id": env.subject}, env.id),
                apply_once_update({"$inc": {"n": 1}}, env.id),
                upsert=True,
            )

        consumer.subscribe([PROVIDERS])
        brokers.append(broker)
        consumers.append(consumer)
    health: list[set[str]] = []
    sent: list[str] = []
    for b in brokers:
        await b.start()
    try:
        publisher = EventPublisher(brokers[0], groups[0])

        async def traffic(seconds: float, tag: str) -> None:
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                pid = f"prv_{tag}{len(sent)}"
                await publisher.publish(Envelope(registered(pid), source=CATALOG))
                sent.append(pid)
                await asyncio.sleep(0.25)

        await traffic(2, "before")
        await proxy.cut()
        outage = asyncio.create_task(traffic(OUTAGE_S, "during"))
        while not outage.done():
            health.append({c.health()["status"] for c in consumers})
            await asyncio.sleep(1)
        await outage
        await proxy.restore()
        await traffic(2, "after")

        async def all_applied() -> bool:
            counts = [await m.db["applied"].count_documents({"n": 1}) for m in direct]
            return counts == [len(sent)] * len(direct)

        await wait_for(all_applied, timeout=60)
        assert [c.health()["status"] for c in consumers] == ["ok", "ok"]
    finally:
        for b in brokers:
            await b.stop()
        await proxy.stop()
        for m in via_proxy:
            await m.close()
    for m in direct:
        docs = [d async for d in m.db["applied"].find({})]
        assert sorted(d["_id"] for d in docs) == sorted(sent)
        assert all(d["n"] == 1 for d in docs)  # each applied once, none lost
        await m.close()
    dlq = groups[0].topic(PROVIDERS.name) + ".dlq"
    assert await topic_length(groups[0].kafka_bootstrap, dlq) == 0  # nothing parked
    assert {"degraded"} in health  # both said they were waiting for the store


async def test_the_inbox_forgets_ids_after_its_retention_and_keeps_recent_ones(settings_for):
    settings = settings_for("billing")
    mongo = Mongo(settings.mongodb_url, settings.database)
    inbox = Inbox(mongo, "billing", retention=timedelta(days=8), prune_batch=7)
    now = datetime.now(UTC)
    old = [f"evt_old{i}" for i in range(20)]  # more than a batch: pruned in several
    await mongo.db["processed_events"].insert_many(
        [{"_id": f"billing:{e}", "type": "t", "at": now - timedelta(days=9)} for e in old]
    )
    for e in ("evt_new1", "evt_new2"):
        await inbox.mark(e, "t")
    assert await inbox.seen("evt_old0") and await inbox.seen("evt_new1")

    assert await inbox.prune(now) == 20
    assert not await inbox.seen("evt_old0")
    assert await inbox.seen("evt_new1") and await inbox.seen("evt_new2")
    assert await mongo.db["processed_events"].count_documents({}) == 2
    assert await inbox.prune(now) == 0  # nothing left to do; the next pass costs one find
    await mongo.close()
