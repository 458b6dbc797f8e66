"""The operator CLI against a real broker: topics, tail, DLQ list and replay, clear errors."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from delego_cli.kafka_ops import consumer_lag
from delego_cli.main import app
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import EventPublisher, create_broker
from delego_shared.messaging.dead_letter import DeadLetterQueue, RawRecord
from delego_shared.testing.kafka_tools import read_records
from delego_shared.testing.samples import registered
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
