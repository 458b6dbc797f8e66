"""The billing erasure use case: the tax profile goes, the accounting records are kept."""

from __future__ import annotations

from billing.privacy import KEPT, BillingErasure


class MemoryStore:
    def __init__(self) -> None:
        self.profiles = {"cli-1": {"dependents": 2}, "cli-2": {"dependents": 0}}

    async def delete_profile(self, client_id: str) -> int:
        return 1 if self.profiles.pop(client_id, None) is not None else 0


async def test_erases_the_tax_profile_only_and_names_what_the_law_keeps():
    store = MemoryStore()
    result = await BillingErasure(store)("cli-1")  # type: ignore[arg-type]
    assert result.erased == {"tax_profiles": 1}
    assert (
        set(result.kept)
        == {"invoices", "credit_notes", "ledger_entries", "tax_certificates", "cap_consumption"}
        == set(KEPT)
    )
    assert store.profiles == {"cli-2": {"dependents": 0}}
    again = await BillingErasure(store)("cli-1")  # type: ignore[arg-type]
    assert again.erased == {"tax_profiles": 0}
