"""The HTTP API returns view models: every route documents its response body, and a
stored document's bookkeeping never reaches a response."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from billing.api import api_router
from billing.domain.pricing import price_work_completed
from billing.service import BillingService
from billing.store import IssuedInvoice, credit_note_from_doc
from billing.views import CreditNoteView, InvoiceView
from delego_shared.events.common import DeliveryMode
from fastapi import FastAPI

from .fake_store import FakeBillingStore

AT = datetime(2026, 6, 1, 9, tzinfo=UTC)


def _service(rules) -> BillingService:
    return BillingService(
        FakeBillingStore(),  # type: ignore[arg-type]
        rules=rules,
        default_country="FR",
        source="/delego/billing",
        instance="t",
    )


def test_every_route_documents_its_response_body(rules):
    app = FastAPI()
    app.include_router(api_router(_service(rules), lambda: AT))
    spec = app.openapi()
    operations = [
        (path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()
    ]
    assert len(operations) == 14  # 16 with the two health probes of the platform
    for path, method, op in operations:
        code = "201" if op["operationId"].startswith("issue_credit_note") else "200"
        content = op["responses"][code].get("content", {})
        if path.endswith("/html"):
            assert "text/html" in content, (method, path)
            continue
        schema = content["application/json"]["schema"]
        assert schema != {}, (method, path)
        assert "$ref" in schema or "$ref" in schema.get("items", {}), (method, path, schema)


async def test_an_invoice_shows_its_view_and_nothing_of_its_storage(rules, make_terms):
    service = _service(rules)
    terms = make_terms(delivery_mode=DeliveryMode.REMOTE, sap_activity=None)
    inv, _ = await service.issue_invoice(
        source="s",
        client_id="c1",
        request_id="r1",
        terms=terms,
        priced=price_work_completed(terms, actual_hours=Decimal(1), units=None),
        issued_at=AT,
    )
    doc = await service.store.document("invoice", inv.invoice_id)
    doc["some_field_added_later"] = "internal"
    found = IssuedInvoice.from_doc(doc)
    body = json.loads(InvoiceView.of(found.invoice, found.credited_lines).model_dump_json())
    assert set(body) == set(InvoiceView.model_fields)
    for internal in (
        "ledger_posted",
        "seq",
        "cap_allocation",
        "credit_claims",
        "source",
        "issued_by",
        "_outbox",
        "some_field_added_later",
        "_id",
    ):
        assert internal not in body
    assert body["id"] == inv.invoice_id
    assert body["totals"]["tax_credit"] == {"amount": "0.00", "currency": "EUR"}
    cn, _ = await service.issue_credit_note(
        inv.invoice_id, reason_code="x", line_nos=None, issued_at=AT
    )
    stored = await service.store.document("credit_note", cn.credit_note_id)
    note = CreditNoteView.of(credit_note_from_doc(stored))
    assert note.totals.refundable_now == inv.payable_now
    assert "cap_reversal" not in note.model_dump()
