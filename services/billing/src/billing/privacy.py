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

from delego_shared.http import ServiceRuntime
from delego_shared.privacy import ErasureResult, take_part_in_erasure

from .store import PROFILES, BillingStore

KEPT = ("invoices", "credit_notes", "ledger_entries", "tax_certificates", "cap_consumption")
"""Kept 10 years under Code de commerce L123-22 and LPF L102 B (see the module doc)."""


class PrivacyStore:
    def __init__(self, store: BillingStore) -> None:
        self.db = store.db

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


def wire_privacy(
    runtime: ServiceRuntime, store: BillingStore, clock: Callable[[], datetime]
) -> None:
    take_part_in_erasure(runtime, BillingErasure(PrivacyStore(store)), clock=clock)
