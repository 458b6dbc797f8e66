from datetime import UTC, datetime, time, timedelta

import pytest
from delego_shared.events.notifications import Channel
from notifications.domain import (
    FailOver,
    GiveUp,
    QuietHours,
    Recipient,
    RetryAt,
    RetryPolicy,
    WebhookEndpoint,
    after_failure,
    delivery_key,
    email_failure,
    next_delivery,
    plan_deliveries,
    webhook_failure,
)

NOON = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base=timedelta(seconds=10), cap=timedelta(minutes=1))


class Half:
    def random(self) -> float:
        return 0.5


HOOK = WebhookEndpoint(
    endpoint_id="ep_mine",
    url="https://hooks.example.com/x",
    secret="whsec_0123456789abcdef",
    event_types=frozenset({"*"}),
    owner_id="prv_1",
)
PROVIDER = Recipient(
    recipient_id="prv_1",
    email="p@example.com",
    channels=(Channel.WEBHOOK, Channel.EMAIL, Channel.INAPP),
)


def first_plan(events, recipient=PROVIDER, endpoints=(HOOK,), now=NOON):
    [plan] = plan_deliveries(
        "evt_1", events.match_proposed(), {"prv_1": recipient}, list(endpoints), now=now
    )
    return plan


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (None, False),
        (500, False),
        (503, False),
        (429, False),
        (408, False),
        (400, True),
        (404, True),
        (410, True),
    ],
)
def test_webhook_failures_are_classified(status, permanent):
    f = webhook_failure(status)
    assert f.permanent is permanent
    assert f.code == ("webhook_unreachable" if status is None else f"webhook_http_{status}")


def test_email_failures_are_classified():
    assert email_failure(None, bounced=True).permanent
    assert email_failure(550).permanent
    assert not email_failure(451).permanent
    assert not email_failure(None).permanent
    assert email_failure(None, bounced=True).code == "smtp_bounce"


def test_transient_failure_is_retried_on_the_same_channel(events):
    plan = first_plan(events)
    d = after_failure(
        plan,
        attempts=1,
        failure=webhook_failure(503),
        policy=POLICY,
        rng=Half(),
        now=NOON,
        recipient=PROVIDER,
        endpoints=[HOOK],
    )
    assert d == RetryAt(at=NOON + timedelta(seconds=5), attempt=2)


def test_webhook_failing_for_good_moves_to_the_next_channel(events):
    plan = first_plan(events)
    assert plan.channel is Channel.WEBHOOK
    d = after_failure(
        plan,
        attempts=3,
        failure=webhook_failure(503),
        policy=POLICY,
        rng=Half(),
        now=NOON,
        recipient=PROVIDER,
        endpoints=[HOOK],
    )
    assert isinstance(d, FailOver)
    assert d.failed_code == "webhook_http_503"
    assert (d.next.channel, d.next.recipient_id, d.next.kind) == (
        Channel.EMAIL,
        "prv_1",
        "match_proposed",
    )
    assert d.next.key == delivery_key("evt_1", "prv_1", Channel.EMAIL)


def test_bounce_moves_on_immediately_and_the_end_of_the_chain_gives_up(events):
    email_plan = next_delivery(first_plan(events), PROVIDER, [HOOK], now=NOON)
    assert email_plan is not None
    d = after_failure(
        email_plan,
        attempts=1,
        failure=email_failure(None, bounced=True),
        policy=POLICY,
        rng=Half(),
        now=NOON,
        recipient=PROVIDER,
        endpoints=[HOOK],
    )
    assert isinstance(d, FailOver)
    assert d.next.channel is Channel.INAPP
    d = after_failure(
        d.next,
        attempts=3,
        failure=webhook_failure(None),
        policy=POLICY,
        rng=Half(),
        now=NOON,
        recipient=PROVIDER,
        endpoints=[HOOK],
    )
    assert d == GiveUp("webhook_unreachable")


def test_failover_skips_channels_the_recipient_switched_off(events):
    prefs = PROVIDER.preferences.switched("match_proposed", Channel.EMAIL, False, critical=False)
    r = PROVIDER.model_copy(update={"preferences": prefs})
    nxt = next_delivery(first_plan(events, r), r, [HOOK], now=NOON)
    assert nxt is not None
    assert nxt.channel is Channel.INAPP


def test_failover_to_email_at_night_is_held_by_quiet_hours(events):
    r = PROVIDER.model_copy(update={"quiet_hours": QuietHours(start=time(21), end=time(8))})
    night = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)
    plan = first_plan(events, r, now=night)
    assert plan.hold_until is None  # a webhook is a machine: not held
    nxt = next_delivery(plan, r, [HOOK], now=night)
    assert nxt is not None
    assert nxt.hold_until == datetime(2026, 1, 16, 7, 0, tzinfo=UTC)


def test_subscription_webhooks_have_nowhere_to_fail_over(events):
    sub = WebhookEndpoint(
        endpoint_id="ep_erp",
        url="https://erp.example.com/in",
        secret="whsec_0123456789abcdef",
        event_types=frozenset({"*"}),
    )
    plans = plan_deliveries("evt_1", events.invoice_issued(), {}, [sub], now=NOON)
    hook = next(p for p in plans if p.via_subscription)
    d = after_failure(
        hook,
        attempts=1,
        failure=webhook_failure(410),
        policy=POLICY,
        rng=Half(),
        now=NOON,
        recipient=Recipient(recipient_id="ep_erp"),
        endpoints=[sub],
    )
    assert d == GiveUp("webhook_http_410")
