"""Offsets of handled records, committed together shortly after (never before the effect).

A commit is a request to the group coordinator and a write to
`__consumer_offsets`; one per record was a quarter of the broker's requests per
flow. Each record's offset is recorded only once its handler has finished
(applied, skipped or parked), and a flush a moment later commits, per consumer,
the next offset of the last handled record of each partition. Records of a
partition are handled in order by one consumer, so that offset never passes a
record whose effect is not done.

What a crash or a rebalance costs: records handled in the last interval are
delivered again (at-least-once, as before); the inbox and idempotent effects
make that harmless. A commit for a partition this consumer lost is dropped:
its new owner starts from the last committed offset.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from ..logging import get_logger

log = get_logger(__name__)

COMMIT_TIMEOUT_S = 10.0


class OffsetCommits:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._pending: dict[Any, dict[TopicPartition, int]] = {}
        self._flushing: asyncio.Task[None] | None = None

    async def handled(self, consumer: Any, topic: str, partition: int, offset: int) -> None:
        """This record's effect is done: commit up to it (now, or with the next flush)."""
        offsets = {TopicPartition(topic, partition): offset + 1}
        if self.interval_s <= 0:
            await self._commit(consumer, offsets)
            return
        self._pending.setdefault(consumer, {}).update(offsets)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_loop(), name="offset-commits")

    async def _flush_loop(self) -> None:
        while self._pending:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self) -> None:
        """Commit everything handled so far (also on a clean stop)."""
        pending, self._pending = self._pending, {}
        for consumer, offsets in pending.items():
            await self._commit(consumer, offsets)

    async def _commit(self, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        try:
            # aiokafka retries a commit while the coordinator or the topic is away: bounded
            # here, so a stop or the next flush never waits on it (the records come again)
            await asyncio.wait_for(consumer.commit(offsets), COMMIT_TIMEOUT_S)
        except Exception as exc:  # partition revoked, consumer stopping, broker away
            log.info(
                "offsets.commit_skipped",
                partitions=len(offsets),
                error_type=type(exc).__name__,
                error=str(exc),
            )
