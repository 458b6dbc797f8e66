"""Event and command handlers of matching: I/O at the edges of the pure domain.

- `CatalogProjection` keeps the read model of the catalog (Mongo) and the
  in-memory `CandidateIndex` up to date from `catalog.providers.v1` and
  `catalog.offers.v1`, rebuilds the index from the read model at start-up and
  picks up, every second, what other replicas applied (one consumer group
  spreads the partitions over the replicas; each replica's index needs all of
  them).
- `RequestHandlers` runs the request lifecycle: load the aggregate, reserve
  capacity for a new proposal, apply the domain transition, store state +
  events in one conditional update, release the capacity of a proposal that
  is no longer live. It also expires proposals and reconciles capacity holds
  in a background loop that is safe with several replicas.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from delego_shared.events.base import Event
from delego_shared.events.catalog import (
    OfferPublished,
    OfferUpdated,
    OfferWithdrawn,
    ProviderRegistered,
    ProviderReinstated,
    ProviderSuspended,
    ProviderUpdated,
)
from delego_shared.events.envelope import Envelope
from delego_shared.events.topics import OFFERS, PROVIDERS
from delego_shared.logging import get_logger
from delego_shared.messaging import EventConsumer
from delego_shared.types import new_id, utcnow

from .domain import (
    CandidateIndex,
    ClientRequest,
    Finder,
    IllegalTransition,
    MatchContext,
    MatchingPolicy,
    MatchOutcome,
    RequestDraft,
    RequestStatus,
    find_matches,
)
from .domain.schedule import iso_week
from .domain.scoring import trusted_providers
from .settings import MatchingSettings
from .store import Hold, MatchingStore, StaleRequest

log = get_logger(__name__)

Clock = Callable[[], datetime]

LIVE_STATUSES = frozenset(
    {RequestStatus.PROPOSED, RequestStatus.ACCEPTED, RequestStatus.COMPLETED, RequestStatus.RATED}
)
REFRESH_OVERLAP = timedelta(seconds=30)
"""Re-read read-model changes this far back (clock skew between replicas; idempotent)."""


class CatalogProjection:
    """Catalog events → read model (Mongo, version-aware) → in-memory index."""

    def __init__(
        self, store: MatchingStore, index: CandidateIndex, *, clock: Clock = utcnow
    ) -> None:
        self.store = store
        self.index = index
        self.clock = clock
        self._refreshed_at: datetime | None = None
        self.handled: Counter[str] = Counter()
        """Catalog events handled by this replica: `applied` or `stale` (ignored)."""

    def register(self, consumer: EventConsumer) -> None:
        consumer.on(ProviderRegistered, ProviderUpdated, ProviderSuspended, ProviderReinstated)(
            self.on_provider
        )
        consumer.on(OfferPublished, OfferUpdated, OfferWithdrawn)(self.on_offer)
        consumer.subscribe([PROVIDERS, OFFERS])

    async def on_provider(self, envelope: Envelope) -> None:
        data = envelope.data
        assert isinstance(
            data, ProviderRegistered | ProviderUpdated | ProviderSuspended | ProviderReinstated
        )
        snapshot = data.provider
        stored = await self.store.upsert_provider(snapshot, self.clock())
        self.index.upsert_provider(snapshot)  # version-aware as well
        self.handled["applied" if stored else "stale"] += 1
        log.info(
            "catalog.provider_applied" if stored else "catalog.provider_stale_ignored",
            provider_id=snapshot.provider_id,
            version=snapshot.version,
        )

    async def on_offer(self, envelope: Envelope) -> None:
        data = envelope.data
        assert isinstance(data, OfferPublished | OfferUpdated | OfferWithdrawn)
        snapshot = data.offer
        stored = await self.store.upsert_offer(snapshot, self.clock())
        self.index.upsert_offer(snapshot)
        self.handled["applied" if stored else "stale"] += 1
        log.info(
            "catalog.offer_applied" if stored else "catalog.offer_stale_ignored",
            offer_id=snapshot.offer_id,
            version=snapshot.version,
        )

    async def rebuild(self) -> int:
        """Load the whole read model into the index (start-up)."""
        started = self.clock()
        for p in await self.store.providers_since():
            self.index.upsert_provider(p)
        for o in await self.store.offers_since():
            self.index.upsert_offer(o)
        self._refreshed_at = started
        log.info("index.rebuilt", offers=len(self.index))
        return len(self.index)

    async def refresh(self) -> None:
        """Apply what any replica stored since the last refresh (idempotent)."""
        started = self.clock()
        since = None if self._refreshed_at is None else self._refreshed_at - REFRESH_OVERLAP
        for p in await self.store.providers_since(since):
            self.index.upsert_provider(p)
        for o in await self.store.offers_since(since):
            self.index.upsert_offer(o)
        self._refreshed_at = started

    async def refresh_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("index.refresh_failed", error_type=type(exc).__name__, error=str(exc))


class RequestNotFound(LookupError):
    """No such request, or not one the caller may see (HTTP 404)."""


class TooMuchContention(Exception):
    """The request kept changing under us (HTTP 409, try again)."""


Action = Callable[[ClientRequest, datetime, Finder], list[Event]]


def _no_finder(_: frozenset[str]) -> MatchOutcome:  # pragma: no cover - guarded by callers
    raise RuntimeError("matching was not prepared for this transition")


def hold_is_live(req: ClientRequest | None, hold: Hold) -> bool:
    """A capacity hold stays while its proposal is open, accepted or done."""
    return (
        req is not None
        and req.status in LIVE_STATUSES
        and req.proposal is not None
        and req.proposal.attempt == hold.attempt
    )


class RequestHandlers:
    """Commands on client requests and the background expiry/reconciliation loop."""

    def __init__(
        self,
        store: MatchingStore,
        index: CandidateIndex,
        settings: MatchingSettings,
        *,
        on_stored: Callable[[], None] = lambda: None,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.index = index
        self.settings = settings
        self.policy: MatchingPolicy = settings.policy()
        self.on_stored = on_stored
        self.clock = clock

    # -- helpers ------------------------------------------------------------

    def _envelopes(
        self, events: Sequence[Event], correlation_id: str | None = None
    ) -> list[Envelope]:
        out: list[Envelope] = []
        for e in events:
            if not out and correlation_id is None:
                out.append(Envelope(data=e, source=self.settings.source))
            else:
                prev = out[-1].id if out else None
                out.append(
                    Envelope(
                        data=e,
                        source=self.settings.source,
                        correlation_id=correlation_id or out[0].correlation_id,
                        causation_id=prev,
                    )
                )
        return out

    async def _context(self, req: ClientRequest, provider_ids: set[str]) -> MatchContext:
        from_week = iso_week((self.clock() - timedelta(days=1)).date())
        reserved, ratings, past = await asyncio.gather(
            self.store.reserved_hours(provider_ids, from_week),
            self.store.rating_stats(provider_ids),
            self.store.client_ratings(req.client_id),
        )
        return MatchContext(
            reserved_hours=reserved,
            ratings=ratings,
            trusted_providers=trusted_providers(past, self.policy.trust_threshold),
        )

    async def _find_and_reserve(
        self, req: ClientRequest, now: datetime, hold: Hold
    ) -> MatchOutcome:
        """Rank candidates and reserve capacity for the best one that still fits.

        The reservation is the conditional update: if another request (on any
        replica) took the capacity meanwhile, the next candidate is tried, then
        the live load is read again and matching re-run.
        """
        spec, tried = req.spec, req.tried_providers
        outcome: MatchOutcome | None = None
        for _ in range(4):
            ids = self.index.candidate_ids(spec.category, spec.required_skills, spec.languages)
            providers = {o.provider_id for i in ids if (o := self.index.offer(i)) is not None}
            context = await self._context(req, providers - tried)
            outcome = find_matches(
                self.index,
                spec,
                now,
                context=context,
                policy=self.policy,
                exclude_providers=tried,
            )
            if not outcome.candidates:
                return outcome
            for c in outcome.candidates:
                snap = c.provider.snapshot
                if await self.store.reserve(
                    snap.provider_id, snap.weekly_capacity_hours, c.reservation, hold, now
                ):
                    return replace(outcome, candidates=(c,))
            log.info("match.capacity_race", request_id=req.request_id, retry=True)
        assert outcome is not None
        return replace(outcome, candidates=())

    async def _release_if_dead(
        self, req: ClientRequest, proposal_reservation: dict[str, Decimal], hold: Hold
    ) -> None:
        if not hold_is_live(req, hold):
            await self.store.release(proposal_reservation, hold)

    async def _transition(
        self,
        request_id: str,
        action: Action,
        *,
        check: Callable[[ClientRequest], None] = lambda _: None,
        may_propose: bool = False,
    ) -> ClientRequest:
        """Load, (reserve), apply, store conditionally, release; retried on a race."""
        for _ in range(5):
            stored = await self.store.get_request(request_id)
            if stored is None:
                raise RequestNotFound(request_id)
            req = stored.request
            check(req)
            before, old = req.version, req.proposal
            now = self.clock()
            finder: Finder = _no_finder
            new_hold: Hold | None = None
            new_reservation: dict[str, Decimal] = {}
            if (
                may_propose
                and req.status is RequestStatus.PROPOSED
                and len(req.attempts) < req.max_attempts
            ):
                new_hold = Hold(request_id, len(req.attempts) + 1)
                outcome = await self._find_and_reserve(req, now, new_hold)
                new_reservation = outcome.best.reservation if outcome.best else {}

                def finder(_: frozenset[str], o: MatchOutcome = outcome) -> MatchOutcome:
                    return o

            try:
                events = action(req, now, finder)
                await self.store.save_request(
                    req, before, self._envelopes(events, stored.correlation_id)
                )
            except StaleRequest:
                if new_hold is not None:
                    await self.store.release(new_reservation, new_hold)
                log.info("request.retry_after_race", request_id=request_id)
                continue
            except BaseException:
                if new_hold is not None:
                    await self.store.release(new_reservation, new_hold)
                raise
            if old is not None:
                await self._release_if_dead(req, old.reservation, Hold(request_id, old.attempt))
            self.on_stored()
            log.info("request.changed", events=[e.event_type for e in events], **req.log_fields())
            return req
        raise TooMuchContention(request_id)

    # -- commands -----------------------------------------------------------

    async def submit(self, client_id: str, draft: RequestDraft) -> ClientRequest:
        """Store the request and its first proposal (or why nobody fits) in one insert."""
        now = self.clock()
        req, events = ClientRequest.submit(new_id("req"), client_id, draft, now, self.policy)
        hold = Hold(req.request_id, 1)
        outcome = await self._find_and_reserve(req, now, hold)
        try:
            events += req.propose(now, lambda _: outcome)
            envelopes = self._envelopes(events)
            await self.store.insert_request(req, envelopes, envelopes[0].id)
        except BaseException:
            if outcome.best is not None:
                await self.store.release(outcome.best.reservation, hold)
            raise
        self.on_stored()
        log.info("request.submitted", events=[e.event_type for e in events], **req.log_fields())
        return req

    def _provider_party(self, provider_id: str) -> Callable[[ClientRequest], None]:
        def check(req: ClientRequest) -> None:
            if provider_id not in req.tried_providers:
                raise RequestNotFound(req.request_id)

        return check

    def _client_party(self, client_id: str) -> Callable[[ClientRequest], None]:
        def check(req: ClientRequest) -> None:
            if req.client_id != client_id:
                raise RequestNotFound(req.request_id)

        return check

    async def accept(self, provider_id: str, request_id: str) -> ClientRequest:
        return await self._transition(
            request_id,
            lambda r, now, _: r.accept(provider_id, now),
            check=self._provider_party(provider_id),
        )

    async def decline(self, provider_id: str, request_id: str) -> ClientRequest:
        return await self._transition(
            request_id,
            lambda r, now, find: r.decline(provider_id, now, find),
            check=self._provider_party(provider_id),
            may_propose=True,
        )

    async def complete(
        self,
        provider_id: str,
        request_id: str,
        *,
        actual_hours: Decimal | None,
        units: int | None,
    ) -> ClientRequest:
        return await self._transition(
            request_id,
            lambda r, now, _: r.complete(provider_id, now, actual_hours=actual_hours, units=units),
            check=self._provider_party(provider_id),
        )

    async def rate(self, client_id: str, request_id: str, stars: int) -> ClientRequest:
        return await self._transition(
            request_id,
            lambda r, now, _: r.rate(stars, now),
            check=self._client_party(client_id),
        )

    async def cancel(self, client_id: str, request_id: str) -> ClientRequest:
        return await self._transition(
            request_id, lambda r, now, _: r.cancel(now), check=self._client_party(client_id)
        )

    async def expire(self, request_id: str) -> ClientRequest:
        """Expire the open proposal (window over) and propose the next candidate."""
        return await self._transition(
            request_id, lambda r, now, find: r.expire(now, find), may_propose=True
        )

    # -- background ---------------------------------------------------------

    async def expire_due(self) -> int:
        """Expire every overdue proposal this replica manages to claim."""
        now = self.clock()
        lease = timedelta(seconds=max(30.0, self.settings.expiry_sweep_interval_s * 3))
        done = 0
        for rid in await self.store.expired_request_ids(now):
            if not await self.store.claim_expiry(rid, now, lease):
                continue  # another replica has it
            try:
                await self.expire(rid)
                done += 1
            except (IllegalTransition, TooMuchContention, RequestNotFound) as exc:
                log.info("proposal.expiry_skipped", request_id=rid, reason=type(exc).__name__)
        return done

    async def reconcile_holds(self) -> int:
        """Release holds no request refers to (a crash between reserve and store)."""
        now = self.clock()
        grace = timedelta(seconds=self.settings.hold_grace_s)
        from_week = iso_week((now - timedelta(days=9)).date())
        released = 0
        cache: dict[str, ClientRequest | None] = {}
        for h in await self.store.holds(from_week):
            if now - h.at < grace:
                continue
            rid = h.hold.request_id
            if rid not in cache:
                stored = await self.store.get_request(rid)
                cache[rid] = stored.request if stored else None
            if not hold_is_live(cache[rid], h.hold):
                await self.store.release({h.key: h.hours}, h.hold)
                released += 1
                log.warning("capacity.hold_reconciled", request_id=rid, capacity_key=h.key)
        return released

    async def sweep_loop(self) -> None:
        interval = self.settings.expiry_sweep_interval_s
        reconcile_every = max(1, int(self.settings.hold_grace_s / 2 / interval))
        n = 0
        while True:
            await asyncio.sleep(interval)
            n += 1
            for job in self._jobs(n % reconcile_every == 0):
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("sweep.failed", error_type=type(exc).__name__, error=str(exc))

    def _jobs(self, reconcile: bool) -> list[Callable[[], Awaitable[int]]]:
        return [self.expire_due, self.reconcile_holds] if reconcile else [self.expire_due]


__all__ = [
    "CatalogProjection",
    "RequestHandlers",
    "RequestNotFound",
    "TooMuchContention",
]
