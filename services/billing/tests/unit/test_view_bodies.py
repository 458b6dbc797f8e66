"""The API's bodies, to the byte: invoices, credit notes, payouts, journal entries and
certificates as the views build them from what the store reads back. The literals are
the bodies the API returned when the views still read the stored documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from billing.domain.invoice import Intervention
from billing.domain.pricing import price_work_completed
from billing.domain.tax_credit import ClientTaxProfile
from billing.service import BillingService
from billing.store import (
    IssuedInvoice,
    certificate_from_doc,
    credit_note_from_doc,
    journal_from_doc,
)
from billing.views import CertificateView, CreditNoteView, InvoiceView, LedgerEntryView, PayoutView

from .fake_store import FakeBillingStore

AT = datetime(2025, 6, 2, 9, 30, 0, 123000, tzinfo=UTC)


async def issued(rules: Any, make_terms: Any) -> tuple[FakeBillingStore, dict[str, str]]:
    """Two invoices of one provider to a client with avance immédiate, a credit note on
    the second and the year's certificate."""
    store = FakeBillingStore()
    service = BillingService(
        store,  # type: ignore[arg-type]
        rules=rules,
        default_country="FR",
        source="/delego/billing",
        instance="t",
    )
    store.profiles["c1"] = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    terms = make_terms()
    ids: dict[str, str] = {}
    for n, hours in ((1, "1.5"), (2, "1")):
        inv, _ = await service.issue_invoice(
            source=f"s{n}",
            client_id="c1",
            request_id=f"r{n}",
            terms=terms,
            priced=price_work_completed(terms, actual_hours=Decimal(hours), units=None),
            issued_at=AT,
            interventions=[Intervention(AT.date(), int(Decimal(hours) * 60), "tutoring")],
        )
        ids[f"inv{n}"] = inv.invoice_id
    cn, _ = await service.issue_credit_note(
        ids["inv2"], reason_code="service_not_rendered", line_nos=None, issued_at=AT
    )
    ids["cn"] = cn.credit_note_id
    await service.issue_certificates("c1", 2025, datetime(2026, 1, 2, tzinfo=UTC))
    [ids["cert"]] = store.certs
    return store, ids


LINE = {
    "line_no": 1,
    "kind": "service",
    "label_code": "hourly:tutoring",
    "quantity": "1.0000",
    "unit_price": {"amount": "40.00", "currency": "EUR"},
    "net": {"amount": "40.00", "currency": "EUR"},
    "vat_rate": "0.10",
    "vat": {"amount": "4.00", "currency": "EUR"},
    "gross": {"amount": "44.00", "currency": "EUR"},
    "commission": {"amount": "4.80", "currency": "EUR"},
    "payout": {"amount": "35.20", "currency": "EUR"},
    "period_key": None,
    "decision": {
        "code": "eligible",
        "eligible_amount": {"amount": "44.00", "currency": "EUR"},
        "credit": {"amount": "22.00", "currency": "EUR"},
        "reason_fr": "éligible : soutien scolaire à domicile, plafond annuel restant 11 890,00 EUR",
        "reason_en": "eligible: home tutoring, remaining annual cap 11,890.00 EUR",
        "sub_cap": None,
    },
}
"""The one line of the second invoice, credited whole by the credit note."""

TOTALS = {
    "total_net": {"amount": "40.00", "currency": "EUR"},
    "total_vat": {"amount": "4.00", "currency": "EUR"},
    "total_gross": {"amount": "44.00", "currency": "EUR"},
    "commission": {"amount": "4.80", "currency": "EUR"},
    "provider_payout": {"amount": "35.20", "currency": "EUR"},
    "eligible_amount": {"amount": "44.00", "currency": "EUR"},
    "tax_credit": {"amount": "22.00", "currency": "EUR"},
}
"""The totals of that line: the invoice's and the credit note's (first in both)."""

EXPECTED = {
    "invoice": {
        "id": "inv_ad328846aa18b32a335816374511cac1",
        "number": "DLG-2025-000002",
        "client_id": "c1",
        "request_id": "r2",
        "provider_id": "prv_1",
        "provider_name": "Camille Tutrice",
        "provider_sap_number": "SAP123456789",
        "issued_at": "2025-06-02T09:30:00.123000Z",
        "tax_year": 2025,
        "avance_immediate": True,
        "currency": "EUR",
        "lines": [LINE],
        "totals": {
            **TOTALS,
            "credit_advanced": {"amount": "22.00", "currency": "EUR"},
            "payable_now": {"amount": "22.00", "currency": "EUR"},
        },
        "interventions": [{"on": "2025-06-02", "minutes": 60, "label_code": "tutoring"}],
        "credited_lines": [1],
    },
    "credit_note": {
        "id": "cn_87b781fb695b915cdb15bc02a887cb7f",
        "number": "DLG-AV-2025-000001",
        "invoice_id": "inv_ad328846aa18b32a335816374511cac1",
        "invoice_number": "DLG-2025-000002",
        "client_id": "c1",
        "provider_id": "prv_1",
        "issued_at": "2025-06-02T09:30:00.123000Z",
        "tax_year": 2025,
        "avance_immediate": True,
        "reason_code": "service_not_rendered",
        "currency": "EUR",
        "line_nos": [1],
        "lines": [LINE],
        "totals": {
            **TOTALS,
            "credit_advanced_reversed": {"amount": "22.00", "currency": "EUR"},
            "refundable_now": {"amount": "22.00", "currency": "EUR"},
        },
    },
    "payouts": [
        {
            "document_kind": "invoice",
            "document_id": "inv_ad328846aa18b32a335816374511cac1",
            "number": "DLG-2025-000002",
            "issued_at": "2025-06-02T09:30:00.123000Z",
            "payout": {"amount": "35.20", "currency": "EUR"},
        },
        {
            "document_kind": "credit_note",
            "document_id": "cn_87b781fb695b915cdb15bc02a887cb7f",
            "number": "DLG-AV-2025-000001",
            "issued_at": "2025-06-02T09:30:00.123000Z",
            "payout": {"amount": "-35.20", "currency": "EUR"},
        },
    ],
    "ledger": {
        "id": "je:cn_87b781fb695b915cdb15bc02a887cb7f",
        "document_id": "cn_87b781fb695b915cdb15bc02a887cb7f",
        "document_number": "DLG-AV-2025-000001",
        "document_kind": "credit_note",
        "occurred_at": "2025-06-02T09:30:00.123000Z",
        "client_id": "c1",
        "provider_id": "prv_1",
        "postings": [
            {"account": "client_receivable", "amount": "-22.00", "currency": "EUR"},
            {"account": "urssaf_receivable", "amount": "-22.00", "currency": "EUR"},
            {"account": "vat_payable", "amount": "4.00", "currency": "EUR"},
            {"account": "platform_commission_revenue", "amount": "4.80", "currency": "EUR"},
            {"account": "provider_payable", "amount": "35.20", "currency": "EUR"},
        ],
    },
    "certificate": {
        "id": "att:c1:prv_1:2025",
        "client_id": "c1",
        "provider_id": "prv_1",
        "provider_name": "Camille Tutrice",
        "provider_sap_number": "SAP123456789",
        "year": 2025,
        "currency": "EUR",
        "amount_paid": {"amount": "66.00", "currency": "EUR"},
        "eligible_amount": {"amount": "66.00", "currency": "EUR"},
        "tax_credit": {"amount": "33.00", "currency": "EUR"},
        "credit_advanced": {"amount": "33.00", "currency": "EUR"},
        "interventions": [
            {"on": "2025-06-02", "minutes": 90, "label_code": "tutoring"},
            {"on": "2025-06-02", "minutes": 60, "label_code": "tutoring"},
        ],
        "total_minutes": 150,
        "invoice_numbers": ["DLG-2025-000001", "DLG-2025-000002"],
        "credit_note_numbers": ["DLG-AV-2025-000001"],
        "issued_at": "2026-01-02T00:00:00Z",
    },
}


def exactly(name: str) -> str:
    """The expected body as the API writes it (pydantic's compact JSON, UTF-8)."""
    return json.dumps(EXPECTED[name], ensure_ascii=False, separators=(",", ":"))


@pytest.fixture
async def stored(rules: Any, make_terms: Any) -> tuple[FakeBillingStore, dict[str, str]]:
    return await issued(rules, make_terms)


async def test_an_invoice_body_is_unchanged(stored):
    store, ids = stored
    found = IssuedInvoice.from_doc(store.docs["invoice"][ids["inv2"]])
    view = InvoiceView.of(found.invoice, found.credited_lines)
    assert view.model_dump_json() == exactly("invoice")


async def test_a_credit_note_body_is_unchanged(stored):
    store, ids = stored
    view = CreditNoteView.of(credit_note_from_doc(store.docs["credit_note"][ids["cn"]]))
    assert view.model_dump_json() == exactly("credit_note")


async def test_payout_rows_are_unchanged(stored):
    store, ids = stored
    invoice = IssuedInvoice.from_doc(store.docs["invoice"][ids["inv2"]]).invoice
    note = credit_note_from_doc(store.docs["credit_note"][ids["cn"]])
    rows = [json.loads(PayoutView.of(d).model_dump_json()) for d in (invoice, note)]
    assert rows == EXPECTED["payouts"]
    assert rows[1]["payout"]["amount"].startswith("-")


async def test_a_journal_entry_body_is_unchanged(stored):
    store, ids = stored
    posted = journal_from_doc(store.ledger["je:" + ids["cn"]])
    view = LedgerEntryView.of(
        posted.entry, client_id=posted.client_id, provider_id=posted.provider_id
    )
    assert view.model_dump_json() == exactly("ledger")


async def test_a_certificate_body_is_unchanged(stored):
    store, ids = stored
    view = CertificateView.of(certificate_from_doc(store.certs[ids["cert"]]))
    assert view.model_dump_json() == exactly("certificate")
