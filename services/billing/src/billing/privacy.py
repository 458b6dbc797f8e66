"""A client's erasure in billing (GDPR art. 17(3)(b)): erase only what the law does not keep.

Billing erases, by `_id`:

- `tax_profiles/<client>`: the declared household (dependants, members over 65,
  disability, residence, immediate-advance opt-in): sensitive, and needed only
  to decide future invoices' tax credit.

It keeps, as art. 17(3)(b) allows (a legal obligation), for 10 years from the
close of the financial year: invoices, credit notes, ledger entries, annual
tax certificates and the client-year tax-credit cap consumption they were
decided on. Code de commerce art. L123-22 (accounting documents and their
supporting documents, 10 years); Livre des procédures fiscales art. L102 B
(documents on which a tax check may bear, 6 years, within those 10). These
documents carry the client's id, never a name, e-mail or address: once
notifications has erased the contact data, they no longer lead to a person
from inside the platform.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from delego_shared.http import ServiceRuntime
from delego_shared.privacy import ErasureResult, export_router, take_part_in_erasure
from fastapi import APIRouter

from .domain.invoice import CreditNote
from .store import PROFILES, BillingStore, IssuedInvoice
from .views import CreditNoteView, InvoiceView

KEPT = ("invoices", "credit_notes", "ledger_entries", "tax_certificates", "cap_consumption")
"""Kept 10 years under Code de commerce L123-22 and LPF L102 B (see the module doc)."""
EXPORT_LIMIT = 500
"""Documents per kind in one export (the listing endpoints' own maximum)."""


class PrivacyStore:
    def __init__(self, store: BillingStore) -> None:
        self.store = store
        self.db = store.db

    async def profile(self, client_id: str) -> dict[str, Any] | None:
        return await self.db[PROFILES].find_one({"_id": client_id})

    async def documents(self, flt: dict[str, Any]) -> tuple[list[IssuedInvoice], list[CreditNote]]:
        """Invoices and credit notes by `client_id` or `provider_id`: the indexed
        queries `GET /invoices` and `GET /credit-notes` already run."""
        return await self.store.list_invoices(
            flt, EXPORT_LIMIT
        ), await self.store.list_credit_notes(flt, EXPORT_LIMIT)

    async def delete_profile(self, client_id: str) -> int:
        res = await self.db[PROFILES].delete_one({"_id": client_id})
        return res.deleted_count


class BillingErasure:
    """The use case: erase the client's tax profile, keep the accounting records (idempotent)."""

    def __init__(self, store: PrivacyStore) -> None:
        self.store = store

    async def __call__(self, subject_id: str) -> ErasureResult:
        return ErasureResult(
            erased={"tax_profiles": await self.store.delete_profile(subject_id)}, kept=KEPT
        )


class BillingExport:
    """The use case: the tax profile, and the invoices and credit notes of the subject
    as client or as provider (right of access)."""

    def __init__(self, store: PrivacyStore) -> None:
        self.store = store

    async def __call__(self, subject_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"tax_profile": await self.store.profile(subject_id)}
        for role in ("client", "provider"):
            invoices, credit_notes = await self.store.documents({f"{role}_id": subject_id})
            out[f"as_{role}"] = {
                "invoices": [
                    InvoiceView.of(i.invoice, i.credited_lines).model_dump(mode="json")
                    for i in invoices
                ],
                "credit_notes": [
                    CreditNoteView.of(cn).model_dump(mode="json") for cn in credit_notes
                ],
            }
        return out


def wire_privacy(
    runtime: ServiceRuntime, store: BillingStore, clock: Callable[[], datetime]
) -> APIRouter:
    """Take part in erasures; return the export router."""
    privacy = PrivacyStore(store)
    take_part_in_erasure(runtime, BillingErasure(privacy), clock=clock)
    return export_router("billing", BillingExport(privacy), clock=clock)
