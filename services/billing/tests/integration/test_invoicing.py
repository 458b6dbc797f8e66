"""WorkCompleted -> InvoiceIssued with ledger entries; replays; credit notes; certificates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from billing.store import CAPS, INVOICES, LEDGER
from delego_shared.events import Envelope
from delego_shared.events.matching import MatchAccepted, RequestCancelled, WorkCompleted

pytestmark = pytest.mark.integration

MATCHING_SOURCE = "/delego/matching"

D = Decimal


def work(terms, request_id="req_1", client_id="cli_1", hours="2.5", at=None):
    return WorkCompleted(
        request_id=request_id,
        client_id=client_id,
        provider_id=terms.provider_id,
        terms=terms,
        actual_hours=D(hours),
        completed_at=at or datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
    )


async def test_work_completed_issues_invoice_with_ledger_entries(
    billing_settings, app_factory, running, auth, make_terms, publish, billing_events, eventually
):
    settings = billing_settings()
    app = app_factory(settings)
    terms = make_terms()
    env = Envelope(work(terms), source=MATCHING_SOURCE)
    async with running(app) as http:
        await publish(settings, [env])
        events = await billing_events(settings, expect=1)
        [(ce_type, body)] = events
        assert ce_type == "delego.billing.InvoiceIssued.v1"
        # 2.5 h at 40 EUR/h = 100.00 net; soutien scolaire by a declared provider:
        # FR VAT 10 % (CGI art. 279 i) = 10.00; gross 110.00
        assert body["number"] == "DLG-2026-000001"
        assert body["client_id"] == "cli_1"
        assert body["total_net"] == {"amount": "100.00", "currency": "EUR"}
        assert body["total_gross"] == {"amount": "110.00", "currency": "EUR"}
        # tutoring commission 12 % of the net; payout = net - commission
        assert body["commission"]["amount"] == "12.00"
        assert body["provider_payout"]["amount"] == "88.00"
        [line] = body["lines"]
        assert line["tax_credit"]["code"] == "eligible"
        assert line["tax_credit"]["credit"]["amount"] == "55.00"
        assert "soutien scolaire" in line["tax_credit"]["reason_fr"]
        assert "Camille" not in str(body)  # no names on the topic

        invoice_id = body["invoice_id"]
        operator = auth(settings, "op_1", "operator")
        entries = await eventually(
            lambda: _json(
                http.get("/ledger/entries", params={"document_id": invoice_id}, headers=operator)
            )
        )
        [entry] = entries
        amounts = {p["account"]: D(p["amount"]) for p in entry["postings"]}
        assert amounts == {
            "client_receivable": D("110.00"),
            "vat_payable": D("-10.00"),
            "platform_commission_revenue": D("-12.00"),
            "provider_payable": D("-88.00"),
        }
        assert sum(amounts.values()) == 0
        balances = (await http.get("/ledger/balances", headers=operator)).json()["balances"]
        assert sum(D(b["amount"]) for b in balances) == 0

        client = auth(settings, "cli_1", "client")
        got = await http.get(f"/invoices/{invoice_id}", headers=client)
        assert got.status_code == 200
        assert got.json()["number"] == "DLG-2026-000001"
        page = await http.get(f"/invoices/{invoice_id}/html", headers=client)
        assert page.status_code == 200
        assert "DLG-2026-000001" in page.text
        assert "soutien scolaire" in page.text
        stranger = await http.get(
            f"/invoices/{invoice_id}", headers=auth(settings, "cli_2", "client")
        )
        assert stranger.status_code == 404
        assert stranger.headers["content-type"].startswith("application/problem+json")
        mine = await http.get("/invoices", headers=auth(settings, "cli_2", "client"))
        assert mine.json() == []
        payouts = (await http.get("/payouts", headers=auth(settings, "prv_1", "provider"))).json()
        assert payouts["balance"] == [{"amount": "88.00", "currency": "EUR"}]
        assert payouts["payouts"][0]["payout"]["amount"] == "88.00"
        forbidden = await http.get("/ledger/balances", headers=client)
        assert forbidden.status_code == 403


async def _json(request):
    r = await request
    return r.json() if r.status_code == 200 else None


async def test_replayed_event_bills_nothing_twice(
    billing_settings, app_factory, running, make_terms, publish, billing_events, eventually, dbs
):
    settings = billing_settings()
    db = dbs(settings)
    terms = make_terms()
    event = work(terms, request_id="req_replay")
    env = Envelope(event, source=MATCHING_SOURCE)
    same_work_new_id = Envelope(event, source=MATCHING_SOURCE)  # re-emitted by matching
    package = make_terms(
        pricing={"model": "package", "price": {"amount": "650", "currency": "EUR"}}
    )
    accepted = Envelope(
        MatchAccepted(
            request_id="req_pkg",
            client_id="cli_1",
            attempt=1,
            provider_id="prv_1",
            terms=package,
            estimated_price=package.pricing.price,
            promised_at=datetime(2026, 3, 20, tzinfo=UTC),
            promised_local="2026-03-20T01:00:00+01:00",
            client_zone="Europe/Paris",
            accepted_at=datetime(2026, 3, 10, 8, 0, tzinfo=UTC),
        ),
        source=MATCHING_SOURCE,
    )
    app = app_factory(settings)
    async with running(app):
        store = app.state.store
        await publish(settings, [env, env, same_work_new_id, accepted, accepted])
        await eventually(lambda: _count(store, INVOICES, 2))
    # a restarted instance receives the same events again, and has even lost its inbox
    # (as after a crash between the effect and the inbox mark): the effects are
    # idempotent by themselves (deterministic invoice ids + unique indexes)
    await db["processed_events"].delete_many({})
    again = app_factory(settings)
    sentinels = [
        Envelope(
            RequestCancelled(request_id=r, client_id="cli_1", cancelled_at=datetime.now(UTC)),
            source=MATCHING_SOURCE,
        )
        for r in ("req_replay", "req_pkg")  # same keys: consumed after the replays
    ]
    async with running(again):
        await publish(settings, [env, accepted, *sentinels])
        ids = [env.id, accepted.id, *(s.id for s in sentinels)]
        await eventually(lambda: _inbox_has(again.state.store, ids))
        # what is on the topic: exactly one InvoiceIssued per invoice (read until idle)
        await eventually(lambda: _no_pending(db))
        events = await billing_events(settings, timeout=8.0)
    assert sorted(t for t, _ in events) == ["delego.billing.InvoiceIssued.v1"] * 2
    assert sorted(b["number"] for _, b in events) == ["DLG-2026-000001", "DLG-2026-000002"]
    assert await db[INVOICES].count_documents({}) == 2
    assert await db[LEDGER].count_documents({}) == 2


async def _no_pending(db):
    return await db[INVOICES].count_documents({"_outbox_n": {"$gt": 0}}) == 0


async def _count(store, collection, n):
    return await store.db[collection].count_documents({}) >= n


async def _inbox_has(store, event_ids):
    # the consumer records every applied event id: wait until the re-sent ones went through
    found = await store.db["processed_events"].count_documents(
        {"_id": {"$in": [f"billing:{i}" for i in event_ids]}}
    )
    return found == len(event_ids)


async def test_credit_note_restores_the_cap_and_reverses_the_ledger(
    billing_settings,
    app_factory,
    running,
    auth,
    make_terms,
    publish,
    billing_events,
    eventually,
):
    settings = billing_settings()
    app = app_factory(settings)
    terms = make_terms(sap_activity="petit_bricolage", category="home_services")  # 500 EUR sub-cap
    async with running(app) as http:
        client = auth(settings, "cli_cap", "client")
        r = await http.put(
            "/tax-profile", json={"residence_country": "FR", "dependents": 1}, headers=client
        )
        assert r.status_code == 200
        # 2 h at 40 EUR = 80 net, 88 gross each (10 % VAT): the 6th reaches the 500 sub-cap
        envs = [
            Envelope(
                work(
                    terms,
                    request_id=f"req_c{i}",
                    client_id="cli_cap",
                    hours="2",
                    at=datetime(2026, 3, 1, 10 + i, tzinfo=UTC),
                ),
                source=MATCHING_SOURCE,
            )
            for i in range(6)
        ]
        await publish(settings, envs)
        store = app.state.store
        await eventually(lambda: _count(store, INVOICES, 6))
        cap = await store.cap_state("cli_cap", 2026)
        assert cap.total == D(500) and cap.used("small_diy") == D(500)
        invoices = (await http.get("/invoices", headers=client)).json()
        eligible = sum(D(i["totals"]["eligible_amount"]["amount"]) for i in invoices)
        assert eligible == D(500)
        full = next(i for i in invoices if i["totals"]["eligible_amount"]["amount"] == "88.00")

        operator = auth(settings, "op_1", "operator")
        cn = await http.post(
            f"/invoices/{full['id']}/credit-notes",
            json={"reason_code": "service_not_rendered"},
            headers=operator,
        )
        assert cn.status_code == 201, cn.text
        note = cn.json()
        assert note["number"] == "DLG-AV-2026-000001"
        assert note["totals"]["total_gross"]["amount"] == "88.00"
        cap = await store.cap_state("cli_cap", 2026)
        assert cap.total == D(412) and cap.used("small_diy") == D(412)
        twice = await http.post(
            f"/invoices/{full['id']}/credit-notes",
            json={"reason_code": "service_not_rendered"},
            headers=operator,
        )
        assert twice.status_code == 409
        not_allowed = await http.post(
            f"/invoices/{full['id']}/credit-notes", json={"reason_code": "x"}, headers=client
        )
        assert not_allowed.status_code == 403
        page = await http.get(f"/credit-notes/{note['id']}/html", headers=client)
        assert page.status_code == 200 and "DLG-AV-2026-000001" in page.text

        entries = (
            await http.get("/ledger/entries", params={"document_id": note["id"]}, headers=operator)
        ).json()
        [entry] = entries
        amounts = {p["account"]: D(p["amount"]) for p in entry["postings"]}
        assert amounts["client_receivable"] == D("-88.00")
        assert sum(amounts.values()) == 0

        # the restored room is used by the next invoice
        await publish(
            settings,
            [
                Envelope(
                    work(terms, request_id="req_c9", client_id="cli_cap", hours="2"),
                    source=MATCHING_SOURCE,
                )
            ],
        )
        await eventually(lambda: _count(store, INVOICES, 7))
        cap = await store.cap_state("cli_cap", 2026)
        assert cap.total == D(500)
        assert await store.db[CAPS].count_documents({}) == 1
        events = await billing_events(settings, expect=8)
        types = [t for t, _ in events]
        assert types.count("delego.billing.CreditNoteIssued.v1") == 1
        assert types.count("delego.billing.InvoiceIssued.v1") == 7
        # per key, a credit note never overtakes its invoice (one document feeds both)
        of_invoice = [t for t, body in events if body.get("invoice_id") == full["id"]]
        assert of_invoice == [
            "delego.billing.InvoiceIssued.v1",
            "delego.billing.CreditNoteIssued.v1",
        ]


async def test_tax_certificates_on_request_and_on_first_of_january(
    billing_settings,
    app_factory,
    running,
    auth,
    make_terms,
    publish,
    billing_events,
    eventually,
    clock,
):
    settings = billing_settings()
    terms = make_terms()
    remote = make_terms(provider_id="prv_2", delivery_mode="remote", provider_sap_number=None)
    app = app_factory(settings)
    async with running(app) as http:
        await publish(
            settings,
            [
                Envelope(
                    work(terms, request_id="req_t1", client_id="cli_a"), source=MATCHING_SOURCE
                ),
                Envelope(
                    work(terms, request_id="req_t2", client_id="cli_b"), source=MATCHING_SOURCE
                ),
                Envelope(
                    work(remote, request_id="req_t3", client_id="cli_a"), source=MATCHING_SOURCE
                ),
            ],
        )
        await eventually(lambda: _count(app.state.store, INVOICES, 3))
        early = await http.post("/tax-certificates/2026", headers=auth(settings, "cli_a", "client"))
        assert early.status_code == 422  # the year is not over

    clock.now = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)  # 1 January: the scheduler certifies 2026
    nye = app_factory(settings)
    async with running(nye) as http:
        a = auth(settings, "cli_a", "client")
        certs = await eventually(lambda: _json(http.get("/tax-certificates/2026", headers=a)))
        [cert] = certs  # prv_2 has no SAP declaration: no certificate for it
        assert cert["provider_id"] == "prv_1"
        assert cert["provider_sap_number"] == "SAP123456789"
        assert cert["amount_paid"] == {"amount": "110.00", "currency": "EUR"}
        assert cert["eligible_amount"]["amount"] == "110.00"
        assert cert["interventions"][0]["minutes"] == 150
        again = await http.post("/tax-certificates/2026", headers=a)
        assert again.status_code == 200
        assert [c["id"] for c in again.json()] == [cert["id"]]
        events = await billing_events(settings, expect=5)
        certified = sorted(
            b["client_id"] for t, b in events if t.endswith("TaxCertificateIssued.v1")
        )
        assert certified == ["cli_a", "cli_b"]
