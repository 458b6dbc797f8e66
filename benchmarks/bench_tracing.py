"""What tracing costs per record on the consume -> store -> publish path, off and on.

Not a test: runs `EventConsumer.handle` on one record whose handler stores one caused
event in an outbox entry (`Outbox.entries`, as every service's use cases do), then
`EventPublisher.send_all` of that entry to an in-memory broker, in three modes,
interleaved (a, b, c, a, b, c, ...), and prints the median µs per record:

- `no hooks`: the tracing calls replaced by no-ops (the code before tracing existed);
- `off`: tracing not configured (the default: no OTEL_* variables);
- `on`: tracing on, spans ended into an exporter that drops them (the SDK's cost only).

No broker, no store: only CPU in this process, so the hooks' share is an upper bound
of their share of a real record's handling (which waits on the store and broker).

Run: `.venv/bin/python benchmarks/bench_tracing.py [--records 20000] [--rounds 7]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import timeit
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from delego_shared import tracing
from delego_shared.events import Envelope
from delego_shared.logging import configure_logging
from delego_shared.messaging import EventConsumer, EventPublisher, Outbox, OutgoingRecord, RawRecord
from delego_shared.settings import Settings
from delego_shared.testing.samples import registered
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

SETTINGS = Settings(service_name="bench")


class DropSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Broker:
    config = SimpleNamespace(producer=None)

    async def publish(self, body: bytes, **kw: Any) -> asyncio.Future[object]:
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def build() -> tuple[EventConsumer, EventPublisher, list[dict[str, Any]]]:
    broker: Any = Broker()
    consumer = EventConsumer(broker, SETTINGS, group="bench")
    stored: list[dict[str, Any]] = []

    @consumer.on(type(registered()))
    async def handle(env: Envelope) -> None:
        caused = env.caused(registered("prv_caused"), "/delego/catalog")
        stored.extend(Outbox.entries([caused]).values())

    return consumer, EventPublisher(broker, SETTINGS), stored


async def run(records: int, record: RawRecord) -> float:
    """µs per record: handle it (consumer span, store an event), then publish that event."""
    consumer, publisher, stored = build()
    start = time.perf_counter()
    for _ in range(records):
        await consumer.handle(record)
        e = stored.pop()
        await publisher.send_all([OutgoingRecord(e["topic"], e["key"], e["headers"], b"{}")])
    return (time.perf_counter() - start) / records * 1e6


@contextlib.contextmanager
def without_hooks() -> Any:
    """The tracing hooks as if they did not exist."""
    saved = tracing.consuming, tracing.context_headers
    tracing.consuming = lambda *a, **k: contextlib.nullcontext()
    tracing.context_headers = dict
    try:
        yield
    finally:
        tracing.consuming, tracing.context_headers = saved


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    configure_logging("INFO", "json")  # as the services run: the per-record debug line is off
    env = Envelope(registered("prv_b"), source="/delego/catalog")
    record = RawRecord(
        "catalog.providers.v1",
        0,
        1,
        env.key(),
        env.body(),
        [(k, v.encode()) for k, v in env.headers().items()],
    )
    results: dict[str, list[float]] = {"no hooks": [], "off": [], "on": []}
    await run(2000, record)  # warm-up
    for _ in range(args.rounds):
        with without_hooks():
            results["no hooks"].append(await run(args.records, record))
        results["off"].append(await run(args.records, record))
        tracing.configure("bench", exporter=DropSpans())
        results["on"].append(await run(args.records, record))
        tracing.disable()
    hooks = off_hooks(record)
    base = statistics.median(results["no hooks"])
    print(f"{args.records} records x {args.rounds} rounds, median [min-max] µs per record")
    for mode, xs in results.items():
        med = statistics.median(xs)
        print(
            f"  {mode:<9} {med:8.1f} [{min(xs):.1f}-{max(xs):.1f}]"
            f"  {med - base:+7.1f} µs ({(med - base) / base:+.1%}) vs no hooks"
        )
    print("tracing off, the hooks alone (best of 7 timeit runs), µs per call:")
    for name, us in hooks.items():
        print(f"  {name:<58} {us:6.2f}")


def off_hooks(record: RawRecord) -> dict[str, float]:
    """The per-record calls tracing adds, timed alone with tracing off (machine load
    moves the end-to-end figures above by more than these)."""
    tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = [*record.headers, (tracing.TRACEPARENT, tp), (tracing.CE_TRACEPARENT, tp)]

    def consume(headers: list[tuple[str, bytes]]) -> None:
        with tracing.consuming(headers, "t", "g", "e"):
            tracing.context_headers()

    calls = {
        "consume a record without trace context (+ store an event)": lambda: consume(
            record.headers
        ),
        "consume a record with a traceparent, forward it (+ store)": lambda: consume(traced),
        "publish a record (the enabled() check)": tracing.enabled,
    }
    out = {}
    for name, fn in calls.items():
        n = 20000
        out[name] = min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e6
    return out


if __name__ == "__main__":
    asyncio.run(main())
