"""Subscriptions billed once per period across a restart; two instances at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from billing.store import CAPS, INVOICES, SUBSCRIPTIONS
from delego_shared.events import Envelope
from delego_shared.events.matching import MatchAccepted, RequestCancelled, WorkCompleted

pytestmark = pytest.mark.integration

MATCHING_SOURCE = "/delego/matching"
D = Decimal


async def _invoices(db, n=None):
    docs = await db[INVOICES].find({}).sort("seq", 1).to_list()
    return docs if n is None or len(docs) >= n else None


async def test_subscription_bills_each_period_once_across_a_restart(
    billing_settings, app_factory, running, make_terms, publish, eventually, clock, dbs
):
    settings = billing_settings()
    db = dbs(settings)
    terms = make_terms(
        category="virtual_assistance",
        delivery_mode="remote",
        sap_activity=None,
        pricing={
            "model": "subscription",
            "price_per_period": {"amount": "30.00", "currency": "EUR"},
            "included_hours": "4",
            "overage_rate": {"amount": "20.00", "currency": "EUR"},
        },
    )
    accepted = Envelope(
        MatchAccepted(
            request_id="req_sub",
            client_id="cli_s",
            attempt=1,
            provider_id="prv_1",
            terms=terms,
            estimated_price=terms.pricing.price_per_period,
            promised_at=datetime(2026, 3, 10, 9, tzinfo=UTC),
            promised_local="2026-03-10T10:00:00+01:00",
            client_zone="Europe/Paris",
            accepted_at=datetime(2026, 3, 10, 8, 0, tzinfo=UTC),
        ),
        source=MATCHING_SOURCE,
    )
    app = app_factory(settings)
    async with running(app):
        await publish(settings, [accepted, accepted])  # delivered twice
        [first] = await eventually(lambda: _invoices(db, 1))
        assert first["lines"][0]["period_key"] == "2026-03"
        clock.now = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)  # a month later: period 2 due
        await eventually(lambda: _invoices(db, 2))
        # 5 h of work in April: 1 h beyond the 4 included, billed at the overage rate
        done = WorkCompleted(
            request_id="req_sub",
            client_id="cli_s",
            provider_id="prv_1",
            terms=terms,
            actual_hours=D(5),
            completed_at=datetime(2026, 4, 12, 15, tzinfo=UTC),
        )
        await publish(settings, [Envelope(done, source=MATCHING_SOURCE)])
        docs = await eventually(lambda: _invoices(db, 3))
        assert docs[2]["lines"][0]["kind"] == "overage"
        assert docs[2]["totals"]["total_net"]["amount"] == "20.00"

    # the service restarts; time has moved on to the third period
    clock.now = datetime(2026, 5, 10, 9, 0, tzinfo=UTC)
    restarted = app_factory(settings)
    async with running(restarted):
        await eventually(lambda: _invoices(db, 4))
        await asyncio.sleep(1.0)  # several scheduler passes: nothing more is billed
        cancel = RequestCancelled(
            request_id="req_sub", client_id="cli_s", cancelled_at=datetime(2026, 5, 20, tzinfo=UTC)
        )
        await publish(settings, [Envelope(cancel, source=MATCHING_SOURCE)])
        await eventually(
            lambda: db[SUBSCRIPTIONS].find_one({"_id": "req_sub", "cancelled_at": {"$ne": None}})
        )
        clock.now = datetime(2026, 8, 1, tzinfo=UTC)  # after cancellation: no more periods
        await eventually(lambda: db[SUBSCRIPTIONS].find_one({"_id": "req_sub", "active": False}))
        await asyncio.sleep(0.5)

    docs = await db[INVOICES].find({}).sort("seq", 1).to_list()
    periods = [d["lines"][0]["period_key"] for d in docs if d["lines"][0]["kind"] != "overage"]
    assert periods == ["2026-03", "2026-04", "2026-05"]
    assert [d["seq"] for d in docs] == [1, 2, 3, 4]
    assert [d["number"] for d in docs][-1] == "DLG-2026-000004"
    sub = await db[SUBSCRIPTIONS].find_one({"_id": "req_sub"})
    assert sorted(sub["billed"]) == ["2026-03", "2026-04", "2026-05"]


async def test_two_instances_number_gaplessly_and_never_exceed_the_cap(
    billing_settings, app_factory, running, auth, make_terms, publish, eventually, dbs
):
    settings = billing_settings()
    db = dbs(settings)
    terms = make_terms(category="home_services", sap_activity="assistance_informatique_domicile")
    n = 24  # 24 x 240 EUR gross = 5 760 EUR of IT assistance: the 3 000 EUR sub-cap binds
    a, b = app_factory(settings), app_factory(settings)
    async with running(a) as http, running(b):
        client = auth(settings, "cli_x", "client")
        r = await http.put("/tax-profile", json={"residence_country": "FR"}, headers=client)
        assert r.status_code == 200
        envs = [
            Envelope(
                WorkCompleted(
                    request_id=f"req_{i:03d}",
                    client_id="cli_x",
                    provider_id="prv_1",
                    terms=terms,
                    actual_hours=D(5),
                    completed_at=datetime(2026, 3, 1, 8, i, tzinfo=UTC),
                ),
                source=MATCHING_SOURCE,
            )
            for i in range(n)
        ]
        await publish(settings, envs)
        docs = await eventually(lambda: _invoices(db, n), timeout=90)

    assert [d["seq"] for d in docs] == list(range(1, n + 1))  # gapless, no duplicate
    assert len({d["number"] for d in docs}) == n
    assert len({d["issued_by"] for d in docs}) == 2  # both instances really issued invoices
    eligible = sum(D(d["totals"]["eligible_amount"]["amount"]) for d in docs)
    assert eligible == D(3000)
    cap = await db[CAPS].find_one({"_id": "cli_x:2026"})
    assert cap["total_cents"] == 300000
    assert cap["sub_caps_cents"]["it_assistance"] == 300000
    assert len(cap["allocations"]) == len([d for d in docs if d["cap_allocation"]["lines"]])
    codes = [d["lines"][0]["decision"]["code"] for d in docs]
    assert codes.count("eligible_partially_capped") <= 1
    assert "not_eligible_cap_reached" in codes
