"""Event handlers and the scheduler: the edge between matching's events and the store.

When each pricing model bills (see `domain.pricing`):
- package: at MatchAccepted (invoice id from request id + "package");
- hourly / per unit: at WorkCompleted (request id + "work" + completion instant);
- subscription: every period from acceptance until cancellation, by the
  scheduler (request id + "period" + period key), the first one right at
  MatchAccepted; overage hours at WorkCompleted.

Every invoice id is derived from its source, so a replayed event, a restarted
scheduler or two replicas billing the same period all land on the same
document: nothing is billed twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from delego_shared.events.common import AgreedTerms, SubscriptionPricing
from delego_shared.events.envelope import Envelope
from delego_shared.events.matching import MatchAccepted, RequestCancelled, WorkCompleted
from delego_shared.events.topics import REQUESTS
from delego_shared.http.app import ServiceRuntime
from delego_shared.logging import get_logger
from delego_shared.messaging import PermanentError, PublishNow, publish_nothing
from delego_shared.timing import survive
from delego_shared.types import utcnow

from .domain.errors import BillingError
from .domain.invoice import Intervention
from .domain.numbering import ENTITY_ZONE, document_year
from .domain.pricing import PricedLine, price_at_acceptance, price_work_completed
from .domain.subscription import period, period_containing, period_start, periods_due
from .store import INVOICES, BillingStore, Subscription

log = get_logger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The platform clock (honours DELEGO_CLOCK_START for the demo)."""
    return utcnow()


class BillingHandlers:
    def __init__(
        self,
        store: BillingStore,
        *,
        clock: Clock = system_clock,
        publish: PublishNow = publish_nothing,
        sweep: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.publish = publish  # a document's events, right after the write that stored them
        self.sweep = sweep  # after a repair or a yearly run: let the outbox sweep pick them up

    def register(self, runtime: ServiceRuntime) -> None:
        runtime.consumer.on(MatchAccepted, WorkCompleted, RequestCancelled)(self.handle)
        runtime.consumer.subscribe([REQUESTS])

    async def handle(self, envelope: Envelope) -> None:
        try:
            match envelope.data:
                case MatchAccepted() as e:
                    await self.on_match_accepted(e, envelope)
                case WorkCompleted() as e:
                    await self.on_work_completed(e, envelope)
                case RequestCancelled() as e:
                    await self.on_request_cancelled(e)
        except BillingError as exc:  # the event cannot be priced: retrying will not help
            raise PermanentError(str(exc)) from exc

    # --- events -------------------------------------------------------------------

    async def on_match_accepted(self, e: MatchAccepted, cause: Envelope) -> None:
        terms = e.terms
        if isinstance(terms.pricing, SubscriptionPricing):
            sub = await self.store.upsert_subscription(
                request_id=e.request_id,
                client_id=e.client_id,
                terms=terms,
                accepted_at=e.accepted_at,
                zone=e.client_zone,
            )
            await self.bill_subscription(sub, cause)
            return
        lines = price_at_acceptance(terms, period(e.accepted_at, 0, e.client_zone))
        if not lines:
            return  # hourly and per-unit work is billed when completed
        await self._issue(
            f"{e.request_id}|package",
            e.client_id,
            e.request_id,
            terms,
            lines,
            [Intervention(_local_date(e.accepted_at, e.client_zone), None, lines[0].label_code)],
            cause,
        )

    async def on_work_completed(self, e: WorkCompleted, cause: Envelope) -> None:
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
        await self._issue(
            work_key,
            e.client_id,
            e.request_id,
            terms,
            lines,
            [Intervention(_local_date(at, zone), minutes, lines[0].label_code)],
            cause,
        )

    async def on_request_cancelled(self, e: RequestCancelled) -> None:
        if await self.store.cancel_subscription(e.request_id, e.cancelled_at):
            log.info("subscription.cancelled", request_id=e.request_id)

    # --- subscriptions --------------------------------------------------------------

    async def bill_subscription(self, sub: Subscription, cause: Envelope | None = None) -> int:
        """Bill every period due by now that is not billed yet; returns how many."""
        pricing = sub.terms.pricing
        assert isinstance(pricing, SubscriptionPricing)
        now = self.clock()
        due = periods_due(sub.accepted_at, sub.cancelled_at, now, sub.zone)
        billed = 0
        for p in due:
            if p.key in sub.billed:
                continue
            lines = price_at_acceptance(sub.terms, p)
            await self._issue(
                f"{sub.request_id}|period|{p.key}",
                sub.client_id,
                sub.request_id,
                sub.terms,
                lines,
                [Intervention(_local_date(p.start, sub.zone), None, lines[0].label_code)],
                cause,
            )
            billed += 1
        nxt: datetime | None = period_start(sub.accepted_at, len(due), sub.zone)
        if sub.cancelled_at is not None and nxt is not None and nxt >= sub.cancelled_at:
            nxt = None  # cancelled: the current period was the last one
        await self.store.mark_periods_billed(sub.request_id, [p.key for p in due], nxt)
        return billed

    # --- scheduler ------------------------------------------------------------------

    async def tick(self, *, repair: bool = True) -> None:
        """One scheduler pass: due periods, last year's certificates and, when asked,
        the repair of interrupted work (it reads whole collections: a slower cadence)."""
        now = self.clock()
        for sub in await self.store.due_subscriptions(now):
            try:
                await self.bill_subscription(sub)
            except BillingError as exc:
                log.error("subscription.unbillable", request_id=sub.request_id, error=str(exc))
        await self.certify_previous_year(now)
        if repair and await self.store.repair():
            self.sweep()

    async def certify_previous_year(self, now: datetime) -> int:
        """On (or after) 1 January: certificates for every client for the previous year."""
        year = document_year(now) - 1
        if await self.store.year_certified(year):
            return 0
        clients = await self.store.clients_invoiced(year)
        for client_id in clients:
            await self.store.issue_certificates(client_id, year, now)
        self.sweep()
        await self.store.mark_year_certified(year, now, len(clients))
        log.info("certificates.year_issued", year=year, clients=len(clients))
        return len(clients)

    async def run_scheduler(self, interval_s: float, repair_interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        next_repair = loop.time()  # at start-up
        while True:
            repair = loop.time() >= next_repair
            done = await survive(partial(self.tick, repair=repair), "scheduler.failed")
            if done and repair:
                next_repair = loop.time() + repair_interval_s
            await asyncio.sleep(interval_s)

    # --- helpers --------------------------------------------------------------------

    async def _issue(
        self,
        source: str,
        client_id: str,
        request_id: str,
        terms: AgreedTerms,
        lines: list[PricedLine],
        interventions: list[Intervention],
        cause: Envelope | None,
    ) -> None:
        invoice, created = await self.store.issue_invoice(
            source=source,
            client_id=client_id,
            request_id=request_id,
            terms=terms,
            priced=lines,
            issued_at=self.clock(),
            interventions=interventions,
            cause=cause,
        )
        if created:
            await self.publish(INVOICES, invoice.invoice_id)


def _local_date(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()
