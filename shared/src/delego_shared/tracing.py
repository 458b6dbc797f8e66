"""Distributed tracing (OpenTelemetry): one trace from the HTTP command to the e-mail.

Off unless the standard variables ask for it (`OTEL_TRACES_EXPORTER=otlp`, or
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set;
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off). Spans
are exported over OTLP/HTTP by the SDK's batch processor, which reads the rest
of the `OTEL_*` variables itself (headers, timeouts, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`).

The W3C trace context travels on every Kafka record twice: as the CloudEvents
distributed-tracing extension in the Kafka binding (`ce_traceparent`,
`ce_tracestate`) and as plain `traceparent` / `tracestate` headers, which is
what OpenTelemetry's Kafka instrumentations read. An event is stored in the
outbox with the context of the span that produced it (`context_headers`), so
a publish from the relay, long after, still joins the right trace.

When tracing is off nothing here creates a span or writes a header, except
that a record's incoming `traceparent` is carried unchanged onto the events
its handling stores (a context variable and a dict copy), so an upstream
system's trace survives a hop through a Delego service that does not trace.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.trace import SpanKind as SpanKind  # re-exported for services' spans
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT, TRACESTATE = "traceparent", "tracestate"
CE_TRACEPARENT, CE_TRACESTATE = "ce_traceparent", "ce_tracestate"
"""CloudEvents distributed-tracing extension, Kafka binding (`ce_` + attribute name)."""
TRACE_HEADERS = (TRACEPARENT, TRACESTATE, CE_TRACEPARENT, CE_TRACESTATE)

_W3C = TraceContextTextMapPropagator()
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_forwarded: ContextVar[dict[str, str] | None] = ContextVar("delego_forwarded_trace", default=None)
"""Tracing off: the trace headers of the record being handled, to copy onto its events."""


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Do the standard OTEL_* variables ask for traces to be exported?"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return "otlp" in {e.strip() for e in exporters.split(",")}
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(service_name: str, *, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process when the environment asks for it (or an exporter
    is given: tests). Idempotent; returns whether tracing is on."""
    global _tracer, _provider
    if _tracer is not None:
        return True
    if exporter is None:
        if not wanted():
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # OTEL_SERVICE_NAME, when set, wins over the service's own name
    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("delego")
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)  # webhook POSTs
    return True


def disable() -> None:
    """Tracing off again (tests): flushes and forgets this process's provider."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().uninstrument()
        provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (a service stopping)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def instrument_app(app: Any) -> None:
    """HTTP server spans for a FastAPI app (health and metrics left out)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls="/health/.*,/metrics",
        exclude_spans=["receive", "send"],  # one span per request, not per ASGI message
    )


# --- W3C trace context on records ----------------------------------------------------------


def context_headers() -> dict[str, str]:
    """The trace headers to store with an event produced now (empty when there is none)."""
    if _tracer is None:
        forwarded = _forwarded.get()
        return dict(forwarded) if forwarded else {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return _with_ce(carrier)


def _with_ce(carrier: dict[str, str]) -> dict[str, str]:
    if TRACEPARENT in carrier:
        carrier[CE_TRACEPARENT] = carrier[TRACEPARENT]
    if TRACESTATE in carrier:
        carrier[CE_TRACESTATE] = carrier[TRACESTATE]
    return carrier


def _parent(headers: Mapping[str, str]) -> Context | None:
    """The context a record's headers carry (plain header first, then the CE extension)."""
    tp = headers.get(TRACEPARENT) or headers.get(CE_TRACEPARENT)
    if not tp:
        return None
    carrier = {TRACEPARENT: tp}
    ts = headers.get(TRACESTATE) or headers.get(CE_TRACESTATE)
    if ts:
        carrier[TRACESTATE] = ts
    return _W3C.extract(carrier)


def start_publish(topic: str, headers: MutableMapping[str, str]) -> Span | None:
    """A producer span for one record (child of the context stored with it, else of the
    current one); the record's trace headers are rewritten to point at it. None when off."""
    if _tracer is None:
        return None
    span = _tracer.start_span(
        f"publish {topic}",
        context=_parent(headers),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            **_event_attributes(headers),
        },
    )
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    for name in TRACE_HEADERS:
        headers.pop(name, None)
    headers.update(_with_ce(carrier))
    return span


def end_publish(spans: Sequence[Span | None], error: BaseException | None = None) -> None:
    for span in spans:
        if span is None:
            continue
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def _event_attributes(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for header, attr in (("ce_id", "cloudevents.event_id"), ("ce_type", "cloudevents.event_type")):
        if header in headers:
            out[attr] = headers[header]
    return out


@contextlib.contextmanager
def _forwarding(headers: dict[str, str]) -> Iterator[None]:
    token = _forwarded.set(headers)
    try:
        yield
    finally:
        _forwarded.reset(token)


def consuming(
    headers: Sequence[tuple[str, bytes]], topic: str, group: str, event_type: str
) -> contextlib.AbstractContextManager[Any]:
    """Around one record's handling by a consumer group: a consumer span, child of the
    record's producer span (tracing on), or the record's trace headers kept for the
    events it causes (off, and only when it carries one)."""
    found = {k: v.decode(errors="replace") for k, v in headers if k in TRACE_HEADERS}
    if _tracer is None:
        return _forwarding(found) if found else _NOTHING
    return _tracer.start_as_current_span(
        f"{group} process {topic}",
        context=_parent(found),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "cloudevents.event_type": event_type,
        },
    )


# --- spans of our own, and context handed to another task ---------------------------------


@contextlib.contextmanager
def span(
    name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span | None]:
    """A span around a step (an e-mail send); yields None when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, kind=kind, attributes=dict(attributes or {})) as s:
        yield s


def failed(span: Span | None, reason: str) -> None:
    """Mark a span as failed (a no-op when tracing is off and `span` is None)."""
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, reason))


def capture() -> Context | None:
    """The current context, to resume in another task (None when tracing is off or no
    span is active)."""
    if _tracer is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    return otel_context.get_current()


def resumed(ctx: Context | None) -> contextlib.AbstractContextManager[Any]:
    """Run under a context `capture` returned (nothing to do when None)."""
    if ctx is None:
        return _NOTHING
    return _attached(ctx)


@contextlib.contextmanager
def _attached(ctx: Context) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: `trace_id` and `span_id` of the active span, if any."""
    if _tracer is None:
        return event_dict
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict
