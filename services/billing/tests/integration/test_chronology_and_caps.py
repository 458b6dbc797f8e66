"""Chronological numbering across replicas, and cap allocations tied to their invoice,
on the real store.

Two store clients stand for two billing instances. Crashes are simulated by failing
the invoice insert once: the caps were allocated, the invoice is not stored.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from billing.domain.pricing import price_work_completed
from billing.domain.tax_credit import AllocatedLine, CapAllocation, CapConsumption, cap_update
from billing.service import BillingService
from billing.store import CAPS, COUNTERS, INVOICES
from delego_shared.events.common import AgreedTerms

pytestmark = pytest.mark.integration

D = Decimal
AT = datetime(2026, 6, 1, 9, tzinfo=UTC)

TERMS = AgreedTerms.model_validate(
    {
        "offer_id": "off_1",
        "offer_version": 1,
        "provider_id": "prv_1",
        "provider_display_name": "P.",
        "provider_sap_number": "SAP123456789",
        "category": "tutoring",
        "delivery_mode": "at_home",
        "sap_activity": "soutien_scolaire_domicile",
        "currency": "EUR",
        "pricing": {"model": "hourly", "rate": {"amount": "40.00", "currency": "EUR"}},
    }
)


class Crash(RuntimeError):
    """A simulated process death between the cap allocation and the invoice insert."""


async def issue(store: BillingService, i: int, at: datetime, client: str | None = None) -> Any:
    inv, _ = await store.issue_invoice(
        source=f"req_{i}|work",
        client_id=client or f"cli_{i % 3}",
        request_id=f"req_{i}",
        terms=TERMS,
        priced=price_work_completed(TERMS, actual_hours=D(2), units=None),
        issued_at=at,
    )
    return inv


def crash_invoice_insert_once(store: BillingService) -> None:
    real = store.store.insert_numbered
    crashed: list[str] = []

    async def insert(kind: Any, doc: Any) -> Any:
        if str(doc["_id"]).startswith("inv_") and not crashed:
            crashed.append(str(doc["_id"]))
            raise Crash("died after allocating the caps, before storing the invoice")
        return await real(kind, doc)

    store.store.insert_numbered = insert  # type: ignore[method-assign]


async def age_reservations(store: BillingService, counter_id: str) -> None:
    doc = await store.store.db[COUNTERS].find_one({"_id": counter_id})
    assert doc is not None
    old = datetime.now(UTC) - timedelta(minutes=5)
    for doc_id in doc["pending"]:
        await store.store.db[COUNTERS].update_one(
            {"_id": counter_id}, {"$set": {f"pending.{doc_id}.reserved_at": old}}
        )


async def test_two_instances_issue_200_invoices_gapless_and_chronological(stores):
    rng = random.Random(13)
    n, workers = 200, 4
    # each call's "now" is taken before it contends; calls race, so a call that read
    # its clock later may win the earlier number: the numbering must still be
    # chronological
    candidates = [AT + timedelta(milliseconds=rng.randrange(0, 3000)) for _ in range(n)]
    queue = list(range(n))

    async def worker(store: BillingService) -> None:
        while queue:
            i = queue.pop()
            await issue(store, i, candidates[i])

    await asyncio.gather(*(worker(stores[w % 2]) for w in range(workers)))

    docs = await stores[0].store.db[INVOICES].find({}, {"seq": 1, "issued_at": 1}).to_list()
    docs.sort(key=lambda d: d["seq"])
    assert [d["seq"] for d in docs] == list(range(1, n + 1))  # gapless, no duplicate
    instants = [d["issued_at"] for d in docs]
    assert instants == sorted(instants)  # number order is time order
    assert instants[0] >= min(candidates)
    counter = await stores[0].store.db[COUNTERS].find_one({"_id": "DLG:invoice:2026"})
    assert counter["last"] == n and counter["pending"] == {}
    assert counter["last_at"] == instants[-1]


async def test_a_retry_in_january_keeps_the_number_year_and_allocation_of_december(stores):
    [a, b] = stores
    december = datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Paris
    crash_invoice_insert_once(a)
    with pytest.raises(Crash):
        await issue(a, 1, december, client="cli_ny")
    assert (await a.store.cap_state("cli_ny", 2026)).total == D("88.00")  # allocated, no invoice
    # the event is replayed from the dead-letter topic on 2 January, on the other replica
    again = await issue(b, 1, datetime(2027, 1, 2, 10, tzinfo=UTC), client="cli_ny")
    assert again.number == "DLG-2026-000001"
    assert again.tax_year == 2026
    assert again.issued_at == december
    assert (await a.store.cap_state("cli_ny", 2026)).total == D("88.00")
    assert await a.store.db[CAPS].find_one({"_id": "cli_ny:2027"}) is None  # nothing moved
    # and the next January invoice starts the 2027 sequence
    nxt = await issue(b, 2, datetime(2027, 1, 2, 10, 1, tzinfo=UTC), client="cli_ny")
    assert nxt.number == "DLG-2027-000001"


async def test_a_replay_after_a_crash_reproduces_the_decision_it_was_allocated_with(stores):
    [a, b] = stores
    crash_invoice_insert_once(a)
    with pytest.raises(Crash):
        await issue(a, 1, AT, client="cli_rp")  # 88.00 allocated, invoice not stored
    second = await issue(b, 2, AT + timedelta(seconds=1), client="cli_rp")  # allocates after
    assert second.lines[0].decision.reason_en.endswith("remaining annual cap 11,824.00 EUR")
    first = await issue(b, 1, AT + timedelta(seconds=2), client="cli_rp")  # the redelivery
    # decided on the caps it was allocated against, not on today's
    assert first.lines[0].decision.reason_en.endswith("remaining annual cap 11,912.00 EUR")
    assert first.tax_credit.amount == D("44.00")
    assert (await a.store.cap_state("cli_rp", 2026)).total == D("176.00")


async def test_repair_completes_an_allocation_left_by_a_crash_and_releases_an_orphan(stores):
    [a, b] = stores
    crash_invoice_insert_once(a)
    with pytest.raises(Crash):
        await issue(a, 1, AT, client="cli_rep")  # caps allocated, invoice missing
    await age_reservations(a, "DLG:invoice:2026")
    # an allocation with neither invoice nor reservation (left by the former
    # allocate-first order): it must be released
    state = await a.store.cap_state("cli_rep", 2026)
    ghost = CapAllocation("inv_ghost", 2026, (AllocatedLine(1, None, D("500.00")),), state)
    flt, update, upsert = cap_update("cli_rep", state, ghost)
    await a.store.db[CAPS].find_one_and_update(flt, update, upsert=upsert)
    assert (await a.store.cap_state("cli_rep", 2026)).total == D("588.00")

    assert await b.repair() >= 2  # invoice 1 finished (and posted), ghost released
    inv = await a.store.db[INVOICES].find_one({"source": "req_1|work"})
    assert inv is not None and inv["number"] == "DLG-2026-000001"
    caps = await a.store.db[CAPS].find_one({"_id": "cli_rep:2026"})
    assert [x["document_id"] for x in caps["allocations"]] == [inv["_id"]]
    assert CapConsumption.from_document(caps, 2026).total == D("88.00")
    assert await b.repair() == 0  # reconciled: nothing left to do
