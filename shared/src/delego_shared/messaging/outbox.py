"""No dual write: events are stored in the aggregate's own document, then relayed.

A service never publishes directly. It writes its new state and the events that
change produced in ONE single-document update (`Outbox.push` / `Outbox.attach`),
which MongoDB and FerretDB apply atomically. `OutboxRelay` polls for documents
with pending events, claims one with `find_one_and_update` (a lease, so
replicas do not relay the same document at once), publishes its events in
order and removes each with `$pull` once the broker acknowledged it.

A crash before the publish leaves the events pending: the relay sends them
later. A crash after the publish but before the `$pull` sends one again with
the same `ce_id`: consumers are idempotent on it (at-least-once delivery,
effectively-once effects).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from ..events.envelope import Envelope
from ..logging import get_logger
from ..mongo import Document, IndexSpec, Mongo
from ..timing import cancel_and_wait, wake_or_timeout
from .publisher import EventPublisher

log = get_logger(__name__)

PENDING = "_outbox"
COUNT = "_outbox_n"
LEASE = "_outbox_lease"


class Outbox:
    """Builds the outbox part of a document or of an update."""

    @staticmethod
    def entries(envelopes: Iterable[Envelope]) -> list[Document]:
        now = datetime.now(UTC)
        return [{"id": e.id, **e.to_document(), "stored_at": now} for e in envelopes]

    @classmethod
    def attach(cls, document: Document, envelopes: Sequence[Envelope]) -> Document:
        """For an insert: the new document with its pending events."""
        return {**document, PENDING: cls.entries(envelopes), COUNT: len(envelopes)}

    @classmethod
    def push(cls, update: dict[str, Any], envelopes: Sequence[Envelope]) -> dict[str, Any]:
        """For an update: add the pending events to the same atomic update."""
        if not envelopes:
            return update
        out = {k: dict(v) for k, v in update.items()}
        out.setdefault("$push", {})[PENDING] = {"$each": cls.entries(envelopes)}
        out.setdefault("$inc", {})[COUNT] = len(envelopes)
        return out

    @staticmethod
    def indexes(collections: Iterable[str]) -> list[IndexSpec]:
        return [IndexSpec(c, [(COUNT, 1)], name="outbox_pending") for c in collections]

    @staticmethod
    def strip(document: Document | None) -> Document | None:
        """A stored document without its outbox bookkeeping (for reads)."""
        if document is None:
            return None
        return {k: v for k, v in document.items() if k not in (PENDING, COUNT, LEASE)}


class OutboxRelay:
    """Publishes pending events of the given collections, in order, at least once."""

    def __init__(
        self,
        mongo: Mongo,
        publisher: EventPublisher,
        collections: Sequence[str],
        *,
        poll_interval_s: float = 0.25,
        lease_s: float = 30.0,
    ) -> None:
        self.mongo = mongo
        self.publisher = publisher
        self.collections = list(collections)
        self.poll_interval_s = poll_interval_s
        self.lease = timedelta(seconds=lease_s)
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Tell the relay new events are pending (saves a poll interval)."""
        self._wake.set()

    async def _claim(self, collection: str) -> Document | None:
        now = datetime.now(UTC)
        return await self.mongo.db[collection].find_one_and_update(
            {
                COUNT: {"$gt": 0},
                "$or": [{LEASE: {"$exists": False}}, {f"{LEASE}.until": {"$lt": now}}],
            },
            {"$set": {LEASE: {"owner": self.owner, "until": now + self.lease}}},
            return_document=ReturnDocument.AFTER,
        )

    async def run_once(self) -> int:
        """Relay every pending event once; returns how many were published."""
        sent = 0
        for collection in self.collections:
            coll = self.mongo.db[collection]
            while (doc := await self._claim(collection)) is not None:
                release = True
                try:
                    for entry in doc.get(PENDING, []):
                        await self.publisher.publish_raw(
                            entry["topic"], entry["key"], entry["headers"], entry["body"].encode()
                        )
                        sent += 1
                        # pull the exact element as read: FerretDB v1 compares $pull
                        # conditions on embedded documents by equality, not as a query
                        await coll.update_one(
                            {"_id": doc["_id"]},
                            {"$pull": {PENDING: entry}, "$inc": {COUNT: -1}},
                        )
                    after = await coll.find_one({"_id": doc["_id"]}, {PENDING: 1})
                    published = {e["id"] for e in doc.get(PENDING, [])}
                    if after and published & {e["id"] for e in after.get(PENDING, [])}:
                        log.error(
                            "outbox.entries_not_cleared",
                            collection=collection,
                            document=str(doc["_id"]),
                        )
                        release = False  # keep the lease: retried once it expires
                finally:
                    if release:
                        await coll.update_one(
                            {"_id": doc["_id"], f"{LEASE}.owner": self.owner},
                            {"$unset": {LEASE: ""}},
                        )
        return sent

    async def run_forever(self) -> None:
        while True:
            try:
                n = await self.run_once()
                if n:
                    log.debug("outbox.relayed", count=n)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or store down: keep trying
                log.warning("outbox.relay_failed", error_type=type(exc).__name__, error=str(exc))
            self._wake.clear()
            await wake_or_timeout(self._wake, self.poll_interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
