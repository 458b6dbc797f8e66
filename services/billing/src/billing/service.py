"""Billing's use cases: the only place that combines the domain, the store and the outbox.

- issue an invoice (package at acceptance, work completed, a subscription period),
- issue a credit note (whole lines of an invoice),
- bill a subscription's due periods,
- certify a year (annual tax certificates),
- repair what a crash interrupted.

Every step is idempotent (deterministic ids, conditional writes), so a retry, a
replay, another replica or `repair` finishes an interrupted use case. The store
(`store.BillingStore`) only reads and writes documents; the rules are in `domain`.
A document's events are written with it (outbox) and published right after the
write by `publish` (the relay's publish-now).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from delego_shared.events.base import Event
from delego_shared.events.common import AgreedTerms, SubscriptionPricing
from delego_shared.events.envelope import Envelope
from delego_shared.events.matching import MatchAccepted, WorkCompleted
from delego_shared.logging import get_logger
from delego_shared.messaging import Outbox, PublishNow, publish_nothing
from delego_shared.metrics import (
    BILLING_CREDIT_NOTES,
    count_invoice_issued,
    observe_accepted_to_invoiced,
    observe_completed_to_invoiced,
)

from .domain.certificate import TaxCertificate, build_certificate, certificate_id_for
from .domain.errors import BillingError
from .domain.invoice import CreditNote, Intervention, Invoice, build_credit_note, build_invoice
from .domain.ledger import journal_for_credit_note, journal_for_invoice
from .domain.money import with_minor_units
from .domain.numbering import (
    ENTITY_ZONE,
    DocumentKind,
    credit_note_number,
    document_year,
    invoice_number,
    issue_instant,
    plan_number,
    years_to_look_in,
)
from .domain.pricing import PricedLine, price_at_acceptance, price_work_completed
from .domain.rules import BillingRules
from .domain.subscription import period, period_containing, period_start, periods_due
from .domain.tax_credit import CapAllocation, CapConsumption, ClientTaxProfile
from .store import (
    CERTIFICATES,
    INVOICES,
    BillingStore,
    ConflictError,
    Counter,
    NotFoundError,
    Subscription,
    certificate_from_doc,
    certificate_to_doc,
    credit_note_from_doc,
    credit_note_to_doc,
    document_id,
    intervention_from_doc,
    intervention_to_doc,
    invoice_from_doc,
    invoice_to_doc,
    priced_from_doc,
    priced_to_doc,
    to_millis,
)

log = get_logger(__name__)

_MAX_ATTEMPTS = 500
_RESERVATION_STALE_S = 10.0


class BillingService:
    def __init__(
        self,
        store: BillingStore,
        *,
        rules: BillingRules,
        default_country: str,
        source: str,
        instance: str,
        publish: PublishNow = publish_nothing,
    ) -> None:
        self.store = store
        self.entity = store.entity
        self.rules = rules
        self.default_country = default_country
        self.source = source
        self.instance = instance
        self.publish = publish  # a document's events, right after the write that stored them

    def _envelope(self, data: Event, cause: Envelope | None) -> Envelope:
        data = with_minor_units(data)  # "0.00", never "0", on the topic
        if cause is not None:
            return cause.caused(data, self.source)
        return Envelope(data=data, source=self.source)

    @staticmethod
    async def _backoff(attempt: int) -> None:
        await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * attempt)))

    async def effective_profile(self, client_id: str) -> ClientTaxProfile:
        """The declared profile, or the default: resident of `default_country`, no household
        increase, no avance immédiate."""
        found = await self.store.get_profile(client_id)
        return found or ClientTaxProfile(residence_country=self.default_country)

    # --- matching's events ------------------------------------------------------------

    async def accept_match(self, e: MatchAccepted, cause: Envelope | None, now: datetime) -> None:
        """A package is billed at acceptance; a subscription starts (its first period is
        billed now); hourly and per-unit work waits for its completion."""
        terms = e.terms
        if isinstance(terms.pricing, SubscriptionPricing):
            sub = await self.store.upsert_subscription(
                request_id=e.request_id,
                client_id=e.client_id,
                terms=terms,
                accepted_at=e.accepted_at,
                zone=e.client_zone,
            )
            await self.bill_subscription(sub, now, cause)
            return
        lines = price_at_acceptance(terms, period(e.accepted_at, 0, e.client_zone))
        if not lines:
            return
        invoice, created = await self.issue_invoice(
            source=f"{e.request_id}|package",
            client_id=e.client_id,
            request_id=e.request_id,
            terms=terms,
            priced=lines,
            issued_at=now,
            interventions=[
                Intervention(_local_date(e.accepted_at, e.client_zone), None, lines[0].label_code)
            ],
            cause=cause,
        )
        if created:
            observe_accepted_to_invoiced(e.accepted_at, invoice.issued_at)

    async def complete_work(self, e: WorkCompleted, cause: Envelope | None, now: datetime) -> None:
        """Hourly / per-unit work, or a subscription's overage beyond its included hours."""
        if e.actual_minutes is not None:  # exact minutes: pricing rounds them, not hours
            e = e.model_copy(update={"actual_hours": Decimal(e.actual_minutes) / 60})
        terms = e.terms
        at = e.completed_at
        work_key = f"{e.request_id}|work|{at.isoformat()}"
        zone = ENTITY_ZONE
        if isinstance(terms.pricing, SubscriptionPricing):
            sub = await self.store.subscription(e.request_id)
            if sub is None:
                raise BillingError(f"work completed on unknown subscription {e.request_id}")
            zone = sub.zone
            if e.actual_hours is None:
                return
            p = period_containing(sub.accepted_at, at, sub.zone)
            sub = await self.store.record_work(
                e.request_id, key=work_key, period_key=p.key, hours=e.actual_hours, at=at
            )
            used_before = sum(
                (
                    Decimal(w["hours"])
                    for w in sub.works
                    if w["period_key"] == p.key
                    and (w["at"].astimezone(UTC), w["key"]) < (at, work_key)
                ),
                Decimal(0),
            )
            lines = price_work_completed(
                terms,
                actual_hours=e.actual_hours,
                units=e.units,
                period=p,
                period_hours_used_before=used_before,
            )
        else:
            lines = price_work_completed(terms, actual_hours=e.actual_hours, units=e.units)
        if not lines:
            return
        minutes = lines[0].intervention_minutes
        if minutes is None and e.actual_hours is not None:
            minutes = int((e.actual_hours * 60).to_integral_value())
        invoice, created = await self.issue_invoice(
            source=work_key,
            client_id=e.client_id,
            request_id=e.request_id,
            terms=terms,
            priced=lines,
            issued_at=now,
            interventions=[Intervention(_local_date(at, zone), minutes, lines[0].label_code)],
            cause=cause,
        )
        if created:
            observe_completed_to_invoiced(e.completed_at, invoice.issued_at)

    async def cancel_request(self, request_id: str, cancelled_at: datetime) -> None:
        if await self.store.cancel_subscription(request_id, cancelled_at):
            log.info("subscription.cancelled", request_id=request_id)

    # --- subscriptions --------------------------------------------------------------

    async def bill_subscription(
        self, sub: Subscription, now: datetime, cause: Envelope | None = None
    ) -> int:
        """Bill every period due by `now` that is not billed yet; returns how many."""
        pricing = sub.terms.pricing
        assert isinstance(pricing, SubscriptionPricing)
        due = periods_due(sub.accepted_at, sub.cancelled_at, now, sub.zone)
        billed = 0
        for p in due:
            if p.key in sub.billed:
                continue
            lines = price_at_acceptance(sub.terms, p)
            await self.issue_invoice(
                source=f"{sub.request_id}|period|{p.key}",
                client_id=sub.client_id,
                request_id=sub.request_id,
                terms=sub.terms,
                priced=lines,
                issued_at=now,
                interventions=[
                    Intervention(_local_date(p.start, sub.zone), None, lines[0].label_code)
                ],
                cause=cause,
            )
            billed += 1
        nxt: datetime | None = period_start(sub.accepted_at, len(due), sub.zone)
        if sub.cancelled_at is not None and nxt is not None and nxt >= sub.cancelled_at:
            nxt = None  # cancelled: the current period was the last one
        await self.store.mark_periods_billed(sub.request_id, [p.key for p in due], nxt)
        return billed

    async def bill_due_subscriptions(self, now: datetime) -> None:
        for sub in await self.store.due_subscriptions(now):
            try:
                await self.bill_subscription(sub, now)
            except BillingError as exc:
                log.error("subscription.unbillable", request_id=sub.request_id, error=str(exc))

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
        stored invoice (and publishes its events and finishes its ledger posting, if a
        crash or a lost reply interrupted them).

        `issued_at` is the candidate instant (now): the numbering decides the issue
        instant with the number, and with it the tax year, once; every retry reuses
        that reservation. Then the caps are allocated for that year (by document id,
        so a retry finds its allocation), the invoice inserted, the number released.
        """
        invoice_id = document_id("inv", source)
        profile = await self.effective_profile(client_id)
        inputs = {
            "invoice_id": invoice_id,
            "source": source,
            "client_id": client_id,
            "request_id": request_id,
            "terms": terms.model_dump(mode="json"),
            "priced": [priced_to_doc(p) for p in priced],
            "profile": profile.model_dump(mode="json"),
            "interventions": [intervention_to_doc(iv) for iv in interventions],
            "cause": {"id": cause.id, "correlation_id": cause.correlation_id} if cause else None,
        }
        doc, created = await self._numbered(
            "invoice", invoice_id, issued_at, lambda _seq, _at: {"invoice": inputs}
        )
        invoice = invoice_from_doc(doc)
        if created:
            log.info("invoice.issued", invoice_id=invoice_id, number=doc["number"])
            count_invoice_issued(ln.decision.code.value for ln in invoice.lines)
        # a replay publishes too: the first run may have stored the invoice and died (or
        # lost the store's reply) before publishing; with nothing pending this is one read.
        # A creation publishes what its insert stored, without reading it back.
        await self.publish(INVOICES, invoice_id, written=doc if created else None)
        await self._post_invoice(doc)
        return invoice, created

    async def _finish_invoice(self, reservation: Mapping[str, Any]) -> tuple[Any, bool]:
        """Allocate the caps of the reservation's year, then insert the invoice."""
        inp = reservation["invoice"]
        invoice_id, client_id = str(inp["invoice_id"]), str(inp["client_id"])
        issued_at = reservation["at"].astimezone(UTC)
        year, seq = document_year(issued_at), int(reservation["seq"])
        number = invoice_number(self.entity, year, seq)
        terms = AgreedTerms.model_validate(inp["terms"])
        priced = [priced_from_doc(p) for p in inp["priced"]]
        profile = ClientTaxProfile.model_validate(inp["profile"])
        interventions = [intervention_from_doc(iv) for iv in inp["interventions"]]

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

        before, allocation = await self._allocate(
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
        return await self.store.insert_numbered("invoice", doc)

    async def _post_invoice(self, doc: Mapping[str, Any]) -> None:
        if doc.get("ledger_posted"):
            return
        inv = invoice_from_doc(doc)
        await self.store.post(journal_for_invoice(inv), inv.client_id, inv.provider_id)
        await self.store.mark_done("invoice", inv.invoice_id, "ledger_posted")

    # --- cap consumption --------------------------------------------------------------

    async def _allocate(
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
            current, allocations = await self.store.caps(client_id, year)
            for raw in allocations:
                if raw.get("document_id") == document:  # applied before: a replay
                    stored = CapAllocation.from_document(year, raw)
                    return stored.replay_basis(current), stored
            allocation = allocation_for(current)
            if not allocation.lines:
                return current, allocation  # nothing counted: no write, nothing to contend on
            if await self.store.allocate(client_id, current, allocation):
                return current, allocation
            await self._backoff(attempt)
        raise ConflictError(f"cap consumption of {client_id}/{year}: too much contention")

    async def _release_allocation(self, client_id: str, year: int, document: str) -> bool:
        """Take back the allocation of a document that was never issued (retried on
        contention). False if it was not there."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            current, allocations = await self.store.caps(client_id, year)
            raw = next((a for a in allocations if a["document_id"] == document), None)
            if raw is None:
                return False
            if await self.store.release_allocation(client_id, current, raw):
                log.warning("cap.orphan_released", document_id=document, year=year)
                return True
            await self._backoff(attempt)
        raise ConflictError(f"cap consumption of {client_id}/{year}: too much contention")

    # --- numbering: one counter document per (entity, kind, year), by `_id` ----------

    async def _numbered(
        self,
        kind: DocumentKind,
        doc_id: str,
        candidate: datetime,
        payload: Callable[[int, datetime], dict[str, Any]],
    ) -> tuple[Any, bool]:
        """Store document `doc_id` under the next gapless number of (entity, kind, year),
        issued at the instant decided with that number: (stored document, created).

        ONE compare-and-set on the counter's version reserves the number, the issue
        instant (`issue_instant`: `candidate`, never before the previous number's) and
        `payload(seq, at)`, what finishes the document: the whole document
        (`{"doc": ...}`) or an invoice's inputs (`{"invoice": ...}`, see
        `_finish_invoice`). The counter is read BEFORE checking that the document does
        not exist, so one document never holds two reservations; a retry finds its
        reservation (in the previous year's counter too, early in a year) and reuses
        its number, instant and so tax year. Then the document is finished (inserted)
        and the reservation released. A reservation a crash left behind is finished by
        whoever meets it: a retry, the next numbering once it is stale, or `repair`.
        """
        candidate = to_millis(candidate)
        year = document_year(candidate)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            counter: Counter | None = None
            mine: Mapping[str, Any] | None = None
            for earlier in years_to_look_in(candidate)[:-1]:  # early January only
                prev = await self.store.counter(kind, earlier)
                if prev is not None and doc_id in prev.pending:
                    counter, mine = prev, prev.pending[doc_id]
            if counter is None:
                counter = await self.store.counter(kind, year)
                if counter is None:
                    await self.store.create_counter(kind, year)
                    continue
                mine = counter.pending.get(doc_id)
            if mine is None:
                existing = await self.store.document(kind, doc_id)
                if existing is not None:
                    return existing, False
                used, unused = await self._settle(counter)
                plan = plan_number(
                    counter.last,
                    [(d, int(r["seq"])) for d, r in counter.pending.items()],
                    used=used,
                    unused=unused,
                )
                if plan.taken is not None:  # a freed number keeps its place in time
                    at = counter.pending[plan.taken]["at"].astimezone(UTC)
                else:
                    at = issue_instant(candidate, counter.last_at)
                reservation = {
                    "seq": plan.seq,
                    "at": at,
                    "reserved_at": datetime.now(UTC),  # wall clock: staleness only
                    **payload(plan.seq, at),
                }
                reserved = await self.store.reserve(
                    counter,
                    doc_id,
                    reservation,
                    last=plan.last,
                    last_at=at if plan.taken is None else None,
                    forget=plan.forget,
                )
                if not reserved:  # another numbering came first: read again
                    await self._backoff(attempt)
                    continue
                mine = reservation
            seq = int(mine["seq"])
            stored, created = await self._finish(kind, mine)
            if stored is None or _carries(stored, counter.year, seq):
                # stored, or the number is carried by a document numbered outside this
                # counter (before counters existed): either way the number is used
                await self.store.release(counter, doc_id, seq)
            if stored is not None:
                return stored, created
        raise ConflictError(f"no {kind} number could be allocated for {doc_id}")

    async def _finish(self, kind: DocumentKind, reservation: Mapping[str, Any]) -> tuple[Any, bool]:
        """Store the document of a reservation: (stored, created); (None, False) if its
        number is carried by another document."""
        if "invoice" in reservation:
            return await self._finish_invoice(reservation)
        return await self.store.insert_numbered(kind, reservation["doc"])

    async def _settle(self, counter: Counter) -> tuple[set[str], set[str]]:
        """Sort a counter's reservations: (used, unused) numbers. A stale reservation
        whose document is missing is finished here (its document is stored)."""
        used: set[str] = set()
        unused: set[str] = set()
        now = datetime.now(UTC)
        for other, r in counter.pending.items():
            number = await self.store.number_of(counter.kind, other)
            if number is None:
                reserved_at = r.get("reserved_at", r["at"]).astimezone(UTC)
                if (now - reserved_at).total_seconds() < _RESERVATION_STALE_S:
                    continue  # in flight
                stored, _ = await self._finish(counter.kind, r)
                log.info("numbering.reservation_finished", document_id=other, seq=r["seq"])
                if stored is None:
                    used.add(other)
                    continue
                number = (int(stored["year"]), int(stored["seq"]))
            if number == (counter.year, int(r["seq"])):
                used.add(other)
            else:  # cannot happen with the version check; never leave the hole
                log.error("numbering.reservation_unused", document_id=other, seq=r["seq"])
                unused.add(other)
        return used, unused

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

        Steps, each idempotent so a retry (or `repair`) finishes an interrupted one:
        claim the lines on the invoice (conditional update), number and insert the
        credit note, give back the cap consumption, post the reversing journal entry,
        queue its event behind the invoice's.
        """
        doc = await self.store.document("invoice", invoice_id)
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
            if not await self.store.claim_lines(invoice_id, claim, chosen):
                claim = _claim(await self.store.document("invoice", invoice_id) or {}, cn_id)
                if claim is None:
                    raise ConflictError(
                        f"line(s) {chosen} of {invoice.number} were credited meanwhile"
                    )
        cn, created = await self._complete_credit_note(invoice, claim, cause)
        await self.publish(INVOICES, invoice_id)  # its event queues behind its invoice's
        return cn, created

    async def _complete_credit_note(
        self, invoice: Invoice, claim: Mapping[str, Any], cause: Envelope | None
    ) -> tuple[CreditNote, bool]:
        cn_id = str(claim["credit_note_id"])
        created = False
        stored = await self.store.document("credit_note", cn_id)
        if stored is None:

            def make(seq: int, at: datetime) -> dict[str, Any]:
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
            stored, created = await self._numbered(
                "credit_note", cn_id, claim["issued_at"].astimezone(UTC), make
            )
            if created:
                log.info("credit_note.issued", credit_note_id=cn_id, number=stored["number"])
                BILLING_CREDIT_NOTES.inc()
        cn = credit_note_from_doc(stored)
        if not stored.get("cap_restored"):
            if cn.cap_reversal.lines:
                await self._allocate(cn.client_id, cn.tax_year, cn_id, lambda _: cn.cap_reversal)
            await self.store.mark_done("credit_note", cn_id, "cap_restored")
        if not stored.get("ledger_posted"):
            await self.store.post(journal_for_credit_note(cn), cn.client_id, cn.provider_id)
            await self.store.mark_done("credit_note", cn_id, "ledger_posted")
        await self.store.queue_credit_note_event(
            invoice.invoice_id, cn_id, self._envelope(cn.to_event(), cause)
        )
        return cn, created

    # --- tax certificates -----------------------------------------------------------

    async def issue_certificates(
        self, client_id: str, year: int, issued_at: datetime, cause: Envelope | None = None
    ) -> list[TaxCertificate]:
        """One certificate per provider (with a SAP declaration) the client paid in `year`.
        Idempotent: an existing certificate is returned as it was issued."""
        invoices = await self.store.invoices_of(client_id, year)
        credit_notes = await self.store.credit_notes_of([i.invoice_id for i in invoices])
        out: list[TaxCertificate] = []
        for provider_id in sorted({i.provider_id for i in invoices}):
            cert_id = certificate_id_for(client_id, provider_id, year)
            existing = await self.store.certificate(cert_id)
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
                existing = await self.store.insert_certificate(
                    Outbox.attach(
                        certificate_to_doc(cert), [self._envelope(cert.to_event(), cause)]
                    )
                )
            if existing is not None:
                out.append(certificate_from_doc(existing))
                await self.publish(CERTIFICATES, str(existing["_id"]))
        return out

    async def certify_previous_year(self, now: datetime) -> int:
        """On (or after) 1 January: certificates for every client for the previous year."""
        year = document_year(now) - 1
        if await self.store.year_certified(year):
            return 0
        clients = await self.store.clients_invoiced(year)
        for client_id in clients:
            await self.issue_certificates(client_id, year, now)
        await self.store.mark_year_certified(year, now, len(clients))
        log.info("certificates.year_issued", year=year, clients=len(clients))
        return len(clients)

    # --- repair: finish what a crash interrupted ------------------------------------

    async def repair(self) -> int:
        """Finish interrupted steps (reserved numbers, cap allocations without their
        invoice, ledger postings, credit notes whose lines were claimed, cap
        give-backs). Idempotent; safe on every replica. A sweep for the slow timer: it
        finds candidates by query, then works on each by `_id`."""
        fixed = await self.repair_numbering()
        fixed += await self.repair_allocations()
        for inv_id in await self.store.unfinished("invoice", "ledger_posted"):
            doc = await self.store.document("invoice", inv_id)
            if doc is not None and not doc.get("ledger_posted"):
                await self._post_invoice(doc)
                fixed += 1
        for inv_id in await self.store.invoices_with_pending_credit_notes():
            fixed += await self._finish_credit_notes(inv_id)
        cn_ids = set(await self.store.unfinished("credit_note", "cap_restored"))
        cn_ids |= set(await self.store.unfinished("credit_note", "ledger_posted"))
        for cn_id in sorted(cn_ids):
            cn_doc = await self.store.document("credit_note", cn_id)
            if cn_doc is not None:
                fixed += await self._finish_credit_notes(str(cn_doc["invoice_id"]), only=cn_id)
        return fixed

    async def repair_numbering(self) -> int:
        """Finish the stale reservations of every counter and forget the finished ones."""
        fixed = 0
        for counter in await self.store.counters():
            if not counter.pending:
                continue
            used, _ = await self._settle(counter)
            for doc_id in used:
                await self.store.release(counter, doc_id, int(counter.pending[doc_id]["seq"]))
                fixed += 1
        return fixed

    async def repair_allocations(self) -> int:
        """Reconcile the caps with the invoices: an invoice allocation whose invoice was
        not issued in that year, and is not reserved either (a reservation is finished
        by `repair_numbering`, which runs first), is released."""
        released = 0
        for client_id, year, allocations in await self.store.all_caps():
            for raw in allocations:
                doc_id = str(raw["document_id"])
                if not doc_id.startswith("inv_"):
                    continue  # credit notes' give-backs follow a stored credit note
                # the reservation before the document: a reservation is released only
                # after its document is stored, so one of the two reads sees it
                counter = await self.store.counter("invoice", year)
                if counter is not None and doc_id in counter.pending:
                    continue  # in flight
                number = await self.store.number_of("invoice", doc_id)
                if number is not None and number[0] == year:
                    continue
                if await self._release_allocation(client_id, year, doc_id):
                    released += 1
        return released

    async def _finish_credit_notes(self, invoice_id: str, only: str | None = None) -> int:
        doc = await self.store.document("invoice", invoice_id)
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


def _claim(doc: Mapping[str, Any], cn_id: str) -> Mapping[str, Any] | None:
    return next((c for c in doc.get("credit_claims", []) if c["credit_note_id"] == cn_id), None)


def _carries(stored: Mapping[str, Any], year: int, seq: int) -> bool:
    """Whether a stored document holds number `seq` of `year`'s sequence."""
    return int(stored["seq"]) == seq and int(stored.get("year", year)) == year


def _local_date(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()
