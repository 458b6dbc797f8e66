"""Annual tax certificate (attestation fiscale) per client, provider and year.

Built from the invoices and credit notes of one client with one provider whose
tax year is `year` (a credit note counts in its invoice's tax year, the year
whose caps it gives back). Amounts: paid = gross invoiced - gross credited
(the client pays the whole gross, part of it possibly advanced by the state
under avance immédiate); eligible and advanced amounts net of reversals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from delego_shared.events.billing import TaxCertificateIssued
from delego_shared.types import Money

from .errors import BillingError
from .invoice import CreditNote, Intervention, Invoice


@dataclass(frozen=True)
class TaxCertificate:
    certificate_id: str
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
    interventions: tuple[Intervention, ...]
    invoice_numbers: tuple[str, ...]
    credit_note_numbers: tuple[str, ...]
    issued_at: datetime

    @property
    def total_minutes(self) -> int:
        return sum(i.minutes or 0 for i in self.interventions)

    def to_event(self) -> Any:
        return TaxCertificateIssued(
            client_id=self.client_id,
            certificate_id=self.certificate_id,
            provider_id=self.provider_id,
            year=self.year,
            amount_paid=self.amount_paid,
            eligible_amount=self.eligible_amount,
            credit_advanced=self.credit_advanced,
            issued_at=self.issued_at,
        )


def certificate_id_for(client_id: str, provider_id: str, year: int) -> str:
    """Deterministic id: one certificate per client, provider and year (idempotent)."""
    return f"att:{client_id}:{provider_id}:{year}"


def build_certificate(
    *,
    client_id: str,
    provider_id: str,
    year: int,
    invoices: Iterable[Invoice],
    credit_notes: Iterable[CreditNote],
    issued_at: datetime,
    certificate_id: str | None = None,
) -> TaxCertificate:
    invs = sorted(
        (
            i
            for i in invoices
            if i.client_id == client_id and i.provider_id == provider_id and i.tax_year == year
        ),
        key=lambda i: (i.issued_at, i.number),
    )
    ids = {i.invoice_id for i in invs}
    cns = sorted(
        (c for c in credit_notes if c.invoice_id in ids), key=lambda c: (c.issued_at, c.number)
    )
    if not invs:
        raise BillingError(f"no invoice from {provider_id} to {client_id} in {year}")
    latest = invs[-1]
    if not latest.provider_sap_number:
        raise BillingError(f"provider {provider_id} has no SAP declaration: no certificate")
    currencies = {i.currency for i in invs}
    if len(currencies) != 1:
        raise BillingError(f"invoices in several currencies: {sorted(currencies)}")
    cur = currencies.pop()

    def total(docs: Iterable[Invoice | CreditNote], attr: str) -> Money:
        out = Money.zero(cur)
        for d in docs:
            out = out + getattr(d, attr)
        return out

    credited_advance = Money.zero(cur)
    for c in cns:
        credited_advance = credited_advance + c.credit_advanced_reversed
    interventions = tuple(
        sorted((iv for i in invs for iv in i.interventions), key=lambda iv: (iv.on, iv.label_code))
    )
    return TaxCertificate(
        certificate_id=certificate_id or certificate_id_for(client_id, provider_id, year),
        client_id=client_id,
        provider_id=provider_id,
        provider_name=latest.provider_name,
        provider_sap_number=latest.provider_sap_number,
        year=year,
        currency=cur,
        amount_paid=total(invs, "total_gross") - total(cns, "total_gross"),
        eligible_amount=total(invs, "eligible_amount") - total(cns, "eligible_amount"),
        tax_credit=total(invs, "tax_credit") - total(cns, "tax_credit"),
        credit_advanced=total(invs, "credit_advanced") - credited_advance,
        interventions=interventions,
        invoice_numbers=tuple(i.number for i in invs),
        credit_note_numbers=tuple(c.number for c in cns),
        issued_at=issued_at,
    )
