"""Dispatch, retry and parking logic, fast, on FastStream's in-memory TestKafkaBroker.

The guarantees themselves (commit after effect, DLQ on a real topic, restart)
are proven on a real broker in tests/integration.
"""

from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import EventConsumer, PermanentError, create_broker
from delego_shared.settings import Settings
from delego_shared.testing.samples import registered
from faststream.kafka import TestKafkaBroker

SETTINGS = Settings(service_name="unit", consumer_max_attempts=3)


async def no_sleep(_: float) -> None:
    return None


def build():
    broker = create_broker(SETTINGS)
    consumer = EventConsumer(broker, SETTINGS, sleep=no_sleep)
    parked: list[tuple[str, str, int]] = []

    async def park(record, error, attempts):
        parked.append((record.key.decode(), type(error).__name__, attempts))

    consumer.dlq.park = park  # type: ignore[method-assign]
    return broker, consumer, parked


async def send(broker, env: Envelope, *, body: bytes | None = None, headers=None) -> None:
    await broker.publish(
        body if body is not None else env.body(),
        topic=PROVIDERS.name,
        key=env.key(),
        headers=headers or env.headers(),
    )


async def test_handler_receives_the_decoded_envelope():
    broker, consumer, parked = build()
    got: list[Envelope] = []

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        got.append(env)

    consumer.subscribe([PROVIDERS])
    env = Envelope(registered("prv_u"), source="/t", correlation_id="c1")
    async with TestKafkaBroker(broker):
        await send(broker, env)
    assert [g.id for g in got] == [env.id]
    assert got[0].data == env.data and got[0].correlation_id == "c1"
    assert parked == []


async def test_transient_failure_is_retried_then_succeeds():
    broker, consumer, parked = build()
    calls = 0

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("store briefly down")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_t"), source="/t"))
    assert calls == 3 and parked == []


async def test_persistent_failure_is_parked_after_max_attempts():
    broker, consumer, parked = build()

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        raise RuntimeError("bug")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_p"), source="/t"))
    assert parked == [("prv_p", "RuntimeError", 3)]


async def test_permanent_error_is_parked_at_once():
    broker, consumer, parked = build()
    calls = 0

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("references an unknown offer")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_x"), source="/t"))
    assert calls == 1 and parked == [("prv_x", "PermanentError", 1)]


async def test_malformed_record_is_parked_without_calling_the_handler():
    broker, consumer, parked = build()
    calls = 0

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        nonlocal calls
        calls += 1

    consumer.subscribe([PROVIDERS])
    env = Envelope(registered("prv_m"), source="/t")
    async with TestKafkaBroker(broker):
        await send(broker, env, body=b"not json")
    assert calls == 0 and parked == [("prv_m", "MalformedEvent", 0)]


async def test_known_event_without_handler_is_ignored():
    broker, consumer, parked = build()
    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_i"), source="/t"))
    assert parked == []
