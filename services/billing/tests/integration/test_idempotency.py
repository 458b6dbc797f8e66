"""`Idempotency-Key` on POST /invoices/{id}/credit-notes, through the HTTP API on the real store."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from billing.store import CREDIT_NOTES, INVOICES
from delego_shared.events import Envelope
from delego_shared.events.matching import WorkCompleted
from delego_shared.http.idempotency import COLLECTION, LEASE
from delego_shared.types import utcnow

from .conftest import MATCHING_SOURCE

pytestmark = pytest.mark.integration


async def test_a_credit_note_with_a_key_is_issued_once_also_after_a_crash(
    billing_settings, app_factory, running, auth, make_terms, publish, eventually
):
    settings = billing_settings()
    app = app_factory(settings)
    terms = make_terms()
    done = WorkCompleted(
        request_id="req_idem",
        client_id="cli_idem",
        provider_id=terms.provider_id,
        terms=terms,
        actual_hours=Decimal("2"),
        completed_at=datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
    )
    async with running(app) as http:
        await publish(settings, [Envelope(done, source=MATCHING_SOURCE)])
        store = app.state.store

        async def invoiced() -> bool:
            return await store.db[INVOICES].count_documents({}) == 1

        await eventually(invoiced)
        [invoice] = (await http.get("/invoices", headers=auth(settings, "op_1", "operator"))).json()
        url = f"/invoices/{invoice['id']}/credit-notes"
        headers = {**auth(settings, "op_1", "operator"), "Idempotency-Key": "cn-1"}
        body = {"reason_code": "service_not_rendered", "line_nos": [1]}

        first = await http.post(url, json=body, headers=headers)
        again = await http.post(url, json=body, headers=headers)
        assert first.status_code == again.status_code == 201, again.text
        assert again.json() == first.json()
        other = await http.post(url, json={**body, "reason_code": "goodwill"}, headers=headers)
        assert other.status_code == 422
        assert other.json()["type"].endswith("/idempotency-key-reused")

        # the process died between the command and the record: the command runs again
        # and returns the same credit note (its id derives from the invoice and lines)
        res = await app.state.runtime.mongo.db[COLLECTION].update_one(
            {"_id": "billing:operator:op_1:cn-1"},
            {
                "$set": {"state": "pending", "claimed_at": utcnow() - 2 * LEASE},
                "$unset": {"response": ""},
            },
        )
        assert res.modified_count == 1
        retry = await http.post(url, json=body, headers=headers)
        assert retry.status_code == 201, retry.text
        assert retry.json()["id"] == first.json()["id"]
        assert await store.db[CREDIT_NOTES].count_documents({}) == 1
