"""Gapless numbering by counter documents, and per-key order, on the real store.

Crashes are simulated by failing a store step once; the tests then check that a
retry, another replica or the repair finishes the work without a hole or a
duplicate number, that the hot paths touch the store by `_id` only, and that a
credit note's event sits behind its invoice's event in one outbox.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from billing.domain.pricing import price_work_completed
from billing.service import BillingService
from billing.store import COUNTERS, CREDIT_NOTES, INVOICES, LEDGER
from delego_shared.events.common import AgreedTerms
from delego_shared.messaging import Outbox
from pymongo import AsyncMongoClient, monitoring

pytestmark = pytest.mark.integration

D = Decimal
AT = datetime(2026, 6, 1, 9, tzinfo=UTC)
LATER = AT + timedelta(days=2)
INVOICE_ISSUED = "delego.billing.InvoiceIssued.v1"
CREDIT_NOTE_ISSUED = "delego.billing.CreditNoteIssued.v1"

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


def _types(doc: Any) -> list[str]:
    return [e["headers"]["ce_type"] for _, e in Outbox.pending(doc)]


class Crash(RuntimeError):
    """A simulated process death in the middle of a use case."""


async def issue(store: BillingService, i: int, at: datetime = AT) -> Any:
    inv, _ = await store.issue_invoice(
        source=f"req_{i}|work",
        client_id=f"cli_{i % 3}",
        request_id=f"req_{i}",
        terms=TERMS,
        priced=price_work_completed(TERMS, actual_hours=D(2), units=None),
        issued_at=at + timedelta(minutes=i),
    )
    return inv


def crash_insert_once(store: BillingService, doc_prefix: str = "") -> set[str]:
    """The next insert of a reserved document (id starting with `doc_prefix`) dies
    after the number was reserved. Returns the ids that crashed."""
    crashed: set[str] = set()
    real = store.store.insert_numbered

    async def insert(kind: Any, doc: Any) -> Any:
        if str(doc["_id"]).startswith(doc_prefix) and not crashed:
            crashed.add(str(doc["_id"]))
            raise Crash("died after reserving a number")
        return await real(kind, doc)

    store.store.insert_numbered = insert  # type: ignore[method-assign]
    return crashed


async def seqs(store: BillingService, collection: str = INVOICES) -> list[int]:
    return sorted([int(d["seq"]) async for d in store.store.db[collection].find({}, {"seq": 1})])


async def counter(store: BillingService, kind: str = "invoice") -> dict[str, Any]:
    doc = await store.store.db[COUNTERS].find_one({"_id": f"DLG:{kind}:2026"})
    assert doc is not None
    return doc


async def age_reservations(store: BillingService, kind: str = "invoice") -> None:
    """Make every reservation of the counter look stale (its owner is long gone)."""
    doc = await counter(store, kind)
    old = datetime.now(UTC) - timedelta(minutes=5)
    for doc_id in doc["pending"]:
        await store.store.db[COUNTERS].update_one(
            {"_id": doc["_id"]}, {"$set": {f"pending.{doc_id}.reserved_at": old}}
        )


async def test_a_retry_after_a_crash_reuses_the_reserved_number(stores):
    [a, _] = stores
    await issue(a, 1)
    crashed = crash_insert_once(a)
    with pytest.raises(Crash):
        await issue(a, 2)
    assert list((await counter(a))["pending"]) == list(crashed)  # reserved, not stored
    again = await issue(a, 2)  # the event is redelivered
    assert again.number == "DLG-2026-000002"
    await issue(a, 3)
    assert await seqs(a) == [1, 2, 3]
    assert (await counter(a))["pending"] == {}


async def test_a_stale_reservation_is_finished_by_another_replica_and_by_repair(stores):
    [a, b] = stores
    crash_insert_once(a)
    with pytest.raises(Crash):
        await issue(a, 1)  # number 1 reserved, the process dies, the event goes elsewhere
    await age_reservations(a)
    nxt = await issue(b, 2)  # the other replica inserts the orphan's document first
    assert nxt.number == "DLG-2026-000002"
    assert await seqs(a) == [1, 2]

    crash_insert_once(b)
    with pytest.raises(Crash):
        await issue(b, 3)
    await age_reservations(b)
    assert await a.repair() >= 2  # inserts invoice 3, posts the ledger of 1 and 3
    assert await seqs(a) == [1, 2, 3]
    assert (await counter(a))["pending"] == {}
    assert await a.store.db[LEDGER].count_documents({}) == 3
    assert await a.store.db[INVOICES].count_documents({"ledger_posted": False}) == 0


async def test_concurrent_numbering_with_crashes_has_no_gap_and_no_duplicate(stores):
    n = 40
    rng = random.Random(11)
    dying = {i for i in range(n) if rng.random() < 0.25}
    pending = set(range(n))

    async def attempt(i: int) -> None:
        store = stores[i % 2]
        if i in dying:
            dying.discard(i)
            crash_insert_once(store, doc_prefix="inv_")
        try:
            await issue(store, i)
        except Crash:
            return
        pending.discard(i)

    await asyncio.gather(*(attempt(i) for i in range(n)))
    while pending:  # redeliveries, on either replica
        await asyncio.gather(*(attempt(i) for i in sorted(pending)))
    await stores[0].repair()

    docs = await stores[0].store.db[INVOICES].find({}, {"seq": 1, "number": 1}).to_list()
    assert sorted(d["seq"] for d in docs) == list(range(1, n + 1))
    assert len({d["number"] for d in docs}) == n
    assert (await counter(stores[0]))["last"] == n
    assert (await counter(stores[0]))["pending"] == {}


async def test_a_counter_starts_after_documents_numbered_before_counters_existed(stores):
    [a, _] = stores
    await issue(a, 1)
    await issue(a, 2)
    await a.store.db[COUNTERS].delete_many({})  # the store as it was before counters
    await issue(a, 3)
    assert await seqs(a) == [1, 2, 3]


class _Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _by_id(flt: dict[str, Any]) -> bool:
    return "_id" in flt and not isinstance(flt["_id"], dict)


def _not_by_id(commands: list[tuple[str, dict[str, Any]]]) -> list[str]:
    bad = []
    for name, cmd in commands:
        if name == "find":
            ok = _by_id(cmd.get("filter", {}))
        elif name == "update":
            ok = all(_by_id(u["q"]) for u in cmd["updates"])
        elif name == "findAndModify":
            ok = _by_id(cmd.get("query", {}))
        elif name in ("insert", "endSessions"):
            ok = True
        else:
            ok = False  # aggregate, count, delete...: not on a hot path
        if not ok:
            bad.append(f"{name} {cmd.get(name)}: {cmd}")
    return bad


async def test_invoices_and_credit_notes_touch_the_store_by_id_only(settings_for, stores):
    [a, _] = stores
    await issue(a, 1)  # creates the year's counter (seeded once, by a query)
    cn, _ = await a.issue_credit_note(
        (await issue(a, 2)).invoice_id, reason_code="x", line_nos=None, issued_at=LATER
    )  # and the credit notes' counter
    settings = settings_for("billing")
    recorder = _Recorder()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, event_listeners=[recorder]
    )
    try:
        a.store.db = client[settings.database]
        for i in range(3, 6):
            inv = await issue(a, i)
            await issue(a, i)  # a replay
            await a.issue_credit_note(
                inv.invoice_id, reason_code="x", line_nos=None, issued_at=LATER
            )
        await a.store.put_profile("cli_1", await a.effective_profile("cli_1"), AT)
    finally:
        await client.close()
    assert recorder.commands
    assert _not_by_id(recorder.commands) == []
    assert cn.number == "DLG-AV-2026-000001"


async def test_a_credit_note_event_is_queued_behind_its_invoice_event(stores):
    [a, _] = stores
    inv = await issue(a, 1)
    real_post = a.store.post
    crashed: list[str] = []

    async def post(entry: Any, client_id: str, provider_id: str) -> None:
        if entry.document_kind == "credit_note" and not crashed:
            crashed.append(entry.document_id)
            raise Crash("died before posting the credit note")
        await real_post(entry, client_id, provider_id)

    a.store.post = post  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await a.issue_credit_note(inv.invoice_id, reason_code="x", line_nos=[1], issued_at=LATER)
    doc = await a.store.db[INVOICES].find_one({"_id": inv.invoice_id})
    assert _types(doc) == [INVOICE_ISSUED]

    await a.repair()  # finishes the credit note: its event joins the invoice's outbox
    await a.repair()  # once
    doc = await a.store.db[INVOICES].find_one({"_id": inv.invoice_id})
    assert _types(doc) == [INVOICE_ISSUED, CREDIT_NOTE_ISSUED]  # in publishing order
    assert doc["_outbox_n"] == 2
    assert {e["key"] for _, e in Outbox.pending(doc)} == {inv.client_id}
    assert doc["credit_pending"] == [] and doc["credit_pending_n"] == 0
    note = await a.store.db[CREDIT_NOTES].find_one({"_id": crashed[0]})
    assert note["ledger_posted"] and note["cap_restored"]
    assert "_outbox" not in note  # the credit note's own document feeds no stream


async def test_issuing_an_invoice_takes_ten_store_commands(settings_for, stores):
    """Throughput is measured in store commands per flow: deciding the issue instant
    with the number and allocating the caps after it added none (11 before)."""
    [a, _] = stores
    await issue(a, 1)  # the year's counter exists
    settings = settings_for("billing")
    recorder = _Recorder()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url, tz_aware=True, event_listeners=[recorder]
    )
    try:
        a.store.db = client[settings.database]
        for i in range(2, 7):
            await issue(a, i)
    finally:
        await client.close()
    commands = [name for name, _ in recorder.commands if name != "endSessions"]
    assert len(commands) == 5 * 10, commands
