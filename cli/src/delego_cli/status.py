"""`delego status`: one screen on a local or remote platform.

Each service's readiness and its own `/metrics` (consumer lag per group, outbox
backlog) over HTTP, and from Kafka the DLQs' waiting records and the records
each topic received in the last minute (offsets by time: no topic is read
through, except the small DLQs).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer
from delego_shared.events import ALL_TOPICS
from delego_shared.messaging.topics_admin import Kafka, partitions
from delego_shared.settings import KafkaAccess
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import kafka_ops

SERVICES = ("catalog", "matching", "billing", "notifications")


@dataclass
class ServiceStatus:
    name: str
    url: str
    ready: bool | None = None  # None: not answering
    checks: dict[str, bool] = field(default_factory=dict)
    lag: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """(group, topic, partition) -> records behind, as the service last read it."""
    outbox_pending: float = 0.0
    outbox_oldest_s: float = 0.0
    error: str | None = None


@dataclass
class KafkaStatus:
    dlq_waiting: dict[str, int] = field(default_factory=dict)
    last_minute: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class PlatformStatus:
    services: list[ServiceStatus]
    kafka: KafkaStatus

    def lag_by_group(self) -> dict[str, int]:
        """Replicas of a group report the same partitions: the highest reading counts."""
        per_partition: dict[tuple[str, str, str], float] = {}
        for s in self.services:
            for key, value in s.lag.items():
                per_partition[key] = max(value, per_partition.get(key, 0.0))
        out: dict[str, int] = defaultdict(int)
        for (group, _, _), value in per_partition.items():
            out[group] += int(value)
        return dict(sorted(out.items()))


def read_metrics(text: str, into: ServiceStatus) -> None:
    """Lag and outbox backlog from a service's `/metrics` text."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "delego_consumer_lag_records":
                key = (s.labels["group"], s.labels["topic"], s.labels["partition"])
                into.lag[key] = s.value
            elif s.name == "delego_outbox_pending_events":
                into.outbox_pending += s.value
            elif s.name == "delego_outbox_oldest_pending_age_seconds":
                into.outbox_oldest_s = max(into.outbox_oldest_s, s.value)


async def service_status(http: httpx.AsyncClient, name: str, url: str) -> ServiceStatus:
    out = ServiceStatus(name, url)
    try:
        ready = await http.get(f"{url}/health/ready")
        out.ready = ready.status_code == 200
        out.checks = dict(ready.json().get("checks", {}))
        metrics = await http.get(f"{url}/metrics")
        metrics.raise_for_status()
        read_metrics(metrics.text, out)
    except (httpx.HTTPError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:120]
    return out


async def kafka_status(kafka: Kafka, prefix: str = "", window_s: float = 60.0) -> KafkaStatus:
    """DLQ records not replayed yet, and records per topic in the last `window_s`."""
    out = KafkaStatus()
    try:
        topics = [prefix + t.name for t in ALL_TOPICS]
        for topic in topics:
            parked = await kafka_ops.parked_records(kafka, f"{topic}.dlq")
            out.dlq_waiting[topic] = sum(1 for p in parked if not p.replayed)
        tps = await partitions(kafka, topics)
        consumer = AIOKafkaConsumer(
            **KafkaAccess.of(kafka).client_options(), enable_auto_commit=False
        )
        await consumer.start()
        try:
            since = int((time.time() - window_s) * 1000)
            end = await consumer.end_offsets(tps)
            at = await consumer.offsets_for_times(dict.fromkeys(tps, since))
        finally:
            await _stop(consumer)
        counts: dict[str, int] = dict.fromkeys(topics, 0)
        for tp in tps:
            found = at.get(tp)
            counts[tp.topic] += 0 if found is None else end[tp] - found.offset
        out.last_minute = counts
    except Exception as exc:  # an unreachable broker is shown, not raised
        out.error = f"{type(exc).__name__}: {exc}"[:160]
    return out


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop a group-less consumer; aiokafka may let its own cancelled helper task's
    CancelledError out of `stop()`: swallowed unless this task is being cancelled."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def collect(
    urls: Mapping[str, str], kafka: Kafka, *, prefix: str = "", timeout: float = 5.0
) -> PlatformStatus:
    async with httpx.AsyncClient(timeout=timeout) as http:
        services, broker = await asyncio.gather(
            asyncio.gather(*(service_status(http, n, u) for n, u in urls.items())),
            kafka_status(kafka, prefix),
        )
    return PlatformStatus(list(services), broker)


def _ready(s: ServiceStatus) -> Text:
    if s.ready is None:
        return Text("down", style="bold red")
    if s.ready:
        return Text("ready", style="green")
    failing = ", ".join(k for k, ok in s.checks.items() if not ok) or "starting"
    return Text(f"not ready ({failing})", style="yellow")


def render(status: PlatformStatus) -> Group:
    """The status screen as rich tables."""
    services = Table(title="Services", title_justify="left")
    for col in ("service", "url", "health", "outbox pending", "oldest pending"):
        services.add_column(col, justify="right" if "pending" in col else "left")
    for s in status.services:
        old = Text(f"{s.outbox_oldest_s:.0f} s", style="red" if s.outbox_oldest_s > 60 else "")
        services.add_row(
            s.name, s.url, _ready(s), f"{s.outbox_pending:.0f}", old if s.ready else Text("-")
        )
    lag = Table(title="Consumer lag", title_justify="left")
    lag.add_column("group")
    lag.add_column("records behind", justify="right")
    for group, behind in status.lag_by_group().items():
        lag.add_row(group, Text(str(behind), style="yellow" if behind else "green"))
    kafka = Table(title="Topics", title_justify="left")
    kafka.add_column("topic")
    kafka.add_column("last minute", justify="right")
    kafka.add_column("DLQ waiting", justify="right")
    for topic, n in status.kafka.last_minute.items():
        waiting = status.kafka.dlq_waiting.get(topic, 0)
        kafka.add_row(topic, str(n), Text(str(waiting), style="bold red" if waiting else "green"))
    parts: list[Table | Text] = [services, lag, kafka]
    if status.kafka.error:
        parts.append(Text(f"Kafka: {status.kafka.error}", style="red"))
    for s in status.services:
        if s.error:
            parts.append(Text(f"{s.name}: {s.error}", style="red"))
    return Group(*parts)
