"""Every MongoDB access of the billing service (and nothing else).

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
  document). Numbers are gapless and chronological: see `_insert_numbered`.
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
on the (tax_year, client_id) index), the first number of a counter, and `repair`, a sweep run by
the scheduler's slow timer (`find` + projection, then work by `_id`); the
indexes below are what they need on MongoDB.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from delego_shared.events.base import Event
from delego_shared.events.common import AgreedTerms
from delego_shared.events.envelope import Envelope
from delego_shared.logging import get_logger
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo
from delego_shared.types import Money
from pymongo import ReturnDocument

from .domain.certificate import TaxCertificate, build_certificate, certificate_id_for
from .domain.errors import BillingError
from .domain.invoice import (
    BilledLine,
    CreditNote,
    Intervention,
    Invoice,
    build_credit_note,
    build_invoice,
)
from .domain.ledger import Account, JournalEntry, journal_for_credit_note, journal_for_invoice
from .domain.money import amount_text, with_minor_units
from .domain.numbering import (
    DocumentKind,
    counter_id,
    credit_note_number,
    document_year,
    invoice_number,
    issue_instant,
    plan_number,
    years_to_look_in,
)
from .domain.pricing import PricedLine
from .domain.rules import BillingRules
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

_MAX_ATTEMPTS = 500
_RESERVATION_STALE = timedelta(seconds=10)


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
    return {
        "total_net": _money(doc.total_net),
        "total_vat": _money(doc.total_vat),
        "total_gross": _money(doc.total_gross),
        "commission": _money(doc.commission),
        "provider_payout": _money(doc.provider_payout),
        "eligible_amount": _money(doc.eligible_amount),
        "tax_credit": _money(doc.tax_credit),
    }


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
        "interventions": [_intervention_doc(iv) for iv in inv.interventions],
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
        interventions=tuple(_intervention(iv) for iv in doc.get("interventions", [])),
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


def _priced_doc(p: PricedLine) -> Document:
    return {
        "kind": p.kind,
        "label_code": p.label_code,
        "quantity": str(p.quantity),
        "unit_price": _money(p.unit_price),
        "net": _money(p.net),
        "intervention_minutes": p.intervention_minutes,
        "period_key": p.period_key,
    }


def _priced(doc: Mapping[str, Any]) -> PricedLine:
    return PricedLine(
        kind=str(doc["kind"]),
        label_code=str(doc["label_code"]),
        quantity=Decimal(doc["quantity"]),
        unit_price=_m(doc["unit_price"]),
        net=_m(doc["net"]),
        intervention_minutes=doc.get("intervention_minutes"),
        period_key=doc.get("period_key"),
    )


def _intervention_doc(iv: Intervention) -> Document:
    return {"on": iv.on.isoformat(), "minutes": iv.minutes, "label_code": iv.label_code}


def _intervention(doc: Mapping[str, Any]) -> Intervention:
    return Intervention(date.fromisoformat(doc["on"]), doc.get("minutes"), str(doc["label_code"]))


def _carries(stored: Mapping[str, Any], year: int, seq: int) -> bool:
    """Whether a stored document holds number `seq` of `year`'s sequence."""
    return int(stored["seq"]) == seq and int(stored.get("year", year)) == year


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
        "interventions": [
            {"on": iv.on.isoformat(), "minutes": iv.minutes, "label_code": iv.label_code}
            for iv in cert.interventions
        ],
        "total_minutes": cert.total_minutes,
        "invoice_numbers": list(cert.invoice_numbers),
        "credit_note_numbers": list(cert.credit_note_numbers),
        "issued_at": cert.issued_at,
    }


def public(doc: Mapping[str, Any] | None) -> Document | None:
    """A stored document as the API shows it: no outbox or internal bookkeeping."""
    out = Outbox.strip(dict(doc) if doc is not None else None)
    if out is None:
        return None
    for k in ("credit_claims", "credit_pending", "credit_pending_n", "issued_by", "source"):
        out.pop(k, None)
    out["id"] = out.pop("_id")
    return out


# --- the store ----------------------------------------------------------------------


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


EnvelopeFactory = Callable[[Event], Envelope]


class BillingStore:
    def __init__(
        self,
        mongo: Mongo,
        *,
        entity: str,
        rules: BillingRules,
        default_country: str,
        source: str,
        instance: str,
    ) -> None:
        self.db = mongo.db
        self.entity = entity
        self.rules = rules
        self.default_country = default_country
        self.source = source
        self.instance = instance

    def _envelope(self, data: Event, cause: Envelope | None) -> Envelope:
        data = with_minor_units(data)  # "0.00", never "0", on the topic
        if cause is not None:
            return cause.caused(data, self.source)
        return Envelope(data=data, source=self.source)

    @staticmethod
    async def _backoff(attempt: int) -> None:
        await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))

    # --- tax profiles -------------------------------------------------------------

    async def get_profile(self, client_id: str) -> ClientTaxProfile | None:
        doc = await self.db[PROFILES].find_one({"_id": client_id})
        if doc is None:
            return None
        return ClientTaxProfile.model_validate(
            {k: v for k, v in doc.items() if k not in ("_id", "updated_at")}
        )

    async def effective_profile(self, client_id: str) -> ClientTaxProfile:
        """The declared profile, or the default: resident of `default_country`, no household
        increase, no avance immédiate."""
        found = await self.get_profile(client_id)
        return found or ClientTaxProfile(residence_country=self.default_country)

    async def put_profile(self, client_id: str, profile: ClientTaxProfile, at: datetime) -> None:
        await self.db[PROFILES].update_one(
            {"_id": client_id},
            {"$set": {**profile.model_dump(mode="json"), "updated_at": at}},
            upsert=True,
        )

    # --- cap consumption --------------------------------------------------------------

    async def cap_state(self, client_id: str, year: int) -> CapConsumption:
        doc = await self.db[CAPS].find_one({"_id": cap_document_id(client_id, year)})
        return CapConsumption.from_document(doc, year)

    async def _apply_allocation(
        self,
        client_id: str,
        year: int,
        document: str,
        allocation_for: Callable[[CapConsumption], CapAllocation],
    ) -> tuple[CapConsumption, CapAllocation]:
        """Compare-and-set the client-year's caps with the allocation decided on the state
        read. Returns (state decided on, allocation) — on a replay, the stored allocation
        and the state it was decided on (so amounts and reason texts come out the same)."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            doc = await self.db[CAPS].find_one({"_id": cap_document_id(client_id, year)})
            current = CapConsumption.from_document(doc, year)
            for raw in (doc or {}).get("allocations", []):
                if raw.get("document_id") == document:  # applied before: a replay
                    stored = CapAllocation.from_document(year, raw)
                    return stored.replay_basis(current), stored
            allocation = allocation_for(current)
            if not allocation.lines:
                return current, allocation  # nothing counted: no write, nothing to contend on
            flt, update, upsert = cap_update(client_id, current, allocation)
            try:
                done = await self.db[CAPS].find_one_and_update(
                    flt, update, upsert=upsert, return_document=ReturnDocument.AFTER
                )
            except DuplicateKeyError:
                done = None
            if done is not None:
                return current, allocation
            await self._backoff(attempt)
        raise ConflictError(f"cap consumption of {client_id}/{year}: too much contention")

    async def _release_allocation(self, client_id: str, year: int, document: str) -> bool:
        """Take back the allocation of a document that was never issued (conditional on
        the caps' version, retried on contention). False if it was not there."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            doc = await self.db[CAPS].find_one({"_id": cap_document_id(client_id, year)})
            raw = next(
                (a for a in (doc or {}).get("allocations", []) if a["document_id"] == document),
                None,
            )
            if doc is None or raw is None:
                return False
            current = CapConsumption.from_document(doc, year)
            flt, update = cap_release(client_id, current, raw)
            if (await self.db[CAPS].update_one(flt, update)).matched_count:
                log.warning("cap.orphan_released", document_id=document, year=year)
                return True
            await self._backoff(attempt)
        raise ConflictError(f"cap consumption of {client_id}/{year}: too much contention")

    # --- numbering: one counter document per (entity, kind, year), by `_id` ----------

    async def _insert_numbered(
        self,
        collection: str,
        kind: DocumentKind,
        doc_id: str,
        candidate: datetime,
        payload: Callable[[int, datetime], Document],
    ) -> tuple[Document, bool]:
        """Store document `doc_id` under the next gapless number of (entity, kind, year),
        issued at the instant decided with that number: (stored document, created).

        ONE compare-and-set on the counter's version reserves the number, the issue
        instant (`issue_instant`: `candidate`, never before the previous number's) and
        `payload(seq, at)`, what finishes the document: the whole document
        (`{"doc": ...}`) or the inputs of an invoice (`{"invoice": ...}`, see
        `_finish_invoice`). The counter is read BEFORE checking that the document does
        not exist, so one document never holds two reservations; a retry finds its
        reservation (in the previous year's counter too, early in a year) and reuses
        its number, instant and so tax year. Then the document is finished (inserted)
        and the reservation released. A reservation a crash left behind is finished by
        whoever meets it: a retry, the next numbering once it is stale, or `repair`.
        """
        coll, counters = self.db[collection], self.db[COUNTERS]
        candidate = to_millis(candidate)
        year = document_year(candidate)
        cid = counter_id(self.entity, kind, year)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            counter: Document | None = None
            mine: Mapping[str, Any] | None = None
            for earlier in years_to_look_in(candidate)[:-1]:  # early January only
                prev = await counters.find_one({"_id": counter_id(self.entity, kind, earlier)})
                if prev is not None and doc_id in (prev.get("pending") or {}):
                    counter, mine = prev, prev["pending"][doc_id]
            if counter is None:
                counter = await counters.find_one({"_id": cid})
                if counter is None:
                    await self._create_counter(collection, kind, year)
                    continue
                mine = (counter.get("pending") or {}).get(doc_id)
            if mine is None:
                existing = await coll.find_one({"_id": doc_id})
                if existing is not None:
                    return existing, False
                pending: dict[str, Any] = dict(counter.get("pending") or {})
                used, unused = await self._settle(coll, counter)
                plan = plan_number(
                    int(counter["last"]),
                    [(d, int(r["seq"])) for d, r in pending.items()],
                    used=used,
                    unused=unused,
                )
                if plan.taken is not None:  # a freed number keeps its place in time
                    at = pending[plan.taken]["at"].astimezone(UTC)
                else:
                    last_at = counter.get("last_at")
                    at = issue_instant(candidate, last_at.astimezone(UTC) if last_at else None)
                reservation = {
                    "seq": plan.seq,
                    "at": at,
                    "reserved_at": datetime.now(UTC),  # wall clock: staleness only
                    **payload(plan.seq, at),
                }
                changes: dict[str, Any] = {"last": plan.last, f"pending.{doc_id}": reservation}
                if plan.taken is None:
                    changes["last_at"] = at
                update: dict[str, Any] = {"$set": changes, "$inc": {"version": 1}}
                if plan.forget:
                    update["$unset"] = {f"pending.{d}": "" for d in plan.forget}
                res = await counters.update_one({"_id": cid, "version": counter["version"]}, update)
                if res.matched_count == 0:  # another numbering came first: read again
                    await self._backoff(attempt)
                    continue
                mine = reservation
            seq = int(mine["seq"])
            stored, created = await self._finish(coll, mine)
            if stored is None or _carries(stored, int(counter["year"]), seq):
                # stored, or the number is carried by a document numbered outside this
                # counter (before counters existed): either way the number is used
                await self._release(str(counter["_id"]), doc_id, seq)
            if stored is not None:
                return stored, created
        raise ConflictError(f"no {kind} number could be allocated for {doc_id}")

    async def _finish(
        self, coll: Any, reservation: Mapping[str, Any]
    ) -> tuple[Document | None, bool]:
        """Store the document of a reservation: (stored, created); (None, False) if its
        number is carried by another document."""
        if "invoice" in reservation:
            return await self._finish_invoice(reservation)
        return await self._insert_reserved(coll, reservation["doc"])

    async def _insert_reserved(
        self, coll: Any, doc: Mapping[str, Any]
    ) -> tuple[Document | None, bool]:
        """Insert a reserved document: (stored, created); (None, False) if its number is
        carried by another document."""
        try:
            await coll.insert_one(dict(doc))
            return dict(doc), True
        except DuplicateKeyError:
            return await coll.find_one({"_id": doc["_id"]}), False

    async def _settle(self, coll: Any, counter: Mapping[str, Any]) -> tuple[set[str], set[str]]:
        """Sort a counter's reservations: (used, unused) numbers. A stale reservation
        whose document is missing is finished here (its document is stored)."""
        used: set[str] = set()
        unused: set[str] = set()
        now = datetime.now(UTC)
        year = int(counter["year"])
        for other, r in dict(counter.get("pending") or {}).items():
            stored = await coll.find_one({"_id": other}, {"seq": 1, "year": 1})
            if stored is None:
                reserved_at = r.get("reserved_at", r["at"]).astimezone(UTC)
                if now - reserved_at < _RESERVATION_STALE:
                    continue  # in flight
                stored, _ = await self._finish(coll, r)
                log.info("numbering.reservation_finished", document_id=other, seq=r["seq"])
                if stored is None:
                    used.add(other)
                    continue
            if _carries(stored, year, int(r["seq"])):
                used.add(other)
            else:  # cannot happen with the version check; never leave the hole
                log.error("numbering.reservation_unused", document_id=other, seq=r["seq"])
                unused.add(other)
        return used, unused

    async def _release(self, cid: str, doc_id: str, seq: int) -> None:
        await self.db[COUNTERS].update_one(
            {"_id": cid, f"pending.{doc_id}.seq": seq}, {"$unset": {f"pending.{doc_id}": ""}}
        )

    async def _create_counter(self, collection: str, kind: DocumentKind, year: int) -> None:
        """First number of a sequence: the counter starts after any document numbered
        before counters existed, and not before its instant (one query per counter and
        year, on the unique number index)."""
        last = (
            await self.db[collection]
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

    async def repair_numbering(self) -> int:
        """Finish the stale reservations of every counter (a small collection: one
        document per entity, kind and year) and forget the finished ones."""
        fixed = 0
        colls = {"invoice": INVOICES, "credit_note": CREDIT_NOTES}
        async for counter in self.db[COUNTERS].find(
            {}, {"_id": 1, "kind": 1, "year": 1, "pending": 1}
        ):
            pending = dict(counter.get("pending") or {})
            if not pending:
                continue
            coll = self.db[colls[str(counter["kind"])]]
            used, _ = await self._settle(coll, counter)
            for doc_id in used:
                await self._release(str(counter["_id"]), doc_id, int(pending[doc_id]["seq"]))
                fixed += 1
        return fixed

    async def repair_allocations(self) -> int:
        """Reconcile the caps with the invoices: an invoice allocation whose invoice was
        not issued in that year, and is not reserved either (a reservation is finished
        by `repair_numbering`, which runs first), is released. A sweep of the caps
        collection (one document per client-year) for the slow timer."""
        released = 0
        async for cap in self.db[CAPS].find({}):
            year, client_id = int(cap["year"]), str(cap["client_id"])
            for raw in list(cap.get("allocations", [])):
                doc_id = str(raw["document_id"])
                if not doc_id.startswith("inv_"):
                    continue  # credit notes' give-backs follow a stored credit note
                # the reservation before the document: a reservation is released only
                # after its document is stored, so one of the two reads sees it
                cid = counter_id(self.entity, "invoice", year)
                counter = await self.db[COUNTERS].find_one({"_id": cid}, {"pending": 1})
                if doc_id in ((counter or {}).get("pending") or {}):
                    continue  # in flight
                inv = await self.db[INVOICES].find_one({"_id": doc_id}, {"tax_year": 1})
                if inv is not None and int(inv["tax_year"]) == year:
                    continue
                if await self._release_allocation(client_id, year, doc_id):
                    released += 1
        return released

    # --- invoices --------------------------------------------------------------------

    async def issue_invoice(
        self,
        *,
        source: str,
        client_id: str,
        request_id: str,
        terms: AgreedTerms,
        priced: Sequence[PricedLine],
        issued_at: datetime,
        interventions: Sequence[Intervention] = (),
        cause: Envelope | None = None,
    ) -> tuple[Invoice, bool]:
        """Issue the invoice of `source` once: (invoice, created). A replay returns the
        stored invoice (and finishes its ledger posting if a crash interrupted it).

        `issued_at` is the candidate instant (now): the numbering decides the issue
        instant with the number, and with it the tax year, once; every retry reuses
        that reservation. Then the caps are allocated for that year (by document id,
        so a retry finds its allocation), the invoice inserted and the number released.
        """
        invoice_id = document_id("inv", source)
        profile = await self.effective_profile(client_id)
        inputs = {
            "invoice_id": invoice_id,
            "source": source,
            "client_id": client_id,
            "request_id": request_id,
            "terms": terms.model_dump(mode="json"),
            "priced": [_priced_doc(p) for p in priced],
            "profile": profile.model_dump(mode="json"),
            "interventions": [_intervention_doc(iv) for iv in interventions],
            "cause": ({"id": cause.id, "correlation_id": cause.correlation_id} if cause else None),
        }
        doc, created = await self._insert_numbered(
            INVOICES, "invoice", invoice_id, issued_at, lambda _seq, _at: {"invoice": inputs}
        )
        if created:
            log.info("invoice.issued", invoice_id=invoice_id, number=doc["number"])
        await self._post_invoice(doc)
        return invoice_from_doc(doc), created

    async def _finish_invoice(self, reservation: Mapping[str, Any]) -> tuple[Document | None, bool]:
        """Allocate the caps of the reservation's year, then insert the invoice."""
        inp = reservation["invoice"]
        invoice_id, client_id = str(inp["invoice_id"]), str(inp["client_id"])
        issued_at = reservation["at"].astimezone(UTC)
        year, seq = document_year(issued_at), int(reservation["seq"])
        number = invoice_number(self.entity, year, seq)
        terms = AgreedTerms.model_validate(inp["terms"])
        priced = [_priced(p) for p in inp["priced"]]
        profile = ClientTaxProfile.model_validate(inp["profile"])
        interventions = [_intervention(iv) for iv in inp["interventions"]]

        def build(state: CapConsumption, replay: CapAllocation | None) -> Invoice:
            inv, _ = build_invoice(
                invoice_id=invoice_id,
                number=number,
                client_id=client_id,
                request_id=str(inp["request_id"]),
                terms=terms,
                priced=priced,
                profile=profile,
                consumption=state,
                rules=self.rules,
                issued_at=issued_at,
                interventions=interventions,
                replay=replay,
            )
            return inv

        before, allocation = await self._apply_allocation(
            client_id, year, invoice_id, lambda state: build(state, None).cap_allocation
        )
        inv = build(before, allocation)
        cause = inp.get("cause")
        event = with_minor_units(inv.to_event())
        envelope = (
            Envelope(
                data=event,
                source=self.source,
                correlation_id=cause["correlation_id"],
                causation_id=cause["id"],
            )
            if cause
            else Envelope(data=event, source=self.source)
        )
        doc = Outbox.attach(
            invoice_to_doc(
                inv, entity=self.entity, seq=seq, source=str(inp["source"]), instance=self.instance
            ),
            [envelope],
        )
        return await self._insert_reserved(self.db[INVOICES], doc)

    async def _post_invoice(self, doc: Mapping[str, Any]) -> None:
        if doc.get("ledger_posted"):
            return
        inv = invoice_from_doc(doc)
        await self._post(journal_for_invoice(inv), inv.client_id, inv.provider_id)
        await self.db[INVOICES].update_one(
            {"_id": inv.invoice_id}, {"$set": {"ledger_posted": True}}
        )

    async def _post(self, entry: JournalEntry, client_id: str, provider_id: str) -> None:
        try:
            await self.db[LEDGER].insert_one(
                journal_to_doc(entry, client_id=client_id, provider_id=provider_id)
            )
        except DuplicateKeyError:
            pass  # posted already (replay or repair)

    async def invoice_doc(self, invoice_id: str) -> Document | None:
        return await self.db[INVOICES].find_one({"_id": invoice_id})

    async def list_invoices(self, flt: Mapping[str, Any], limit: int = 200) -> list[Document]:
        cursor = self.db[INVOICES].find(dict(flt)).sort("issued_at", -1).limit(limit)
        return await cursor.to_list()

    async def all_invoices(self, flt: Mapping[str, Any] | None = None) -> list[Invoice]:
        return [invoice_from_doc(d) async for d in self.db[INVOICES].find(dict(flt or {}))]

    # --- credit notes ---------------------------------------------------------------

    async def issue_credit_note(
        self,
        invoice_id: str,
        *,
        reason_code: str,
        line_nos: Sequence[int] | None,
        issued_at: datetime,
        cause: Envelope | None = None,
    ) -> tuple[CreditNote, bool]:
        """Credit whole lines of an invoice (all remaining by default), never a line twice.

        Steps, each idempotent so a retry (or the scheduler's repair) finishes an
        interrupted one: claim the lines on the invoice (conditional update), insert
        the numbered credit note with its event, give back the cap consumption,
        post the reversing journal entry.
        """
        doc = await self.db[INVOICES].find_one({"_id": invoice_id})
        if doc is None:
            raise NotFoundError(f"no invoice {invoice_id}")
        invoice = invoice_from_doc(doc)
        credited = {int(n) for n in doc.get("credited_lines", [])}
        chosen = (
            sorted(set(line_nos))
            if line_nos
            else [ln.line_no for ln in invoice.lines if ln.line_no not in credited]
        )
        if not chosen:
            raise ConflictError(f"nothing left to credit on invoice {invoice.number}")
        cn_id = document_id("cn", invoice_id, ",".join(map(str, chosen)))
        claim = _claim(doc, cn_id)
        if claim is None:
            issued_at = to_millis(issued_at)
            # validate (unknown lines, lines credited already, dates) before claiming
            build_credit_note(
                invoice=invoice,
                credit_note_id=cn_id,
                number=credit_note_number(self.entity, document_year(issued_at), 1),
                issued_at=issued_at,
                reason_code=reason_code,
                line_nos=chosen,
                already_credited=credited,
            )
            claim = {
                "credit_note_id": cn_id,
                "line_nos": chosen,
                "reason_code": reason_code,
                "issued_at": issued_at,
            }
            res = await self.db[INVOICES].update_one(
                {"_id": invoice_id, "credited_lines": {"$nin": chosen}},
                {
                    "$push": {"credit_claims": claim, "credit_pending": cn_id},
                    "$addToSet": {"credited_lines": {"$each": chosen}},
                    "$inc": {"credit_pending_n": 1},
                },
            )
            if res.matched_count == 0:
                again = await self.db[INVOICES].find_one({"_id": invoice_id})
                claim = _claim(again or {}, cn_id)
                if claim is None:
                    raise ConflictError(
                        f"line(s) {chosen} of {invoice.number} were credited meanwhile"
                    )
        return await self._complete_credit_note(invoice, claim, cause)

    async def _complete_credit_note(
        self, invoice: Invoice, claim: Mapping[str, Any], cause: Envelope | None
    ) -> tuple[CreditNote, bool]:
        cn_id = str(claim["credit_note_id"])
        created = False
        stored = await self.db[CREDIT_NOTES].find_one({"_id": cn_id})
        if stored is None:

            def make(seq: int, at: datetime) -> Document:
                cn = build_credit_note(
                    invoice=invoice,
                    credit_note_id=cn_id,
                    number=credit_note_number(self.entity, document_year(at), seq),
                    issued_at=at,
                    reason_code=str(claim["reason_code"]),
                    line_nos=[int(n) for n in claim["line_nos"]],
                )
                doc = credit_note_to_doc(cn, entity=self.entity, seq=seq, instance=self.instance)
                return {"doc": doc}

            # the claim's instant is the candidate; the numbering decides the issue instant
            stored, created = await self._insert_numbered(
                CREDIT_NOTES, "credit_note", cn_id, claim["issued_at"].astimezone(UTC), make
            )
            if created:
                log.info("credit_note.issued", credit_note_id=cn_id, number=stored["number"])
        cn = credit_note_from_doc(stored)
        if not stored.get("cap_restored"):
            if cn.cap_reversal.lines:
                await self._apply_allocation(
                    cn.client_id, cn.tax_year, cn_id, lambda _: cn.cap_reversal
                )
            await self.db[CREDIT_NOTES].update_one({"_id": cn_id}, {"$set": {"cap_restored": True}})
        if not stored.get("ledger_posted"):
            await self._post(journal_for_credit_note(cn), cn.client_id, cn.provider_id)
            await self.db[CREDIT_NOTES].update_one(
                {"_id": cn_id}, {"$set": {"ledger_posted": True}}
            )
        # the last step publishes: the event joins the invoice's outbox, behind the
        # invoice's own event (one document feeds both, so they keep their order)
        await self.db[INVOICES].update_one(
            {"_id": invoice.invoice_id, "credit_pending": cn_id},
            Outbox.push(
                {"$pull": {"credit_pending": cn_id}, "$inc": {"credit_pending_n": -1}},
                [self._envelope(cn.to_event(), cause)],
            ),
        )
        return cn, created

    async def credit_note_doc(self, credit_note_id: str) -> Document | None:
        return await self.db[CREDIT_NOTES].find_one({"_id": credit_note_id})

    async def list_credit_notes(self, flt: Mapping[str, Any], limit: int = 200) -> list[Document]:
        cursor = self.db[CREDIT_NOTES].find(dict(flt)).sort("issued_at", -1).limit(limit)
        return await cursor.to_list()

    async def all_credit_notes(self, flt: Mapping[str, Any] | None = None) -> list[CreditNote]:
        return [credit_note_from_doc(d) async for d in self.db[CREDIT_NOTES].find(dict(flt or {}))]

    # --- repair: finish what a crash interrupted ------------------------------------

    async def repair(self) -> int:
        """Finish interrupted steps (reserved numbers, ledger postings, credit notes whose
        lines were claimed, cap give-backs). Idempotent; safe on every replica. A sweep
        for the slow timer: it finds candidates with `find` + projection, then works on
        each by `_id`."""
        fixed = await self.repair_numbering()
        fixed += await self.repair_allocations()
        for inv_id in await self._ids(INVOICES, {"ledger_posted": False}):
            doc = await self.db[INVOICES].find_one({"_id": inv_id})
            if doc is not None and not doc.get("ledger_posted"):
                await self._post_invoice(doc)
                fixed += 1
        for inv_id in await self._ids(INVOICES, {"credit_pending_n": {"$gt": 0}}):
            fixed += await self._finish_credit_notes(inv_id)
        cn_ids = set(await self._ids(CREDIT_NOTES, {"cap_restored": False}))
        cn_ids |= set(await self._ids(CREDIT_NOTES, {"ledger_posted": False}))
        for cn_id in sorted(cn_ids):
            cn_doc = await self.db[CREDIT_NOTES].find_one({"_id": cn_id}, {"invoice_id": 1})
            if cn_doc is not None:
                fixed += await self._finish_credit_notes(str(cn_doc["invoice_id"]), only=cn_id)
        return fixed

    async def _ids(self, collection: str, flt: Mapping[str, Any]) -> list[Any]:
        return [d["_id"] async for d in self.db[collection].find(dict(flt), {"_id": 1})]

    async def _finish_credit_notes(self, invoice_id: str, only: str | None = None) -> int:
        doc = await self.db[INVOICES].find_one({"_id": invoice_id})
        if doc is None:
            return 0
        invoice = invoice_from_doc(doc)
        done = 0
        for cn_id in [only] if only else list(doc.get("credit_pending", [])):
            claim = _claim(doc, cn_id)
            if claim is not None:
                await self._complete_credit_note(invoice, claim, None)
                done += 1
        return done

    # --- ledger ---------------------------------------------------------------------

    async def ledger_entries(self, flt: Mapping[str, Any], limit: int = 500) -> list[Document]:
        cursor = self.db[LEDGER].find(dict(flt)).sort("occurred_at", 1).limit(limit)
        return await cursor.to_list()

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

    async def issue_certificates(
        self, client_id: str, year: int, issued_at: datetime, cause: Envelope | None = None
    ) -> list[Document]:
        """One certificate per provider (with a SAP declaration) the client paid in `year`.
        Idempotent: an existing certificate is returned as it was issued."""
        invoices = await self.all_invoices({"client_id": client_id, "tax_year": year})
        ids = [i.invoice_id for i in invoices]
        credit_notes = await self.all_credit_notes({"invoice_id": {"$in": ids}}) if ids else []
        out: list[Document] = []
        for provider_id in sorted({i.provider_id for i in invoices}):
            cert_id = certificate_id_for(client_id, provider_id, year)
            existing = await self.db[CERTIFICATES].find_one({"_id": cert_id})
            if existing is None:
                try:
                    cert = build_certificate(
                        client_id=client_id,
                        provider_id=provider_id,
                        year=year,
                        invoices=invoices,
                        credit_notes=credit_notes,
                        issued_at=to_millis(issued_at),
                    )
                except BillingError:
                    continue  # provider without SAP declaration, mixed currencies: none due
                doc = Outbox.attach(
                    certificate_to_doc(cert), [self._envelope(cert.to_event(), cause)]
                )
                try:
                    await self.db[CERTIFICATES].insert_one(doc)
                    existing = doc
                except DuplicateKeyError:
                    existing = await self.db[CERTIFICATES].find_one({"_id": cert_id})
            if existing is not None:
                out.append(existing)
        return out

    async def certificates(self, client_id: str, year: int) -> list[Document]:
        cursor = self.db[CERTIFICATES].find({"client_id": client_id, "year": year})
        return await cursor.sort("provider_id", 1).to_list()

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


def _claim(doc: Mapping[str, Any], cn_id: str) -> Mapping[str, Any] | None:
    return next((c for c in doc.get("credit_claims", []) if c["credit_note_id"] == cn_id), None)
