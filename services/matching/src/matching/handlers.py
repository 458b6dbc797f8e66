"""Event and command handlers of matching: I/O at the edges of the pure domain.

- `CatalogProjection` keeps the read model of the catalog (Mongo) up to date
  from `catalog.providers.v1` and `catalog.offers.v1` (the service's consumer
  group: each event stored once) and applies catalog snapshots to the
  in-memory `CandidateIndex`: at start-up from the read model, then from
  every partition through this replica's own `CatalogFollower` (follower.py).
- `RequestHandlers` runs the request lifecycle: load the aggregate, reserve
  capacity for a new proposal (pending), apply the domain transition, mark the
  release of a hold it ends, store state + events in one conditional update,
  then the follow-ups keyed by `_id` (confirm the new hold, give back the
  ended one, close or re-date the entry in `open_proposals`, count a rating).
  A background loop expires due
  proposals (from the small `open_proposals` collection) and, at start-up and
  on a slow timer, repairs what a crash between a store and its follow-ups
  left behind.
"""

from __future__ import annotations

import asyncio
import time
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
from delego_shared.messaging import EventConsumer, PublishNow, publish_nothing
from delego_shared.metrics import count_business_events
from delego_shared.timing import survive
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
    context_providers,
    find_matches,
)
from .domain.availability import to_us
from .domain.details import ENDED, erase_details_after
from .domain.matcher import context_keys
from .domain.request import Proposal
from .domain.schedule import iso_week
from .domain.scoring import trusted_providers
from .settings import MatchingSettings
from .store import REQUESTS as REQUESTS_COLLECTION
from .store import RESERVE, Hold, MatchingStore, RatingToCount, StaleRequest

log = get_logger(__name__)

Clock = Callable[[], datetime]

LIVE_STATUSES = frozenset(
    {RequestStatus.PROPOSED, RequestStatus.ACCEPTED, RequestStatus.COMPLETED, RequestStatus.RATED}
)


TABLES_AHEAD = timedelta(days=1)
"""The index's working-time tables are built this long before a request would need them."""
TABLES_CHECK_S = 3600.0


class CatalogProjection:
    """Catalog events → read model (Mongo, version-aware) and → in-memory index."""

    def __init__(
        self, store: MatchingStore, index: CandidateIndex, *, clock: Clock = utcnow
    ) -> None:
        self.store = store
        self.index = index
        self.clock = clock
        self.handled: Counter[str] = Counter()
        """Catalog events stored by this replica's group consumer: `applied` or `stale`."""

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

    def apply_to_index(self, envelope: Envelope) -> bool:
        """A catalog event read by the follower: index only (the group stores it)."""
        data = envelope.data
        if isinstance(
            data, ProviderRegistered | ProviderUpdated | ProviderSuspended | ProviderReinstated
        ):
            return self.index.upsert_provider(data.provider)
        if isinstance(data, OfferPublished | OfferUpdated | OfferWithdrawn):
            return self.index.upsert_offer(data.offer)
        return False

    async def rebuild(self) -> int:
        """Load the whole read model into the index (start-up: one scan)."""
        self.index.load(await self.store.all_providers(), await self.store.all_offers())
        log.info("index.rebuilt", offers=len(self.index))
        return len(self.index)

    async def prepare_tables(self) -> bool:
        """Build the index's working-time tables in a worker thread when a request within
        `TABLES_AHEAD` would rebuild them, so that no request pays the build (about 3 s
        at a million offers, every two weeks). True when it built them."""
        now = self.clock()
        if not self.index.timeline_due(to_us(now + TABLES_AHEAD)):
            return False
        started = time.monotonic()
        try:
            await asyncio.to_thread(self.index.prepare, now, now + TABLES_AHEAD)
        except ValueError:  # too many schedules x weeks for the tables: Python walks
            log.warning("index.tables_too_large")
            return False
        log.info("index.tables_prepared", seconds=round(time.monotonic() - started, 2))
        return True

    async def tables_loop(self) -> None:
        """Background: keep the working-time tables ahead of the requests."""
        while True:
            await asyncio.sleep(TABLES_CHECK_S)
            await survive(self.prepare_tables, "tables.failed")


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
        publish: PublishNow = publish_nothing,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.index = index
        self.settings = settings
        self.policy: MatchingPolicy = settings.policy()
        self.publish = publish
        """Sends a request's stored events before the command answers."""
        self.clock = clock
        self.sealer = settings.sealer()
        self.retention = settings.details_retention

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

    async def _context(
        self, req: ClientRequest, provider_ids: set[str], now: datetime
    ) -> MatchContext:
        """Live load and ratings of these providers, and the client's past ratings.

        Point reads by `_id` only: the capacity keys of the weeks a plan can
        touch, one rating counter per provider, one document for the client.
        """
        keys: list[str] = []
        for pid in provider_ids:
            entry = self.index.provider(pid)
            if entry is not None:
                keys += context_keys(entry, req.spec, now, self.policy)
        reserved, ratings, past = await asyncio.gather(
            self.store.reserved_hours(keys),
            self.store.rating_stats(provider_ids),
            self.store.client_ratings_of(req.client_id),
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
            providers = context_providers(
                self.index, spec, now, policy=self.policy, exclude_providers=tried
            )
            context = await self._context(req, providers, now)
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
                pid = c.provider.provider_id
                if await self.store.reserve(pid, c.capacity, c.reservation, hold, now):
                    return replace(outcome, candidates=(c,))
            log.info("match.capacity_race", request_id=req.request_id, retry=True)
        assert outcome is not None
        return replace(outcome, candidates=())

    @staticmethod
    def _opens(req: ClientRequest, old: Proposal | None) -> Proposal | None:
        """The proposal this new state opens (a new attempt left PROPOSED), if any."""
        p = req.proposal
        opens = req.status is RequestStatus.PROPOSED and p is not None
        if opens and (old is None or p is None or old.attempt != p.attempt):
            return p
        return None

    async def _before_store(self, req: ClientRequest, old: Proposal | None) -> bool:
        """Write-ahead: the sweep will look at a proposal before it can exist. True when
        that created the request's entry (it then already is exactly this proposal)."""
        opened = self._opens(req, old)
        if opened is None:
            return False
        return await self.store.proposal_due(req.request_id, opened.expires_at, opened.provider_id)

    async def _schedule_details_erasure(
        self, req: ClientRequest, old_status: RequestStatus | None
    ) -> None:
        """Write-ahead: a state that ends the request dates its details' erasure first
        (the retention sweep checks the request, so a state not stored after all only
        costs the sweep a look)."""
        if not req.sealed_details or old_status in ENDED:
            return
        at = erase_details_after(req, self.retention)
        if at is not None:
            await self.store.schedule_details_erasure(req.request_id, at)

    async def _after_store(
        self,
        req: ClientRequest,
        old_status: RequestStatus | None,
        old: Proposal | None,
        *,
        entry_created: bool = False,
    ) -> None:
        """Follow-ups of a stored state, each by `_id` (a crash here is reconciled)."""
        opened = self._opens(req, old)
        if opened is not None:
            if not entry_created:  # an older entry: make it exactly the stored proposal
                await self.store.set_proposal_due(
                    req.request_id, opened.expires_at, opened.provider_id
                )
        elif old_status is RequestStatus.PROPOSED and req.status is not RequestStatus.PROPOSED:
            await self.store.proposal_closed(req.request_id)
        if req.status is RequestStatus.RATED and old_status is not RequestStatus.RATED:
            await self._count_rating(req)

    async def _count_rating(self, req: ClientRequest) -> None:
        assert req.proposal is not None and req.rating is not None
        assert req.rated_at is not None
        await self.store.count_rating(
            RatingToCount(
                req.request_id, req.client_id, req.proposal.provider_id, req.rating, req.rated_at
            ),
            self.clock(),
        )

    async def _not_stored(
        self,
        new_hold: Hold | None,
        new_reservation: dict[str, Decimal],
        old: Proposal | None,
        ending: Hold | None,
    ) -> None:
        """The state was not stored: give the new reservation back, keep the old hold."""
        if new_hold is not None:
            await self.store.give_back(new_reservation, new_hold)
        if old is not None and ending is not None:
            await self.store.abort_release(old.reservation, ending)

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
            before, old, old_status = req.version, req.proposal, req.status
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

            ending: Hold | None = None  # the stored hold this new state ends
            saving = False
            try:
                events = action(req, now, finder)
                if old is not None and not hold_is_live(req, Hold(request_id, old.attempt)):
                    ending = Hold(request_id, old.attempt)
                    await self.store.begin_release(old.reservation, ending, now)
                entry_created = await self._before_store(req, old)
                await self._schedule_details_erasure(req, old_status)
                envelopes = self._envelopes(events, stored.correlation_id)
                saving = True
                pending = await self.store.save_request(req, before, envelopes)
            except StaleRequest:
                await self._not_stored(new_hold, new_reservation, old, ending)
                log.info("request.retry_after_race", request_id=request_id)
                continue
            except BaseException as exc:
                if not saving:
                    await self._not_stored(new_hold, new_reservation, old, ending)
                elif isinstance(exc, Exception):
                    # it may be stored (the reply lost): its events go out (retried by the
                    # relay while the store is down); the reconciliation settles the holds
                    await self.publish(REQUESTS_COLLECTION, request_id)
                raise
            # the events first: a follow-up that fails must not keep them in the outbox
            await self.publish(REQUESTS_COLLECTION, request_id, stored=envelopes, pending=pending)
            if new_hold is not None:
                await self.store.confirm(new_reservation, new_hold)
            if old is not None and ending is not None:
                await self.store.give_back(old.reservation, ending)
            await self._after_store(req, old_status, old, entry_created=entry_created)
            count_business_events(events)
            log.info("request.changed", events=[e.event_type for e in events], **req.log_fields())
            return req
        raise TooMuchContention(request_id)

    # -- commands -----------------------------------------------------------

    async def submit(
        self, client_id: str, draft: RequestDraft, request_id: str | None = None
    ) -> ClientRequest:
        """Store the request and its first proposal (or why nobody fits) in one insert.

        `request_id` is given for an idempotent command (derived from its key)."""
        now = self.clock()
        req, events = ClientRequest.submit(
            request_id or new_id("req"), client_id, draft, now, self.policy
        )
        text = req.take_description()  # stored sealed, never in the state
        hold = Hold(req.request_id, 1)
        outcome = await self._find_and_reserve(req, now, hold)
        inserting = False
        try:
            events += req.propose(now, lambda _: outcome)
            envelopes = self._envelopes(events)
            entry_created = await self._before_store(req, None)
            sealed = None
            if text:  # the key first: a retry with the same id seals with the same key
                key = await self.store.request_key(
                    req.request_id,
                    req.client_id,
                    self.sealer.new_key(),
                    erase_details_after(req, self.retention),
                )
                sealed = self.sealer.seal(req.request_id, key, text)
            inserting = True
            await self.store.insert_request(req, envelopes, envelopes[0].id, sealed)
        except BaseException as exc:
            if not inserting:
                if outcome.best is not None:
                    await self.store.give_back(outcome.best.reservation, hold)
            elif isinstance(exc, Exception):
                # it may be stored (the reply lost): its events go out (retried by the
                # relay while the store is down); the reconciliation settles the hold
                await self.publish(REQUESTS_COLLECTION, req.request_id)
            raise
        # the events first: a follow-up that fails must not keep them in the outbox
        await self.publish(
            REQUESTS_COLLECTION, req.request_id, stored=envelopes, pending=len(envelopes)
        )
        if outcome.best is not None:
            await self.store.confirm(outcome.best.reservation, hold)
        await self._after_store(req, None, None, entry_created=entry_created)
        count_business_events(events)
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
        actual_minutes: int | None = None,
    ) -> ClientRequest:
        return await self._transition(
            request_id,
            lambda r, now, _: r.complete(
                provider_id,
                now,
                actual_hours=actual_hours,
                units=units,
                actual_minutes=actual_minutes,
            ),
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
        """Expire every due proposal this replica manages to claim.

        Reads only `open_proposals` (one document per open proposal), claims
        each by `_id`, then checks the request itself: an entry whose proposal
        is closed is dropped, one not due yet is re-dated.
        """
        now = self.clock()
        lease = timedelta(seconds=max(30.0, self.settings.expiry_sweep_interval_s * 3))
        done = 0
        grace = timedelta(seconds=self.settings.hold_grace_s)
        for rid, due in await self.store.due_proposals(now):
            if not await self.store.claim_due(rid, now, lease):
                continue  # another replica has it
            stored = await self.store.get_request(rid)
            req = stored.request if stored else None
            p = req.proposal if req is not None else None
            if req is None and now - due < grace:
                continue  # its insert may still be under way: look again after the lease
            if req is None or req.status is not RequestStatus.PROPOSED or p is None:
                await self.store.proposal_closed(rid)  # stale entry (crash or failed write)
                continue
            if p.expires_at > now:
                await self.store.set_proposal_due(rid, p.expires_at, p.provider_id)
                continue
            try:
                await self.expire(rid)
                done += 1
            except (IllegalTransition, TooMuchContention, RequestNotFound) as exc:
                log.info("proposal.expiry_skipped", request_id=rid, reason=type(exc).__name__)
        return done

    async def reconcile_holds(self) -> int:
        """Settle the holds a crash left pending, by their request's stored state.

        A reservation its request refers to is confirmed, any other is given back
        (a crash between reserve and store); a release whose state was stored is
        finished, else dropped. Returns how many holds were settled.
        """
        now = self.clock()
        grace = timedelta(seconds=self.settings.hold_grace_s)
        from_week = iso_week((now - timedelta(days=9)).date())
        await self.store.adopt_legacy_holds()
        settled = 0
        cache: dict[str, ClientRequest | None] = {}
        for h in await self.store.pending_holds(from_week):
            if now - h.at < grace:
                continue
            rid = h.hold.request_id
            if rid not in cache:
                stored = await self.store.get_request(rid)
                cache[rid] = stored.request if stored else None
            one = {h.key: h.hours}
            if not hold_is_live(cache[rid], h.hold):
                await self.store.give_back(one, h.hold)
                log.warning("capacity.hold_given_back", request_id=rid, capacity_key=h.key)
            elif h.op == RESERVE:
                await self.store.confirm(one, h.hold)
            else:
                await self.store.abort_release(one, h.hold)
            settled += 1
        return settled

    async def reconcile_ratings(self) -> int:
        """Count ratings stored without their counters (a crash in between, or stored
        before the counters existed); the counting itself is idempotent."""
        now = self.clock()
        grace = timedelta(seconds=self.settings.hold_grace_s)
        pending = await self.store.ratings_to_count(rated_before=now - grace)
        for r in pending:
            await self.store.count_rating(r, now)
            log.warning("rating.counters_reconciled", request_id=r.request_id)
        return len(pending)

    async def backfill_open_proposals(self) -> int:
        """Give every open proposal of `requests` its `open_proposals` entry (start-up).

        With the write-ahead entry nothing is missing after a crash; this
        covers proposals stored before the collection existed.
        """
        dues = await self.store.open_request_dues()
        for rid, expires_at, provider_id in dues:
            await self.store.proposal_due(rid, expires_at, provider_id)
        return len(dues)

    async def reconcile(self) -> dict[str, int]:
        """The crash-recovery sweeps (start-up and slow timer): they read with `find`."""
        out: dict[str, int] = {}
        jobs: dict[str, Callable[[], Awaitable[int]]] = {
            "holds": self.reconcile_holds,
            "ratings": self.reconcile_ratings,
        }
        for name, job in jobs.items():
            try:
                out[name] = await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "reconcile.failed", job=name, error_type=type(exc).__name__, error=str(exc)
                )
        return out

    async def sweep_loop(self) -> None:
        """Expiry every `expiry_sweep_interval_s`; reconciliation at start-up and every
        `reconcile_interval_s`."""
        await survive(self.backfill_open_proposals, "backfill.failed")
        await self.reconcile()
        loop = asyncio.get_running_loop()
        next_reconcile = loop.time() + self.settings.reconcile_interval_s
        while True:
            await asyncio.sleep(self.settings.expiry_sweep_interval_s)
            await survive(self.expire_due, "sweep.failed")
            if loop.time() >= next_reconcile:
                await self.reconcile()
                next_reconcile = loop.time() + self.settings.reconcile_interval_s


__all__ = [
    "CatalogProjection",
    "RequestHandlers",
    "RequestNotFound",
    "TooMuchContention",
]
