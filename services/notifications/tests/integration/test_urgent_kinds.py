"""A provider's quiet hours hold what they did not mark urgent (real Kafka, store, SMTP)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from delego_shared.events import Envelope
from delego_shared.events.matching import MatchProposed, RequestCancelled, ScoreBreakdown
from delego_shared.types import Money, new_id

pytestmark = pytest.mark.integration


async def test_urgent_kinds_reach_a_sleeping_provider_the_rest_waits(
    notif_settings, smtp, publish, events, kit
):
    settings = notif_settings()
    clock = kit.ShiftedClock()
    clock.set(datetime(2026, 12, 1, 17, 30, tzinfo=UTC))  # 23:00 in Bangalore
    pid = new_id("prv")
    me = kit.bearer(settings, pid, "provider")
    op = kit.bearer(settings, "op_1", "operator")
    proposed = MatchProposed(
        request_id="req_u1",
        client_id="cli_u1",
        attempt=1,
        provider_id=pid,
        terms=events.terms(pid),
        estimated_price=Money.of("32.50", "EUR"),
        reserved_hours=Decimal(2),
        promised_at=datetime(2026, 12, 2, 5, 45, tzinfo=UTC),
        promised_local="2026-12-02T06:45:00+01:00",
        client_zone="Europe/Paris",
        score=ScoreBreakdown(
            total=0.5, slack=0.5, rating=0.5, price=0.5, load=0.5, trust_bonus=0, weights={}
        ),
        expires_at=datetime(2026, 12, 2, 3, 45, tzinfo=UTC),
    )
    cancelled = RequestCancelled(
        request_id="req_u2",
        client_id="cli_u2",
        provider_id=pid,
        cancelled_at=datetime(2026, 12, 1, 17, 29, tzinfo=UTC),
    )
    async with kit.running(kit.app_for(settings, clock)) as client:
        contact = {
            "email": "priya@example.org",
            "locale": "en",
            "zone": "Asia/Kolkata",
            "quiet_hours": {"start": "22:00", "end": "07:00"},
        }
        r = await client.put(
            "/v1/me/contact", json={**contact, "urgent_kinds": ["nope"]}, headers=me
        )
        assert r.status_code == 422
        assert "nope" in r.json()["title"] + r.json().get("detail", "")
        r = await client.put(
            "/v1/me/contact", json={**contact, "urgent_kinds": ["match_proposed"]}, headers=me
        )
        assert r.status_code == 200, r.text
        assert (await client.get("/v1/me/contact", headers=me)).json()["urgent_kinds"] == [
            "match_proposed"
        ]

        await publish(Envelope(proposed, source="/delego/matching"))
        await publish(Envelope(cancelled, source="/delego/matching"))

        async def settled():
            r = await client.get(f"/v1/deliveries?recipient_id={pid}", headers=op)
            states = {d["kind"]: d for d in r.json()}
            return len(states) == 2 and states

        by_kind = await kit.wait_for(settled)
        await kit.wait_for(lambda: _mailed(smtp))
        await asyncio.sleep(0.5)
        assert len(smtp.mailbox.messages) == 1  # the proposal, not the cancellation
        held = by_kind["request_cancelled"]
        assert held["state"] == "held"
        assert held["hold_until"] == "2026-12-02T01:30:00Z"  # 07:00 in Bangalore


async def _mailed(smtp) -> bool:
    return len(smtp.mailbox.messages) >= 1
