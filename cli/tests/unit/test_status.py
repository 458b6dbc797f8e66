"""`delego status`: what it reads from a service's /metrics and how replicas add up."""

from delego_cli.status import KafkaStatus, PlatformStatus, ServiceStatus, read_metrics, render
from rich.console import Console

METRICS = """\
# TYPE delego_consumer_lag_records gauge
delego_consumer_lag_records{group="billing",partition="0",topic="matching.requests.v1"} 4.0
delego_consumer_lag_records{group="billing",partition="1",topic="matching.requests.v1"} 1.0
# TYPE delego_outbox_pending_events gauge
delego_outbox_pending_events{collection="invoices"} 2.0
delego_outbox_pending_events{collection="credit_notes"} 1.0
# TYPE delego_outbox_oldest_pending_age_seconds gauge
delego_outbox_oldest_pending_age_seconds{collection="invoices"} 75.0
delego_outbox_oldest_pending_age_seconds{collection="credit_notes"} 3.0
"""


def test_metrics_give_lag_per_partition_and_the_outbox_backlog():
    s = ServiceStatus("billing", "http://b")
    read_metrics(METRICS, s)
    assert s.lag == {
        ("billing", "matching.requests.v1", "0"): 4.0,
        ("billing", "matching.requests.v1", "1"): 1.0,
    }
    assert (s.outbox_pending, s.outbox_oldest_s) == (3.0, 75.0)


def test_replicas_of_a_group_count_each_partition_once_at_its_highest_reading():
    a, b = ServiceStatus("billing", "http://a"), ServiceStatus("billing", "http://b")
    read_metrics(METRICS, a)
    b.lag = {("billing", "matching.requests.v1", "0"): 6.0}  # read a moment later
    status = PlatformStatus([a, b], KafkaStatus())
    assert status.lag_by_group() == {"billing": 7}


def test_render_shows_services_lag_and_topics():
    s = ServiceStatus("billing", "http://b", ready=True)
    read_metrics(METRICS, s)
    down = ServiceStatus("catalog", "http://c", error="ConnectError: refused")
    kafka = KafkaStatus(
        dlq_waiting={"billing.invoices.v1": 2}, last_minute={"billing.invoices.v1": 9}
    )
    console = Console(width=160, record=True)
    console.print(render(PlatformStatus([s, down], kafka)))
    text = console.export_text()
    assert "ready" in text and "down" in text and "ConnectError" in text
    invoices = next(line for line in text.splitlines() if "billing.invoices.v1" in line)
    assert [c.strip() for c in invoices.split("│")[2:4]] == ["9", "2"]
    billing = next(line for line in text.splitlines() if "http://b" in line)
    assert "75 s" in billing and "3" in billing
