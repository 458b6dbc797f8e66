"""Metric helpers: consumer outcomes, HTTP route labels, outbox backlog, business counters.

Metrics live in the process's default registry, so each test reads the change of a
sample (or uses labels of its own, e.g. a consumer group named after the test).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from delego_shared import metrics
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.events.matching import FilterReason, RequestUnmatched
from delego_shared.events.notifications import Channel, NotificationFailed
from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.messaging import EventConsumer, OutboxRelay, PermanentError, create_broker
from delego_shared.settings import Settings
from delego_shared.testing.samples import registered
from faststream.kafka import TestKafkaBroker
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

TYPE = "delego.catalog.ProviderRegistered.v1"
TOPIC = PROVIDERS.name


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- consumer ---------------------------------------------------------------------------


async def no_sleep(_: float) -> None:
    return None


class SeenInbox:
    """An inbox that has seen every event (a replay)."""

    async def seen(self, event_id: str) -> bool:
        return True

    async def mark(self, event_id: str, event_type: str) -> None:
        raise AssertionError("a duplicate is not marked again")


def consumer_for(test: str, **kw: Any) -> tuple[Any, EventConsumer, str]:
    settings = Settings(service_name=f"m-{test}-{uuid.uuid4().hex[:6]}", consumer_max_attempts=2)
    broker = create_broker(settings)
    consumer = EventConsumer(broker, settings, sleep=no_sleep, **kw)

    async def park(record: Any, error: Any, attempts: int) -> None:
        return None

    consumer.dlq.park = park  # type: ignore[method-assign]
    return broker, consumer, consumer.group


async def send(broker: Any, body: bytes | None = None) -> None:
    env = Envelope(registered("prv_m"), source="/delego/catalog")
    await broker.publish(
        body if body is not None else env.body(), topic=TOPIC, key=env.key(), headers=env.headers()
    )


async def test_consumer_counts_received_applied_and_times_the_handling():
    broker, consumer, group = consumer_for("applied")
    consumer.on(type(registered()))(lambda env: no_sleep(0))
    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker)
        await send(broker)
    labels = {"topic": TOPIC, "type": TYPE, "group": group}
    assert value("delego_consumer_events_total", **labels) == 2
    assert value("delego_consumer_events_handled_total", **labels, outcome="applied") == 2
    assert value("delego_consumer_handling_duration_seconds_count", **labels) == 2


async def test_consumer_counts_retries_then_parked():
    broker, consumer, group = consumer_for("parked")

    @consumer.on(type(registered()))
    async def fail(env: Envelope) -> None:
        raise ValueError("bug")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker)
    labels = {"topic": TOPIC, "type": TYPE, "group": group}
    assert value("delego_consumer_retries_total", **labels, cause="error") == 1  # 2 attempts
    assert value("delego_consumer_events_handled_total", **labels, outcome="parked") == 1
    assert value("delego_consumer_events_handled_total", **labels, outcome="applied") == 0


async def test_consumer_counts_dependency_waits_apart_from_errors():
    broker, consumer, group = consumer_for("waits")
    calls = 0

    @consumer.on(type(registered()))
    async def flaky(env: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionError("store down")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker)
    labels = {"topic": TOPIC, "type": TYPE, "group": group}
    assert value("delego_consumer_retries_total", **labels, cause="dependency") == 3
    assert value("delego_consumer_retries_total", **labels, cause="error") == 0
    assert value("delego_consumer_events_handled_total", **labels, outcome="applied") == 1


async def test_consumer_counts_duplicates_ignored_and_malformed():
    broker, consumer, group = consumer_for("dup", inbox=SeenInbox())  # type: ignore[arg-type]

    @consumer.on(type(registered()))
    async def never(env: Envelope) -> None:
        raise PermanentError("a duplicate must not reach the handler")

    consumer.subscribe([PROVIDERS])
    async with TestKafkaBroker(broker):
        await send(broker)
        await send(broker, body=b"not json")
    assert (
        value(
            "delego_consumer_events_handled_total",
            topic=TOPIC,
            type=TYPE,
            group=group,
            outcome="duplicate",
        )
        == 1
    )
    malformed = {"topic": TOPIC, "type": "malformed", "group": group}
    assert value("delego_consumer_events_total", **malformed) == 1
    assert value("delego_consumer_events_handled_total", **malformed, outcome="parked") == 1

    broker2, other, group2 = consumer_for("ignored")
    other.subscribe([PROVIDERS])  # no handler for the type
    async with TestKafkaBroker(broker2):
        await send(broker2)
    ignored = {"topic": TOPIC, "type": TYPE, "group": group2, "outcome": "ignored"}
    assert value("delego_consumer_events_handled_total", **ignored) == 1


def test_consumer_lag_is_cached_per_group_topic_and_partition():
    metrics.set_consumer_lag("lag-test", {("catalog.offers.v1", 0): 7, ("catalog.offers.v1", 3): 0})
    got = {"group": "lag-test", "topic": "catalog.offers.v1"}
    assert value("delego_consumer_lag_records", **got, partition="0") == 7
    assert value("delego_consumer_lag_records", **got, partition="3") == 0


# --- business counters ---------------------------------------------------------------------


def unmatched(reasons: list[FilterReason]) -> RequestUnmatched:
    return RequestUnmatched(
        request_id="req_1",
        client_id="cli_1",
        offers_considered=9,
        attempts=0,
        reasons=reasons,
        summary="nobody fits",
    )


def test_unmatched_is_counted_by_the_filter_that_excluded_most_offers():
    before_skill = value("delego_matching_requests_unmatched_total", reason="skill")
    before_none = value("delego_matching_requests_unmatched_total", reason="none")
    metrics.count_business_events(
        [
            unmatched(
                [
                    FilterReason(filter="language", count=2, message="2 lack fr"),
                    FilterReason(filter="skill", count=5, message="5 lack skill"),
                ]
            ),
            unmatched([]),
        ]
    )
    assert value("delego_matching_requests_unmatched_total", reason="skill") == before_skill + 1
    assert value("delego_matching_requests_unmatched_total", reason="none") == before_none + 1


def test_notifications_by_kind_channel_and_outcome():
    labels = {"kind": "metrics_test", "channel": "webhook", "outcome": "failed"}
    failed = NotificationFailed(
        delivery_id="dlv_1",
        recipient_id="cli_1",
        channel=Channel.WEBHOOK,
        kind="metrics_test",
        source_event_id="e1",
        attempts=3,
        error_code="webhook_http_500",
        failed_at=datetime.now(UTC),
    )
    metrics.count_business_events([failed])
    assert value("delego_notifications_total", **labels) == 1


def test_invoice_counts_one_tax_credit_decision_per_line():
    before = value("delego_billing_invoices_issued_total")
    before_ok = value("delego_billing_tax_credit_decisions_total", outcome="t_eligible")
    metrics.count_invoice_issued(["t_eligible", "t_eligible", "t_remote"])
    assert value("delego_billing_invoices_issued_total") == before + 1
    assert value("delego_billing_tax_credit_decisions_total", outcome="t_eligible") == before_ok + 2
    assert value("delego_billing_tax_credit_decisions_total", outcome="t_remote") == 1


def test_accepted_to_invoiced_observes_the_seconds_between_them():
    before = value("delego_flow_accepted_to_invoiced_seconds_count")
    le_5 = value("delego_flow_accepted_to_invoiced_seconds_bucket", le="5.0")
    accepted = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    metrics.observe_accepted_to_invoiced(accepted, accepted + timedelta(seconds=3))
    assert value("delego_flow_accepted_to_invoiced_seconds_count") == before + 1
    assert value("delego_flow_accepted_to_invoiced_seconds_bucket", le="5.0") == le_5 + 1


# --- outbox backlog --------------------------------------------------------------------------


class FailingPublisher:
    def __init__(self) -> None:
        self.fail = True

    async def send_all(self, records: Any) -> None:
        if self.fail:
            raise ConnectionError("broker down")


class FakeCollection:
    async def update_one(self, *a: Any, **kw: Any) -> Any:
        class Res:
            matched_count = 1

        return Res()


class FakeMongo:
    db: Any = {"mtest_docs": FakeCollection()}


def backlog_sample(name: str) -> float:
    families = text_string_to_metric_families(metrics.exposition().decode())
    for family in families:
        for s in family.samples:
            if s.name == name and s.labels.get("collection") == "mtest_docs":
                return float(s.value)
    raise AssertionError(f"{name} for mtest_docs not exposed")


async def test_outbox_backlog_is_what_the_relay_holds_unpublished_and_drops_once_sent():
    publisher = FailingPublisher()
    relay = OutboxRelay(FakeMongo(), publisher, ["mtest_docs"])  # type: ignore[arg-type]
    env = Envelope(registered("prv_o"), source="/delego/catalog")
    assert backlog_sample("delego_outbox_pending_events") == 0
    assert await relay.publish_now("mtest_docs", "d1", stored=[env], pending=1) == 0
    assert backlog_sample("delego_outbox_pending_events") == 1
    assert backlog_sample("delego_outbox_oldest_pending_age_seconds") >= 0
    published = value("delego_outbox_events_published_total", collection="mtest_docs")

    publisher.fail = False
    assert await relay.publish_now("mtest_docs", "d1", stored=[env], pending=1) == 1
    assert backlog_sample("delego_outbox_pending_events") == 0
    assert backlog_sample("delego_outbox_oldest_pending_age_seconds") == 0
    assert value("delego_outbox_events_published_total", collection="mtest_docs") == published + 1
    assert value("delego_outbox_publish_latency_seconds_count", collection="mtest_docs") >= 1


# --- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
async def http():
    runtime = ServiceRuntime(Settings(service_name="metrics-http"))  # nothing connects
    app = create_http_app(runtime, title="Metrics test")

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


async def test_http_requests_are_labelled_by_route_template_and_status(http):
    route = {"method": "GET", "route": "/things/{thing_id}", "status": "200"}
    before = value("delego_http_requests_total", **route)
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before_404 = value("delego_http_requests_total", **unmatched)
    broken = {"method": "GET", "route": "/broken", "status": "500"}
    before_500 = value("delego_http_requests_total", **broken)
    for i in range(3):
        assert (await http.get(f"/things/t{i}")).status_code == 200
    assert (await http.get("/no/such/path")).status_code == 404
    assert (await http.get("/broken")).status_code == 500

    resp = await http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(resp.text)
        for s in f.samples
    }
    assert samples[("delego_http_requests_total", tuple(sorted(route.items())))] == before + 3
    assert samples[("delego_http_requests_total", tuple(sorted(unmatched.items())))] == (
        before_404 + 1
    )
    assert samples[("delego_http_requests_total", tuple(sorted(broken.items())))] == before_500 + 1
    duration = (
        "delego_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/things/{thing_id}")),
    )
    assert samples[duration] >= 3
    assert not any("t1" in dict(labels).get("route", "") for _, labels in samples)
