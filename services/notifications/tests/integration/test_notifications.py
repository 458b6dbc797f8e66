"""The notifications service on real Kafka, a real Mongo-wire database, a real SMTP
server and a real HTTP receiver: events in, e-mails / webhooks / inbox out."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.numbers import format_currency
from delego_shared.events import Envelope
from delego_shared.events.notifications import NotificationDelivered, NotificationFailed
from delego_shared.mongo import Mongo
from delego_shared.types import new_id
from notifications.domain import SignatureMismatch, verify_signature
from notifications.domain.signature import DELIVERY_ID_HEADER, SIGNATURE_HEADER

pytestmark = pytest.mark.integration

SECRET = "whsec_0123456789abcdef"
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_recipe():
    """The verification snippet of the README, exactly as receivers would copy it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [code] = [b for b in blocks if "def verify_delego_signature" in b]
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["verify_delego_signature"]


def body_parts(msg):
    """(text, html) of a multipart/alternative e-mail."""
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


async def put_contact(kit, client, settings, user_id, **contact):
    r = await client.put(
        "/v1/me/contact", json=contact, headers=kit.bearer(settings, user_id, "client")
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_invoice_issued_yields_exactly_one_email_with_the_right_content(
    notif_settings, smtp, publish, events, kit
):
    settings = notif_settings()
    client_id = new_id("cli")
    async with kit.running(kit.app_for(settings)) as client:
        await put_contact(
            kit,
            client,
            settings,
            client_id,
            email="ada@example.org",
            locale="fr",
            zone="Europe/Paris",
            channels=["email", "inapp"],
        )
        env = kit.envelope(events.invoice_issued(client_id))
        await publish(env)

        async def one_mail():
            return len(smtp.mailbox.messages) >= 1

        await kit.wait_for(one_mail)
        [delivered] = await kit.delivery_events(settings, expect=1)
        await asyncio.sleep(1.0)  # nothing else arrives
        assert len(smtp.mailbox.messages) == 1

        amount = format_currency(Decimal("1234.50"), "EUR", locale="fr")
        assert amount != "€1,234.50"  # French formatting: "1 234,50 €" (narrow spaces)
        [msg] = smtp.mailbox.messages
        assert msg["To"] == "ada@example.org"
        assert msg["From"] == "Delego <no-reply@delego.test>"
        assert msg["Subject"] == f"Facture DLG-2026-000123 : {amount}"
        text, html = body_parts(msg)
        assert f"Total TTC : {amount}" in text
        assert f"À payer maintenant : {amount}" in text
        assert "Service rendu à distance : non éligible" in text
        assert "<h1>Facture DLG-2026-000123</h1>" in html
        assert f"<td>{amount}</td>" in html
        assert '<html lang="fr">' in html

        assert isinstance(delivered.data, NotificationDelivered)
        assert delivered.data.recipient_id == client_id
        assert delivered.data.channel == "email"
        assert delivered.data.kind == "invoice_issued"
        assert delivered.data.source_event_id == env.id
        assert delivered.data.attempts == 1
        assert delivered.correlation_id == env.correlation_id
        assert delivered.causation_id == env.id
        assert msg["X-Delego-Delivery-Id"] == delivered.data.delivery_id

        op = kit.bearer(settings, "op_1", "operator")
        r = await client.get(f"/v1/deliveries/{delivered.data.delivery_id}", headers=op)
        assert r.status_code == 200
        status = r.json()
        assert status["state"] == "delivered"
        assert status["attempts"] == 1
        assert "ada@example.org" not in r.text
        # the inbox was not used: e-mail was the first usable channel
        r = await client.get("/v1/me/inbox", headers=kit.bearer(settings, client_id, "client"))
        assert r.json() == {"items": [], "unread": 0}
        # delivery status is for operators only
        r = await client.get("/v1/deliveries", headers=kit.bearer(settings, client_id, "client"))
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"


async def test_webhook_failing_twice_then_succeeding_gets_one_delivery_it_can_verify(
    notif_settings, receiver, publish, events, kit
):
    settings = notif_settings(retry_max_attempts=4)
    receiver.script["/flaky"] = [500, 503, 200]
    async with kit.running(kit.app_for(settings)) as client:
        op = kit.bearer(settings, "op_1", "operator")
        r = await client.post(
            "/v1/webhooks",
            json={
                "url": f"{receiver.base_url}/flaky",
                "secret": SECRET,
                "event_types": ["delego.billing.*"],
            },
            headers=op,
        )
        assert r.status_code == 201, r.text
        endpoint = r.json()
        assert "secret" not in endpoint
        env = kit.envelope(events.invoice_issued(new_id("cli")))
        await publish(env)

        async def three_calls():
            return len(receiver.on("/flaky")) >= 3

        await kit.wait_for(three_calls)
        evts = await kit.delivery_events(settings, expect=2)  # subscription + client's inbox
        await asyncio.sleep(1.0)
        calls = receiver.on("/flaky")
        assert [c.status for c in calls] == [500, 503, 200]
        [ok] = [c for c in calls if c.status == 200]

        # the documented recipe: verify the exact body with the secret, then trust it
        ts = verify_signature(
            secret=SECRET,
            body=ok.body,
            header=ok.headers[SIGNATURE_HEADER],
            now=datetime.now(UTC),
        )
        assert abs(ts - datetime.now(UTC).timestamp()) < 60
        with pytest.raises(SignatureMismatch):
            verify_signature(
                secret="another-secret-0123456789",
                body=ok.body,
                header=ok.headers[SIGNATURE_HEADER],
                now=datetime.now(UTC),
            )
        verify = readme_recipe()
        assert verify(SECRET, ok.body, ok.headers[SIGNATURE_HEADER]) == ts
        with pytest.raises(ValueError, match="mismatch"):
            verify(SECRET, ok.body + b" ", ok.headers[SIGNATURE_HEADER])
        cloud_event = json.loads(ok.body)
        assert cloud_event["id"] == env.id
        assert cloud_event["type"] == "delego.billing.InvoiceIssued.v1"
        assert cloud_event["data"]["invoice_id"] == env.data.invoice_id  # type: ignore[attr-defined]
        assert len({c.headers[DELIVERY_ID_HEADER] for c in calls}) == 1  # one delivery, 3 tries

        by_channel = {e.data.channel: e.data for e in evts}
        hook = by_channel["webhook"]
        assert isinstance(hook, NotificationDelivered)
        assert hook.recipient_id == endpoint["endpoint_id"]
        assert hook.attempts == 3
        r = await client.get(f"/v1/deliveries/{hook.delivery_id}", headers=op)
        assert [h["outcome"] for h in r.json()["history"]] == [
            "webhook_http_500",
            "webhook_http_503",
            "delivered",
        ]


async def test_webhook_that_always_fails_falls_back_to_email(
    notif_settings, receiver, smtp, publish, events, kit
):
    settings = notif_settings(retry_max_attempts=3)
    receiver.script["/down"] = [500]
    client_id = new_id("cli")
    async with kit.running(kit.app_for(settings)) as client:
        await put_contact(
            kit,
            client,
            settings,
            client_id,
            email="grace@example.org",
            locale="en",
            zone="Europe/London",
            channels=["webhook", "email", "inapp"],
        )
        r = await client.post(
            "/v1/webhooks",
            json={
                "url": f"{receiver.base_url}/down",
                "secret": SECRET,
                "event_types": ["delego.billing.InvoiceIssued.v1"],
                "owner_id": client_id,
            },
            headers=kit.bearer(settings, "op_1", "operator"),
        )
        assert r.status_code == 201, r.text
        env = kit.envelope(events.invoice_issued(client_id))
        await publish(env)

        async def mailed():
            return len(smtp.mailbox.messages) >= 1

        await kit.wait_for(mailed)
        failed, delivered = await kit.delivery_events(settings, expect=2)
        await asyncio.sleep(1.0)
        assert [c.status for c in receiver.on("/down")] == [500, 500, 500]
        [msg] = smtp.mailbox.messages
        assert msg["To"] == "grace@example.org"
        assert msg["Subject"] == "Invoice DLG-2026-000123: €1,234.50"

        assert isinstance(failed.data, NotificationFailed)
        assert failed.data.channel == "webhook"
        assert failed.data.error_code == "webhook_http_500"
        assert failed.data.attempts == 3
        assert isinstance(delivered.data, NotificationDelivered)
        assert delivered.data.channel == "email"
        assert delivered.data.source_event_id == env.id
        r = await client.get(
            f"/v1/deliveries/{failed.data.delivery_id}",
            headers=kit.bearer(settings, "op_1", "operator"),
        )
        assert r.json()["failover_to"] == [delivered.data.delivery_id]


async def test_smtp_rejection_falls_back_to_the_inbox(notif_settings, smtp, publish, events, kit):
    settings = notif_settings()
    client_id = new_id("cli")
    me = kit.bearer(settings, client_id, "client")
    async with kit.running(kit.app_for(settings)) as client:
        await put_contact(kit, client, settings, client_id, email="bounce@example.org", locale="en")
        env = kit.envelope(events.invoice_issued(client_id))
        await publish(env)

        async def in_inbox():
            r = await client.get("/v1/me/inbox", headers=me)
            return r.json()["unread"] == 1

        await kit.wait_for(in_inbox)
        failed, delivered = await kit.delivery_events(settings, expect=2)
        assert smtp.mailbox.messages == []
        assert smtp.mailbox.refused == ["bounce@example.org"]
        assert isinstance(failed.data, NotificationFailed)
        assert failed.data.error_code == "smtp_550"
        assert failed.data.attempts == 1  # a 5xx is final: no retry
        assert delivered.data.channel == "inapp"

        [item] = (await client.get("/v1/me/inbox", headers=me)).json()["items"]
        assert item["subject"] == "Invoice DLG-2026-000123: €1,234.50"
        assert item["read_at"] is None
        r = await client.post(f"/v1/me/inbox/{item['id']}/read", headers=me)
        assert r.status_code == 200
        assert r.json()["read_at"] is not None
        assert (await client.get("/v1/me/inbox?unread=true", headers=me)).json() == {
            "items": [],
            "unread": 0,
        }
        other = kit.bearer(settings, "cli_other", "client")
        r = await client.post(f"/v1/me/inbox/{item['id']}/read", headers=other)
        assert r.status_code == 404


async def test_a_replayed_event_sends_nothing(notif_settings, smtp, publish, events, kit):
    settings = notif_settings()
    client_id = new_id("cli")
    async with kit.running(kit.app_for(settings)) as client:
        await put_contact(kit, client, settings, client_id, email="ada@example.org", locale="en")
        env = kit.envelope(events.invoice_issued(client_id, number="DLG-2026-000001"))
        await publish(env)

        async def mails(n):
            async def check():
                return len(smtp.mailbox.messages) >= n

            return check

        await kit.wait_for(await mails(1))
        # replay 1: the consumer's inbox knows the event id
        await publish(env)
        # replay 2: as if the service crashed after sending but before recording the
        # event as handled: only the delivery key stands between the replay and a resend
        mongo = Mongo(settings.mongodb_url, settings.database)
        try:
            await mongo.db["processed_events"].delete_many({})
        finally:
            await mongo.close()
        await publish(env)
        # a later event of the same client (same partition, so handled after the replays)
        marker = kit.envelope(events.invoice_issued(client_id, number="DLG-2026-000002"))
        await publish(marker)
        await kit.wait_for(await mails(2))
        await asyncio.sleep(1.0)
        subjects = [m["Subject"] for m in smtp.mailbox.messages]
        assert subjects == [
            "Invoice DLG-2026-000001: €1,234.50",
            "Invoice DLG-2026-000002: €1,234.50",
        ]
        evts = await kit.delivery_events(settings, expect=2)
        await asyncio.sleep(0.5)
        assert sorted(e.data.source_event_id for e in evts) == sorted([env.id, marker.id])


async def test_quiet_hours_hold_then_one_digest_after_them_across_a_restart_and_replicas(
    notif_settings, smtp, publish, events, kit
):
    settings = notif_settings()
    clock = kit.ShiftedClock()
    clock.set(datetime(2026, 3, 10, 22, 0, tzinfo=UTC))  # 23:00 in Paris
    client_id = new_id("cli")
    op = kit.bearer(settings, "op_1", "operator")
    # when they happened (ce_time) orders the digest
    accepted = Envelope(
        events.match_accepted(client_id),
        source="/delego/matching",
        time=datetime(2026, 3, 10, 21, 55, tzinfo=UTC),
    )
    completed = Envelope(
        events.work_completed(client_id),
        source="/delego/matching",
        time=datetime(2026, 3, 10, 22, 5, tzinfo=UTC),
    )
    invoice = kit.envelope(events.invoice_issued(client_id))

    async with kit.running(kit.app_for(settings, clock)) as client:
        await put_contact(
            kit,
            client,
            settings,
            client_id,
            email="ada@example.org",
            locale="en",
            zone="Europe/Paris",
            quiet_hours={"start": "21:00", "end": "08:00"},
        )
        for env in (accepted, completed, invoice):
            await publish(env)

        async def held_two():
            r = await client.get(f"/v1/deliveries?recipient_id={client_id}", headers=op)
            return [d["state"] for d in r.json()].count("held") == 2

        await kit.wait_for(held_two)

        async def invoice_mailed():
            return len(smtp.mailbox.messages) >= 1

        await kit.wait_for(invoice_mailed)  # critical: never held
        await asyncio.sleep(1.0)
        assert [m["Subject"] for m in smtp.mailbox.messages] == [
            "Invoice DLG-2026-000123: €1,234.50"
        ]
        r = await client.get(f"/v1/deliveries?recipient_id={client_id}&state=held", headers=op)
        assert {d["hold_until"] for d in r.json()} == {"2026-03-11T07:00:00Z"}  # 08:00 Paris

    # the service is down while quiet hours end; it comes back as two replicas racing
    # to release the held notifications
    clock.set(datetime(2026, 3, 11, 7, 0, 30, tzinfo=UTC))
    async with (
        kit.running(kit.app_for(settings, clock)) as client,
        kit.running(kit.app_for(settings, clock)),
    ):

        async def digest_mailed():
            return len(smtp.mailbox.messages) >= 2

        await kit.wait_for(digest_mailed)
        await asyncio.sleep(1.5)
        assert len(smtp.mailbox.messages) == 2
        digest = smtp.mailbox.messages[1]
        assert digest["Subject"] == "2 notifications while you were away"
        text, html = body_parts(digest)
        # both held notifications, in the order they happened, in the recipient's zone
        i_accepted = text.index("Asha K. accepted your request (translation)")
        i_completed = text.index("Work completed by Asha K.: please rate it")
        assert i_accepted < i_completed
        assert "Your request is accepted: delivery by" in text
        assert "8:00" in text  # promised 07:00 UTC = 08:00 in Paris
        assert "accepted your request" in html
        assert "Rate the work" in html

        evts = await kit.delivery_events(settings, expect=3)
        delivered = {e.data.source_event_id: e.data for e in evts}
        assert set(delivered) == {accepted.id, completed.id, invoice.id}
        assert all(isinstance(d, NotificationDelivered) for d in delivered.values())
        assert delivered[accepted.id].kind == "match_accepted"
        assert delivered[completed.id].kind == "work_completed"

        r = await client.get(f"/v1/deliveries?recipient_id={client_id}", headers=op)
        states = sorted(d["state"] for d in r.json())
        assert states == ["delivered", "delivered", "delivered", "delivered"]  # + the digest
        [dg] = [d for d in r.json() if d["digest"]]
        assert len(dg["parts"]) == 2


async def test_contact_preferences_and_webhooks_api(notif_settings, smtp, publish, events, kit):
    settings = notif_settings()
    client_id = new_id("cli")
    me = kit.bearer(settings, client_id, "client")
    op = kit.bearer(settings, "op_1", "operator")
    async with kit.running(kit.app_for(settings)) as client:
        r = await client.get("/v1/me/contact")
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.get("/v1/me/contact", headers=me)
        assert r.json()["registered"] is False
        r = await client.put("/v1/me/contact", json={"email": "not-an-address"}, headers=me)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "email"
        r = await client.put(
            "/v1/me/contact", json={"quiet_hours": {"start": "21:00", "end": "21:00"}}, headers=me
        )
        assert r.status_code == 422
        contact = await put_contact(
            kit, client, settings, client_id, email="ada@example.org", locale="en"
        )
        assert contact["registered"] is True
        assert contact["channels"] == ["email", "inapp"]

        # critical kinds cannot be switched off; others can
        r = await client.put(
            "/v1/me/preferences/invoice_issued/email", json={"enabled": False}, headers=me
        )
        assert r.status_code == 422
        assert r.json()["type"].endswith("/critical-kind")
        r = await client.put("/v1/me/preferences/nope/email", json={"enabled": False}, headers=me)
        assert r.status_code == 404
        r = await client.put(
            "/v1/me/preferences/work_completed/email", json={"enabled": False}, headers=me
        )
        assert r.status_code == 200
        kinds = {k["kind"]: k for k in r.json()["kinds"]}
        assert kinds["work_completed"]["channels"] == {
            "email": False,
            "webhook": True,
            "inapp": True,
        }
        assert kinds["invoice_issued"]["critical"] is True

        # the opt-out routes work_completed to the next channel: the in-app inbox
        await publish(kit.envelope(events.work_completed(client_id)))

        async def in_inbox():
            return (await client.get("/v1/me/inbox", headers=me)).json()["unread"] == 1

        await kit.wait_for(in_inbox)
        assert smtp.mailbox.messages == []
        r = await client.post("/v1/me/inbox/read-all", headers=me)
        assert r.json() == {"marked": 1}

        # webhooks: operators only, validated, secret write-only
        hook = {"url": "https://erp.example.com/h", "secret": SECRET, "event_types": ["x.*"]}
        r = await client.post("/v1/webhooks", json=hook, headers=me)
        assert r.status_code == 403
        r = await client.post("/v1/webhooks", json=hook, headers=op)
        assert r.status_code == 422  # matches no event of the catalogue
        r = await client.post(
            "/v1/webhooks",
            json={**hook, "url": "http://erp.example.com/h", "event_types": ["delego.*"]},
            headers=op,
        )
        assert r.status_code == 422  # plain http only for local hosts
        r = await client.post(
            "/v1/webhooks", json={**hook, "event_types": ["delego.billing.*"]}, headers=op
        )
        assert r.status_code == 201
        endpoint_id = r.json()["endpoint_id"]
        assert r.headers["location"] == f"/v1/webhooks/{endpoint_id}"
        r = await client.get("/v1/webhooks", headers=op)
        assert [w["endpoint_id"] for w in r.json()] == [endpoint_id]
        assert SECRET not in r.text
        r = await client.delete(f"/v1/webhooks/{endpoint_id}", headers=op)
        assert r.status_code == 204
        r = await client.get(f"/v1/webhooks/{endpoint_id}", headers=op)
        assert r.json()["active"] is False
        r = await client.get("/v1/deliveries?state=bogus", headers=op)
        assert r.status_code == 422
