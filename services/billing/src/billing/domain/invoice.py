"""Invoices and credit notes: immutable values built once, never edited.

An invoice line carries its net (rounded once), VAT (rounded once, on the
net), gross = net + VAT, the platform commission (on the net) and the
tax-credit decision. Invoice totals are exact sums of the lines.

Amounts on a credit note are positive magnitudes of what is credited; the
ledger (`ledger.journal_for_credit_note`) posts them with opposite signs.
A credit note reverses whole invoice lines (all by default), including their
tax-credit cap consumption (`CreditNote.cap_reversal`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from delego_shared.events.billing import CreditNoteIssued, InvoiceIssued, InvoiceLine
from delego_shared.events.common import AgreedTerms
from delego_shared.types import Money

from .errors import BillingError
from .numbering import ENTITY_ZONE, document_year, parse_number
from .pricing import PricedLine
from .rules import BillingRules
from .tax_credit import (
    CapAllocation,
    CapConsumption,
    ClientTaxProfile,
    LineDecision,
    LineInput,
    decide_invoice_lines,
)
from .vat import sap_activity_for_vat, vat_for_line


def _sum(items: Iterable[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for m in items:
        total = total + m
    return total


@dataclass(frozen=True)
class Intervention:
    """One piece of work for the annual certificate: when, how long, what."""

    on: date
    minutes: int | None
    label_code: str


@dataclass(frozen=True)
class BilledLine:
    line_no: int
    kind: str
    label_code: str
    quantity: Decimal
    unit_price: Money
    net: Money
    vat_rate: Decimal
    vat: Money
    gross: Money
    commission: Money
    decision: LineDecision
    period_key: str | None = None

    @property
    def payout(self) -> Money:
        """What the provider receives for this line: net - commission."""
        return self.net - self.commission

    def to_contract(self) -> InvoiceLine:
        return InvoiceLine(
            line_no=self.line_no,
            kind=self.kind,
            label_code=self.label_code,
            quantity=self.quantity,
            unit_price=self.unit_price,
            net=self.net,
            vat_rate=self.vat_rate,
            vat=self.vat,
            gross=self.gross,
            commission=self.commission,
            tax_credit=self.decision.to_contract(),
        )


@dataclass(frozen=True)
class _Totals:
    currency: str
    lines: tuple[BilledLine, ...]

    @property
    def total_net(self) -> Money:
        return _sum((ln.net for ln in self.lines), self.currency)

    @property
    def total_vat(self) -> Money:
        return _sum((ln.vat for ln in self.lines), self.currency)

    @property
    def total_gross(self) -> Money:
        return _sum((ln.gross for ln in self.lines), self.currency)

    @property
    def commission(self) -> Money:
        return _sum((ln.commission for ln in self.lines), self.currency)

    @property
    def provider_payout(self) -> Money:
        return _sum((ln.payout for ln in self.lines), self.currency)

    @property
    def eligible_amount(self) -> Money:
        return _sum((ln.decision.eligible_amount for ln in self.lines), self.currency)

    @property
    def tax_credit(self) -> Money:
        return _sum((ln.decision.credit for ln in self.lines), self.currency)

    def totals(self) -> dict[str, Money]:
        """The totals invoices and credit notes share, by name (as stored and shown)."""
        return {
            "total_net": self.total_net,
            "total_vat": self.total_vat,
            "total_gross": self.total_gross,
            "commission": self.commission,
            "provider_payout": self.provider_payout,
            "eligible_amount": self.eligible_amount,
            "tax_credit": self.tax_credit,
        }


@dataclass(frozen=True)
class Invoice(_Totals):
    invoice_id: str
    number: str
    client_id: str
    request_id: str
    provider_id: str
    provider_name: str
    provider_sap_number: str | None
    issued_at: datetime
    tax_year: int
    avance_immediate: bool
    cap_allocation: CapAllocation
    interventions: tuple[Intervention, ...] = ()

    @property
    def credit_advanced(self) -> Money:
        """Tax credit deducted now (avance immédiate), else zero."""
        return self.tax_credit if self.avance_immediate else Money.zero(self.currency)

    @property
    def payable_now(self) -> Money:
        """What the client pays now: total, minus the advanced credit when opted in."""
        return self.total_gross - self.credit_advanced

    def to_event(self) -> Any:
        """The InvoiceIssued contract (shared model)."""
        return InvoiceIssued(
            client_id=self.client_id,
            invoice_id=self.invoice_id,
            number=self.number,
            request_id=self.request_id,
            provider_id=self.provider_id,
            issued_at=self.issued_at,
            currency=self.currency,
            lines=[ln.to_contract() for ln in self.lines],
            total_net=self.total_net,
            total_vat=self.total_vat,
            total_gross=self.total_gross,
            commission=self.commission,
            provider_payout=self.provider_payout,
            tax_credit=self.tax_credit,
            payable_now=self.payable_now,
        )


def build_invoice(
    *,
    invoice_id: str,
    number: str,
    client_id: str,
    request_id: str,
    terms: AgreedTerms,
    priced: Sequence[PricedLine],
    profile: ClientTaxProfile,
    consumption: CapConsumption,
    rules: BillingRules,
    issued_at: datetime,
    interventions: Sequence[Intervention] = (),
    replay: CapAllocation | None = None,
) -> tuple[Invoice, CapConsumption]:
    """Price VAT, commission and tax credit for `priced` lines; return the invoice
    and the client-year cap consumption after it.

    `consumption` must be the client's state for `document_year(issued_at)`.
    `replay`: the allocation found stored for this invoice id (see `cap_update`).
    """
    if not priced:
        raise BillingError("nothing to invoice")
    currency = terms.currency
    if any(p.net.currency != currency for p in priced):
        raise BillingError("every line must be in the terms' currency")
    year = document_year(issued_at)
    if parse_number(number).year != year or parse_number(number).kind != "invoice":
        raise BillingError(f"invoice number {number} does not belong to {year}")
    if consumption.year != year:
        raise BillingError(f"cap consumption is for {consumption.year}, invoice for {year}")
    vat_rate = rules.vat.rate_for(
        profile.residence_country,
        issued_at.astimezone(ZoneInfo(ENTITY_ZONE)).date(),
        sap_activity_for_vat(terms),
    ).rate
    staged = []
    for no, p in enumerate(priced, start=1):
        vat = vat_for_line(p.net, vat_rate)
        staged.append((no, p, vat, p.net + vat))
    decisions, allocation, after = decide_invoice_lines(
        document_id=invoice_id,
        terms=terms,
        profile=profile,
        lines=[LineInput(no, gross, p.intervention_minutes) for no, p, _, gross in staged],
        consumption=consumption,
        rules=rules.tax_credit_for(year),
        replay=replay,
    )
    lines = tuple(
        BilledLine(
            line_no=no,
            kind=p.kind,
            label_code=p.label_code,
            quantity=p.quantity,
            unit_price=p.unit_price,
            net=p.net,
            vat_rate=vat_rate,
            vat=vat,
            gross=gross,
            commission=rules.commission.commission(terms.category, p.net),
            decision=decision,
            period_key=p.period_key,
        )
        for (no, p, vat, gross), decision in zip(staged, decisions, strict=True)
    )
    invoice = Invoice(
        currency=currency,
        lines=lines,
        invoice_id=invoice_id,
        number=number,
        client_id=client_id,
        request_id=request_id,
        provider_id=terms.provider_id,
        provider_name=terms.provider_display_name,
        provider_sap_number=terms.provider_sap_number,
        issued_at=issued_at,
        tax_year=year,
        avance_immediate=profile.avance_immediate,
        cap_allocation=allocation,
        interventions=tuple(interventions),
    )
    return invoice, after


@dataclass(frozen=True)
class CreditNote(_Totals):
    credit_note_id: str
    number: str
    invoice_id: str
    invoice_number: str
    client_id: str
    provider_id: str
    issued_at: datetime
    tax_year: int  # the INVOICE's tax year: its caps are the ones given back
    avance_immediate: bool
    reason_code: str
    cap_reversal: CapAllocation

    @property
    def tax_credit_reversed(self) -> Money:
        return self.tax_credit

    @property
    def credit_advanced_reversed(self) -> Money:
        return self.tax_credit if self.avance_immediate else Money.zero(self.currency)

    @property
    def refundable_now(self) -> Money:
        """What goes back to the client: what they paid for these lines."""
        return self.total_gross - self.credit_advanced_reversed

    def to_event(self) -> Any:
        return CreditNoteIssued(
            client_id=self.client_id,
            credit_note_id=self.credit_note_id,
            number=self.number,
            invoice_id=self.invoice_id,
            invoice_number=self.invoice_number,
            provider_id=self.provider_id,
            issued_at=self.issued_at,
            currency=self.currency,
            total_gross=self.total_gross,
            tax_credit_reversed=self.tax_credit_reversed,
            reason_code=self.reason_code,
        )


def build_credit_note(
    *,
    invoice: Invoice,
    credit_note_id: str,
    number: str,
    issued_at: datetime,
    reason_code: str,
    line_nos: Sequence[int] | None = None,
    already_credited: Iterable[int] = (),
) -> CreditNote:
    """Credit whole lines of `invoice` (all by default), never a line twice.

    Apply `credit_note.cap_reversal` to the consumption of `invoice.tax_year`
    (`CapConsumption.apply`, or `cap_update` at the edge).
    """
    done = set(already_credited)
    chosen = [ln for ln in invoice.lines if line_nos is None or ln.line_no in line_nos]
    if line_nos is not None and len(chosen) != len(set(line_nos)):
        raise BillingError(f"invoice {invoice.number} has no line(s) {sorted(set(line_nos))}")
    if line_nos is None:
        chosen = [ln for ln in chosen if ln.line_no not in done]
    if not chosen:
        raise BillingError(f"nothing left to credit on invoice {invoice.number}")
    twice = [ln.line_no for ln in chosen if ln.line_no in done]
    if twice:
        raise BillingError(f"line(s) {twice} of {invoice.number} already credited")
    parsed = parse_number(number)
    if parsed.kind != "credit_note" or parsed.year != document_year(issued_at):
        raise BillingError(f"{number} is not a credit note number for {document_year(issued_at)}")
    if issued_at < invoice.issued_at:
        raise BillingError("a credit note cannot predate its invoice")
    nos = [ln.line_no for ln in chosen]
    return CreditNote(
        currency=invoice.currency,
        lines=tuple(chosen),
        credit_note_id=credit_note_id,
        number=number,
        invoice_id=invoice.invoice_id,
        invoice_number=invoice.number,
        client_id=invoice.client_id,
        provider_id=invoice.provider_id,
        issued_at=issued_at,
        tax_year=invoice.tax_year,
        avance_immediate=invoice.avance_immediate,
        reason_code=reason_code,
        cap_reversal=invoice.cap_allocation.reversed(credit_note_id, nos),
    )
