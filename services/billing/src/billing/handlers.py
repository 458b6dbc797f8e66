"""Event handlers and the scheduler: matching's events and the clock, turned into
calls of the use cases (`service.BillingService`).

When each pricing model bills (see `domain.pricing` and the service):
- package: at MatchAccepted (invoice id from request id + "package");
- hourly / per unit: at WorkCompleted (request id + "work" + completion instant);
- subscription: every period from acceptance until cancellation, by the
  scheduler (request id + "period" + period key), the first one right at
  MatchAccepted; overage hours at WorkCompleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial

from delego_shared.events.envelope import Envelope
from delego_shared.events.matching import MatchAccepted, RequestCancelled, WorkCompleted
from delego_shared.events.topics import REQUESTS
from delego_shared.http.app import ServiceRuntime
from delego_shared.messaging import PermanentError
from delego_shared.timing import survive
from delego_shared.types import utcnow

from .domain.errors import BillingError
from .service import BillingService

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The platform clock (honours DELEGO_CLOCK_START for the demo)."""
    return utcnow()


class BillingHandlers:
    def __init__(
        self,
        service: BillingService,
        *,
        clock: Clock = system_clock,
        sweep: Callable[[], None] = lambda: None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.sweep = sweep  # after a repair: let the outbox sweep pick up finished documents

    def register(self, runtime: ServiceRuntime) -> None:
        runtime.consumer.on(MatchAccepted, WorkCompleted, RequestCancelled)(self.handle)
        runtime.consumer.subscribe([REQUESTS])

    async def handle(self, envelope: Envelope) -> None:
        try:
            match envelope.data:
                case MatchAccepted() as e:
                    await self.service.accept_match(e, envelope, self.clock())
                case WorkCompleted() as e:
                    await self.service.complete_work(e, envelope, self.clock())
                case RequestCancelled() as e:
                    await self.service.cancel_request(e.request_id, e.cancelled_at)
        except BillingError as exc:  # the event cannot be priced: retrying will not help
            raise PermanentError(str(exc)) from exc

    # --- scheduler ------------------------------------------------------------------

    async def tick(self, *, repair: bool = True) -> None:
        """One scheduler pass: due periods, last year's certificates and, when asked,
        the repair of interrupted work (it reads whole collections: a slower cadence)."""
        now = self.clock()
        await self.service.bill_due_subscriptions(now)
        await self.service.certify_previous_year(now)
        if repair and await self.service.repair():
            self.sweep()

    async def run_scheduler(self, interval_s: float, repair_interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        next_repair = loop.time()  # at start-up
        while True:
            repair = loop.time() >= next_repair
            done = await survive(partial(self.tick, repair=repair), "scheduler.failed")
            if done and repair:
                next_repair = loop.time() + repair_interval_s
            await asyncio.sleep(interval_s)
