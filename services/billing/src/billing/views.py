"""What the HTTP API returns: explicit view models, mapped from stored documents.

The API never returns a storage document: bookkeeping fields (`ledger_posted`,
`seq`, `cap_allocation`, claims, the outbox, anything added later) stay in the
store because a view lists what it shows. Money is written with its currency's
minor units ("0.00").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from delego_shared.types import Money
from pydantic import BaseModel, ConfigDict, Field

from .domain.money import fixed


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


def money(d: Mapping[str, Any]) -> Money:
    return fixed(Money(amount=Decimal(str(d["amount"])), currency=str(d["currency"])))


class TaxCreditDecisionView(View):
    code: str = Field(description="eligible, eligible_partially_capped, not_eligible_...")
    eligible_amount: Money
    credit: Money
    reason_fr: str
    reason_en: str
    sub_cap: str | None = None


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


class InterventionView(View):
    on: date
    minutes: int | None
    label_code: str


class InvoiceTotalsView(View):
    total_net: Money
    total_vat: Money
    total_gross: Money
    commission: Money
    provider_payout: Money
    eligible_amount: Money
    tax_credit: Money
    credit_advanced: Money = Field(description="tax credit deducted now (avance immédiate)")
    payable_now: Money = Field(description="what the client pays now")


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


class CreditNoteTotalsView(View):
    total_net: Money
    total_vat: Money
    total_gross: Money
    commission: Money
    provider_payout: Money
    eligible_amount: Money
    tax_credit: Money
    credit_advanced_reversed: Money
    refundable_now: Money = Field(description="what goes back to the client")


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


class PayoutView(View):
    document_kind: Literal["invoice", "credit_note"]
    document_id: str
    number: str
    issued_at: datetime
    payout: Money = Field(description="negative for a credit note")


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


# --- from stored documents ---------------------------------------------------------


def _line(d: Mapping[str, Any]) -> LineView:
    dec = d["decision"]
    return LineView(
        line_no=int(d["line_no"]),
        kind=str(d["kind"]),
        label_code=str(d["label_code"]),
        quantity=Decimal(d["quantity"]),
        unit_price=money(d["unit_price"]),
        net=money(d["net"]),
        vat_rate=Decimal(d["vat_rate"]),
        vat=money(d["vat"]),
        gross=money(d["gross"]),
        commission=money(d["commission"]),
        payout=money(d["payout"]),
        period_key=d.get("period_key"),
        decision=TaxCreditDecisionView(
            code=str(dec["code"]),
            eligible_amount=money(dec["eligible_amount"]),
            credit=money(dec["credit"]),
            reason_fr=str(dec["reason_fr"]),
            reason_en=str(dec["reason_en"]),
            sub_cap=dec.get("sub_cap"),
        ),
    )


def _interventions(items: Any) -> list[InterventionView]:
    return [
        InterventionView(
            on=date.fromisoformat(iv["on"]), minutes=iv.get("minutes"), label_code=iv["label_code"]
        )
        for iv in items or []
    ]


def _totals(t: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Money]:
    return {k: money(t[k]) for k in keys}


_COMMON = (
    "total_net",
    "total_vat",
    "total_gross",
    "commission",
    "provider_payout",
    "eligible_amount",
    "tax_credit",
)


def invoice_view(doc: Mapping[str, Any]) -> InvoiceView:
    return InvoiceView(
        id=str(doc["_id"]),
        number=str(doc["number"]),
        client_id=str(doc["client_id"]),
        request_id=str(doc["request_id"]),
        provider_id=str(doc["provider_id"]),
        provider_name=str(doc["provider_name"]),
        provider_sap_number=doc.get("provider_sap_number"),
        issued_at=doc["issued_at"],
        tax_year=int(doc["tax_year"]),
        avance_immediate=bool(doc["avance_immediate"]),
        currency=str(doc["currency"]),
        lines=[_line(ln) for ln in doc["lines"]],
        totals=InvoiceTotalsView(
            **_totals(doc["totals"], (*_COMMON, "credit_advanced", "payable_now"))
        ),
        interventions=_interventions(doc.get("interventions")),
        credited_lines=sorted(int(n) for n in doc.get("credited_lines", [])),
    )


def credit_note_view(doc: Mapping[str, Any]) -> CreditNoteView:
    return CreditNoteView(
        id=str(doc["_id"]),
        number=str(doc["number"]),
        invoice_id=str(doc["invoice_id"]),
        invoice_number=str(doc["invoice_number"]),
        client_id=str(doc["client_id"]),
        provider_id=str(doc["provider_id"]),
        issued_at=doc["issued_at"],
        tax_year=int(doc["tax_year"]),
        avance_immediate=bool(doc["avance_immediate"]),
        reason_code=str(doc["reason_code"]),
        currency=str(doc["currency"]),
        line_nos=[int(n) for n in doc["line_nos"]],
        lines=[_line(ln) for ln in doc["lines"]],
        totals=CreditNoteTotalsView(
            **_totals(doc["totals"], (*_COMMON, "credit_advanced_reversed", "refundable_now"))
        ),
    )


def ledger_entry_view(doc: Mapping[str, Any]) -> LedgerEntryView:
    return LedgerEntryView(
        id=str(doc["_id"]),
        document_id=str(doc["document_id"]),
        document_number=str(doc["document_number"]),
        document_kind=str(doc["document_kind"]),
        occurred_at=doc["occurred_at"],
        client_id=str(doc["client_id"]),
        provider_id=str(doc["provider_id"]),
        postings=[
            PostingView(
                account=str(p["account"]),
                amount=money(p).amount,
                currency=str(p["currency"]),
            )
            for p in doc["postings"]
        ],
    )


def certificate_view(doc: Mapping[str, Any]) -> CertificateView:
    return CertificateView(
        id=str(doc["_id"]),
        client_id=str(doc["client_id"]),
        provider_id=str(doc["provider_id"]),
        provider_name=str(doc["provider_name"]),
        provider_sap_number=str(doc["provider_sap_number"]),
        year=int(doc["year"]),
        currency=str(doc["currency"]),
        amount_paid=money(doc["amount_paid"]),
        eligible_amount=money(doc["eligible_amount"]),
        tax_credit=money(doc["tax_credit"]),
        credit_advanced=money(doc["credit_advanced"]),
        interventions=_interventions(doc.get("interventions")),
        total_minutes=int(doc["total_minutes"]),
        invoice_numbers=[str(n) for n in doc["invoice_numbers"]],
        credit_note_numbers=[str(n) for n in doc["credit_note_numbers"]],
        issued_at=doc["issued_at"],
    )
