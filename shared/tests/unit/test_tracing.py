"""W3C trace context on records: injected when tracing is on, nothing added when it is off.

The whole chain across processes (HTTP -> publish -> consume -> ... -> e-mail) is
asserted in tests/e2e/test_seed_story.py on the real platform.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from delego_shared import tracing
from delego_shared.events import Envelope
from delego_shared.logging import configure_logging, get_logger
from delego_shared.messaging import (
    EventConsumer,
    EventPublisher,
    Outbox,
    PermanentError,
    RawRecord,
)
from delego_shared.settings import Settings
from delego_shared.testing.samples import registered
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

SETTINGS = Settings(service_name="unit")
UPSTREAM = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class FakeBroker:
    """Records what the publisher hands to the producer; every send is acknowledged."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(producer=None)
        self.sent: list[dict[str, Any]] = []

    async def publish(self, body: bytes, **kw: Any) -> asyncio.Future[object]:
        self.sent.append({"body": body, **kw})
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def envelope() -> Envelope:
    return Envelope(registered("prv_t"), source="/delego/catalog")


def record_of(env: Envelope, extra: dict[str, str] | None = None) -> RawRecord:
    headers = {**env.headers(), **(extra or {})}
    return RawRecord(
        "catalog.providers.v1",
        0,
        7,
        env.key(),
        env.body(),
        [(k, v.encode()) for k, v in headers.items()],
    )


def consumer_storing(stored: list[dict[str, Any]]) -> EventConsumer:
    """A consumer whose handler stores one caused event in an outbox entry, as services do."""
    consumer = EventConsumer(FakeBroker(), SETTINGS, group="billing")  # type: ignore[arg-type]

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        caused = env.caused(registered("prv_caused"), "/delego/catalog")
        stored.extend(Outbox.entries([caused]).values())

    return consumer


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    assert tracing.configure("unit", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.disable()


def traceparent_of(span: Any) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def finished(exporter: InMemorySpanExporter) -> list[Any]:
    tracing.flush()
    return list(exporter.get_finished_spans())


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask_for_it(env, on):
    assert tracing.wanted(env) is on


def test_configure_without_otel_variables_leaves_tracing_off(monkeypatch):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.configure("unit") is False
    assert not tracing.enabled()


# --- off: nothing added, an incoming traceparent forwarded unchanged ---------------------------


async def test_off_publishing_adds_no_header():
    broker = FakeBroker()
    env = envelope()
    entry = next(iter(Outbox.entries([env]).values()))
    await EventPublisher(broker, SETTINGS).publish(env)  # type: ignore[arg-type]
    assert entry["headers"] == env.headers()
    assert broker.sent[0]["headers"] == env.headers()
    assert not set(broker.sent[0]["headers"]) & set(tracing.TRACE_HEADERS)


async def test_off_handling_a_record_without_trace_context_stores_events_without_it():
    stored: list[dict[str, Any]] = []
    await consumer_storing(stored).handle(record_of(envelope()))
    assert len(stored) == 1
    assert not set(stored[0]["headers"]) & set(tracing.TRACE_HEADERS)


async def test_off_an_incoming_traceparent_is_forwarded_unchanged():
    stored: list[dict[str, Any]] = []
    incoming = {"traceparent": UPSTREAM, "ce_traceparent": UPSTREAM}
    await consumer_storing(stored).handle(record_of(envelope(), incoming))
    assert {k: stored[0]["headers"][k] for k in incoming} == incoming
    assert tracing.context_headers() == {}  # only while that record was handled


# --- on: inject, extract, parent links ------------------------------------------------------


def test_on_an_event_is_stored_with_the_context_of_the_span_producing_it(spans):
    tracer = trace.get_tracer("test", tracer_provider=tracing._provider)
    with tracer.start_as_current_span("POST /requests") as http:
        entry = next(iter(Outbox.entries([envelope()]).values()))
    expected = traceparent_of(http)
    assert entry["headers"]["traceparent"] == expected
    assert entry["headers"]["ce_traceparent"] == expected


async def test_on_publish_is_a_child_of_the_stored_context_and_the_record_points_at_it(spans):
    broker = FakeBroker()
    env = envelope()
    headers = {**env.headers(), "traceparent": UPSTREAM, "ce_traceparent": UPSTREAM}
    await EventPublisher(broker, SETTINGS).publish_raw(  # type: ignore[arg-type]
        env.topic, env.subject, headers, env.body()
    )
    [publish] = finished(spans)
    assert publish.kind is SpanKind.PRODUCER
    assert publish.name == "publish catalog.providers.v1"
    assert publish.parent.span_id == int("b7ad6b7169203331", 16)
    assert publish.context.trace_id == int("0af7651916cd43dd8448eb211c80319c", 16)
    sent = broker.sent[0]["headers"]
    assert sent["traceparent"] == sent["ce_traceparent"] == traceparent_of(publish)
    assert publish.attributes["cloudevents.event_id"] == env.id


async def test_on_consuming_is_a_child_of_the_records_producer_and_parents_what_it_stores(spans):
    stored: list[dict[str, Any]] = []
    await consumer_storing(stored).handle(record_of(envelope(), {"ce_traceparent": UPSTREAM}))
    [consume] = finished(spans)
    assert consume.kind is SpanKind.CONSUMER
    assert consume.name == "billing process catalog.providers.v1"
    assert consume.parent.span_id == int("b7ad6b7169203331", 16)  # read from ce_traceparent
    assert consume.attributes["messaging.consumer.group.name"] == "billing"
    assert stored[0]["headers"]["traceparent"] == traceparent_of(consume)


def test_on_log_lines_carry_the_active_trace_id(spans, capsys):
    configure_logging("INFO", "json")
    try:
        tracer = trace.get_tracer("test", tracer_provider=tracing._provider)
        with tracer.start_as_current_span("work") as s:
            get_logger("t").info("inside")
        get_logger("t").info("outside")
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    finally:
        logging.getLogger().handlers.clear()
    inside = next(x for x in lines if x["event"] == "inside")
    outside = next(x for x in lines if x["event"] == "outside")
    assert inside["trace_id"] == f"{s.get_span_context().trace_id:032x}"
    assert "trace_id" not in outside


async def test_on_a_context_captured_in_a_span_parents_a_span_in_another_task(spans):
    tracer = trace.get_tracer("test", tracer_provider=tracing._provider)
    assert tracing.capture() is None  # no active span: nothing to hand over
    with tracer.start_as_current_span("consume") as consume:
        captured = tracing.capture()

    async def worker() -> None:  # a queue's worker task, started outside any span
        with tracing.resumed(captured), tracing.span("smtp send", kind=SpanKind.CLIENT):
            pass

    await asyncio.get_running_loop().create_task(worker(), context=contextvars.Context())
    mail = next(s for s in finished(spans) if s.name == "smtp send")
    assert mail.parent.span_id == consume.get_span_context().span_id


async def test_off_no_context_is_captured_and_no_span_is_made():
    assert tracing.capture() is None
    with tracing.resumed(None), tracing.span("smtp send") as s:
        assert s is None


async def test_on_a_parked_record_leaves_a_failed_consumer_span(spans):
    consumer = EventConsumer(FakeBroker(), SETTINGS, group="billing")  # type: ignore[arg-type]

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        raise PermanentError("no such invoice")

    await consumer.handle(record_of(envelope(), {"traceparent": UPSTREAM}))
    consume = next(s for s in finished(spans) if s.kind is SpanKind.CONSUMER)
    assert consume.status.status_code is StatusCode.ERROR
    assert consume.status.description == "parked"
