"""An in-memory stand-in for `billing.store.BillingStore` (cosmicpython's fake
repository): the same methods, documents kept in dicts, the same conditional-write
semantics (compare-and-set on versions, unique ids and numbers), so the use cases
in `billing.service` can be tested without infrastructure."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.domain.invoice import CreditNote, Invoice
from billing.domain.ledger import JournalEntry
from billing.domain.numbering import DocumentKind, counter_id
from billing.domain.tax_credit import (
    CapAllocation,
    CapConsumption,
    ClientTaxProfile,
    cap_document_id,
)
from billing.store import (
    Counter,
    NotFoundError,
    Subscription,
    credit_note_from_doc,
    invoice_from_doc,
    journal_to_doc,
)
from delego_shared.events.common import AgreedTerms
from delego_shared.events.envelope import Envelope


class FakeBillingStore:
    def __init__(self, entity: str = "DLG") -> None:
        self.entity = entity
        self.profiles: dict[str, ClientTaxProfile] = {}
        self.cap_docs: dict[str, dict[str, Any]] = {}
        self.counter_docs: dict[str, dict[str, Any]] = {}
        self.docs: dict[DocumentKind, dict[str, dict[str, Any]]] = {
            "invoice": {},
            "credit_note": {},
        }
        self.ledger: dict[str, dict[str, Any]] = {}
        self.queued: dict[str, list[Envelope]] = {}  # invoice id -> credit notes' events
        self.subs: dict[str, dict[str, Any]] = {}
        self.certs: dict[str, dict[str, Any]] = {}
        self.certified: set[int] = set()

    # --- tax profiles ---
    async def get_profile(self, client_id: str) -> ClientTaxProfile | None:
        return self.profiles.get(client_id)

    async def put_profile(self, client_id: str, profile: ClientTaxProfile, at: datetime) -> None:
        self.profiles[client_id] = profile

    # --- caps ---
    async def caps(self, client_id: str, year: int) -> tuple[CapConsumption, list[dict[str, Any]]]:
        doc = self.cap_docs.get(cap_document_id(client_id, year))
        allocations = copy.deepcopy((doc or {}).get("allocations", []))
        return CapConsumption.from_document(doc, year), allocations

    async def cap_state(self, client_id: str, year: int) -> CapConsumption:
        return (await self.caps(client_id, year))[0]

    async def allocate(
        self, client_id: str, before: CapConsumption, allocation: CapAllocation
    ) -> bool:
        key = cap_document_id(client_id, before.year)
        doc = self.cap_docs.get(key)
        if int((doc or {}).get("version", 0)) != before.version:
            return False
        if any(
            a["document_id"] == allocation.document_id for a in (doc or {}).get("allocations", [])
        ):
            return False
        after = before.apply(allocation).to_document(client_id)
        after["allocations"] = [*(doc or {}).get("allocations", []), allocation.to_document()]
        self.cap_docs[key] = after
        return True

    async def release_allocation(
        self, client_id: str, current: CapConsumption, stored: Mapping[str, Any]
    ) -> bool:
        key = cap_document_id(client_id, current.year)
        doc = self.cap_docs.get(key)
        if (
            doc is None
            or int(doc["version"]) != current.version
            or stored not in doc["allocations"]
        ):
            return False
        alloc = CapAllocation.from_document(current.year, stored)
        after = current.without(alloc)
        new = after.to_document(client_id)
        new["version"] = current.version + 1
        new["allocations"] = [a for a in doc["allocations"] if a != stored]
        self.cap_docs[key] = new
        return True

    async def all_caps(self) -> list[tuple[str, int, list[dict[str, Any]]]]:
        return [
            (d["client_id"], int(d["year"]), copy.deepcopy(d.get("allocations", [])))
            for d in self.cap_docs.values()
        ]

    # --- counters ---
    async def counter(self, kind: DocumentKind, year: int) -> Counter | None:
        doc = self.counter_docs.get(counter_id(self.entity, kind, year))
        return Counter.from_doc(copy.deepcopy(doc)) if doc is not None else None

    async def counters(self) -> list[Counter]:
        return [Counter.from_doc(copy.deepcopy(d)) for d in self.counter_docs.values()]

    async def create_counter(self, kind: DocumentKind, year: int) -> None:
        cid = counter_id(self.entity, kind, year)
        self.counter_docs.setdefault(
            cid,
            {
                "_id": cid,
                "kind": kind,
                "year": year,
                "last": 0,
                "last_at": None,
                "version": 0,
                "pending": {},
            },
        )

    async def reserve(
        self,
        counter: Counter,
        doc_id: str,
        reservation: Mapping[str, Any],
        *,
        last: int,
        last_at: datetime | None,
        forget: Sequence[str],
    ) -> bool:
        doc = self.counter_docs[counter.id]
        if doc["version"] != counter.version:
            return False
        doc["last"] = last
        if last_at is not None:
            doc["last_at"] = last_at
        doc["pending"][doc_id] = copy.deepcopy(dict(reservation))
        for d in forget:
            doc["pending"].pop(d, None)
        doc["version"] += 1
        return True

    async def release(self, counter: Counter, doc_id: str, seq: int) -> None:
        pending = self.counter_docs[counter.id]["pending"]
        if doc_id in pending and int(pending[doc_id]["seq"]) == seq:
            del pending[doc_id]

    # --- numbered documents ---
    async def document(self, kind: DocumentKind, doc_id: str) -> dict[str, Any] | None:
        doc = self.docs[kind].get(doc_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def number_of(self, kind: DocumentKind, doc_id: str) -> tuple[int, int] | None:
        doc = self.docs[kind].get(doc_id)
        return (int(doc["year"]), int(doc["seq"])) if doc is not None else None

    async def insert_numbered(
        self, kind: DocumentKind, doc: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, bool]:
        found = self.docs[kind].get(str(doc["_id"]))
        if found is not None:
            return copy.deepcopy(found), False
        if any(
            (d["year"], d["seq"]) == (doc["year"], doc["seq"]) for d in self.docs[kind].values()
        ):
            return None, False  # the unique number index
        self.docs[kind][str(doc["_id"])] = copy.deepcopy(dict(doc))
        return copy.deepcopy(dict(doc)), True

    async def mark_done(self, kind: DocumentKind, doc_id: str, step: str) -> None:
        self.docs[kind][doc_id][step] = True

    async def unfinished(self, kind: DocumentKind, step: str) -> list[str]:
        return [i for i, d in self.docs[kind].items() if d.get(step) is False]

    # --- credit notes on their invoice ---
    async def claim_lines(
        self, invoice_id: str, claim: Mapping[str, Any], line_nos: Sequence[int]
    ) -> bool:
        doc = self.docs["invoice"][invoice_id]
        if set(doc["credited_lines"]) & set(line_nos):
            return False
        doc["credit_claims"].append(copy.deepcopy(dict(claim)))
        doc["credit_pending"].append(claim["credit_note_id"])
        doc["credited_lines"] = sorted({*doc["credited_lines"], *line_nos})
        doc["credit_pending_n"] += 1
        return True

    async def queue_credit_note_event(
        self, invoice_id: str, credit_note_id: str, envelope: Envelope
    ) -> None:
        doc = self.docs["invoice"][invoice_id]
        if credit_note_id in doc["credit_pending"]:
            doc["credit_pending"].remove(credit_note_id)
            doc["credit_pending_n"] -= 1
            self.queued.setdefault(invoice_id, []).append(envelope)

    async def invoices_with_pending_credit_notes(self) -> list[str]:
        return [i for i, d in self.docs["invoice"].items() if d.get("credit_pending_n", 0) > 0]

    # --- ledger ---
    async def post(self, entry: JournalEntry, client_id: str, provider_id: str) -> None:
        self.ledger.setdefault(
            entry.entry_id, journal_to_doc(entry, client_id=client_id, provider_id=provider_id)
        )

    def balances(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for e in self.ledger.values():
            for p in e["postings"]:
                out[p["account"]] = out.get(p["account"], Decimal(0)) + Decimal(p["amount"])
        return out

    # --- subscriptions ---
    async def upsert_subscription(
        self,
        *,
        request_id: str,
        client_id: str,
        terms: AgreedTerms,
        accepted_at: datetime,
        zone: str,
    ) -> Subscription:
        self.subs.setdefault(
            request_id,
            {
                "_id": request_id,
                "client_id": client_id,
                "terms": terms.model_dump(mode="json"),
                "accepted_at": accepted_at,
                "zone": zone,
                "cancelled_at": None,
                "billed": [],
                "works": [],
                "active": True,
                "next_due_at": accepted_at,
            },
        )
        return Subscription.from_doc(self.subs[request_id])

    async def subscription(self, request_id: str) -> Subscription | None:
        doc = self.subs.get(request_id)
        return Subscription.from_doc(doc) if doc is not None else None

    async def cancel_subscription(self, request_id: str, cancelled_at: datetime) -> bool:
        doc = self.subs.get(request_id)
        if doc is None or doc["cancelled_at"] is not None:
            return False
        doc["cancelled_at"] = cancelled_at
        return True

    async def due_subscriptions(self, now: datetime) -> list[Subscription]:
        return [
            Subscription.from_doc(d)
            for d in self.subs.values()
            if d["active"] and d["next_due_at"] is not None and d["next_due_at"] <= now
        ]

    async def mark_periods_billed(
        self, request_id: str, keys: Sequence[str], next_due_at: datetime | None
    ) -> None:
        doc = self.subs[request_id]
        doc["billed"] = sorted({*doc["billed"], *keys})
        doc["next_due_at"] = next_due_at
        doc["active"] = next_due_at is not None

    async def record_work(
        self, request_id: str, *, key: str, period_key: str, hours: Decimal, at: datetime
    ) -> Subscription:
        doc = self.subs.get(request_id)
        if doc is None:
            raise NotFoundError(request_id)
        if all(w["key"] != key for w in doc["works"]):
            doc["works"].append(
                {"key": key, "period_key": period_key, "hours": str(hours), "at": at}
            )
        return Subscription.from_doc(doc)

    # --- certificates ---
    async def certificate(self, certificate_id: str) -> dict[str, Any] | None:
        return self.certs.get(certificate_id)

    async def insert_certificate(self, doc: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.certs.setdefault(str(doc["_id"]), copy.deepcopy(dict(doc)))

    async def invoices_of(self, client_id: str, tax_year: int) -> list[Invoice]:
        return [
            invoice_from_doc(d)
            for d in self.docs["invoice"].values()
            if d["client_id"] == client_id and d["tax_year"] == tax_year
        ]

    async def credit_notes_of(self, invoice_ids: Sequence[str]) -> list[CreditNote]:
        return [
            credit_note_from_doc(d)
            for d in self.docs["credit_note"].values()
            if d["invoice_id"] in invoice_ids
        ]

    async def year_certified(self, year: int) -> bool:
        return year in self.certified

    async def clients_invoiced(self, year: int) -> list[str]:
        return sorted(
            {d["client_id"] for d in self.docs["invoice"].values() if d["tax_year"] == year}
        )

    async def mark_year_certified(self, year: int, at: datetime, clients: int) -> None:
        self.certified.add(year)
