"""Double-entry journal: one balanced entry per invoice and per credit note.

Sign convention: a posting's amount is positive for a DEBIT and negative for
a CREDIT, so every entry sums to zero (per currency) and an account's balance
is the plain sum of its postings (receivables positive; payables and revenue
negative).

Invoice:      Dr client_receivable            payable now (gross - credit advanced)
              Dr urssaf_receivable            tax credit advanced (avance immédiate)
              Cr vat_payable                  total VAT
              Cr platform_commission_revenue  commission
              Cr provider_payable             provider payout (net - commission)
Credit note:  the same accounts for the credited lines, signs reversed (the
              client gets back what it paid for them, URSSAF what it advanced).

With avance immédiate the client pays only "payable now"; URSSAF pays the
advanced half of the eligible amount to the platform, so it is a receivable
of its own and the client's receivable matches the bill. Without it the
advanced credit is zero and the entry is the classic four lines.
payable now + advanced = gross = net + VAT = VAT + commission + (net -
commission): balanced by construction, and checked on every entry.
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
    URSSAF_RECEIVABLE = "urssaf_receivable"  # tax credit advanced (avance immédiate)
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
    advanced = doc.credit_advanced if isinstance(doc, Invoice) else doc.credit_advanced_reversed
    rows = [
        (Account.CLIENT_RECEIVABLE, doc.total_gross - advanced),
        (Account.URSSAF_RECEIVABLE, advanced),
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
