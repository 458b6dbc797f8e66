"""Keeps this replica's search index current from `catalog.offers.v1` / `catalog.providers.v1`.

Every replica needs every catalog event in its own index, so the follower is
a group-less consumer assigned to every partition of both topics (a consumer
group would give each replica only some partitions). Its positions live in
the index itself, written in the same transaction as the snapshots they
carried, so a restart resumes exactly where the index stopped:

- `start()` (before the app serves): when the index has no positions, or they
  point past the end of a partition (topics recreated), it takes the end
  offsets FIRST, then rebuilds the index from the offers collection (one
  `find` with a projection), so no event falls between the two; then it
  reads every partition up to the end offsets seen at start-up (catch-up).
- `run()` (background): follows from there for the life of the process.

Snapshots carry versions and the index keeps the newest, so records read
twice (store and topic, or after a crash) change nothing. A malformed record
is skipped: nothing in the catalog consumes these topics otherwise, the
producer is the catalog itself, and a search index is not the place to park
records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import ConsumerRecord, TopicPartition
from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot
from delego_shared.events.envelope import Envelope, MalformedEvent
from delego_shared.logging import get_logger
from delego_shared.messaging.topics_admin import end_offsets, follow_partitions, wait_for_partitions
from delego_shared.settings import Settings
from delego_shared.timing import survive

from .search_index import Positions, SearchIndex
from .store import CatalogStore

log = get_logger(__name__)


class SearchFollower:
    def __init__(
        self, settings: Settings, topics: Iterable[str], index: SearchIndex, store: CatalogStore
    ) -> None:
        self.settings = settings
        self.topics = [settings.topic(t) for t in topics]
        self.index = index
        self.store = store
        self.positions: Positions = {}
        self.rebuilt = False
        """Whether the last `start()` rebuilt the index from the store (else it caught up)."""
        self.applied = 0
        """Snapshots from the topics that were newer than the index's."""
        self.started = asyncio.Event()

    async def start(self) -> None:
        """Rebuild if needed, then catch up to the end offsets seen now."""
        followed = await wait_for_partitions(self.settings.kafka_access, self.topics)
        ends = {
            (tp.topic, tp.partition): o
            for tp, o in (await end_offsets(self.settings.kafka_access, self.topics)).items()
        }
        self.positions = await self.index.positions()
        stale = [k for k, at in self.positions.items() if at > ends.get(k, 0)]
        self.rebuilt = not self.positions or bool(stale)
        if self.rebuilt:
            started = time.monotonic()
            self.positions = dict(ends)
            providers = await self.store.all_providers()
            count = await self.index.rebuild(
                dict(self.positions), providers, self.store.public_offers()
            )
            log.info(
                "search_index.rebuilt",
                offers=count,
                providers=len(providers),
                stale_positions=len(stale),
                seconds=round(time.monotonic() - started, 3),
            )
        behind = {k: e for k, e in ends.items() if self.positions.get(k, 0) < e}
        if behind:
            await self._read(followed, until=behind)
        log.info("search_index.caught_up", positions=len(self.positions), rebuilt=self.rebuilt)
        self.started.set()

    async def run(self) -> None:
        """Follow the topics for the life of the service (reconnects on error), from
        where `start()` left the index."""
        await self.started.wait()
        while True:
            await survive(self._follow, "search_follower.failed")
            await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        await self._read(
            await wait_for_partitions(self.settings.kafka_access, self.topics), until=None
        )

    async def _read(
        self, followed: list[TopicPartition], until: dict[tuple[str, int], int] | None
    ) -> None:
        """Read from `self.positions`, until those end offsets (catch-up) or forever."""
        consumer = await follow_partitions(
            self.settings.kafka_access,
            f"delego-{self.settings.service_name}-search",
            followed,
            self.positions,
        )
        try:
            while until is None or any(self.positions.get(k, 0) < e for k, e in until.items()):
                batch = await consumer.getmany(timeout_ms=1000, max_records=500)
                if batch:
                    await self._apply([r for records in batch.values() for r in records])
        finally:
            await consumer.stop()

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        offers: dict[str, OfferSnapshot] = {}
        providers: dict[str, ProviderSnapshot] = {}
        moved: Positions = {}
        for r in records:
            moved[(r.topic, r.partition)] = r.offset + 1
            try:
                envelope = Envelope.from_record(list(r.headers or ()), r.value or b"")
            except MalformedEvent as exc:
                log.warning(
                    "search_follower.malformed", topic=r.topic, offset=r.offset, error=str(exc)
                )
                continue
            offer = getattr(envelope.data, "offer", None)
            provider = getattr(envelope.data, "provider", None)
            if isinstance(offer, OfferSnapshot):
                kept = offers.get(offer.offer_id)
                if kept is None or kept.version < offer.version:
                    offers[offer.offer_id] = offer
            elif isinstance(provider, ProviderSnapshot):
                kept_p = providers.get(provider.provider_id)
                if kept_p is None or kept_p.version < provider.version:
                    providers[provider.provider_id] = provider
        self.applied += await self.index.apply(
            list(offers.values()), list(providers.values()), moved
        )
        self.positions.update(moved)


__all__ = ["SearchFollower"]
