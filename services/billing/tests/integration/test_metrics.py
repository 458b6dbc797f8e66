"""`/metrics` on a real billing service (real Kafka + FerretDB): one MatchAccepted for a
package moves the consumer, outbox, lag, business and end-to-end metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from billing.store import INVOICES
from delego_shared.events import Envelope
from delego_shared.events.matching import MatchAccepted
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

MATCHING_SOURCE = "/delego/matching"
TYPE = "delego.matching.MatchAccepted.v1"


async def scrape(http) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = await http.get("/metrics")
    assert resp.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_one_accepted_package_moves_the_counters_on_metrics(
    billing_settings, app_factory, running, make_terms, publish, billing_events, eventually
):
    settings = billing_settings(metrics_lag_interval_s=0.2)
    app = app_factory(settings)  # its clock: 2026-03-10 09:00 UTC
    package = make_terms(
        pricing={"model": "package", "price": {"amount": "650", "currency": "EUR"}}
    )
    accepted = Envelope(
        MatchAccepted(
            request_id="req_metrics",
            client_id="cli_m",
            attempt=1,
            provider_id="prv_1",
            terms=package,
            estimated_price=package.pricing.price,
            promised_at=datetime(2026, 3, 20, tzinfo=UTC),
            promised_local="2026-03-20T01:00:00+01:00",
            client_zone="Europe/Paris",
            accepted_at=datetime(2026, 3, 10, 8, 59, 30, tzinfo=UTC),  # 30 s before "now"
        ),
        source=MATCHING_SOURCE,
    )
    group = settings.consumer_group
    topic = "matching.requests.v1"
    async with running(app) as http:
        before = await scrape(http)
        await publish(settings, [accepted])
        [(ce_type, body)] = await billing_events(settings, expect=1)
        assert ce_type == "delego.billing.InvoiceIssued.v1"

        async def applied_and_lag_read():
            s = await scrape(http)
            handled = sample(
                s,
                "delego_consumer_events_handled_total",
                topic=topic,
                type=TYPE,
                group=group,
                outcome="applied",
            )
            lag = [
                v
                for (name, labels), v in s.items()
                if name == "delego_consumer_lag_records"
                and ("group", group) in labels
                and ("topic", topic) in labels
            ]
            # the lag read after the commit: every partition read, and none behind
            return s if handled == 1 and lag and not any(lag) else None

        after = await eventually(applied_and_lag_read, timeout=30)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    labels = {"topic": topic, "type": TYPE, "group": group}
    assert delta("delego_consumer_events_total", **labels) == 1
    assert delta("delego_consumer_handling_duration_seconds_count", **labels) == 1
    assert delta("delego_consumer_events_handled_total", **labels, outcome="parked") == 0
    assert delta("delego_billing_invoices_issued_total") == 1
    [line] = body["lines"]
    outcome = line["tax_credit"]["code"]
    assert delta("delego_billing_tax_credit_decisions_total", outcome=outcome) == 1
    assert delta("delego_flow_accepted_to_invoiced_seconds_count") == 1
    # accepted 30 s before the issue instant the billing clock gave the invoice
    issued = datetime.fromisoformat(body["issued_at"])
    expected = (issued - datetime(2026, 3, 10, 8, 59, 30, tzinfo=UTC)).total_seconds()
    assert delta("delego_flow_accepted_to_invoiced_seconds_sum") == pytest.approx(expected)
    assert delta("delego_outbox_events_published_total", collection=INVOICES) >= 1
    assert delta("delego_outbox_publish_latency_seconds_count", collection=INVOICES) >= 1
    assert ("delego_outbox_pending_events", frozenset({("collection", INVOICES)})) in after
    assert app.state.runtime.relay.backlog()[INVOICES].pending == 0  # published, none left
    assert delta("delego_http_requests_total", method="GET", route="/metrics", status="200") >= 1
