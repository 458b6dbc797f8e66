"""A producer whose idempotence state the broker lost is replaced, on the real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import EventPublisher, create_broker
from delego_shared.testing.kafka_tools import read_records
from delego_shared.testing.samples import registered

pytestmark = pytest.mark.integration


def _producer(broker: Any) -> Any:
    return broker.config.producer._producer.producer


async def test_a_lost_producer_is_replaced_and_the_retry_goes_through(settings_for, monkeypatch):
    settings = settings_for("catalog")
    broker = create_broker(settings)
    await broker.start()
    try:
        publisher = EventPublisher(broker, settings)
        first, second = (Envelope(registered(f"prv_{n}"), source=settings.source) for n in "ab")
        await publisher.publish(first)
        old = _producer(broker)

        # what a broker restart with records in flight does to aiokafka's idempotent
        # producer (aio-libs/aiokafka#1017): every send fails with this from then on
        async def lost(*args: Any, **kwargs: Any) -> Any:
            ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            ack.set_exception(OutOfOrderSequenceNumber())
            return ack

        monkeypatch.setattr(old, "send", lost)
        with pytest.raises(OutOfOrderSequenceNumber):
            await publisher.publish(second)
        assert _producer(broker) is not old  # replaced, once
        assert old._closed
        await publisher.publish(second)  # the caller's retry (the outbox's) goes through
        records = await read_records(
            settings.kafka_bootstrap, settings.topic(PROVIDERS.name), expect=2, timeout=10
        )
        assert sorted(r.headers["ce_id"] for r in records) == sorted([first.id, second.id])
    finally:
        await broker.stop()
