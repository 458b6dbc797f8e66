"""The operator CLI against a real broker: topics, tail, DLQ list and replay, clear errors."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from delego_cli.kafka_ops import consumer_lag
from delego_cli.main import app
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import (
    EventConsumer,
    EventPublisher,
    PermanentError,
    create_broker,
    owner_source,
)
from delego_shared.messaging.dead_letter import DeadLetterQueue, RawRecord
from delego_shared.testing.kafka_tools import read_records, topic_length
from delego_shared.testing.samples import registered
from delego_shared.testing.waiting import wait_for
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
runner = CliRunner()


async def publish_and_park(settings, env: Envelope) -> None:
    """Publish one event, then park it on the DLQ the way a failing consumer would."""
    topic = settings.topic(PROVIDERS.name)
    broker = create_broker(settings)
    await broker.start()
    try:
        publisher = EventPublisher(broker, settings)
        await publisher.publish(env)
        [rec] = await read_records(settings.kafka_bootstrap, topic, expect=1)
        raw = RawRecord(
            rec.topic,
            rec.partition,
            rec.offset,
            rec.key,
            rec.value,
            [(k, v.encode()) for k, v in rec.headers.items()],
        )
        await DeadLetterQueue(publisher, "matching").park(raw, RuntimeError("boom"), attempts=5)
    finally:
        await broker.stop()


def test_topics_tail_dlq_list_and_replay(settings_for):
    """Synchronous: the CLI runs its own event loop, as from a shell."""
    settings = settings_for("catalog")
    bootstrap = settings.kafka_bootstrap
    topic = settings.topic(PROVIDERS.name)
    env = Envelope(registered("prv_cli"), source=settings.source, correlation_id="corr-cli")
    asyncio.run(publish_and_park(settings, env))

    listed = runner.invoke(app, ["topics", "list", "-b", bootstrap])
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if ln.startswith(topic + " "))
    assert line.split()[1:] == ["3", "1"]  # partitions, messages

    tail = runner.invoke(app, ["tail", topic, "-b", bootstrap, "--from-beginning", "--no-follow"])
    assert tail.exit_code == 0, tail.output
    assert "ce_type: delego.catalog.ProviderRegistered.v1" in tail.output
    assert "ce_correlationid: corr-cli" in tail.output
    assert "key=prv_cli" in tail.output

    dlq = runner.invoke(app, ["dlq", "list", topic, "-b", bootstrap])
    assert dlq.exit_code == 0, dlq.output
    assert "RuntimeError: boom" in dlq.output
    assert "attempts=5" in dlq.output
    assert "1 parked record(s)" in dlq.output

    replay = runner.invoke(app, ["dlq", "replay", topic, "-b", bootstrap])
    assert replay.exit_code == 0, replay.output
    assert "replayed 1 record(s)" in replay.output
    records = asyncio.run(read_records(bootstrap, topic, expect=2))
    assert len(records) == 2
    again = records[1]
    assert again.key == b"prv_cli"
    assert again.headers["ce_id"] == env.id  # the same event: consumers deduplicate it
    assert not any(k.startswith("dlq_") for k in again.headers)


def test_unreachable_broker_is_a_clear_error():
    result = runner.invoke(app, ["topics", "list", "-b", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output


async def test_consumer_lag_counts_what_a_group_has_not_committed(settings_for):
    """Issue 10: the lag read 0 for any topic the asking consumer had no metadata for,
    so the story took "matching has read every catalog event" before it had."""
    settings = settings_for("catalog")
    topic = settings.topic(PROVIDERS.name)
    group = f"{settings.topic_prefix}lagging"
    broker = create_broker(settings)
    await broker.start()
    try:
        for i in range(3):
            await EventPublisher(broker, settings).publish(
                Envelope(registered(f"prv_lag{i}"), source=settings.source)
            )
    finally:
        await broker.stop()
    assert await consumer_lag(settings.kafka_bootstrap, group, [topic]) == 3
    # a group that committed everything has no lag
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen = 0
        while seen < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(v) for v in batch.values())
        await consumer.commit()
    finally:
        await consumer.stop()
    assert await consumer_lag(settings.kafka_bootstrap, group, [topic]) == 0


async def test_replay_goes_only_to_the_group_that_failed_and_only_once(settings_for):
    """Issue 12: a record that failed only in billing is replayed to billing alone, and a
    second `dlq replay` resends nothing."""
    billing, notifications = settings_for("billing"), settings_for("notifications")
    bootstrap, topic = billing.kafka_bootstrap, billing.topic(PROVIDERS.name)
    still_failing = True
    applied: dict[str, list[str]] = {"billing": [], "notifications": []}
    brokers = []
    for settings in (billing, notifications):
        broker = create_broker(settings)
        consumer = EventConsumer(broker, settings)
        name = settings.service_name

        @consumer.on(type(registered()))
        async def handle(env: Envelope, name: str = name) -> None:
            if name == "billing" and env.subject == "prv_dlq" and still_failing:
                raise PermanentError("billing cannot apply it yet")
            applied[name].append(env.subject)

        consumer.subscribe([PROVIDERS])
        brokers.append(broker)

    def cli(*args: str):
        return asyncio.to_thread(runner.invoke, app, [*args, "-b", bootstrap])

    async def until(predicate) -> None:
        async def check() -> bool:
            return predicate()

        await wait_for(check, timeout=40)

    for b in brokers:
        await b.start()
    try:
        for pid in ("prv_dlq", "prv_ok"):
            await EventPublisher(brokers[0], billing).publish(
                Envelope(registered(pid), source=owner_source("catalog"))
            )
        await until(lambda: len(applied["notifications"]) == 2 and applied["billing"] == ["prv_ok"])
        listed = await cli("dlq", "list", topic, "--group", billing.consumer_group)
        assert f"[parked] group={billing.consumer_group} key=prv_dlq" in listed.output
        assert "1 parked record(s)" in listed.output, listed.output
        other = await cli("dlq", "list", topic, "--group", notifications.consumer_group)
        assert "0 parked record(s)" in other.output, other.output

        still_failing = False
        first = await cli("dlq", "replay", topic, "--group", billing.consumer_group)
        assert "replayed 1 record(s)" in first.output, first.output
        await until(lambda: applied["billing"] == ["prv_ok", "prv_dlq"])
        second = await cli("dlq", "replay", topic, "--group", billing.consumer_group)
        assert "replayed 0 record(s)" in second.output, second.output
        assert "(1 replayed before)" in second.output
        await asyncio.sleep(3)  # a resend, or a copy for notifications, would show up here
    finally:
        for b in brokers:
            await b.stop()
    assert applied["billing"] == ["prv_ok", "prv_dlq"]
    assert sorted(applied["notifications"]) == ["prv_dlq", "prv_ok"]  # not applied twice
    assert await topic_length(bootstrap, topic) == 3  # two events and one replay
    replayed = await cli("dlq", "list", topic)
    assert "[replayed]" in replayed.output and "0 not replayed" in replayed.output
