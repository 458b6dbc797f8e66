import json
from datetime import UTC, datetime

import pytest
from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel, NotificationDelivered, NotificationFailed
from notifications.domain import (
    Recipient,
    WebhookEndpoint,
    build_webhook_request,
    delivered_event,
    delivery_key,
    digest_key,
    failed_event,
    plan_deliveries,
    verify_signature,
)
from pydantic import ValidationError

NOW = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
EMAIL = "alice.secret@example.com"
SECRET = "whsec_0123456789abcdef"


def test_delivery_key_is_stable_and_distinguishes_every_part():
    k = delivery_key("evt_1", "cli_1", Channel.EMAIL)
    assert k == delivery_key("evt_1", "cli_1", Channel.EMAIL)
    assert k.startswith("dlv_")
    assert len(k) == 44
    others = {
        delivery_key("evt_2", "cli_1", Channel.EMAIL),
        delivery_key("evt_1", "cli_2", Channel.EMAIL),
        delivery_key("evt_1", "cli_1", Channel.INAPP),
    }
    assert k not in others
    assert len(others) == 3
    # ids may contain ':' - the encoding must not let parts run into each other
    assert delivery_key("a:b", "c", Channel.EMAIL) != delivery_key("a", "b:c", Channel.EMAIL)


def test_digest_key_depends_on_the_set_of_parts_only():
    assert digest_key("cli_1", Channel.EMAIL, ["k2", "k1", "k1"]) == digest_key(
        "cli_1", Channel.EMAIL, ["k1", "k2"]
    )
    assert digest_key("cli_1", Channel.EMAIL, ["k1"]) != digest_key(
        "cli_1", Channel.EMAIL, ["k1", "k2"]
    )


def test_contact_data_stays_out_of_repr():
    r = Recipient(recipient_id="cli_1", email=EMAIL)
    ep = WebhookEndpoint(
        endpoint_id="ep_1", url="https://h.example.com", secret=SECRET, event_types=frozenset({"*"})
    )
    assert EMAIL not in repr(r)
    assert EMAIL not in str(r)
    assert SECRET not in repr(ep)


def test_outcome_events_carry_ids_channel_and_status_only(events):
    cli = Recipient(recipient_id="cli_1", email=EMAIL)
    [plan] = plan_deliveries("evt_1", events.invoice_issued(), {"cli_1": cli}, [], now=NOW)
    ok = delivered_event(plan, attempts=2, at=NOW)
    ko = failed_event(plan, attempts=3, error_code="smtp_bounce", at=NOW)
    assert isinstance(ok, NotificationDelivered)
    assert isinstance(ko, NotificationFailed)
    assert (
        ok.delivery_id,
        ok.recipient_id,
        ok.channel,
        ok.kind,
        ok.source_event_id,
        ok.attempts,
    ) == (plan.key, "cli_1", Channel.EMAIL, "invoice_issued", "evt_1", 2)
    assert ok.key() == "cli_1"
    for e in (ok, ko):
        body = e.model_dump_json()
        assert EMAIL not in body
        assert "@" not in body
    assert set(json.loads(ko.model_dump_json())) == {
        "delivery_id",
        "recipient_id",
        "channel",
        "kind",
        "source_event_id",
        "attempts",
        "error_code",
        "failed_at",
    }


@pytest.mark.parametrize(
    "code", ["550 5.1.1 <alice.secret@example.com>: no such user", "Smtp-Bounce", ""]
)
def test_error_codes_cannot_smuggle_free_text(events, code):
    [plan] = plan_deliveries("evt_1", events.invoice_issued(), {}, [], now=NOW)
    with pytest.raises(ValueError, match="snake_case"):
        failed_event(plan, attempts=1, error_code=code, at=NOW)


def test_webhook_request_is_a_signed_cloudevent(events):
    ep = WebhookEndpoint(
        endpoint_id="ep_1",
        url="https://erp.example.com/hook",
        secret=SECRET,
        event_types=frozenset({"delego.billing.*"}),
    )
    env = Envelope(data=events.invoice_issued(), source="delego.billing", id="evt_1", time=NOW)
    req = build_webhook_request(ep, env, now=NOW, delivery_id="dlv_x")
    doc = json.loads(req.body)
    assert (doc["specversion"], doc["id"], doc["type"], doc["subject"]) == (
        "1.0",
        "evt_1",
        "delego.billing.InvoiceIssued.v1",
        "cli_1",
    )
    assert doc["data"]["total_gross"] == {"amount": "1234.50", "currency": "EUR"}
    assert req.headers["Delego-Event-Id"] == "evt_1"
    assert req.url == ep.url
    assert verify_signature(
        secret=SECRET, body=req.body, header=req.headers["Delego-Signature"], now=NOW
    ) == int(NOW.timestamp())


@pytest.mark.parametrize("url", ["http://hooks.example.com/x", "ftp://h.example.com", "https://"])
def test_webhook_urls_must_be_https_outside_local_development(url):
    with pytest.raises(ValidationError):
        WebhookEndpoint(endpoint_id="ep_1", url=url, secret=SECRET, event_types=frozenset({"*"}))


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/h", "http://127.0.0.1/h", "http://receiver:9000/h"]
)
def test_plain_http_is_accepted_for_local_hosts(url):
    assert (
        WebhookEndpoint(
            endpoint_id="ep_1", url=url, secret=SECRET, event_types=frozenset({"*"})
        ).url
        == url
    )


def test_recipient_validation():
    with pytest.raises(ValidationError):
        Recipient(recipient_id="x", email="not-an-address")
    with pytest.raises(ValidationError):
        Recipient(recipient_id="x", channels=(Channel.EMAIL, Channel.EMAIL))
    with pytest.raises(ValidationError):
        Recipient(recipient_id="x", zone="Mars/Olympus")
    r = Recipient(recipient_id="x")
    assert (r.locale, r.zone, r.channels) == ("fr", "Europe/Paris", (Channel.EMAIL, Channel.INAPP))
