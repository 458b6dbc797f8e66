"""Prometheus metrics of every service: one place for their names, labels and helpers.

Every update is in memory (`prometheus_client` counters, histograms and gauges
in the process's default registry); nothing here reads the store or Kafka on a
per-event or per-request path. The two measurements that need I/O are taken
elsewhere, off that path:

- outbox backlog: computed at scrape time from what this process's relays hold
  in memory (events being published or waiting for a retry; see
  `OutboxRelay.backlog`), never a store scan. Events left behind by a relay that
  crashed show up when a sweep picks them up;
- consumer lag: read on a slow timer (`ServiceRuntime`, every
  `metrics_lag_interval_s`) from the broker's end offsets and the group's
  committed offsets, and cached in a gauge.

Service identity is not a label: Prometheus adds `job` and `instance` per scrape
target. Topic labels are logical names (without a test prefix), event types are
the registered CloudEvents types only, so label sets stay bounded.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .events.base import Event
from .events.billing import InvoiceIssued
from .events.matching import (
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    ProposalExpired,
    RequestUnmatched,
)
from .events.notifications import NotificationDelivered, NotificationFailed

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

# Latency buckets: from a store round trip (ms) to a slow flow (minutes).
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# --- HTTP -----------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "delego_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "delego_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=_SECONDS,
)

SERVICE_READY = Gauge(
    "delego_service_ready",
    "1 when the last readiness check (GET /health/ready, polled by the orchestrator's "
    "health check) found the database and the broker reachable, else 0",
)

# --- consumers ------------------------------------------------------------------------

EVENTS_CONSUMED = Counter(
    "delego_consumer_events",
    "Records received by a consumer group, by topic and event type ('malformed' when "
    "the record could not be read as a known event)",
    ["topic", "type", "group"],
)
EVENTS_HANDLED = Counter(
    "delego_consumer_events_handled",
    "Records a consumer group finished with, by outcome: applied, parked (DLQ), "
    "duplicate (skipped, seen before), ignored (no handler for the type here)",
    ["topic", "type", "group", "outcome"],
)
EVENTS_RETRIED = Counter(
    "delego_consumer_retries",
    "Retries of a record's handling, by cause: error (counts towards parking) or "
    "dependency (store or broker unreachable; waited out, never parked)",
    ["topic", "type", "group", "cause"],
)
HANDLING_DURATION = Histogram(
    "delego_consumer_handling_duration_seconds",
    "Time from a record's arrival in the handler to its outcome (retries included)",
    ["topic", "type", "group"],
    buckets=_SECONDS,
)
CONSUMER_LAG = Gauge(
    "delego_consumer_lag_records",
    "Records on a partition not yet committed by the group (read on a slow timer)",
    ["group", "topic", "partition"],
)

# --- outbox ---------------------------------------------------------------------------

OUTBOX_PUBLISHED = Counter(
    "delego_outbox_events_published",
    "Events the outbox relay published (broker acknowledged), by collection",
    ["collection"],
)
OUTBOX_PUBLISH_LATENCY = Histogram(
    "delego_outbox_publish_latency_seconds",
    "Time from an event's storing in the outbox to the broker's acknowledgement",
    ["collection"],
    buckets=_SECONDS,
)

# --- business -------------------------------------------------------------------------

MATCHING_PROPOSALS = Counter(
    "delego_matching_proposals", "Providers asked to accept a request (MatchProposed)"
)
MATCHING_MATCHED = Counter(
    "delego_matching_requests_matched", "Requests a provider accepted (MatchAccepted)"
)
MATCHING_UNMATCHED = Counter(
    "delego_matching_requests_unmatched",
    "Requests nobody could take (RequestUnmatched), by the filter that excluded most "
    "offers ('none' when no filter did: no offers, or every candidate asked already)",
    ["reason"],
)
MATCHING_DECLINED = Counter(
    "delego_matching_proposals_declined", "Proposals the provider declined (MatchDeclined)"
)
MATCHING_EXPIRED = Counter(
    "delego_matching_proposals_expired", "Proposals left unanswered past their window"
)
BILLING_INVOICES = Counter("delego_billing_invoices_issued", "Invoices issued (numbered)")
BILLING_CREDIT_NOTES = Counter(
    "delego_billing_credit_notes_issued", "Credit notes issued (numbered)"
)
BILLING_TAX_CREDIT = Counter(
    "delego_billing_tax_credit_decisions",
    "Tax-credit decisions on issued invoice lines, by outcome code",
    ["outcome"],
)
FLOW_ACCEPTED_TO_INVOICED = Histogram(
    "delego_flow_accepted_to_invoiced_seconds",
    "End to end: a match accepted (its accepted_at) to its invoice issued, for work "
    "billed at acceptance (packages)",
    buckets=_SECONDS,
)
FLOW_COMPLETED_TO_INVOICED = Histogram(
    "delego_flow_completed_to_invoiced_seconds",
    "End to end: work reported completed (its completed_at) to its invoice issued, for "
    "work billed at completion (hourly, per unit, subscription overage)",
    buckets=_SECONDS,
)
NOTIFICATIONS = Counter(
    "delego_notifications",
    "Notifications whose outcome was stored, by kind, channel and outcome",
    ["kind", "channel", "outcome"],
)


def count_business_events(events: Iterable[Event]) -> None:
    """Count the business outcomes among events a use case just stored (in memory)."""
    for e in events:
        match e:
            case MatchProposed():
                MATCHING_PROPOSALS.inc()
            case MatchAccepted():
                MATCHING_MATCHED.inc()
            case RequestUnmatched():
                MATCHING_UNMATCHED.labels(reason=unmatched_reason(e)).inc()
            case MatchDeclined():
                MATCHING_DECLINED.inc()
            case ProposalExpired():
                MATCHING_EXPIRED.inc()
            case InvoiceIssued():
                count_invoice_issued(line.tax_credit.code for line in e.lines)
            case NotificationDelivered() | NotificationFailed():
                outcome = "delivered" if isinstance(e, NotificationDelivered) else "failed"
                NOTIFICATIONS.labels(e.kind, e.channel.value, outcome).inc()


def count_invoice_issued(tax_credit_outcomes: Iterable[str]) -> None:
    """An invoice issued, with the tax-credit decision code of each of its lines."""
    BILLING_INVOICES.inc()
    for outcome in tax_credit_outcomes:
        BILLING_TAX_CREDIT.labels(outcome=outcome).inc()


def unmatched_reason(e: RequestUnmatched) -> str:
    """The filter that excluded the most offers (a bounded set of filter names)."""
    counted = [r for r in e.reasons if r.count > 0]
    return max(counted, key=lambda r: r.count).filter if counted else "none"


def observe_accepted_to_invoiced(accepted_at: datetime, issued_at: datetime) -> None:
    FLOW_ACCEPTED_TO_INVOICED.observe(max(0.0, (issued_at - accepted_at).total_seconds()))


def observe_completed_to_invoiced(completed_at: datetime, issued_at: datetime) -> None:
    FLOW_COMPLETED_TO_INVOICED.observe(max(0.0, (issued_at - completed_at).total_seconds()))


# --- consumer helpers -----------------------------------------------------------------


_SeriesKey = tuple[str, str, str]
_consumed: dict[_SeriesKey, Any] = {}
_handled: dict[tuple[str, str, str, str], Any] = {}
_durations: dict[_SeriesKey, Any] = {}


def _child(cache: dict[Any, Any], metric: Any, key: Any) -> Any:
    """A labelled series, looked up once per label set (`labels()` costs a lock and a
    tuple build on every call; this is one dict lookup on the per-record path)."""
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(*key)
    return child


class HandlingTimer:
    """One record's metrics in a consumer: received, retries, outcome and duration."""

    __slots__ = ("_start", "group", "topic", "type")

    def __init__(self, topic: str, group: str) -> None:
        self.topic, self.group, self.type = topic, group, "malformed"
        self._start = time.perf_counter()

    def received(self, event_type: str) -> None:
        self.type = event_type
        _child(_consumed, EVENTS_CONSUMED, (self.topic, event_type, self.group)).inc()

    def retried(self, cause: str) -> None:
        EVENTS_RETRIED.labels(self.topic, self.type, self.group, cause).inc()

    def done(self, outcome: str) -> None:
        key = (self.topic, self.type, self.group)
        _child(_handled, EVENTS_HANDLED, (*key, outcome)).inc()
        _child(_durations, HANDLING_DURATION, key).observe(time.perf_counter() - self._start)


def set_consumer_lag(group: str, lag: Mapping[tuple[str, int], int]) -> None:
    """Cache the lag just read for `group`: {(logical topic, partition): records}."""
    for (topic, partition), records in lag.items():
        CONSUMER_LAG.labels(group, topic, str(partition)).set(records)


# --- outbox backlog (computed at scrape time, in memory) --------------------------------


@dataclass(frozen=True)
class Backlog:
    """Events a relay holds unpublished in one collection: how many, the oldest's storing."""

    pending: int
    oldest: datetime | None


BacklogSource = Callable[[], Mapping[str, Backlog]]
_backlog_sources: weakref.WeakSet[object] = weakref.WeakSet()


def register_backlog(source: object) -> None:
    """A live object with a `backlog()` method (an `OutboxRelay`), read at each scrape."""
    _backlog_sources.add(source)


class _OutboxBacklogCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "delego_outbox_pending_events",
            "Events stored in an outbox and not yet published, as this process's relays "
            "know them (in memory, no store scan; a crashed relay's events appear when a "
            "sweep picks them up)",
            labels=["collection"],
        )
        age = GaugeMetricFamily(
            "delego_outbox_oldest_pending_age_seconds",
            "Age of the oldest unpublished outbox event this process knows of (0 when none)",
            labels=["collection"],
        )
        totals: dict[str, tuple[int, datetime | None]] = {}
        for source in list(_backlog_sources):
            backlog: Mapping[str, Backlog] = source.backlog()  # type: ignore[attr-defined]
            for collection, b in backlog.items():
                n, oldest = totals.get(collection, (0, None))
                if b.oldest is not None and (oldest is None or b.oldest < oldest):
                    oldest = b.oldest
                totals[collection] = (n + b.pending, oldest)
        now = time.time()
        for collection, (n, oldest) in sorted(totals.items()):
            pending.add_metric([collection], n)
            age.add_metric([collection], max(0.0, now - oldest.timestamp()) if oldest else 0.0)
        yield pending
        yield age

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


REGISTRY.register(_OutboxBacklogCollector())


def exposition() -> bytes:
    """The text exposition of every metric of this process (for `GET /metrics`)."""
    return generate_latest(REGISTRY)
