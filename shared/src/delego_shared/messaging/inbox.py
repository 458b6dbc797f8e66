"""Idempotent consumption: remember which events a consumer group has applied.

`Inbox` makes a replay skip an event whose handling completed. A crash between
a handler's effect and `mark` re-runs the handler, so handlers still write
idempotently: deterministic ids with a unique index, or a conditional update on
the aggregate that records the event id in the same document
(`apply_once_filter`/`apply_once_update`), which is exactly-once on one document.

The inbox is bounded: an id is kept for `retention` (default 8 days) after it
was applied, then pruned. That covers every way an event comes back: a
consumer rewinds to its last commit (seconds), an outbox relay re-publishes
after a crash (minutes, its sweep is hourly), and an operator resets a group to
the earliest offset: a record stays on its topic for the broker's retention
(7 days, Kafka's default, which we do not change), and it was applied after
it was appended, so its id outlives it. Past that, handlers are idempotent by
themselves (above). A record replayed from a DLQ was parked, never marked.

Pruning costs nothing per event: every `prune_every` (1 h, jittered) one
process deletes expired ids in bounded batches, in the background: one
`find(at < cutoff).limit(batch)` (FerretDB evaluates it in Go and stops at the
limit; the oldest ids come first in storage order; MongoDB uses the `at`
index) and one bulk of deletes by `_id` per batch. FerretDB has no TTL
indexes; on MongoDB a TTL index on `at` would do the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DeleteOne
from pymongo.errors import DuplicateKeyError

from ..logging import get_logger
from ..mongo import IndexSpec, Mongo
from ..timing import survive

log = get_logger(__name__)

COLLECTION = "processed_events"
DEFAULT_RETENTION = timedelta(days=8)
"""The broker's log retention (7 days) plus a day of margin."""
AT_INDEX = IndexSpec(COLLECTION, [("at", 1)])


class Inbox:
    def __init__(
        self,
        mongo: Mongo,
        group: str,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        prune_every: timedelta = timedelta(hours=1),
        prune_batch: int = 500,
        prune_pause_s: float = 0.5,
    ) -> None:
        self.mongo = mongo
        self.coll = mongo.db[COLLECTION]
        self.group = group
        self.retention = retention
        self.prune_every_s = prune_every.total_seconds()
        self.prune_batch = prune_batch
        self.prune_pause_s = prune_pause_s
        self._next_prune: float | None = None
        self._prune_task: asyncio.Task[bool] | None = None
        self._indexed = False

    def _id(self, event_id: str) -> str:
        return f"{self.group}:{event_id}"

    async def seen(self, event_id: str) -> bool:
        return await self.coll.find_one({"_id": self._id(event_id)}, {"_id": 1}) is not None

    async def mark(self, event_id: str, event_type: str = "") -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.coll.insert_one(
                {"_id": self._id(event_id), "type": event_type, "at": datetime.now(UTC)}
            )
        self._maybe_prune()

    def _maybe_prune(self) -> None:
        """Start a background prune when one is due (a clock read per event, no I/O)."""
        now = asyncio.get_running_loop().time()
        if self._next_prune is None:  # first one a while after start: replicas spread out
            self._next_prune = now + self.prune_every_s * random.uniform(0.1, 1.0)
            return
        if now < self._next_prune or (self._prune_task and not self._prune_task.done()):
            return
        self._next_prune = now + self.prune_every_s * random.uniform(0.9, 1.1)
        self._prune_task = asyncio.create_task(survive(self.prune, "inbox.prune_failed"))

    async def prune(self, now: datetime | None = None) -> int:
        """Delete ids applied more than `retention` ago, in bounded batches; returns how many."""
        if not self._indexed:
            await self.mongo.ensure_indexes([AT_INDEX])
            self._indexed = True
        cutoff = (now or datetime.now(UTC)) - self.retention
        expired: dict[str, Any] = {"at": {"$lt": cutoff}}
        deleted = 0
        while True:
            ids = [
                d["_id"] async for d in self.coll.find(expired, {"_id": 1}).limit(self.prune_batch)
            ]
            if not ids:
                break
            result = await self.coll.bulk_write(
                [DeleteOne({"_id": i, **expired}) for i in ids], ordered=False
            )
            deleted += result.deleted_count
            if len(ids) < self.prune_batch:
                break
            await asyncio.sleep(self.prune_pause_s)  # slow: leave the store to live traffic
        if deleted:
            log.info("inbox.pruned", deleted=deleted, cutoff=cutoff.isoformat())
        return deleted


APPLIED = "_applied_events"


def apply_once_filter(filter_: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Match the aggregate only if this event was not applied to it yet."""
    return {**filter_, APPLIED: {"$ne": event_id}}


def apply_once_update(update: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Record the event id in the same atomic update as the effect."""
    out = {k: dict(v) for k, v in update.items()}
    out.setdefault("$addToSet", {})[APPLIED] = event_id
    return out
