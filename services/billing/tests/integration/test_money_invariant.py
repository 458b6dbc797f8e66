"""Money invariants through the store on real FerretDB, with two concurrent writers.

A generated run of many invoices and credit notes (random pricing models,
categories, countries, activities, avance immédiate), issued concurrently by two
stores on separate connections (as two replicas would): every journal entry and
the whole ledger sum to zero, payout + commission equals the net price on every
line, the ledger agrees with the documents (the client's receivable is what it pays
now, URSSAF's the credit advanced under avance immédiate), numbers are gapless, and each
client's cap consumption equals what its invoices and credit notes say.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from billing.domain.pricing import price_at_acceptance, price_work_completed
from billing.domain.rules import BillingRules
from billing.domain.subscription import period
from billing.domain.tax_credit import ClientTaxProfile, annual_cap
from billing.service import BillingService
from billing.store import (
    CAPS,
    CREDIT_NOTES,
    INVOICES,
    LEDGER,
    BillingStore,
    ConflictError,
    store_indexes,
)
from delego_shared.events.common import AgreedTerms
from delego_shared.mongo import Mongo

pytestmark = pytest.mark.integration

D = Decimal
ACTIVITIES = [
    None,
    "soutien_scolaire_domicile",
    "assistance_informatique_domicile",
    "jardinage",
    "petit_bricolage",
    "teleassistance_visioassistance",
    "entretien_maison",
]
CATEGORIES = [
    "tutoring",
    "translation",
    "home_services",
    "concierge",
    "dating_assistance",
    "gaming",
]
COUNTRIES = ["FR", "FR", "FR", "BE", "DE", "US"]


def _terms(rng: random.Random) -> AgreedTerms:
    def amount(lo: int, hi: int) -> dict[str, str]:
        return {"amount": f"{rng.randint(lo, hi)}.{rng.randint(0, 99):02d}", "currency": "EUR"}

    pricing = rng.choice(
        [
            {"model": "hourly", "rate": amount(8, 90), "increment_minutes": rng.choice([1, 15])},
            {"model": "package", "price": amount(50, 2500)},
            {"model": "per_unit", "unit_name": "module", "unit_price": amount(1, 40)},
        ]
    )
    return AgreedTerms.model_validate(
        {
            "offer_id": f"off_{rng.randint(1, 9)}",
            "offer_version": 1,
            "provider_id": f"prv_{rng.randint(1, 4)}",
            "provider_display_name": "P.",
            "provider_sap_number": rng.choice(["SAP123456789", None]),
            "category": rng.choice(CATEGORIES),
            "delivery_mode": rng.choice(["at_home", "at_home", "remote", "mixed"]),
            "sap_activity": rng.choice(ACTIVITIES),
            "currency": "EUR",
            "pricing": pricing,
        }
    )


async def test_generated_run_keeps_the_money_invariants(settings_for):
    settings = settings_for("billing")
    rules = BillingRules.load()
    mongos = [Mongo(settings.mongodb_url, settings.database) for _ in range(2)]
    try:
        for spec in store_indexes():
            await mongos[0].ensure_indexes([spec])
        stores = [
            BillingService(
                BillingStore(m, entity="DLG"),
                rules=rules,
                default_country="FR",
                source="/delego/billing",
                instance=f"replica{i}",
            )
            for i, m in enumerate(mongos)
        ]
        rng = random.Random(20260310)
        at = datetime(2026, 6, 1, 9, tzinfo=UTC)
        profiles = {}
        for c in range(6):
            profile = ClientTaxProfile(
                residence_country=rng.choice(COUNTRIES),
                dependents=rng.randint(0, 2),
                avance_immediate=rng.random() < 0.5,
            )
            profiles[f"cli_{c}"] = profile
            await stores[0].store.put_profile(f"cli_{c}", profile, at)

        async def issue(i: int) -> None:
            terms = _terms(rng)
            if terms.pricing.model == "package":
                lines = price_at_acceptance(terms, period(at, 0))
            else:
                lines = price_work_completed(
                    terms,
                    actual_hours=D(rng.randint(1, 600)) / 60,
                    units=rng.randint(1, 40),
                )
            await stores[i % 2].issue_invoice(
                source=f"req_{i}|work",
                client_id=f"cli_{rng.randint(0, 5)}",
                request_id=f"req_{i}",
                terms=terms,
                priced=lines,
                issued_at=at + timedelta(minutes=i),
            )

        n = 80
        await asyncio.gather(*(issue(i) for i in range(n)))
        await asyncio.gather(*(issue(i) for i in range(0, n, 7)))  # replays: nothing new

        invoices = await mongos[0].db[INVOICES].find({}).to_list()
        assert len(invoices) == n
        chosen = rng.sample([d["_id"] for d in invoices], 30)

        async def credit(j: int, invoice_id: str) -> None:
            try:
                await stores[j % 2].issue_credit_note(
                    invoice_id,
                    reason_code="generated",
                    line_nos=None,
                    issued_at=at + timedelta(days=1, minutes=j),
                )
            except ConflictError:
                pass  # the other writer credited the same lines first

        # each chosen invoice credited by both writers at once: one wins
        await asyncio.gather(
            *(credit(j, inv) for j, inv in enumerate(chosen)),
            *(credit(j + 1, inv) for j, inv in enumerate(chosen)),
        )
        await stores[0].repair()

        db = mongos[0].db
        invoices = await db[INVOICES].find({}).to_list()
        notes = await db[CREDIT_NOTES].find({}).to_list()
        assert len(notes) == 30
        assert sorted(d["seq"] for d in invoices) == list(range(1, n + 1))
        assert sorted(d["seq"] for d in notes) == list(range(1, 31))

        # every line: payout + commission == net (the price), and the totals add up
        for doc in invoices + notes:
            for ln in doc["lines"]:
                assert D(ln["payout"]["amount"]) + D(ln["commission"]["amount"]) == D(
                    ln["net"]["amount"]
                )
                assert D(ln["net"]["amount"]) + D(ln["vat"]["amount"]) == D(ln["gross"]["amount"])
            t = doc["totals"]
            assert D(t["provider_payout"]["amount"]) + D(t["commission"]["amount"]) == D(
                t["total_net"]["amount"]
            )

        # every journal entry balances; so does the whole ledger
        entries = await db[LEDGER].find({}).to_list()
        assert len(entries) == n + 30
        for e in entries:
            assert sum(D(p["amount"]) for p in e["postings"]) == 0
        balances = await stores[1].store.balances()
        assert sum(m.amount for m in balances.values()) == 0

        def total(docs, key):
            return sum((D(d["totals"][key]["amount"]) for d in docs), D(0))

        # the client owes what its bills say is payable now; URSSAF the credit it advanced
        payable = total(invoices, "payable_now") - total(notes, "refundable_now")
        advanced = total(invoices, "credit_advanced") - total(notes, "credit_advanced_reversed")
        assert advanced > 0
        assert balances[("client_receivable", "EUR")].amount == payable
        assert balances[("urssaf_receivable", "EUR")].amount == advanced
        assert payable + advanced == total(invoices, "total_gross") - total(notes, "total_gross")
        assert -balances[("provider_payable", "EUR")].amount == total(
            invoices, "provider_payout"
        ) - total(notes, "provider_payout")
        assert -balances[("platform_commission_revenue", "EUR")].amount == total(
            invoices, "commission"
        ) - total(notes, "commission")
        revenue_and_payouts = (
            -balances[("provider_payable", "EUR")].amount
            - balances[("platform_commission_revenue", "EUR")].amount
        )
        assert revenue_and_payouts == total(invoices, "total_net") - total(notes, "total_net")

        # cap consumption = eligible invoiced - eligible credited, within the cap
        eligible: dict[str, Decimal] = defaultdict(D)
        for d in invoices:
            eligible[d["client_id"]] += D(d["totals"]["eligible_amount"]["amount"])
        for d in notes:
            eligible[d["client_id"]] -= D(d["totals"]["eligible_amount"]["amount"])
        for client_id, profile in profiles.items():
            cap = await db[CAPS].find_one({"_id": f"{client_id}:2026"})
            used = D(cap["total_cents"]) / 100 if cap else D(0)
            assert used == eligible[client_id]
            assert used <= annual_cap(profile, rules.tax_credit_for(2026))
    finally:
        for m in mongos:
            await m.close()
