"""All MongoDB code of the catalog service.

Collections (database `delego_catalog` by default):

- `providers`: one document per provider, `_id` = provider id. It holds the
  public snapshot (`provider`, JSON form: decimals and dates as strings), the
  `version` and `status` at top level for conditional updates, the
  `suspension_reason` (not part of the snapshot) and the pending events
  (shared outbox).
- `offers`: one document per offer, `_id` = offer id: the snapshot (`offer`),
  `version`, and the *search fields*, flat and normalised for the indexes:
  `status`, `category`, `skill_keys` (`code@1`..`code@level`), `lang` (lower-cased tags) and
  `lang_primary` (primary subtags), `pricing_model`, `delivery_mode`,
  `currency` and `price_key` (`reference_price_key`: a fixed-width string that
  sorts like the reference amount, since FerretDB v1 has no Decimal128), plus
  the provider's `provider_status`, `provider_tz` and `provider_version`
  (denormalised so that one query on one collection answers a search).

Every write of a state and of the events it produced is ONE single-document
write: `Outbox.attach` on insert, `Outbox.push` on a conditional update on the
previous `version` (optimistic concurrency: `StaleVersion` when someone else
won). The use case then publishes that document's events at once
(`CatalogService`, shared `OutboxRelay.publish_now`).

The provider fields copied onto offers are set when the offer is created and
refreshed after each provider change by `update_many`, guarded by
`provider_version` so an older copy never overwrites a newer one. They serve
search only: no event depends on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal
from typing import Any

from delego_shared.events.base import Event
from delego_shared.events.catalog import OfferSnapshot, OfferStatus, ProviderSnapshot
from delego_shared.events.common import PerUnitPricing
from delego_shared.events.envelope import Envelope
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo
from delego_shared.types import Money

from .domain import (
    Offer,
    OfferQuery,
    Provider,
    SearchPage,
    Taxonomy,
    ValidationFailed,
    check_query,
    encode_cursor,
    reference_price,
    reference_price_key,
    sort_key,
)
from .domain.taxonomy import MIN_LEVEL
from .domain.text import primary_language

PROVIDERS = "providers"
OFFERS = "offers"
OUTBOX_COLLECTIONS = (PROVIDERS, OFFERS)

_SNAPSHOT_ONLY = {"offer": 1, "version": 1}


def store_indexes() -> list[IndexSpec]:
    """Indexes serving the search filters (every search also has status + provider status)."""
    published = [("status", 1), ("provider_status", 1)]
    order = [("price_key", 1), ("_id", 1)]
    return [
        IndexSpec(OFFERS, [*published, *order], name="search_order"),
        IndexSpec(OFFERS, [*published, ("category", 1), *order], name="search_category"),
        IndexSpec(OFFERS, [("skill_keys", 1)], name="search_skill"),
        IndexSpec(OFFERS, [("lang_primary", 1)], name="search_language"),
        IndexSpec(OFFERS, [("lang", 1)], name="search_language_variant"),
        IndexSpec(OFFERS, [("currency", 1), *order], name="search_max_price"),
        IndexSpec(OFFERS, [("pricing_model", 1), *order], name="search_pricing_model"),
        IndexSpec(OFFERS, [("delivery_mode", 1), *order], name="search_delivery_mode"),
        IndexSpec(OFFERS, [("provider_tz", 1), *order], name="search_time_zone"),
        IndexSpec(OFFERS, [("provider_id", 1), ("provider_version", 1)], name="by_provider"),
        IndexSpec(PROVIDERS, [("status", 1)], name="by_status"),
    ]


class AlreadyExists(Exception):
    """An insert hit an existing id."""


class StaleVersion(Exception):
    """The aggregate changed (or vanished) since it was read: reload and retry."""


def amount_key(amount: Decimal) -> str:
    """The index key of a reference amount (same format as `reference_price_key`).

    Raises ValueError when the amount cannot be indexed (negative, too large).
    """
    try:
        probe = PerUnitPricing(unit_name="probe", unit_price=Money(amount=amount, currency="EUR"))
        return reference_price_key(probe)
    except ArithmeticError as exc:  # decimal.InvalidOperation on absurd exponents
        raise ValueError(f"amount {amount} cannot be indexed") from exc


def offer_document(offer: OfferSnapshot, provider: ProviderSnapshot) -> Document:
    """The stored form of an offer (without outbox), also used by the benchmark's bulk load."""
    return {"_id": offer.offer_id, **_offer_state(offer), **_provider_fields(provider)}


def _offer_state(offer: OfferSnapshot) -> Document:
    ref = reference_price(offer.pricing)
    return {
        "offer": offer.model_dump(mode="json"),
        "version": offer.version,
        "provider_id": offer.provider_id,
        "status": offer.status.value,
        "category": offer.category,
        "skill_keys": skill_keys(offer),
        "lang": sorted({t.lower() for t in offer.languages}),
        "lang_primary": sorted({primary_language(t) for t in offer.languages}),
        "pricing_model": offer.pricing.model,
        "delivery_mode": offer.delivery_mode.value,
        "currency": ref.currency,
        "price_key": amount_key(ref.amount),
    }


def skill_key(code: str, level: int) -> str:
    return f"{code}@{level}"


def skill_keys(offer: OfferSnapshot) -> list[str]:
    """`code@1` .. `code@level` for each skill: "skill at least L" is one equality.

    (FerretDB v1's `$elemMatch` takes no field conditions on embedded documents.)
    """
    return sorted(
        skill_key(s.code, lv) for s in offer.skills for lv in range(MIN_LEVEL, s.level + 1)
    )


def _provider_fields(provider: ProviderSnapshot) -> Document:
    return {
        "provider_status": provider.status.value,
        "provider_tz": provider.time_zone,
        "provider_version": provider.version,
    }


def search_filter(query: OfferQuery, after: tuple[Decimal, str] | None) -> Document:
    """The Mongo filter of `catalog.domain.search` semantics (the query is already checked)."""
    f: Document = {"status": OfferStatus.PUBLISHED.value, "provider_status": "active"}
    if query.category is not None:
        f["category"] = query.category
    if query.skill is not None:
        f["skill_keys"] = skill_key(query.skill, query.min_level or MIN_LEVEL)
    if query.language is not None:
        wanted = query.language.lower()
        if "-" in wanted:  # fr-BE: offers in fr-BE or plain fr
            f["lang"] = {"$in": [wanted, primary_language(wanted)]}
        else:  # fr: any region
            f["lang_primary"] = wanted
    if query.max_price is not None:
        f["currency"] = query.max_price.currency
        with contextlib.suppress(ValueError):  # larger than any indexable price: no bound
            f["price_key"] = {"$lte": amount_key(query.max_price.amount)}
    if query.pricing_model is not None:
        f["pricing_model"] = query.pricing_model
    if query.delivery_mode is not None:
        f["delivery_mode"] = query.delivery_mode.value
    if query.time_zones is not None:
        f["provider_tz"] = {"$in": list(query.time_zones)}
    if after is not None:
        key = amount_key(after[0])
        f["$or"] = [{"price_key": {"$gt": key}}, {"price_key": key, "_id": {"$gt": after[1]}}]
    return f


class CatalogStore:
    """Providers and offers; writes store state and events together (shared outbox)."""

    def __init__(self, mongo: Mongo, source: str) -> None:
        self.mongo = mongo
        self.source = source
        self.providers = mongo.db[PROVIDERS]
        self.offers = mongo.db[OFFERS]

    def _envelopes(self, events: Iterable[Event | None]) -> list[Envelope]:
        return [Envelope(data=e, source=self.source) for e in events if e is not None]

    # -- providers ------------------------------------------------------------------------

    async def get_provider(self, provider_id: str) -> Provider | None:
        doc = await self.providers.find_one(
            {"_id": provider_id}, {"provider": 1, "suspension_reason": 1}
        )
        if doc is None:
            return None
        snap = ProviderSnapshot.model_validate(doc["provider"])
        return Provider.from_snapshot(snap, doc.get("suspension_reason"))

    async def insert_provider(self, provider: Provider, events: Sequence[Event]) -> None:
        envelopes = self._envelopes(events)
        snap = provider.snapshot()
        doc = {
            "_id": snap.provider_id,
            **self._provider_state(provider),
        }
        try:
            await self.providers.insert_one(Outbox.attach(doc, envelopes))
        except DuplicateKeyError:
            raise AlreadyExists(snap.provider_id) from None

    async def save_provider(
        self, provider: Provider, expected_version: int, events: Sequence[Event | None]
    ) -> None:
        """Conditional on `expected_version`; then refresh the copies on its offers."""
        envelopes = self._envelopes(events)
        update = Outbox.push({"$set": self._provider_state(provider)}, envelopes)
        result = await self.providers.update_one(
            {"_id": provider.provider_id, "version": expected_version}, update
        )
        if result.matched_count != 1:
            raise StaleVersion(provider.provider_id)
        await self.sync_offers_of(provider.snapshot())

    @staticmethod
    def _provider_state(provider: Provider) -> Document:
        snap = provider.snapshot()
        return {
            "provider": snap.model_dump(mode="json"),
            "version": snap.version,
            "status": snap.status.value,
            "suspension_reason": provider.suspension_reason,
        }

    async def sync_offers_of(self, provider: ProviderSnapshot) -> int:
        """Copy the provider's status and zone onto its offers (never an older version)."""
        result = await self.offers.update_many(
            {"provider_id": provider.provider_id, "provider_version": {"$lt": provider.version}},
            {"$set": _provider_fields(provider)},
        )
        return result.modified_count

    # -- offers ---------------------------------------------------------------------------

    async def get_offer(self, offer_id: str) -> Offer | None:
        doc = await self.offers.find_one({"_id": offer_id}, _SNAPSHOT_ONLY)
        if doc is None:
            return None
        return Offer.from_snapshot(OfferSnapshot.model_validate(doc["offer"]))

    async def insert_offer(
        self, offer: Offer, provider: ProviderSnapshot, events: Sequence[Event | None] = ()
    ) -> None:
        envelopes = self._envelopes(events)
        doc = offer_document(offer.snapshot(), provider)
        try:
            await self.offers.insert_one(Outbox.attach(doc, envelopes))
        except DuplicateKeyError:
            raise AlreadyExists(offer.offer_id) from None

    async def save_offer(
        self, offer: Offer, expected_version: int, events: Sequence[Event | None]
    ) -> None:
        """One conditional update: new snapshot, search fields and pending events."""
        envelopes = self._envelopes(events)
        update = Outbox.push({"$set": _offer_state(offer.snapshot())}, envelopes)
        result = await self.offers.update_one(
            {"_id": offer.offer_id, "version": expected_version}, update
        )
        if result.matched_count != 1:
            raise StaleVersion(offer.offer_id)

    async def delete_draft(self, offer_id: str, expected_version: int) -> None:
        """Drafts were never published, so deleting one needs no event."""
        result = await self.offers.delete_one(
            {"_id": offer_id, "version": expected_version, "status": OfferStatus.DRAFT.value}
        )
        if result.deleted_count != 1:
            raise StaleVersion(offer_id)

    async def offers_of(
        self, provider_id: str, statuses: Sequence[OfferStatus] | None = None, limit: int = 200
    ) -> list[OfferSnapshot]:
        f: dict[str, Any] = {"provider_id": provider_id}
        if statuses is not None:
            f["status"] = {"$in": [s.value for s in statuses]}
        cursor = self.offers.find(f, _SNAPSHOT_ONLY).sort("_id", 1).limit(limit)
        return [OfferSnapshot.model_validate(d["offer"]) async for d in cursor]

    # -- the search read model's source ---------------------------------------------------

    async def all_providers(self) -> list[ProviderSnapshot]:
        """Every provider (a bounded collection), read once when the search index is built."""
        cursor = self.providers.find({}, {"provider": 1})
        return [ProviderSnapshot.model_validate(d["provider"]) async for d in cursor]

    async def public_offers(self, batch: int = 2000) -> AsyncIterator[list[Document]]:
        """Published and withdrawn offers in batches, as stored (the JSON form of their
        snapshots): one pass when the search index is built (withdrawn ones keep their
        version, so an old event cannot revive them)."""
        statuses = [OfferStatus.PUBLISHED.value, OfferStatus.WITHDRAWN.value]
        cursor = self.offers.find({"status": {"$in": statuses}}, _SNAPSHOT_ONLY, batch_size=batch)
        chunk: list[Document] = []
        async for d in cursor:
            chunk.append(d["offer"])
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    # -- search on the store (the benchmark's reference; the service uses the index) ------

    async def search(self, query: OfferQuery, taxonomy: Taxonomy | None = None) -> SearchPage:
        """One page of published offers of active providers, by (reference amount, offer id).

        Same semantics as `catalog.domain.search_offers`; invalid filters raise
        `ValidationFailed`.
        """
        if query.text is not None:
            raise ValueError("the store query has no text search: use the search index")
        after = check_query(query, taxonomy)
        if after is not None:
            try:
                amount_key(after[0])
            except ValueError:
                raise ValidationFailed.single(
                    "cursor", "is not a cursor returned by a previous page"
                ) from None
        cursor = (
            self.offers.find(search_filter(query, after), _SNAPSHOT_ONLY)
            .sort([("price_key", 1), ("_id", 1)])
            .limit(query.limit + 1)
        )
        found = [OfferSnapshot.model_validate(d["offer"]) async for d in cursor]
        page = found[: query.limit]
        more = len(found) > query.limit
        return SearchPage(
            items=page, next_cursor=encode_cursor(sort_key(page[-1])) if more else None
        )
