"""The use cases of `billing.service`, on an in-memory fake of the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from billing.domain.pricing import price_work_completed
from billing.domain.tax_credit import ClientTaxProfile
from billing.service import BillingService
from billing.store import CERTIFICATES, INVOICES, ConflictError
from delego_shared.events.common import AgreedTerms
from delego_shared.events.matching import MatchAccepted

from .fake_store import FakeBillingStore

D = Decimal
AT = datetime(2026, 6, 1, 9, tzinfo=UTC)


class Crash(RuntimeError):
    """A simulated process death."""


@pytest.fixture
def store() -> FakeBillingStore:
    return FakeBillingStore()


@pytest.fixture
def published() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def written() -> list[dict[str, Any] | None]:
    """The document each publish call handed over as written (None: the relay reads it)."""
    return []


@pytest.fixture
def service(store, rules, published, written) -> BillingService:
    async def publish(collection: str, doc_id: str, **how: Any) -> None:
        published.append((collection, doc_id))
        written.append(how.get("written"))

    return BillingService(
        store,  # type: ignore[arg-type]
        rules=rules,
        default_country="FR",
        source="/delego/billing",
        instance="test",
        publish=publish,
    )


async def issue(service: BillingService, terms: AgreedTerms, i: int, at: datetime, client="c1"):
    return await service.issue_invoice(
        source=f"req_{i}|work",
        client_id=client,
        request_id=f"req_{i}",
        terms=terms,
        priced=price_work_completed(terms, actual_hours=D(2), units=None),
        issued_at=at,
    )


def crash_invoice_insert_once(store: FakeBillingStore) -> None:
    real = store.insert_numbered
    crashed: list[str] = []

    async def insert(kind: Any, doc: Any) -> Any:
        if kind == "invoice" and not crashed:
            crashed.append(doc["_id"])
            raise Crash("died after allocating the caps, before storing the invoice")
        return await real(kind, doc)

    store.insert_numbered = insert  # type: ignore[method-assign]


async def test_issue_invoice_numbers_posts_allocates_once_and_a_replay_publishes_again(
    service, store, published, written, make_terms
):
    terms = make_terms()
    inv, created = await issue(service, terms, 1, AT)
    assert created and inv.number == "DLG-2026-000001"
    assert inv.total_gross.amount == D("88.00") and inv.tax_credit.amount == D("44.00")
    assert published == [(INVOICES, inv.invoice_id)]
    # the creation hands over the invoice as inserted, with its InvoiceIssued: no read back
    (first,) = written
    assert first is not None and [e["headers"]["ce_type"] for e in first["_outbox"].values()] == [
        "delego.billing.InvoiceIssued.v1"
    ]
    assert store.docs["invoice"][inv.invoice_id]["ledger_posted"] is True
    assert sum(store.balances().values()) == 0
    assert (await store.cap_state("c1", 2026)).total == D("88.00")
    again, created = await issue(service, terms, 1, AT + timedelta(hours=1))  # a replay
    assert not created and again == inv
    # a replay asks again (the first run may have died before publishing); the relay
    # sends only what is still pending in the invoice's outbox
    assert published == [(INVOICES, inv.invoice_id)] * 2
    assert written[1] is None  # the replay does not know what is pending: the relay reads
    assert (await store.cap_state("c1", 2026)).total == D("88.00")


async def test_a_number_never_carries_an_earlier_instant_than_the_one_before(service, make_terms):
    terms = make_terms()
    first, _ = await issue(service, terms, 1, AT)
    late, _ = await issue(service, terms, 2, AT - timedelta(seconds=5))  # a lagging clock
    assert late.number == "DLG-2026-000002"
    assert late.issued_at == first.issued_at  # never before the previous number


async def test_a_retry_in_january_keeps_december_number_year_and_caps(service, store, make_terms):
    terms = make_terms()
    december = datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Paris
    crash_invoice_insert_once(store)
    with pytest.raises(Crash):
        await issue(service, terms, 1, december)
    inv, created = await issue(service, terms, 1, datetime(2027, 1, 3, tzinfo=UTC))
    assert created and inv.number == "DLG-2026-000001"
    assert (inv.tax_year, inv.issued_at) == (2026, december)
    assert (await store.cap_state("c1", 2026)).total == D("88.00")
    assert "c1:2027" not in store.cap_docs


async def test_repair_finishes_a_stale_reservation_and_releases_an_orphan(
    service, store, make_terms
):
    terms = make_terms()
    crash_invoice_insert_once(store)
    with pytest.raises(Crash):
        await issue(service, terms, 1, AT)
    for r in store.counter_docs["DLG:invoice:2026"]["pending"].values():
        r["reserved_at"] = datetime.now(UTC) - timedelta(minutes=5)  # its owner is gone
    # an allocation without invoice or reservation (the former allocate-first order)
    doc = store.cap_docs["c1:2026"]
    ghost = {
        "document_id": "inv_ghost",
        "total_cents": 10000,
        "lines": [{"line_no": 1, "sub_cap": None, "cents": 10000}],
    }
    doc["allocations"].append(ghost)
    doc["total_cents"] += 10000
    doc["version"] += 1
    assert await service.repair() >= 2
    [inv] = store.docs["invoice"].values()
    assert inv["number"] == "DLG-2026-000001" and inv["ledger_posted"]
    assert [a["document_id"] for a in store.cap_docs["c1:2026"]["allocations"]] == [inv["_id"]]
    assert (await store.cap_state("c1", 2026)).total == D("88.00")
    assert store.counter_docs["DLG:invoice:2026"]["pending"] == {}
    assert await service.repair() == 0


async def test_credit_note_gives_back_caps_reverses_ledger_and_queues_its_event(
    service, store, published, make_terms
):
    inv, _ = await issue(service, make_terms(), 1, AT)
    cn, created = await service.issue_credit_note(
        inv.invoice_id, reason_code="x", line_nos=None, issued_at=AT + timedelta(days=1)
    )
    assert created and cn.number == "DLG-AV-2026-000001"
    assert (await store.cap_state("c1", 2026)).total == 0
    assert all(v == 0 for v in store.balances().values())
    [event] = store.queued[inv.invoice_id]
    assert event.type == "delego.billing.CreditNoteIssued.v1"
    assert published[-1] == (INVOICES, inv.invoice_id)  # behind the invoice's event
    with pytest.raises(ConflictError):  # nothing left to credit
        await service.issue_credit_note(
            inv.invoice_id, reason_code="x", line_nos=None, issued_at=AT + timedelta(days=2)
        )


async def test_avance_immediate_client_receivable_is_payable_now(service, store, make_terms):
    await store.put_profile(
        "c1", ClientTaxProfile(residence_country="FR", avance_immediate=True), AT
    )
    inv, _ = await issue(service, make_terms(), 1, AT)
    assert inv.payable_now.amount == D("44.00")
    balances = store.balances()
    assert balances["client_receivable"] == D("44.00")
    assert balances["urssaf_receivable"] == D("44.00")
    assert sum(balances.values()) == 0


async def test_bill_subscription_bills_each_due_period_once(service, store, make_terms):
    terms = make_terms(
        pricing={
            "model": "subscription",
            "price_per_period": {"amount": "30.00", "currency": "EUR"},
            "included_hours": "2",
            "overage_rate": {"amount": "20.00", "currency": "EUR"},
        }
    )
    accepted = MatchAccepted(
        request_id="req_sub",
        client_id="c1",
        attempt=1,
        provider_id=terms.provider_id,
        terms=terms,
        estimated_price=terms.pricing.price_per_period,
        promised_at=AT,
        promised_local="2026-06-01T11:00:00+02:00",
        client_zone="Europe/Paris",
        accepted_at=AT,
    )
    await service.accept_match(accepted, None, AT)
    assert len(store.docs["invoice"]) == 1
    sub = await store.subscription("req_sub")
    later = AT + timedelta(days=65)  # two more periods due
    assert await service.bill_subscription(sub, later) == 2
    assert await service.bill_subscription(await store.subscription("req_sub"), later) == 0
    assert sorted(d["number"] for d in store.docs["invoice"].values()) == [
        "DLG-2026-000001",
        "DLG-2026-000002",
        "DLG-2026-000003",
    ]


async def test_certify_a_year_once(service, store, published, make_terms):
    await issue(service, make_terms(), 1, AT)
    assert await service.certify_previous_year(datetime(2027, 1, 1, 8, tzinfo=UTC)) == 1
    [cert] = store.certs.values()
    assert (cert["year"], cert["client_id"]) == (2026, "c1")
    assert (CERTIFICATES, cert["_id"]) in published
    assert await service.certify_previous_year(datetime(2027, 1, 2, tzinfo=UTC)) == 0
    assert len(store.certs) == 1
