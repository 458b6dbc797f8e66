"""Every MongoDB access of the billing service (and nothing else): documents mapped
to and from domain objects, and the conditional writes. No business decision here:
the use cases that combine domain, store and outbox are in `service.py`.

Collections (database `delego_billing` by default):

- `invoices`, `credit_notes`: immutable documents. `_id` is deterministic (a
  hash of the source: request id + event kind + period/instant), so a replay
  finds the document instead of creating a second one. An invoice is inserted
  with its event (`Outbox.attach`); a credit note's event joins its invoice's
  outbox when the credit note is complete, so one document feeds both and the
  credit note never overtakes its invoice. Bookkeeping fields (`ledger_posted`,
  `credit_*`, `cap_restored`) record the follow-up steps; they never change
  what was issued.
- `number_counters`: one per (entity, kind, year), `_id` `DLG:invoice:2026`:
  `last` number handed out and its instant `last_at`, `version`, and `pending`
  reservations (document id -> number, issue instant, and what finishes the
  document). Numbers are gapless and chronological: see `BillingService._numbered`.
  The unique index on (entity, kind, year, seq) stays as a safety net.
- `cap_consumption`: one document per client-year, changed only by the
  domain's `cap_update` / `cap_release` (compare-and-set on `version`,
  idempotent per document id); each allocation keeps the state it was decided on.
- `tax_profiles`: the clients' declared tax profiles (kept only here).
- `subscriptions`: accepted subscriptions (acceptance, cancellation, zone,
  billed period keys, completed work for overage).
- `ledger_entries`: one document per journal entry (postings inside, amounts
  as decimal strings plus integer minor units for aggregation).
- `tax_certificates`: one per client, provider and year (with its event).
- `certification_runs`: one per year whose certificates were issued to all.

Access rule: handling an event or an HTTP command reads and writes by `_id`
(possibly with extra conditions for a compare-and-set). Queries on other fields
serve the HTTP listings, the certificates of a year (once per client and year,
on the (tax_year, client_id) index), the first number of a counter, and the
sweeps of `repair`, run by the scheduler's slow timer (`find` + projection, then work by `_id`); the
indexes below are what they need on MongoDB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from delego_shared.events.common import AgreedTerms
from delego_shared.events.envelope import Envelope
from delego_shared.logging import get_logger
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo
from delego_shared.types import Money
from pymongo import ReturnDocument

from .domain.certificate import TaxCertificate
from .domain.errors import BillingError
from .domain.invoice import (
    BilledLine,
    CreditNote,
    Intervention,
    Invoice,
)
from .domain.ledger import Account, JournalEntry, Posting
from .domain.money import amount_text
from .domain.numbering import (
    DocumentKind,
    counter_id,
    document_year,
)
from .domain.pricing import PricedLine
from .domain.tax_credit import (
    CapAllocation,
    CapConsumption,
    ClientTaxProfile,
    DecisionCode,
    LineDecision,
    cap_document_id,
    cap_release,
    cap_update,
)

log = get_logger(__name__)

INVOICES = "invoices"
CREDIT_NOTES = "credit_notes"
CAPS = "cap_consumption"
PROFILES = "tax_profiles"
SUBSCRIPTIONS = "subscriptions"
LEDGER = "ledger_entries"
CERTIFICATES = "tax_certificates"
CERT_RUNS = "certification_runs"
COUNTERS = "number_counters"
# credit notes no longer carry events (they join their invoice's outbox); the relay
# still drains the ones stored before that change
OUTBOX_COLLECTIONS = [INVOICES, CREDIT_NOTES, CERTIFICATES]


def store_indexes() -> list[IndexSpec]:
    number = [("entity", 1), ("kind", 1), ("year", 1), ("seq", 1)]
    return [
        IndexSpec(INVOICES, number, unique=True, name="number_gapless"),
        IndexSpec(INVOICES, [("client_id", 1), ("issued_at", -1)]),
        IndexSpec(INVOICES, [("provider_id", 1), ("issued_at", -1)]),
        IndexSpec(INVOICES, [("tax_year", 1), ("client_id", 1)]),
        IndexSpec(INVOICES, [("ledger_posted", 1)]),
        IndexSpec(INVOICES, [("credit_pending_n", 1)]),
        IndexSpec(CREDIT_NOTES, number, unique=True, name="number_gapless"),
        IndexSpec(CREDIT_NOTES, [("invoice_id", 1)]),
        IndexSpec(CREDIT_NOTES, [("cap_restored", 1)]),
        IndexSpec(CREDIT_NOTES, [("ledger_posted", 1)]),
        IndexSpec(CREDIT_NOTES, [("client_id", 1), ("issued_at", -1)]),
        IndexSpec(CREDIT_NOTES, [("provider_id", 1), ("issued_at", -1)]),
        IndexSpec(LEDGER, [("document_id", 1)]),
        IndexSpec(LEDGER, [("provider_id", 1)]),
        IndexSpec(LEDGER, [("client_id", 1)]),
        IndexSpec(SUBSCRIPTIONS, [("active", 1), ("next_due_at", 1)]),
        IndexSpec(CERTIFICATES, [("client_id", 1), ("year", 1)]),
    ]


class NotFoundError(LookupError):
    """The document asked for does not exist."""


class ConflictError(BillingError):
    """A concurrent change made this request impossible (e.g. lines credited meanwhile)."""


def document_id(prefix: str, *parts: str) -> str:
    """Deterministic id from the source of a document (replays find the same id)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{prefix}_{digest}"


def to_millis(at: datetime) -> datetime:
    """Mongo keeps milliseconds: truncate first so stored and published instants agree."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


# --- (de)serialisation ---------------------------------------------------------------


def _money(m: Money) -> dict[str, str]:
    return {"amount": amount_text(m), "currency": m.currency}


def _m(d: Mapping[str, Any]) -> Money:
    return Money(amount=Decimal(str(d["amount"])), currency=str(d["currency"]))


def _line_doc(ln: BilledLine) -> Document:
    d = ln.decision
    return {
        "line_no": ln.line_no,
        "kind": ln.kind,
        "label_code": ln.label_code,
        "quantity": str(ln.quantity),
        "unit_price": _money(ln.unit_price),
        "net": _money(ln.net),
        "vat_rate": str(ln.vat_rate),
        "vat": _money(ln.vat),
        "gross": _money(ln.gross),
        "commission": _money(ln.commission),
        "payout": _money(ln.payout),
        "period_key": ln.period_key,
        "decision": {
            "code": d.code.value,
            "eligible_amount": _money(d.eligible_amount),
            "credit": _money(d.credit),
            "reason_fr": d.reason_fr,
            "reason_en": d.reason_en,
            "sub_cap": d.sub_cap,
        },
    }


def _line(doc: Mapping[str, Any]) -> BilledLine:
    d = doc["decision"]
    return BilledLine(
        line_no=int(doc["line_no"]),
        kind=str(doc["kind"]),
        label_code=str(doc["label_code"]),
        quantity=Decimal(doc["quantity"]),
        unit_price=_m(doc["unit_price"]),
        net=_m(doc["net"]),
        vat_rate=Decimal(doc["vat_rate"]),
        vat=_m(doc["vat"]),
        gross=_m(doc["gross"]),
        commission=_m(doc["commission"]),
        decision=LineDecision(
            code=DecisionCode(d["code"]),
            eligible_amount=_m(d["eligible_amount"]),
            credit=_m(d["credit"]),
            reason_fr=str(d["reason_fr"]),
            reason_en=str(d["reason_en"]),
            sub_cap=d.get("sub_cap"),
        ),
        period_key=doc.get("period_key"),
    )


def _totals(doc: Invoice | CreditNote) -> Document:
    return {name: _money(m) for name, m in doc.totals().items()}


def invoice_to_doc(inv: Invoice, *, entity: str, seq: int, source: str, instance: str) -> Document:
    return {
        "_id": inv.invoice_id,
        "entity": entity,
        "kind": "invoice",
        "year": document_year(inv.issued_at),
        "seq": seq,
        "number": inv.number,
        "source": source,
        "client_id": inv.client_id,
        "request_id": inv.request_id,
        "provider_id": inv.provider_id,
        "provider_name": inv.provider_name,
        "provider_sap_number": inv.provider_sap_number,
        "issued_at": inv.issued_at,
        "tax_year": inv.tax_year,
        "avance_immediate": inv.avance_immediate,
        "currency": inv.currency,
        "lines": [_line_doc(ln) for ln in inv.lines],
        "totals": {
            **_totals(inv),
            "credit_advanced": _money(inv.credit_advanced),
            "payable_now": _money(inv.payable_now),
        },
        "cap_allocation": inv.cap_allocation.to_document(),
        "interventions": [intervention_to_doc(iv) for iv in inv.interventions],
        "issued_by": instance,
        "ledger_posted": False,
        "credited_lines": [],
        "credit_claims": [],
        "credit_pending": [],
        "credit_pending_n": 0,
    }


def invoice_from_doc(doc: Mapping[str, Any]) -> Invoice:
    year = int(doc["tax_year"])
    return Invoice(
        currency=str(doc["currency"]),
        lines=tuple(_line(ln) for ln in doc["lines"]),
        invoice_id=str(doc["_id"]),
        number=str(doc["number"]),
        client_id=str(doc["client_id"]),
        request_id=str(doc["request_id"]),
        provider_id=str(doc["provider_id"]),
        provider_name=str(doc["provider_name"]),
        provider_sap_number=doc.get("provider_sap_number"),
        issued_at=doc["issued_at"].astimezone(UTC),
        tax_year=year,
        avance_immediate=bool(doc["avance_immediate"]),
        cap_allocation=CapAllocation.from_document(year, doc["cap_allocation"]),
        interventions=tuple(intervention_from_doc(iv) for iv in doc.get("interventions", [])),
    )


def credit_note_to_doc(cn: CreditNote, *, entity: str, seq: int, instance: str) -> Document:
    return {
        "_id": cn.credit_note_id,
        "entity": entity,
        "kind": "credit_note",
        "year": document_year(cn.issued_at),
        "seq": seq,
        "number": cn.number,
        "invoice_id": cn.invoice_id,
        "invoice_number": cn.invoice_number,
        "client_id": cn.client_id,
        "provider_id": cn.provider_id,
        "issued_at": cn.issued_at,
        "tax_year": cn.tax_year,
        "avance_immediate": cn.avance_immediate,
        "reason_code": cn.reason_code,
        "currency": cn.currency,
        "line_nos": [ln.line_no for ln in cn.lines],
        "lines": [_line_doc(ln) for ln in cn.lines],
        "totals": {
            **_totals(cn),
            "credit_advanced_reversed": _money(cn.credit_advanced_reversed),
            "refundable_now": _money(cn.refundable_now),
        },
        "cap_reversal": cn.cap_reversal.to_document(),
        "issued_by": instance,
        "cap_restored": False,
        "ledger_posted": False,
    }


def credit_note_from_doc(doc: Mapping[str, Any]) -> CreditNote:
    year = int(doc["tax_year"])
    return CreditNote(
        currency=str(doc["currency"]),
        lines=tuple(_line(ln) for ln in doc["lines"]),
        credit_note_id=str(doc["_id"]),
        number=str(doc["number"]),
        invoice_id=str(doc["invoice_id"]),
        invoice_number=str(doc["invoice_number"]),
        client_id=str(doc["client_id"]),
        provider_id=str(doc["provider_id"]),
        issued_at=doc["issued_at"].astimezone(UTC),
        tax_year=year,
        avance_immediate=bool(doc["avance_immediate"]),
        reason_code=str(doc["reason_code"]),
        cap_reversal=CapAllocation.from_document(year, doc["cap_reversal"]),
    )


def priced_to_doc(p: PricedLine) -> Document:
    return {
        "kind": p.kind,
        "label_code": p.label_code,
        "quantity": str(p.quantity),
        "unit_price": _money(p.unit_price),
        "net": _money(p.net),
        "intervention_minutes": p.intervention_minutes,
        "period_key": p.period_key,
    }


def priced_from_doc(doc: Mapping[str, Any]) -> PricedLine:
    return PricedLine(
        kind=str(doc["kind"]),
        label_code=str(doc["label_code"]),
        quantity=Decimal(doc["quantity"]),
        unit_price=_m(doc["unit_price"]),
        net=_m(doc["net"]),
        intervention_minutes=doc.get("intervention_minutes"),
        period_key=doc.get("period_key"),
    )


def intervention_to_doc(iv: Intervention) -> Document:
    return {"on": iv.on.isoformat(), "minutes": iv.minutes, "label_code": iv.label_code}


def intervention_from_doc(doc: Mapping[str, Any]) -> Intervention:
    return Intervention(date.fromisoformat(doc["on"]), doc.get("minutes"), str(doc["label_code"]))


def _minor(m: Money) -> int:
    scaled = m.amount.scaleb(m.minor_units)
    if scaled != scaled.to_integral_value():
        raise BillingError(f"{m} is not a whole number of minor units")
    return int(scaled)


def journal_to_doc(entry: JournalEntry, *, client_id: str, provider_id: str) -> Document:
    return {
        "_id": entry.entry_id,
        "document_id": entry.document_id,
        "document_number": entry.document_number,
        "document_kind": entry.document_kind,
        "occurred_at": entry.occurred_at,
        "client_id": client_id,
        "provider_id": provider_id,
        "postings": [
            {
                "account": p.account.value,
                "currency": p.amount.currency,
                "amount": amount_text(p.amount),
                "minor": _minor(p.amount),
            }
            for p in entry.postings
        ],
    }


def journal_from_doc(doc: Mapping[str, Any]) -> PostedEntry:
    entry = JournalEntry(
        entry_id=str(doc["_id"]),
        document_id=str(doc["document_id"]),
        document_number=str(doc["document_number"]),
        document_kind=str(doc["document_kind"]),
        occurred_at=doc["occurred_at"].astimezone(UTC),
        postings=tuple(Posting(Account(p["account"]), _m(p)) for p in doc["postings"]),
    )
    return PostedEntry(entry, client_id=str(doc["client_id"]), provider_id=str(doc["provider_id"]))


def certificate_to_doc(cert: TaxCertificate) -> Document:
    return {
        "_id": cert.certificate_id,
        "client_id": cert.client_id,
        "provider_id": cert.provider_id,
        "provider_name": cert.provider_name,
        "provider_sap_number": cert.provider_sap_number,
        "year": cert.year,
        "currency": cert.currency,
        "amount_paid": _money(cert.amount_paid),
        "eligible_amount": _money(cert.eligible_amount),
        "tax_credit": _money(cert.tax_credit),
        "credit_advanced": _money(cert.credit_advanced),
        "interventions": [intervention_to_doc(iv) for iv in cert.interventions],
        "total_minutes": cert.total_minutes,
        "invoice_numbers": list(cert.invoice_numbers),
        "credit_note_numbers": list(cert.credit_note_numbers),
        "issued_at": cert.issued_at,
    }


def certificate_from_doc(doc: Mapping[str, Any]) -> TaxCertificate:
    return TaxCertificate(
        certificate_id=str(doc["_id"]),
        client_id=str(doc["client_id"]),
        provider_id=str(doc["provider_id"]),
        provider_name=str(doc["provider_name"]),
        provider_sap_number=str(doc["provider_sap_number"]),
        year=int(doc["year"]),
        currency=str(doc["currency"]),
        amount_paid=_m(doc["amount_paid"]),
        eligible_amount=_m(doc["eligible_amount"]),
        tax_credit=_m(doc["tax_credit"]),
        credit_advanced=_m(doc["credit_advanced"]),
        interventions=tuple(intervention_from_doc(iv) for iv in doc.get("interventions", [])),
        invoice_numbers=tuple(str(n) for n in doc["invoice_numbers"]),
        credit_note_numbers=tuple(str(n) for n in doc["credit_note_numbers"]),
        issued_at=doc["issued_at"].astimezone(UTC),
    )


# --- the store ----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvoice:
    """An invoice with the lines credit notes took from it so far (shown by the API)."""

    invoice: Invoice
    credited_lines: tuple[int, ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> IssuedInvoice:
        lines = tuple(sorted(int(n) for n in doc.get("credited_lines", [])))
        return cls(invoice_from_doc(doc), lines)


@dataclass(frozen=True)
class PostedEntry:
    """A journal entry as posted: with the client and provider it concerns."""

    entry: JournalEntry
    client_id: str
    provider_id: str


@dataclass(frozen=True)
class Subscription:
    request_id: str
    client_id: str
    terms: AgreedTerms
    accepted_at: datetime
    zone: str
    cancelled_at: datetime | None
    billed: tuple[str, ...]
    works: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Subscription:
        cancelled = doc.get("cancelled_at")
        return cls(
            request_id=str(doc["_id"]),
            client_id=str(doc["client_id"]),
            terms=AgreedTerms.model_validate(doc["terms"]),
            accepted_at=doc["accepted_at"].astimezone(UTC),
            zone=str(doc["zone"]),
            cancelled_at=cancelled.astimezone(UTC) if cancelled is not None else None,
            billed=tuple(doc.get("billed", [])),
            works=tuple(doc.get("works", [])),
        )


@dataclass(frozen=True)
class Counter:
    """One numbering sequence's counter document (see `domain.numbering`)."""

    id: str
    kind: DocumentKind
    year: int
    last: int
    last_at: datetime | None
    version: int
    pending: Mapping[str, Mapping[str, Any]]  # document id -> reservation

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Counter:
        last_at = doc.get("last_at")
        kind: DocumentKind = "credit_note" if doc["kind"] == "credit_note" else "invoice"
        return cls(
            id=str(doc["_id"]),
            kind=kind,
            year=int(doc["year"]),
            last=int(doc["last"]),
            last_at=last_at.astimezone(UTC) if last_at is not None else None,
            version=int(doc["version"]),
            pending=dict(doc.get("pending") or {}),
        )


_COLLECTION: dict[DocumentKind, str] = {"invoice": INVOICES, "credit_note": CREDIT_NOTES}


class BillingStore:
    """Documents in and out, and the conditional writes; no business decisions (those
    are in `domain`, the orchestration in `service`). Every method used on a
    per-event or per-request path reads and writes by `_id`."""

    def __init__(self, mongo: Mongo, *, entity: str) -> None:
        self.db = mongo.db
        self.entity = entity

    # --- tax profiles -------------------------------------------------------------

    async def get_profile(self, client_id: str) -> ClientTaxProfile | None:
        doc = await self.db[PROFILES].find_one({"_id": client_id})
        if doc is None:
            return None
        return ClientTaxProfile.model_validate(
            {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}
        )

    async def put_profile(self, client_id: str, profile: ClientTaxProfile, at: datetime) -> None:
        await self.db[PROFILES].update_one(
            {"_id": client_id},
            {"$set": {**profile.model_dump(mode="json"), "updated_at": at}},
            upsert=True,
        )

    # --- cap consumption --------------------------------------------------------------

    async def caps(self, client_id: str, year: int) -> tuple[CapConsumption, list[Document]]:
        """A client-year's consumption and its allocations as stored."""
        doc = await self.db[CAPS].find_one({"_id": cap_document_id(client_id, year)})
        return CapConsumption.from_document(doc, year), list((doc or {}).get("allocations", []))

    async def cap_state(self, client_id: str, year: int) -> CapConsumption:
        return (await self.caps(client_id, year))[0]

    async def allocate(
        self, client_id: str, before: CapConsumption, allocation: CapAllocation
    ) -> bool:
        """Apply `allocation` if the caps are still `before` (compare-and-set)."""
        flt, update, upsert = cap_update(client_id, before, allocation)
        try:
            done = await self.db[CAPS].find_one_and_update(
                flt, update, upsert=upsert, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            return False
        return done is not None

    async def release_allocation(
        self, client_id: str, current: CapConsumption, stored: Mapping[str, Any]
    ) -> bool:
        """Take back an allocation if the caps are still `current` (compare-and-set)."""
        flt, update = cap_release(client_id, current, stored)
        return bool((await self.db[CAPS].update_one(flt, update)).matched_count)

    async def all_caps(self) -> list[tuple[str, int, list[Document]]]:
        """(client, year, allocations) of every client-year: for `repair` only."""
        return [
            (str(d["client_id"]), int(d["year"]), list(d.get("allocations", [])))
            async for d in self.db[CAPS].find({})
        ]

    # --- numbering counters --------------------------------------------------------

    async def counter(self, kind: DocumentKind, year: int) -> Counter | None:
        doc = await self.db[COUNTERS].find_one({"_id": counter_id(self.entity, kind, year)})
        return Counter.from_doc(doc) if doc is not None else None

    async def counters(self) -> list[Counter]:
        """Every counter (a small collection: one per entity, kind and year)."""
        return [Counter.from_doc(d) async for d in self.db[COUNTERS].find({})]

    async def create_counter(self, kind: DocumentKind, year: int) -> None:
        """First number of a sequence: the counter starts after any document numbered
        before counters existed, and not before its instant (one query per counter and
        year, on the unique number index)."""
        last = (
            await self.db[_COLLECTION[kind]]
            .find({"entity": self.entity, "kind": kind, "year": year}, {"seq": 1, "issued_at": 1})
            .sort("seq", -1)
            .limit(1)
            .to_list()
        )
        try:
            await self.db[COUNTERS].insert_one(
                {
                    "_id": counter_id(self.entity, kind, year),
                    "entity": self.entity,
                    "kind": kind,
                    "year": year,
                    "last": int(last[0]["seq"]) if last else 0,
                    "last_at": last[0]["issued_at"] if last else None,
                    "version": 0,
                    "pending": {},
                }
            )
        except DuplicateKeyError:
            pass  # another replica created it

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
        """Record a reservation if nobody changed the counter since it was read."""
        changes: dict[str, Any] = {"last": last, f"pending.{doc_id}": dict(reservation)}
        if last_at is not None:
            changes["last_at"] = last_at
        update: dict[str, Any] = {"$set": changes, "$inc": {"version": 1}}
        if forget:
            update["$unset"] = {f"pending.{d}": "" for d in forget}
        res = await self.db[COUNTERS].update_one(
            {"_id": counter.id, "version": counter.version}, update
        )
        return res.matched_count == 1

    async def release(self, counter: Counter, doc_id: str, seq: int) -> None:
        await self.db[COUNTERS].update_one(
            {"_id": counter.id, f"pending.{doc_id}.seq": seq},
            {"$unset": {f"pending.{doc_id}": ""}},
        )

    # --- numbered documents ---------------------------------------------------------

    async def document(self, kind: DocumentKind, doc_id: str) -> Document | None:
        return await self.db[_COLLECTION[kind]].find_one({"_id": doc_id})

    async def number_of(self, kind: DocumentKind, doc_id: str) -> tuple[int, int] | None:
        """(year, seq) of a stored document, None if it is not stored."""
        doc = await self.db[_COLLECTION[kind]].find_one({"_id": doc_id}, {"seq": 1, "year": 1})
        return (int(doc["year"]), int(doc["seq"])) if doc is not None else None

    async def insert_numbered(
        self, kind: DocumentKind, doc: Mapping[str, Any]
    ) -> tuple[Document | None, bool]:
        """Insert a numbered document: (stored, created); (None, False) if its number is
        carried by another document."""
        coll = self.db[_COLLECTION[kind]]
        try:
            await coll.insert_one(dict(doc))
            return dict(doc), True
        except DuplicateKeyError:
            return await coll.find_one({"_id": doc["_id"]}), False

    async def mark_done(self, kind: DocumentKind, doc_id: str, step: str) -> None:
        """Record a finished follow-up step (`ledger_posted`, `cap_restored`)."""
        await self.db[_COLLECTION[kind]].update_one({"_id": doc_id}, {"$set": {step: True}})

    async def unfinished(self, kind: DocumentKind, step: str) -> list[str]:
        """Ids of documents whose follow-up `step` is not done: for `repair` only."""
        return await self._ids(_COLLECTION[kind], {step: False})

    # --- credit notes on their invoice ----------------------------------------------

    async def claim_lines(
        self, invoice_id: str, claim: Mapping[str, Any], line_nos: Sequence[int]
    ) -> bool:
        """Claim lines of an invoice for a credit note, unless one of them is claimed."""
        res = await self.db[INVOICES].update_one(
            {"_id": invoice_id, "credited_lines": {"$nin": list(line_nos)}},
            {
                "$push": {"credit_claims": dict(claim), "credit_pending": claim["credit_note_id"]},
                "$addToSet": {"credited_lines": {"$each": list(line_nos)}},
                "$inc": {"credit_pending_n": 1},
            },
        )
        return res.matched_count == 1

    async def queue_credit_note_event(
        self, invoice_id: str, credit_note_id: str, envelope: Envelope
    ) -> None:
        """The last step of a credit note: its event joins the invoice's outbox, behind
        the invoice's own event (one document feeds both, so they keep their order)."""
        await self.db[INVOICES].update_one(
            {"_id": invoice_id, "credit_pending": credit_note_id},
            Outbox.push(
                {"$pull": {"credit_pending": credit_note_id}, "$inc": {"credit_pending_n": -1}},
                [envelope],
            ),
        )

    async def invoices_with_pending_credit_notes(self) -> list[str]:
        return await self._ids(INVOICES, {"credit_pending_n": {"$gt": 0}})

    # --- ledger ---------------------------------------------------------------------

    async def post(self, entry: JournalEntry, client_id: str, provider_id: str) -> None:
        try:
            await self.db[LEDGER].insert_one(
                journal_to_doc(entry, client_id=client_id, provider_id=provider_id)
            )
        except DuplicateKeyError:
            pass  # posted already (replay or repair)

    async def ledger_entries(self, flt: Mapping[str, Any], limit: int = 500) -> list[PostedEntry]:
        cursor = self.db[LEDGER].find(dict(flt)).sort("occurred_at", 1).limit(limit)
        return [journal_from_doc(d) async for d in cursor]

    async def balances(self, flt: Mapping[str, Any] | None = None) -> dict[tuple[str, str], Money]:
        """Balance per (account, currency) = sum of postings (debit positive), in Mongo:
        $match / $unwind / $group($sum) on integer minor units."""
        pipeline: list[dict[str, Any]] = [
            {"$match": dict(flt or {})},
            {"$unwind": "$postings"},
            {
                "$group": {
                    "_id": {"account": "$postings.account", "currency": "$postings.currency"},
                    "minor": {"$sum": "$postings.minor"},
                    "postings": {"$sum": 1},
                }
            },
        ]
        out: dict[tuple[str, str], Money] = {}
        async for row in await self.db[LEDGER].aggregate(pipeline):
            cur = str(row["_id"]["currency"])
            units = Money.zero(cur).minor_units
            amount = Decimal(int(row["minor"])).scaleb(-units)
            out[(str(row["_id"]["account"]), cur)] = Money(amount=amount, currency=cur)
        return dict(sorted(out.items()))

    async def provider_payable(self, provider_id: str) -> dict[str, Money]:
        """What the platform owes a provider, per currency (positive)."""
        rows = await self.balances({"provider_id": provider_id})
        return {cur: -m for (acc, cur), m in rows.items() if acc == Account.PROVIDER_PAYABLE.value}

    # --- listings (HTTP) --------------------------------------------------------------

    async def issued_invoice(self, invoice_id: str) -> IssuedInvoice | None:
        doc = await self.document("invoice", invoice_id)
        return IssuedInvoice.from_doc(doc) if doc is not None else None

    async def credit_note(self, credit_note_id: str) -> CreditNote | None:
        doc = await self.document("credit_note", credit_note_id)
        return credit_note_from_doc(doc) if doc is not None else None

    async def list_invoices(self, flt: Mapping[str, Any], limit: int = 200) -> list[IssuedInvoice]:
        cursor = self.db[INVOICES].find(dict(flt)).sort("issued_at", -1).limit(limit)
        return [IssuedInvoice.from_doc(d) async for d in cursor]

    async def list_credit_notes(self, flt: Mapping[str, Any], limit: int = 200) -> list[CreditNote]:
        cursor = self.db[CREDIT_NOTES].find(dict(flt)).sort("issued_at", -1).limit(limit)
        return [credit_note_from_doc(d) async for d in cursor]

    async def all_invoices(self, flt: Mapping[str, Any] | None = None) -> list[Invoice]:
        return [invoice_from_doc(d) async for d in self.db[INVOICES].find(dict(flt or {}))]

    async def all_credit_notes(self, flt: Mapping[str, Any] | None = None) -> list[CreditNote]:
        return [credit_note_from_doc(d) async for d in self.db[CREDIT_NOTES].find(dict(flt or {}))]

    async def invoices_of(self, client_id: str, tax_year: int) -> list[Invoice]:
        """A client's invoices of a tax year (on the (tax_year, client_id) index)."""
        return await self.all_invoices({"client_id": client_id, "tax_year": tax_year})

    async def credit_notes_of(self, invoice_ids: Sequence[str]) -> list[CreditNote]:
        if not invoice_ids:
            return []
        return await self.all_credit_notes({"invoice_id": {"$in": list(invoice_ids)}})

    async def _ids(self, collection: str, flt: Mapping[str, Any]) -> list[str]:
        return [str(d["_id"]) async for d in self.db[collection].find(dict(flt), {"_id": 1})]

    # --- subscriptions --------------------------------------------------------------

    async def upsert_subscription(
        self,
        *,
        request_id: str,
        client_id: str,
        terms: AgreedTerms,
        accepted_at: datetime,
        zone: str,
    ) -> Subscription:
        await self.db[SUBSCRIPTIONS].update_one(
            {"_id": request_id},
            {
                "$setOnInsert": {
                    "client_id": client_id,
                    "provider_id": terms.provider_id,
                    "terms": terms.model_dump(mode="json"),
                    "accepted_at": accepted_at,
                    "zone": zone,
                    "cancelled_at": None,
                    "billed": [],
                    "works": [],
                    "active": True,
                    "next_due_at": accepted_at,
                }
            },
            upsert=True,
        )
        doc = await self.db[SUBSCRIPTIONS].find_one({"_id": request_id})
        assert doc is not None
        return Subscription.from_doc(doc)

    async def subscription(self, request_id: str) -> Subscription | None:
        doc = await self.db[SUBSCRIPTIONS].find_one({"_id": request_id})
        return Subscription.from_doc(doc) if doc is not None else None

    async def cancel_subscription(self, request_id: str, cancelled_at: datetime) -> bool:
        """Record the first cancellation; later ones change nothing."""
        res = await self.db[SUBSCRIPTIONS].update_one(
            {"_id": request_id, "cancelled_at": None}, {"$set": {"cancelled_at": cancelled_at}}
        )
        return res.modified_count > 0

    async def due_subscriptions(self, now: datetime) -> list[Subscription]:
        """For the scheduler's slow timer: ids by query (projection), documents by `_id`."""
        ids = await self._ids(SUBSCRIPTIONS, {"active": True, "next_due_at": {"$lte": now}})
        subs = [await self.subscription(str(i)) for i in ids]
        return [s for s in subs if s is not None]

    async def mark_periods_billed(
        self, request_id: str, keys: Sequence[str], next_due_at: datetime | None
    ) -> None:
        update: dict[str, Any] = {"$addToSet": {"billed": {"$each": list(keys)}}}
        update["$set"] = (
            {"next_due_at": next_due_at}
            if next_due_at is not None
            else {"active": False, "next_due_at": None}
        )
        await self.db[SUBSCRIPTIONS].update_one({"_id": request_id}, update)

    async def record_work(
        self, request_id: str, *, key: str, period_key: str, hours: Decimal, at: datetime
    ) -> Subscription:
        """Record completed work once (by key) and return the subscription after it."""
        await self.db[SUBSCRIPTIONS].update_one(
            {"_id": request_id, "works.key": {"$ne": key}},
            {
                "$push": {
                    "works": {"key": key, "period_key": period_key, "hours": str(hours), "at": at}
                }
            },
        )
        doc = await self.db[SUBSCRIPTIONS].find_one({"_id": request_id})
        if doc is None:
            raise NotFoundError(f"no subscription {request_id}")
        return Subscription.from_doc(doc)

    # --- tax certificates -----------------------------------------------------------

    async def certificate(self, certificate_id: str) -> Document | None:
        return await self.db[CERTIFICATES].find_one({"_id": certificate_id})

    async def insert_certificate(self, doc: Mapping[str, Any]) -> Document | None:
        """Insert a certificate once: the stored one (the first) is returned."""
        try:
            await self.db[CERTIFICATES].insert_one(dict(doc))
            return dict(doc)
        except DuplicateKeyError:
            return await self.certificate(str(doc["_id"]))

    async def certificates(self, client_id: str, year: int) -> list[TaxCertificate]:
        cursor = self.db[CERTIFICATES].find({"client_id": client_id, "year": year})
        return [certificate_from_doc(d) async for d in cursor.sort("provider_id", 1)]

    async def year_certified(self, year: int) -> bool:
        return await self.db[CERT_RUNS].find_one({"_id": year}) is not None

    async def clients_invoiced(self, year: int) -> list[str]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"tax_year": year}},
            {"$group": {"_id": "$client_id"}},
            {"$sort": {"_id": 1}},
        ]
        return [str(r["_id"]) async for r in await self.db[INVOICES].aggregate(pipeline)]

    async def mark_year_certified(self, year: int, at: datetime, clients: int) -> None:
        try:
            await self.db[CERT_RUNS].insert_one({"_id": year, "at": at, "clients": clients})
        except DuplicateKeyError:
            pass
