"""Every replica reads every catalog partition itself, into its own in-memory index.

The service's consumer group spreads the catalog partitions over the replicas,
which is right for storing the read model once, but each replica's
`CandidateIndex` needs every catalog event. Instead of polling the read model
(a scan every second), each replica runs a group-less consumer assigned to all
partitions of `catalog.providers.v1` and `catalog.offers.v1`:

- no group: it never joins or rebalances the service's group, and commits
  nothing (the positions live in memory for the life of the process);
- start position: the group's committed offsets, read BEFORE the read model is
  loaded into the index. The group commits only after the effect is stored, so
  every record below those offsets is in the read model the index is built
  from; the follower reads every record from there on. A partition the group
  never committed is read from the beginning.
- it applies snapshots to the index only; the index is version-aware, so
  records seen twice (from the read model and the topic) change nothing.

A malformed record is skipped here (the group consumer parks it on the DLQ).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from delego_shared.events.envelope import Envelope, MalformedEvent
from delego_shared.logging import get_logger
from delego_shared.messaging.topics_admin import follow_partitions, wait_for_partitions
from delego_shared.settings import Settings
from delego_shared.timing import survive

log = get_logger(__name__)

Positions = dict[tuple[str, int], int]
"""Next offset to read per (topic, partition)."""


class CatalogFollower:
    def __init__(
        self,
        settings: Settings,
        topics: Iterable[str],
        apply: Callable[[Envelope], bool],
        *,
        group: str | None = None,
    ) -> None:
        self.settings = settings
        self.topics = [settings.topic(t) for t in topics]
        self.apply = apply
        self.group = group or settings.consumer_group
        self.positions: Positions = {}
        self.seen = 0
        """Records read by this follower (applied or not)."""

    async def start_positions(self) -> Positions:
        """The group's committed offsets: the read model holds everything below them."""
        admin = AIOKafkaAdminClient(
            **self.settings.kafka_access.client_options(),
            client_id=f"delego-{self.settings.service_name}-follower",
        )
        await admin.start()
        try:
            for attempt in range(1, 61):
                try:
                    committed = await admin.list_consumer_group_offsets(self.group)
                    break
                except KafkaError as exc:
                    # a fresh broker creates its offsets topic (the group coordinator)
                    # on first use: "coordinator not available" for a few seconds
                    if not exc.retriable or attempt == 60:
                        raise
                    log.info("catalog_follower.coordinator_not_ready", error=type(exc).__name__)
                    await asyncio.sleep(0.5)
        finally:
            await admin.close()
        self.positions = {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in committed.items()
            if tp.topic in self.topics and meta.offset >= 0
        }
        return dict(self.positions)

    async def run(self) -> None:
        """Follow the catalog topics for the life of the service (reconnects on error)."""
        while True:
            await survive(self._follow, "catalog_follower.failed")
            await asyncio.sleep(1.0)  # reconnect

    async def _follow(self) -> None:
        followed = await wait_for_partitions(self.settings.kafka_access, self.topics)
        consumer = await follow_partitions(
            self.settings.kafka_access,
            f"delego-{self.settings.service_name}-follower",
            followed,
            self.positions,
        )
        try:
            log.info("catalog_follower.started", partitions=len(followed))
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=500)
                for tp, records in batch.items():
                    for r in records:
                        self._apply(r.headers or (), r.value or b"")
                        self.positions[(tp.topic, tp.partition)] = r.offset + 1
        finally:
            await consumer.stop()

    def _apply(self, headers: Iterable[tuple[str, bytes]], value: bytes) -> None:
        self.seen += 1
        try:
            envelope = Envelope.from_record(list(headers), value)
        except MalformedEvent:
            return  # the group consumer parks it
        self.apply(envelope)


__all__ = ["CatalogFollower", "Positions"]
