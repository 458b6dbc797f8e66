"""Events published by the billing service on `billing.invoices.v1` (key: client id).

Ids, amounts and decisions only: no names, no addresses.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from ..types import Currency, Identifier, Money, UtcInstant
from .base import Event, event
from .common import Contract
from .topics import INVOICES


class TaxCreditDecision(Contract):
    code: str = Field(examples=["eligible", "not_eligible_remote"])
    eligible_amount: Money
    credit: Money
    reason_fr: str
    reason_en: str


class InvoiceLine(Contract):
    line_no: int = Field(ge=1)
    kind: str = Field(examples=["service", "overage", "subscription_period"])
    label_code: str = Field(examples=["hourly:translation"])
    quantity: Decimal
    unit_price: Money
    net: Money
    vat_rate: Decimal
    vat: Money
    gross: Money
    commission: Money
    tax_credit: TaxCreditDecision


class _BillingEvent(Event):
    client_id: Identifier

    def key(self) -> str:
        return self.client_id


@event("delego.billing.InvoiceIssued.v1", INVOICES)
class InvoiceIssued(_BillingEvent):
    invoice_id: Identifier
    number: str = Field(examples=["DLG-2026-000123"])
    request_id: Identifier
    provider_id: Identifier
    issued_at: UtcInstant
    currency: Currency
    lines: list[InvoiceLine]
    total_net: Money
    total_vat: Money
    total_gross: Money
    commission: Money
    provider_payout: Money
    tax_credit: Money
    payable_now: Money


@event("delego.billing.CreditNoteIssued.v1", INVOICES)
class CreditNoteIssued(_BillingEvent):
    credit_note_id: Identifier
    number: str = Field(examples=["DLG-AV-2026-000007"])
    invoice_id: Identifier
    invoice_number: str
    provider_id: Identifier
    issued_at: UtcInstant
    currency: Currency
    total_gross: Money
    tax_credit_reversed: Money
    reason_code: str


@event("delego.billing.TaxCertificateIssued.v1", INVOICES)
class TaxCertificateIssued(_BillingEvent):
    certificate_id: Identifier
    provider_id: Identifier
    year: int = Field(ge=2000, le=2100)
    amount_paid: Money
    eligible_amount: Money
    credit_advanced: Money
    issued_at: UtcInstant
