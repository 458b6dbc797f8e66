"""Dispatch, retry and parking logic, fast, on FastStream's in-memory TestKafkaBroker.

The guarantees themselves (commit after effect, DLQ on a real topic, restart)
are proven on a real broker in tests/integration.
"""

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.messaging import (
    EventConsumer,
    PermanentError,
    TransientError,
    create_broker,
    is_transient,
)
from delego_shared.messaging.dead_letter import H_REPLAY_GROUP
from delego_shared.settings import Settings
from delego_shared.testing.samples import registered
from faststream.kafka import TestKafkaBroker
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

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
    env = Envelope(registered("prv_u"), source="/delego/catalog", correlation_id="c1")
    async with TestKafkaBroker(broker):
        await send(broker, env)
    assert [g.id for g in got] == [env.id]
    assert got[0].data == env.data and got[0].correlation_id == "c1"
    assert parked == []


async def test_a_record_is_handled_without_a_worker_thread(monkeypatch):
    """FastStream resolves a `KafkaMessage` context parameter with a synchronous call,
    which fast_depends runs in a worker thread for every record; our handler takes the
    message from the decoder instead, so nothing leaves the event loop."""
    import anyio.to_thread

    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    broker, consumer, parked = build()
    got: list[str] = []

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        got.append(env.id)

    consumer.subscribe([PROVIDERS])
    env = Envelope(registered("prv_t"), source="/delego/catalog")
    async with TestKafkaBroker(broker):
        await send(broker, env)
    assert got == [env.id] and parked == []
    assert hops == []


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
        await send(broker, Envelope(registered("prv_t"), source="/delego/catalog"))
    assert calls == 3 and parked == []


async def test_persistent_failure_is_parked_after_max_attempts():
    broker, consumer, parked = build()

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        raise RuntimeError("bug")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_p"), source="/delego/catalog"))
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
        await send(broker, Envelope(registered("prv_x"), source="/delego/catalog"))
    assert calls == 1 and parked == [("prv_x", "PermanentError", 1)]


async def test_malformed_record_is_parked_without_calling_the_handler():
    broker, consumer, parked = build()
    calls = 0

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        nonlocal calls
        calls += 1

    consumer.subscribe([PROVIDERS])
    env = Envelope(registered("prv_m"), source="/delego/catalog")
    async with TestKafkaBroker(broker):
        await send(broker, env, body=b"not json")
    assert calls == 0 and parked == [("prv_m", "MalformedEvent", 0)]


async def test_known_event_without_handler_is_ignored():
    broker, consumer, parked = build()
    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_i"), source="/delego/catalog"))
    assert parked == []


async def test_store_unavailable_is_waited_out_beyond_max_attempts_and_never_parked():
    broker, consumer, parked = build()
    calls = 0
    health_while_waiting: list[str] = []

    async def sleep(_: float) -> None:
        health_while_waiting.append(consumer.health()["status"])

    consumer._sleep = sleep
    errors = [ServerSelectionTimeoutError("no server"), AutoReconnect("reset"), NetworkTimeout("t")]

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls <= 10:  # far more than max_attempts (3)
            raise errors[calls % 3]

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_w"), source="/delego/catalog"))
    assert calls == 11 and parked == []
    assert health_while_waiting == ["degraded"] * 10
    assert consumer.health() == {"status": "ok", "waiting": []}


async def test_forged_source_is_parked_as_forged_without_calling_the_handler():
    broker, consumer, parked = build()
    reasons: list[str] = []

    async def park(record, error, attempts):
        parked.append((record.key.decode(), type(error).__name__, attempts))
        reasons.append(str(error))

    consumer.dlq.park = park  # type: ignore[method-assign]
    calls = 0

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        nonlocal calls
        calls += 1

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker, Envelope(registered("prv_f"), source="/delego/billing"))
    assert calls == 0 and parked == [("prv_f", "ForgedEvent", 0)]
    assert "forged: ce_source '/delego/billing' is not the owner" in reasons[0]


async def test_a_record_replayed_for_another_group_is_skipped_and_for_ours_applied():
    broker, consumer, parked = build()
    got: list[str] = []

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        got.append(env.subject)

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        for pid, group in (("prv_other", "billing"), ("prv_ours", consumer.group)):
            env = Envelope(registered(pid), source="/delego/catalog")
            await send(broker, env, headers={**env.headers(), H_REPLAY_GROUP: group})
    assert got == ["prv_ours"] and parked == []


def test_transient_and_permanent_failures_are_told_apart():
    class DomainRule(Exception):
        pass

    for exc in (
        ServerSelectionTimeoutError("x"),
        AutoReconnect("x"),
        NetworkTimeout("x"),
        ConnectionFailure("x"),
        KafkaConnectionError(),
        KafkaTimeoutError(),
        TimeoutError(),
        ConnectionRefusedError(),
        TransientError("smtp down"),
    ):
        assert is_transient(exc), exc
    wrapped = DomainRule("while saving")
    wrapped.__cause__ = AutoReconnect("x")
    assert is_transient(wrapped)
    for exc in (
        DomainRule("x"),
        ValueError("x"),
        PermanentError("x"),
        DuplicateKeyError("x"),
        MessageSizeTooLargeError(),
    ):
        assert not is_transient(exc), exc
