"""What the HTTP API returns: explicit view models, built from the domain objects
that `store.py` maps the documents to (the mapping of a document is written once).

The API never returns a storage document: bookkeeping fields (`ledger_posted`,
`seq`, `cap_allocation`, claims, the outbox, anything added later) stay in the
store because a view lists what it shows. Money is written with its currency's
minor units ("0.00").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Self

from delego_shared.types import Money
from pydantic import BaseModel, ConfigDict, Field

from .domain.certificate import TaxCertificate
from .domain.invoice import BilledLine, CreditNote, Intervention, Invoice
from .domain.ledger import JournalEntry
from .domain.money import fixed, with_minor_units
from .domain.tax_credit import LineDecision


class View(BaseModel):
    model_config = ConfigDict(frozen=True)

    def shown(self) -> Self:
        """This view with every amount written with its currency's minor units."""
        out: Self = with_minor_units(self)
        return out


class TaxCreditDecisionView(View):
    code: str = Field(description="eligible, eligible_partially_capped, not_eligible_...")
    eligible_amount: Money
    credit: Money
    reason_fr: str
    reason_en: str
    sub_cap: str | None = None

    @classmethod
    def of(cls, decision: LineDecision) -> TaxCreditDecisionView:
        return cls(
            code=decision.code.value,
            eligible_amount=decision.eligible_amount,
            credit=decision.credit,
            reason_fr=decision.reason_fr,
            reason_en=decision.reason_en,
            sub_cap=decision.sub_cap,
        )


class LineView(View):
    line_no: int
    kind: str = Field(description="service | package | per_unit | subscription_period | overage")
    label_code: str
    quantity: Decimal
    unit_price: Money
    net: Money
    vat_rate: Decimal
    vat: Money
    gross: Money
    commission: Money
    payout: Money = Field(description="what the provider receives: net - commission")
    period_key: str | None = None
    decision: TaxCreditDecisionView

    @classmethod
    def of(cls, line: BilledLine) -> LineView:
        return cls(
            line_no=line.line_no,
            kind=line.kind,
            label_code=line.label_code,
            quantity=line.quantity,
            unit_price=line.unit_price,
            net=line.net,
            vat_rate=line.vat_rate,
            vat=line.vat,
            gross=line.gross,
            commission=line.commission,
            payout=line.payout,
            period_key=line.period_key,
            decision=TaxCreditDecisionView.of(line.decision),
        )


class InterventionView(View):
    on: date
    minutes: int | None
    label_code: str

    @classmethod
    def of(cls, intervention: Intervention) -> InterventionView:
        return cls(
            on=intervention.on, minutes=intervention.minutes, label_code=intervention.label_code
        )


class _TotalsView(View):
    """The totals invoices and credit notes share (`_Totals.totals()`), first in both."""

    total_net: Money
    total_vat: Money
    total_gross: Money
    commission: Money
    provider_payout: Money
    eligible_amount: Money
    tax_credit: Money


def _issued(document: Invoice | CreditNote) -> dict[str, Any]:
    """The fields invoices and credit notes both show (each view orders its own)."""
    return {
        "number": document.number,
        "client_id": document.client_id,
        "provider_id": document.provider_id,
        "issued_at": document.issued_at,
        "tax_year": document.tax_year,
        "avance_immediate": document.avance_immediate,
        "currency": document.currency,
        "lines": [LineView.of(ln) for ln in document.lines],
    }


class InvoiceTotalsView(_TotalsView):
    credit_advanced: Money = Field(description="tax credit deducted now (avance immédiate)")
    payable_now: Money = Field(description="what the client pays now")

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceTotalsView:
        return cls(
            **invoice.totals(),
            credit_advanced=invoice.credit_advanced,
            payable_now=invoice.payable_now,
        )


class InvoiceView(View):
    id: str
    number: str = Field(examples=["DLG-2026-000123"])
    client_id: str
    request_id: str
    provider_id: str
    provider_name: str
    provider_sap_number: str | None
    issued_at: datetime
    tax_year: int
    avance_immediate: bool
    currency: str
    lines: list[LineView]
    totals: InvoiceTotalsView
    interventions: list[InterventionView]
    credited_lines: list[int] = Field(description="lines credited by credit notes")

    @classmethod
    def of(cls, invoice: Invoice, credited_lines: Iterable[int] = ()) -> InvoiceView:
        return cls(
            **_issued(invoice),
            id=invoice.invoice_id,
            request_id=invoice.request_id,
            provider_name=invoice.provider_name,
            provider_sap_number=invoice.provider_sap_number,
            totals=InvoiceTotalsView.of(invoice),
            interventions=[InterventionView.of(iv) for iv in invoice.interventions],
            credited_lines=sorted(credited_lines),
        ).shown()


class CreditNoteTotalsView(_TotalsView):
    credit_advanced_reversed: Money
    refundable_now: Money = Field(description="what goes back to the client")

    @classmethod
    def of(cls, credit_note: CreditNote) -> CreditNoteTotalsView:
        return cls(
            **credit_note.totals(),
            credit_advanced_reversed=credit_note.credit_advanced_reversed,
            refundable_now=credit_note.refundable_now,
        )


class CreditNoteView(View):
    id: str
    number: str = Field(examples=["DLG-AV-2026-000007"])
    invoice_id: str
    invoice_number: str
    client_id: str
    provider_id: str
    issued_at: datetime
    tax_year: int = Field(description="the invoice's tax year (its caps are given back)")
    avance_immediate: bool
    reason_code: str
    currency: str
    line_nos: list[int]
    lines: list[LineView]
    totals: CreditNoteTotalsView

    @classmethod
    def of(cls, credit_note: CreditNote) -> CreditNoteView:
        return cls(
            **_issued(credit_note),
            id=credit_note.credit_note_id,
            invoice_id=credit_note.invoice_id,
            invoice_number=credit_note.invoice_number,
            reason_code=credit_note.reason_code,
            line_nos=[ln.line_no for ln in credit_note.lines],
            totals=CreditNoteTotalsView.of(credit_note),
        ).shown()


class PayoutView(View):
    document_kind: Literal["invoice", "credit_note"]
    document_id: str
    number: str
    issued_at: datetime
    payout: Money = Field(description="negative for a credit note")

    @classmethod
    def of(cls, document: Invoice | CreditNote) -> PayoutView:
        """A credit note's payout is the provider's payout on the credited lines, taken back."""
        kind: Literal["invoice", "credit_note"] = "invoice"
        if isinstance(document, Invoice):
            doc_id, payout = document.invoice_id, document.provider_payout
        else:
            kind, doc_id, payout = "credit_note", document.credit_note_id, -document.provider_payout
        return cls(
            document_kind=kind,
            document_id=doc_id,
            number=document.number,
            issued_at=document.issued_at,
            payout=payout,
        ).shown()


class PayoutsView(View):
    provider_id: str
    balance: list[Money] = Field(description="owed to the provider, per currency")
    payouts: list[PayoutView]


class BalanceView(View):
    account: str
    amount: Decimal
    currency: str


class BalancesView(View):
    convention: str
    balances: list[BalanceView]


class PostingView(View):
    account: str
    amount: Decimal = Field(description="debit positive, credit negative")
    currency: str


class LedgerEntryView(View):
    id: str
    document_id: str
    document_number: str
    document_kind: str
    occurred_at: datetime
    client_id: str
    provider_id: str
    postings: list[PostingView]

    @classmethod
    def of(cls, entry: JournalEntry, *, client_id: str, provider_id: str) -> LedgerEntryView:
        return cls(
            id=entry.entry_id,
            document_id=entry.document_id,
            document_number=entry.document_number,
            document_kind=entry.document_kind,
            occurred_at=entry.occurred_at,
            client_id=client_id,
            provider_id=provider_id,
            postings=[
                PostingView(
                    account=p.account.value,
                    amount=fixed(p.amount).amount,
                    currency=p.amount.currency,
                )
                for p in entry.postings
            ],
        )


class TaxProfileView(View):
    residence_country: str
    dependents: int
    members_over_65: int
    disabled_member: bool
    avance_immediate: bool
    declared: bool = Field(description="false: the default profile applies")


class CertificateView(View):
    id: str
    client_id: str
    provider_id: str
    provider_name: str
    provider_sap_number: str
    year: int
    currency: str
    amount_paid: Money
    eligible_amount: Money
    tax_credit: Money
    credit_advanced: Money
    interventions: list[InterventionView]
    total_minutes: int
    invoice_numbers: list[str]
    credit_note_numbers: list[str]
    issued_at: datetime

    @classmethod
    def of(cls, certificate: TaxCertificate) -> CertificateView:
        return cls(
            id=certificate.certificate_id,
            client_id=certificate.client_id,
            provider_id=certificate.provider_id,
            provider_name=certificate.provider_name,
            provider_sap_number=certificate.provider_sap_number,
            year=certificate.year,
            currency=certificate.currency,
            amount_paid=certificate.amount_paid,
            eligible_amount=certificate.eligible_amount,
            tax_credit=certificate.tax_credit,
            credit_advanced=certificate.credit_advanced,
            interventions=[InterventionView.of(iv) for iv in certificate.interventions],
            total_minutes=certificate.total_minutes,
            invoice_numbers=list(certificate.invoice_numbers),
            credit_note_numbers=list(certificate.credit_note_numbers),
            issued_at=certificate.issued_at,
        ).shown()
