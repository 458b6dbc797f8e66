"""The outbox on a real broker and store: published at once, recovered after a crash, exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import EventPublisher, Outbox, OutboxRelay, create_broker
from delego_shared.messaging.outbox import (
    _FIRST_RUN,
    COUNT,
    PENDING,
    REMOVAL_LINGER_S,
    SESSIONS,
)
from delego_shared.messaging.publisher import OutgoingRecord
from delego_shared.mongo import Mongo
from delego_shared.replica import Replica
from delego_shared.settings import Settings
from delego_shared.testing.kafka_tools import read_records
from delego_shared.testing.samples import registered
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

pytestmark = pytest.mark.integration


def _ids(records) -> list[str]:
    return [r.headers["ce_id"] for r in records]


async def test_publish_now_puts_the_documents_events_on_the_topic_before_it_returns(
    settings_for,
):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    envs = [Envelope(registered("prv_now"), source=settings.source) for _ in range(3)]
    await coll.insert_one(Outbox.attach({"_id": "prv_now", "v": 1}, envs[:2]))
    await coll.update_one({"_id": "prv_now"}, Outbox.push({"$set": {"v": 2}}, envs[2:]))
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"])
        assert await relay.publish_now("providers", "prv_now") == 3
        # already acknowledged by the broker: a reader finds them without waiting
        records = await read_records(
            settings.kafka_bootstrap, settings.topic(PROVIDERS.name), timeout=5
        )
        assert _ids(records) == [e.id for e in envs]
        assert await relay.publish_now("providers", "prv_now") == 0  # nothing sent twice
        await relay.flush()  # the removal goes in the background
    finally:
        await broker.stop()
    stored = await coll.find_one({"_id": "prv_now"})
    assert stored is not None
    assert stored[PENDING] == {}
    assert stored[COUNT] == 0
    await mongo.close()


async def test_publish_now_sends_an_inserted_document_as_written_without_reading_it_back(
    settings_for, monkeypatch
):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    envs = [Envelope(registered("prv_written"), source=settings.source) for _ in range(2)]
    doc = Outbox.attach({"_id": "prv_written", "v": 1}, envs)
    await coll.insert_one(dict(doc))

    async def no_read(*args, **kwargs):
        raise AssertionError("publish_now read the document back")

    monkeypatch.setattr(AsyncCollection, "find_one", no_read)
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"])
        assert await relay.publish_now("providers", "prv_written", written=doc) == 2
        await relay.flush()
        records = await read_records(
            settings.kafka_bootstrap, settings.topic(PROVIDERS.name), timeout=5
        )
        assert [i for i in _ids(records) if i in {e.id for e in envs}] == [e.id for e in envs]
    finally:
        await broker.stop()
    monkeypatch.undo()
    stored = await coll.find_one({"_id": "prv_written"})
    assert stored is not None
    assert stored[PENDING] == {}
    assert stored[COUNT] == 0
    await mongo.close()


async def _publish_together(settings, n: int, *, removed_meanwhile: int | None = None):
    """`n` documents with one pending event each, published at once by one relay:
    (relay, the documents as stored afterwards). With `removed_meanwhile`, that
    document's entry is removed first, as another relay that published it would."""
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    ids = [f"prv_group_{n}_{i}" for i in range(n)]
    envs = {i: Envelope(registered(i), source=settings.source) for i in ids}
    await coll.insert_many([Outbox.attach({"_id": i}, [envs[i]]) for i in ids])
    if removed_meanwhile is not None:
        gone = ids[removed_meanwhile]
        await coll.update_one(
            {"_id": gone}, {"$unset": {f"{PENDING}.{envs[gone].id}": ""}, "$inc": {COUNT: -1}}
        )
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"])
        sent = await asyncio.gather(
            *(relay.publish_now("providers", i, stored=[envs[i]], pending=1) for i in ids)
        )
        assert sent == [1] * n
        await relay.flush()
    finally:
        await broker.stop()
    stored = {d["_id"]: (d[COUNT], d[PENDING]) async for d in coll.find({"_id": {"$in": ids}})}
    await mongo.close()
    return relay, stored


async def test_removals_of_concurrent_publishes_go_to_the_store_together(settings_for):
    relay, stored = await _publish_together(settings_for("catalog"), 20)
    assert relay._removals["providers"].commands < 20
    assert list(stored.values()) == [(0, {})] * 20


async def test_a_removal_that_misses_leaves_every_count_exact_when_removals_go_together(
    settings_for,
):
    """One document's entry was removed meanwhile (another relay published it): its
    removal matches nothing, so the bulk does not say which one missed. Every
    document is then checked alone, and no count goes below what is pending."""
    relay, stored = await _publish_together(settings_for("catalog"), 8, removed_meanwhile=3)
    assert relay._removals["providers"].commands < 8  # some went together
    assert list(stored.values()) == [(0, {})] * 8


async def test_removals_of_publishes_one_after_another_go_to_the_store_together(settings_for):
    """Nobody waits for a removal: those made within the linger go as one command even
    when the publishes were made one after the other (a consumer handles one record
    at a time)."""
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    ids = [f"prv_seq_{i}" for i in range(5)]
    envs = {i: Envelope(registered(i), source=settings.source) for i in ids}
    await coll.insert_many([Outbox.attach({"_id": i}, [envs[i]]) for i in ids])
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(
            mongo, EventPublisher(broker, settings), ["providers"], removal_linger_s=2.0
        )
        for i in ids:
            assert await relay.publish_now("providers", i, stored=[envs[i]], pending=1) == 1
        await relay.flush()
    finally:
        await broker.stop()
    assert relay._removals["providers"].commands == 1
    stored = [(d[COUNT], d[PENDING]) async for d in coll.find({"_id": {"$in": ids}})]
    assert stored == [(0, {})] * 5
    await mongo.close()


async def _second_event_sent_once(
    settings_for,
    doc_id: str,
    publish_second: Callable[[OutboxRelay, AsyncCollection, Envelope], Awaitable[None]],
    *,
    removal_linger_s: float = REMOVAL_LINGER_S,
) -> None:
    """A document's first event is published from its insert; `publish_second` stores
    and publishes a second one. Each is on the topic once, in order, and none is left."""
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    first, second = (Envelope(registered(doc_id), source=settings.source) for _ in range(2))
    doc = Outbox.attach({"_id": doc_id, "v": 1}, [first])
    await coll.insert_one(dict(doc))
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(
            mongo,
            EventPublisher(broker, settings),
            ["providers"],
            removal_linger_s=removal_linger_s,
        )
        assert await relay.publish_now("providers", doc_id, written=doc) == 1
        await publish_second(relay, coll, second)
        await relay.flush()
    finally:
        await broker.stop()
    records = await read_records(
        settings.kafka_bootstrap, settings.topic(PROVIDERS.name), timeout=5
    )
    assert [i for i in _ids(records) if i in {first.id, second.id}] == [first.id, second.id]
    stored = await coll.find_one({"_id": doc_id})
    assert stored is not None
    assert (stored[COUNT], stored[PENDING]) == (0, {})
    await mongo.close()


async def test_a_publish_while_the_last_removal_is_on_its_way_sends_only_the_new_event(
    settings_for, monkeypatch
):
    """The document still holds the event published a moment ago (its removal has not
    landed): the next write's count includes it, and the relay knows it sent it. Only
    the new event goes, without reading the document, and nothing is sent twice."""

    async def publish_second(relay, coll, second):
        after = await coll.find_one_and_update(
            {"_id": "prv_next"},
            Outbox.push({"$set": {"v": 2}}, [second]),
            return_document=ReturnDocument.AFTER,
        )
        assert Outbox.count(after) == 2  # the first one's removal is still on its way

        async def no_read(*args, **kwargs):
            raise AssertionError("publish_now read the document back")

        monkeypatch.setattr(AsyncCollection, "find_one", no_read)
        assert await relay.publish_now("providers", "prv_next", stored=[second], pending=2) == 1
        monkeypatch.undo()

    await _second_event_sent_once(settings_for, "prv_next", publish_second, removal_linger_s=2.0)


async def test_a_removal_landing_while_the_document_is_read_sends_nothing_twice(
    settings_for, monkeypatch
):
    """A write that does not return the count makes the publish read the document. The
    last publish's removal lands during that read: the read still shows the entry, yet
    the relay knows it sent it. Only the new event goes (five racing PATCHes of one
    offer once published a version twice this way)."""

    async def publish_second(relay, coll, second):
        await coll.update_one({"_id": "prv_race"}, Outbox.push({"$set": {"v": 2}}, [second]))
        read = AsyncCollection.find_one

        async def removal_lands_during_the_read(self, *args, **kwargs):
            found = await read(self, *args, **kwargs)
            await relay.flush()
            return found

        monkeypatch.setattr(AsyncCollection, "find_one", removal_lands_during_the_read)
        assert await relay.publish_now("providers", "prv_race") == 1
        monkeypatch.undo()

    await _second_event_sent_once(settings_for, "prv_race", publish_second)


async def test_a_failed_removal_is_retried_and_leaves_the_count_exact(settings_for):
    """The store refused the removal after the publish: the entry stays, the retry
    publishes it again (same ce_id, consumers are idempotent) and removes it."""
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    env = Envelope(registered("prv_unremoved"), source=settings.source)
    doc = Outbox.attach({"_id": "prv_unremoved"}, [env])
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(
            mongo,
            EventPublisher(broker, settings),
            ["providers"],
            sweep_interval_s=3600,
            retry_after_failure_s=0.2,
        )
        relay.start()  # its first-run sweep finds nothing: the collection is empty
        await asyncio.sleep(0.5)
        await coll.insert_one(dict(doc))
        grouped = relay._removals["providers"]

        async def store_down(*args, **kwargs):
            raise ConnectionError("store unreachable")

        grouped.update_one = store_down  # type: ignore[method-assign]
        assert await relay.publish_now("providers", "prv_unremoved", written=doc) == 1
        records = await read_records(
            settings.kafka_bootstrap, settings.topic(PROVIDERS.name), expect=2, timeout=10
        )
        await relay.stop()
    finally:
        await broker.stop()
    assert _ids(records) == [env.id, env.id]
    stored = await coll.find_one({"_id": "prv_unremoved"})
    assert stored is not None
    assert (stored[COUNT], stored[PENDING]) == (0, {})
    await mongo.close()


async def test_a_removal_failing_after_the_relay_stopped_leaves_it_to_the_next_relay(started):
    """A publish made while the service stops (a handler finishing): its removal fails,
    nobody here retries, so the relay leaves a dead session and the next one sweeps."""
    settings, mongo, publisher = started
    relay = OutboxRelay(mongo, publisher, ["providers"], sweep_interval_s=3600)
    relay.start()
    await asyncio.sleep(0.5)
    await relay.stop()  # clean: no session left
    assert await mongo.db[SESSIONS].find_one({"_id": relay.owner}) is None
    env = Envelope(registered("prv_late"), source=settings.source)
    doc = Outbox.attach({"_id": "prv_late"}, [env])
    await mongo.db["providers"].insert_one(dict(doc))

    async def store_down(*args, **kwargs):
        raise ConnectionError("store closed")

    relay._removals["providers"].update_one = store_down  # type: ignore[method-assign]
    assert await relay.publish_now("providers", "prv_late", written=doc) == 1
    await relay.flush()
    session = await mongo.db[SESSIONS].find_one({"_id": relay.owner})
    assert session is not None and session["heartbeat"].year == 1970  # dead: swept for
    after = OutboxRelay(mongo, publisher, ["providers"], grace_s=0)
    assert await after._crashed()
    assert await after.sweep() == 1  # published again (same ce_id), then removed
    stored = await mongo.db["providers"].find_one({"_id": "prv_late"})
    assert stored is not None and (stored[COUNT], stored[PENDING]) == (0, {})


async def test_crash_between_state_write_and_publish_is_recovered_by_the_sweep(settings_for):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    env = Envelope(registered("prv_crash"), source=settings.source)
    # the service stored its state and the event in one document, then "crashed":
    await mongo.db["providers"].insert_one(Outbox.attach({"_id": "prv_crash", "v": 1}, [env]))
    topic = settings.topic(PROVIDERS.name)
    assert await read_records(settings.kafka_bootstrap, topic, timeout=2) == []

    broker = create_broker(settings)  # the restarted service
    await broker.start()
    try:
        relay = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"], grace_s=0)
        relay.start()  # the store's first relay sweeps once, at start-up
        records = await read_records(settings.kafka_bootstrap, topic, expect=1)
        await relay.stop()
        assert await relay.sweep() == 0  # nothing left, nothing sent twice
        second = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"], grace_s=0)
        assert await second.sweep() == 0  # another replica finds nothing either
    finally:
        await broker.stop()
    assert _ids(records) == [env.id]
    stored = await mongo.db["providers"].find_one({"_id": "prv_crash"})
    assert stored is not None
    assert stored[PENDING] == {}
    assert stored[COUNT] == 0
    await mongo.close()


async def test_sweep_leaves_fresh_entries_to_their_writer(settings_for):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    env = Envelope(registered("prv_fresh"), source=settings.source)
    await mongo.db["providers"].insert_one(Outbox.attach({"_id": "prv_fresh"}, [env]))
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"], grace_s=60)
        assert await relay.sweep() == 0
    finally:
        await broker.stop()
    await mongo.close()


class _StallingPublisher(EventPublisher):
    """Holds its sends until released: a relay stalled past its lease."""

    def __init__(self, inner: EventPublisher) -> None:
        super().__init__(inner.broker, inner.settings)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        self.entered.set()
        await self.release.wait()
        await super().send_all(records)


async def test_a_stale_relay_after_a_lease_takeover_never_drives_the_count_wrong(settings_for):
    """Relay A claims, stalls past its lease; B takes over and publishes; A then finishes.

    With an unconditional `$inc -1` per entry (the old relay), A's late removal
    drove the counter to -1, and the next event on that document (count 0 with
    one entry pending) was never picked up again.
    """
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    first = Envelope(registered("prv_drift"), source=settings.source)
    await coll.insert_one(Outbox.attach({"_id": "prv_drift"}, [first]))
    broker = create_broker(settings)
    await broker.start()
    try:
        plain = EventPublisher(broker, settings)
        stalling = _StallingPublisher(plain)
        a = OutboxRelay(mongo, stalling, ["providers"], lease_s=0.5, grace_s=0)
        b = OutboxRelay(mongo, plain, ["providers"], lease_s=30, grace_s=0)
        a_task = asyncio.create_task(a.sweep())
        await stalling.entered.wait()
        await asyncio.sleep(0.8)  # A's lease is over
        assert await b.sweep() == 1
        stalling.release.set()
        await a_task  # A publishes again (a duplicate, same ce_id) and removes nothing more
        doc = await coll.find_one({"_id": "prv_drift"})
        assert doc is not None
        assert doc[COUNT] == 0
        second = Envelope(registered("prv_drift"), source=settings.source)
        await coll.update_one({"_id": "prv_drift"}, Outbox.push({"$set": {"x": 1}}, [second]))
        assert await b.sweep() == 1  # the next event is found and published
        doc = await coll.find_one({"_id": "prv_drift"})
        assert doc is not None
        assert (doc[COUNT], doc[PENDING]) == (0, {})
    finally:
        await broker.stop()
    records = await read_records(settings.kafka_bootstrap, settings.topic(PROVIDERS.name), expect=3)
    assert set(_ids(records)) == {first.id, second.id}
    await mongo.close()


class _FailingForKey(EventPublisher):
    def __init__(self, inner: EventPublisher, bad_key: str) -> None:
        super().__init__(inner.broker, inner.settings)
        self.bad_key = bad_key

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        if any(r.key == self.bad_key for r in records):
            raise ConnectionError("broker refused this record")
        await super().send_all(records)


async def test_one_failing_document_does_not_stall_the_others(settings_for):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    bad = Envelope(registered("prv_bad"), source=settings.source)
    good = [Envelope(registered(f"prv_ok{i}"), source=settings.source) for i in range(3)]
    await coll.insert_one(Outbox.attach({"_id": "prv_bad"}, [bad]))
    for e in good:
        await coll.insert_one(Outbox.attach({"_id": e.subject}, [e]))
    broker = create_broker(settings)
    await broker.start()
    try:
        publisher = _FailingForKey(EventPublisher(broker, settings), "prv_bad")
        relay = OutboxRelay(mongo, publisher, ["providers"], grace_s=0)
        assert await relay.sweep() == 3
        assert await relay.publish_now("providers", "prv_bad") == 0  # deferred, not raised
    finally:
        await broker.stop()
    records = await read_records(settings.kafka_bootstrap, settings.topic(PROVIDERS.name), expect=3)
    assert sorted(_ids(records)) == sorted(e.id for e in good)
    still = await coll.find_one({"_id": "prv_bad"})
    assert still is not None
    assert still[COUNT] == 1
    assert list(still[PENDING]) == [bad.id]
    await mongo.close()


async def test_order_of_one_document_holds_across_writes_and_publishes(settings_for):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    envs = [Envelope(registered("prv_order"), source=settings.source) for _ in range(6)]
    await coll.insert_one(Outbox.attach({"_id": "prv_order"}, envs[:2]))
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(mongo, EventPublisher(broker, settings), ["providers"], grace_s=0)
        publishes = [asyncio.create_task(relay.publish_now("providers", "prv_order"))]
        for e in envs[2:]:
            await coll.update_one({"_id": "prv_order"}, Outbox.push({"$set": {"x": 1}}, [e]))
            publishes.append(asyncio.create_task(relay.publish_now("providers", "prv_order")))
        await asyncio.gather(*publishes)
    finally:
        await broker.stop()
    records = await read_records(
        settings.kafka_bootstrap, settings.topic(PROVIDERS.name), timeout=5
    )
    seen: list[str] = []
    for i in _ids(records):  # concurrent publishers may repeat an event; first sightings
        if i not in seen:
            seen.append(i)
    assert seen == [e.id for e in envs]
    await mongo.close()


class _FailingOnce(EventPublisher):
    def __init__(self, inner: EventPublisher) -> None:
        super().__init__(inner.broker, inner.settings)
        self.failures = 1

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker briefly unreachable")
        await super().send_all(records)


async def test_a_failed_publish_is_retried_by_id_soon_without_waiting_for_a_sweep(settings_for):
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    coll = mongo.db["providers"]
    broker = create_broker(settings)
    await broker.start()
    try:
        relay = OutboxRelay(
            mongo,
            _FailingOnce(EventPublisher(broker, settings)),
            ["providers"],
            sweep_interval_s=3600,  # no session check during this test: only the retry
            retry_after_failure_s=0.2,
        )
        relay.start()  # its first-run sweep finds nothing: the collection is empty
        await asyncio.sleep(0.5)
        env = Envelope(registered("prv_retry"), source=settings.source)
        await coll.insert_one(Outbox.attach({"_id": "prv_retry"}, [env]))
        assert await relay.publish_now("providers", "prv_retry") == 0  # failed, deferred
        records = await read_records(
            settings.kafka_bootstrap, settings.topic(PROVIDERS.name), expect=1, timeout=10
        )
        await relay.stop()
    finally:
        await broker.stop()
    assert _ids(records) == [env.id]
    stored = await coll.find_one({"_id": "prv_retry"})
    assert stored is not None
    assert (stored[COUNT], stored[PENDING]) == (0, {})
    await mongo.close()


@pytest_asyncio.fixture
async def started(settings_for) -> AsyncIterator[tuple[Settings, Mongo, EventPublisher]]:
    """A service's settings, its store and a started publisher (stopped afterwards)."""
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    broker = create_broker(settings)
    await broker.start()
    try:
        yield settings, mongo, EventPublisher(broker, settings)
    finally:
        await broker.stop()
        await mongo.close()


async def test_a_clean_stop_leaves_no_sweep_and_a_dead_relay_is_swept_for(started):
    """The sweep reads whole collections, so it runs only after a relay died."""
    settings, mongo, publisher = started
    coll = mongo.db["providers"]
    first = OutboxRelay(mongo, publisher, ["providers"], sweep_interval_s=0.2)
    first.start()  # the store's first relay looks once (events from before sessions)
    await asyncio.sleep(0.5)
    await first.stop()  # clean: its session is gone
    assert first.sweeps == 1
    assert await mongo.db[SESSIONS].find_one({"_id": first.owner}) is None

    second = OutboxRelay(mongo, publisher, ["providers"], sweep_interval_s=0.2)
    second.start()
    await asyncio.sleep(0.6)
    assert second.sweeps == 0  # nobody died: no sweep
    # a replica stored state and events, then died before publishing (its
    # session stops beating)
    env = Envelope(registered("prv_orphan"), source=settings.source)
    await coll.insert_one(Outbox.attach({"_id": "prv_orphan"}, [env]))
    dead = datetime.now(UTC) - timedelta(minutes=5)
    await mongo.db[SESSIONS].insert_one({"_id": "crashed-replica", "heartbeat": dead})
    records = await read_records(
        settings.kafka_bootstrap, settings.topic(PROVIDERS.name), expect=1, timeout=10
    )
    await second.stop()
    assert second.sweeps == 1
    assert _ids(records) == [env.id]
    assert await mongo.db[SESSIONS].find_one({"_id": "crashed-replica"}) is None


async def test_a_replica_started_again_sweeps_at_once_for_its_killed_run(started):
    """A killed run's session still looks alive (its last beat is recent); another replica
    waits for it to miss its beats, the same replica started again knows it is dead."""
    settings, mongo, publisher = started
    coll = mongo.db["providers"]
    killed = Replica("host-a:8001")
    relays: list[OutboxRelay] = []
    try:
        # relays ran here before (no first-start sweep); the killed run's session beat a
        # moment ago, and its events are not published
        await mongo.db[SESSIONS].insert_one({"_id": _FIRST_RUN, "at": datetime.now(UTC)})
        await mongo.db[SESSIONS].insert_one(
            {"_id": killed.owner, "heartbeat": datetime.now(UTC), "started": datetime.now(UTC)}
        )
        env = Envelope(registered("prv_killed"), source=settings.source)
        await coll.insert_one(Outbox.attach({"_id": "prv_killed"}, [env]))
        topic = settings.topic(PROVIDERS.name)

        other = OutboxRelay(mongo, publisher, ["providers"], replica=Replica("host-b:8001"))
        relays.append(other)
        other.start()
        await asyncio.sleep(1.0)
        assert other.sweeps == 0  # for another replica the session is alive
        assert await read_records(settings.kafka_bootstrap, topic, timeout=1) == []

        again = OutboxRelay(mongo, publisher, ["providers"], replica=Replica("host-a:8001"))
        relays.append(again)
        again.start()
        records = await read_records(settings.kafka_bootstrap, topic, expect=1, timeout=10)
        assert again.sweeps == 1
        assert _ids(records) == [env.id]
        assert await mongo.db[SESSIONS].find_one({"_id": killed.owner}) is None
        assert await mongo.db[SESSIONS].find_one({"_id": again.owner}) is not None
    finally:
        for relay in relays:
            await relay.stop()
