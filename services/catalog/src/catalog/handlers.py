"""Command handlers: who may do what, load, apply the domain, store with its events.

Authorization rules (the HTTP layer checks the *role* first, 403):

- a provider acts only on their own provider profile and offers; anyone
  else's resource is answered as if it did not exist (404), so ids cannot be
  probed; operators act on any;
- drafts are visible to their owner and operators only; published and
  withdrawn offers (already public on `catalog.offers.v1`) and provider
  profiles to any authenticated caller.

Writes are optimistic: load, apply, store conditionally on the version read;
if another request won in between, the command is re-applied on the fresh
state (a few times) before answering 409.

Search is answered by this replica's search index (`search_index.SearchIndex`),
not by the store. After a command's write (and publish), its snapshot goes
into the local index at once: the provider who has just published an offer
finds it on the next search through the same replica (read-your-writes).
Other replicas see it when their follower reads the event from the topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from delego_shared.events.catalog import OfferSnapshot, OfferStatus, ProviderSnapshot
from delego_shared.http import Conflict, NotFound, Principal, Role, Unprocessable
from delego_shared.logging import get_logger
from delego_shared.messaging import PublishNow, publish_nothing
from delego_shared.types import new_id, utcnow

from .domain import (
    Offer,
    OfferChanges,
    OfferDraft,
    OfferQuery,
    Provider,
    ProviderChanges,
    ProviderProfile,
    SearchPage,
    Taxonomy,
    check_query,
    default_taxonomy,
)
from .domain.model import RULE_OPERATOR_PROVIDER
from .search_index import SearchIndex
from .store import OFFERS, PROVIDERS, AlreadyExists, CatalogStore, StaleVersion

log = get_logger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 5


class CatalogService:
    def __init__(
        self,
        store: CatalogStore,
        index: SearchIndex,
        *,
        taxonomy: Taxonomy | None = None,
        clock: Callable[[], datetime] = utcnow,
        publish: PublishNow = publish_nothing,
    ) -> None:
        self.store = store
        self.index = index
        self.taxonomy = taxonomy or default_taxonomy()
        self.clock = clock
        self.publish = publish
        """Publishes a document's stored events before the command answers, so a
        client that hears "accepted" can rely on the event being on its topic."""

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        for _ in range(MAX_ATTEMPTS):
            try:
                return await attempt()
            except StaleVersion:
                continue
        raise Conflict("the resource was changed concurrently; please retry")

    async def _indexed(
        self, offer: OfferSnapshot | None = None, provider: ProviderSnapshot | None = None
    ) -> None:
        """Read-your-writes: the local index learns the new state right after the write.

        The write is done (and published); if the index fails now, the follower
        applies the same snapshot from the topic shortly, so the command still succeeds.
        """
        try:
            await self.index.apply(
                [offer] if offer is not None else [], [provider] if provider is not None else []
            )
        except Exception as exc:
            log.warning("search_index.apply_failed", error_type=type(exc).__name__, error=str(exc))

    # -- providers ------------------------------------------------------------------------

    async def register_provider(self, who: Principal, profile: ProviderProfile) -> Provider:
        """A provider registers themselves: the provider id is the token's subject."""
        provider, registered = Provider.register(who.subject, profile, self.clock(), self.taxonomy)
        try:
            await self.store.insert_provider(provider, [registered])
        except AlreadyExists:
            raise Conflict(f"provider {who.subject} is already registered") from None
        await self.publish(PROVIDERS, provider.provider_id)
        await self._indexed(provider=provider.snapshot())
        return provider

    async def read_provider(self, provider_id: str) -> Provider:
        provider = await self.store.get_provider(provider_id)
        if provider is None:
            raise NotFound(f"provider {provider_id} not found")
        return provider

    async def _own_provider(self, who: Principal, provider_id: str) -> Provider:
        if not who.is_operator and who.subject != provider_id:
            raise NotFound(f"provider {provider_id} not found")
        return await self.read_provider(provider_id)

    async def update_provider(
        self, who: Principal, provider_id: str, changes: ProviderChanges
    ) -> Provider:
        async def attempt() -> Provider:
            provider = await self._own_provider(who, provider_id)
            before = provider.version
            updated = provider.update(changes, self.clock(), self.taxonomy)
            if updated is not None:
                await self.store.save_provider(provider, before, [updated])
                await self.publish(PROVIDERS, provider_id)
                await self._indexed(provider=provider.snapshot())
            return provider

        return await self._retrying(attempt)

    async def suspend_provider(self, provider_id: str, reason_code: str) -> Provider:
        async def attempt() -> Provider:
            provider = await self.read_provider(provider_id)
            before = provider.version
            suspended = provider.suspend(self.clock(), reason_code)
            await self.store.save_provider(provider, before, [suspended])
            await self.publish(PROVIDERS, provider_id)
            await self._indexed(provider=provider.snapshot())
            return provider

        return await self._retrying(attempt)

    async def reinstate_provider(self, provider_id: str) -> Provider:
        async def attempt() -> Provider:
            provider = await self.read_provider(provider_id)
            before = provider.version
            reinstated = provider.reinstate(self.clock())
            await self.store.save_provider(provider, before, [reinstated])
            await self.publish(PROVIDERS, provider_id)
            await self._indexed(provider=provider.snapshot())
            return provider

        return await self._retrying(attempt)

    # -- offers ---------------------------------------------------------------------------

    async def create_offer(
        self,
        who: Principal,
        draft: OfferDraft,
        provider_id: str | None = None,
        offer_id: str | None = None,
    ) -> Offer:
        """A draft for the caller (a provider) or, for an operator, for `provider_id`;
        `offer_id` is given for an idempotent command (derived from its key)."""
        if who.role is Role.PROVIDER:
            if provider_id is not None and provider_id != who.subject:
                raise NotFound(f"provider {provider_id} not found")
            provider_id = who.subject
        if provider_id is None:
            raise Unprocessable(
                "an operator creates an offer on behalf of a provider",
                errors=[{"field": "provider_id", "in": "query", "message": RULE_OPERATOR_PROVIDER}],
            )
        provider = await self.store.get_provider(provider_id)
        if provider is None:
            if who.role is Role.PROVIDER:
                raise Conflict("register as a provider (POST /providers) before creating offers")
            raise NotFound(f"provider {provider_id} not found")
        offer_id = offer_id or new_id("off")
        offer = Offer.create(offer_id, provider, draft, self.clock(), self.taxonomy)
        await self.store.insert_offer(offer, provider.snapshot())
        return offer

    async def read_offer(self, who: Principal, offer_id: str) -> Offer:
        offer = await self.store.get_offer(offer_id)
        if offer is None or (offer.status is OfferStatus.DRAFT and not _may_edit(who, offer)):
            raise NotFound(f"offer {offer_id} not found")
        return offer

    async def _own_offer(self, who: Principal, offer_id: str) -> Offer:
        offer = await self.store.get_offer(offer_id)
        if offer is None or not _may_edit(who, offer):
            raise NotFound(f"offer {offer_id} not found")
        return offer

    async def _owner_of(self, offer: Offer) -> Provider:
        provider = await self.store.get_provider(offer.provider_id)
        if provider is None:  # offers are only created for stored providers
            raise Conflict(f"provider {offer.provider_id} of offer {offer.offer_id} is unknown")
        return provider

    async def update_offer(self, who: Principal, offer_id: str, changes: OfferChanges) -> Offer:
        async def attempt() -> Offer:
            offer = await self._own_offer(who, offer_id)
            provider = await self._owner_of(offer)
            before = offer.version
            updated = offer.update(changes, provider, self.clock(), self.taxonomy)
            if offer.version != before:  # drafts change without an event
                await self.store.save_offer(offer, before, [updated])
                await self.publish(OFFERS, offer_id)
                await self._indexed(offer=offer.snapshot())
            return offer

        return await self._retrying(attempt)

    async def publish_offer(self, who: Principal, offer_id: str) -> Offer:
        async def attempt() -> Offer:
            offer = await self._own_offer(who, offer_id)
            provider = await self._owner_of(offer)
            before = offer.version
            published = offer.publish(provider, self.clock(), self.taxonomy)
            await self.store.save_offer(offer, before, [published])
            await self.publish(OFFERS, offer_id)
            await self._indexed(offer=offer.snapshot())
            return offer

        return await self._retrying(attempt)

    async def withdraw_offer(self, who: Principal, offer_id: str) -> Offer:
        async def attempt() -> Offer:
            offer = await self._own_offer(who, offer_id)
            before = offer.version
            withdrawn = offer.withdraw(self.clock())
            await self.store.save_offer(offer, before, [withdrawn])
            await self.publish(OFFERS, offer_id)
            await self._indexed(offer=offer.snapshot())
            return offer

        return await self._retrying(attempt)

    async def delete_draft(self, who: Principal, offer_id: str) -> None:
        async def attempt() -> None:
            offer = await self._own_offer(who, offer_id)
            if offer.status is not OfferStatus.DRAFT:
                raise Conflict(
                    f"offer {offer_id} is {offer.status.value}: only drafts can be deleted "
                    "(withdraw a published offer instead)"
                )
            await self.store.delete_draft(offer_id, offer.version)

        await self._retrying(attempt)

    async def offers_of(self, who: Principal, provider_id: str) -> list[Offer]:
        """All offers of a provider for the owner and operators; published ones for others."""
        mine = who.is_operator or who.subject == provider_id
        statuses = None if mine else [OfferStatus.PUBLISHED]
        snaps = await self.store.offers_of(provider_id, statuses)
        return [Offer.from_snapshot(s) for s in snaps]

    async def search(self, query: OfferQuery) -> SearchPage:
        """One page from this replica's search index (`domain.search` semantics)."""
        after = check_query(query, self.taxonomy)
        return await self.index.search(query, after)


def _may_edit(who: Principal, offer: Offer) -> bool:
    return who.is_operator or (who.role is Role.PROVIDER and who.subject == offer.provider_id)
