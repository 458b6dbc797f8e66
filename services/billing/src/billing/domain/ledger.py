"""Double-entry journal: one balanced entry per invoice and per credit note.

Sign convention: a posting's amount is positive for a DEBIT and negative for
a CREDIT, so every entry sums to zero (per currency) and an account's balance
is the plain sum of its postings (receivables positive; payables and revenue
negative).

Invoice:      Dr client_receivable            total gross
              Cr vat_payable                  total VAT
              Cr platform_commission_revenue  commission
              Cr provider_payable             provider payout (net - commission)
Credit note:  the same accounts for the credited lines, signs reversed.

gross = net + VAT = VAT + commission + (net - commission): balanced by
construction, and checked on every entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from delego_shared.types import Money

from .errors import BillingError
from .invoice import CreditNote, Invoice


class Account(StrEnum):
    CLIENT_RECEIVABLE = "client_receivable"
    PROVIDER_PAYABLE = "provider_payable"
    PLATFORM_COMMISSION_REVENUE = "platform_commission_revenue"
    VAT_PAYABLE = "vat_payable"


@dataclass(frozen=True)
class Posting:
    account: Account
    amount: Money  # > 0 debit, < 0 credit

    @property
    def is_debit(self) -> bool:
        return self.amount.amount > 0


@dataclass(frozen=True)
class JournalEntry:
    entry_id: str
    document_id: str
    document_number: str
    document_kind: str  # invoice | credit_note
    occurred_at: datetime
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        sums: dict[str, Decimal] = {}
        for p in self.postings:
            sums[p.amount.currency] = sums.get(p.amount.currency, Decimal(0)) + p.amount.amount
        unbalanced = {c: s for c, s in sums.items() if s != 0}
        if unbalanced:
            raise BillingError(f"journal entry {self.entry_id} does not balance: {unbalanced}")


def _postings(doc: Invoice | CreditNote, sign: int) -> tuple[Posting, ...]:
    rows = [
        (Account.CLIENT_RECEIVABLE, doc.total_gross),
        (Account.VAT_PAYABLE, -doc.total_vat),
        (Account.PLATFORM_COMMISSION_REVENUE, -doc.commission),
        (Account.PROVIDER_PAYABLE, -doc.provider_payout),
    ]
    return tuple(Posting(acc, m * sign) for acc, m in rows if m.amount != 0)


def journal_for_invoice(invoice: Invoice) -> JournalEntry:
    return JournalEntry(
        entry_id=f"je:{invoice.invoice_id}",
        document_id=invoice.invoice_id,
        document_number=invoice.number,
        document_kind="invoice",
        occurred_at=invoice.issued_at,
        postings=_postings(invoice, 1),
    )


def journal_for_credit_note(credit_note: CreditNote) -> JournalEntry:
    return JournalEntry(
        entry_id=f"je:{credit_note.credit_note_id}",
        document_id=credit_note.credit_note_id,
        document_number=credit_note.number,
        document_kind="credit_note",
        occurred_at=credit_note.issued_at,
        postings=_postings(credit_note, -1),
    )


def balances(entries: Iterable[JournalEntry]) -> dict[tuple[Account, str], Money]:
    """Balance per (account, currency): the sum of its postings (debit positive)."""
    out: dict[tuple[Account, str], Money] = {}
    for entry in entries:
        for p in entry.postings:
            key = (p.account, p.amount.currency)
            out[key] = out.get(key, Money.zero(p.amount.currency)) + p.amount
    return out
