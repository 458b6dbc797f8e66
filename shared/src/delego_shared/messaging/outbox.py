"""No dual write: events are stored in the aggregate's own document, then published at once.

A service writes its new state and the events that change produced in ONE
single-document update (`Outbox.push` / `Outbox.attach`), which MongoDB and
FerretDB apply atomically. Right after that write succeeds, the same process
calls `OutboxRelay.publish_now(collection, id)`: it sends all the document's
pending events in order (the ones the caller just stored when its write shows
they are all that is pending, else read by `_id`), awaits the acknowledgements
together and returns. So the caller knows, when it answers, that its events are
on their topics; a cross-service reader that waits for consumer lag to reach
zero sees them.

The published entries are then removed (by entry id, one conditional update)
in the background, where nobody waits for it: the removals of the next
`REMOVAL_LINGER_S` of a collection go to the store as one bulk command
(`GroupedUpdates`), a few commands per flow fewer under load. Until its removal
lands, an entry published here is not published again by this relay: a later
publish of the same document sends only the newer entries (still without a
read). A crash before the removal lands, or another replica writing the same
document meanwhile, publishes those entries again with the same `ce_id` (in
order, before the newer ones), as a crash between a publish and its removal
always could.

Pending events are a map `_outbox.<event id> -> entry` plus a counter
`_outbox_n`. An entry is removed only if it is still there, and the counter is
decremented by exactly what was removed, so a stale publisher (lease expired,
someone else published and removed) can never drive the counter wrong.

The relay's sweep is only the fallback for crashes: it reads whole
collections (on FerretDB about a minute per 100,000 documents), so it runs only
when it is needed: when a relay stopped beating (each relay keeps a session
document with a heartbeat and deletes it on a clean stop with nothing left to
publish), at the store's first start, or when asked (`kick`). It reads
candidates with `find` and a projection, then claims each by `_id` (a lease),
so one failing document never stalls the others. A document whose immediate
publish failed (broker down) is retried by `_id`, soon and with backoff,
without any sweep.

A crash after the publish but before the removal sends an event again with
the same `ce_id`: consumers are idempotent on it (at-least-once delivery,
effectively-once effects). Order: the events of one document are published in
the order they were stored; one topic key is fed by one document (per service
README), so per-key order holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo import ReturnDocument

from .. import tracing
from ..events.envelope import Envelope
from ..logging import get_logger
from ..metrics import OUTBOX_PUBLISH_LATENCY, OUTBOX_PUBLISHED, Backlog, register_backlog
from ..mongo import Document, DuplicateKeyError, GroupedUpdates, IndexSpec, Mongo
from ..replica import Replica
from ..timing import cancel_and_wait, wake_or_timeout
from .publisher import EventPublisher, OutgoingRecord

log = get_logger(__name__)

PENDING = "_outbox"
COUNT = "_outbox_n"
LEASE = "_outbox_lease"
SESSIONS = "_outbox_sessions"
"""One document per running relay (heartbeat); a stale one is a relay that died."""
_FIRST_RUN = "first-run"
REMOVAL_LINGER_S = 0.05
"""How long a removal of published entries waits for others to go with it."""


class PublishNow(Protocol):
    """What a use case calls right after a write that stored events (`OutboxRelay.publish_now`)."""

    async def __call__(
        self,
        collection: str,
        document_id: Any,
        /,
        *,
        stored: Sequence[Envelope] = (),
        pending: int | None = None,
        written: Document | None = None,
    ) -> int: ...


async def publish_nothing(
    collection: str,
    document_id: Any,
    /,
    *,
    stored: Sequence[Envelope] = (),
    pending: int | None = None,
    written: Document | None = None,
) -> int:
    """For unit tests with in-memory stores: there is no broker to publish to."""
    return 0


class Outbox:
    """Builds the outbox part of a document or of an update."""

    @staticmethod
    def count(document: Document | None) -> int | None:
        """The pending count in a document a `find_one_and_update` returned (AFTER),
        for `publish_now(pending=...)`; None when nothing was updated. (FerretDB v1
        has no projection on findAndModify: the whole document comes back.)"""
        return None if document is None else int(document.get(COUNT, 0))

    @staticmethod
    def entries(envelopes: Iterable[Envelope]) -> dict[str, Document]:
        """Entries stored with the trace context of the span producing them (if any), so
        that whoever publishes them later continues that trace."""
        now = datetime.now(UTC)
        out = {e.id: {**e.to_document(), "stored_at": now, "n": i} for i, e in enumerate(envelopes)}
        trace = tracing.context_headers()
        if trace:
            for entry in out.values():
                entry["headers"].update(trace)
        return out

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
        for event_id, entry in cls.entries(envelopes).items():
            out.setdefault("$set", {})[f"{PENDING}.{event_id}"] = entry
        out.setdefault("$inc", {})[COUNT] = len(envelopes)
        return out

    @staticmethod
    def pending(document: Document | None) -> list[tuple[str, Document]]:
        """The document's pending events, oldest first."""
        entries = (document or {}).get(PENDING) or {}
        return sorted(entries.items(), key=lambda kv: (kv[1]["stored_at"], kv[1].get("n", 0)))

    @staticmethod
    def indexes(collections: Iterable[str]) -> list[IndexSpec]:
        return [IndexSpec(c, [(COUNT, 1)], name="outbox_pending") for c in collections]

    @staticmethod
    def strip(document: Document | None) -> Document | None:
        """A stored document without its outbox bookkeeping (for reads)."""
        if document is None:
            return None
        return {k: v for k, v in document.items() if k not in (PENDING, COUNT, LEASE)}


class _CountedLock(asyncio.Lock):
    def __init__(self) -> None:
        super().__init__()
        self.users = 0


class OutboxRelay:
    """Publishes a document's pending events right after its write; sweeps up after crashes."""

    def __init__(
        self,
        mongo: Mongo,
        publisher: EventPublisher,
        collections: Sequence[str],
        *,
        sweep_interval_s: float = 60.0,
        lease_s: float = 30.0,
        grace_s: float = 5.0,
        retry_after_failure_s: float = 1.0,
        removal_linger_s: float = REMOVAL_LINGER_S,
        replica: Replica | None = None,
    ) -> None:
        self.mongo = mongo
        self.publisher = publisher
        self.collections = list(collections)
        self.sweep_interval_s = sweep_interval_s
        self.lease = timedelta(seconds=lease_s)
        self.grace = timedelta(seconds=grace_s)
        """A sweep leaves alone entries younger than this: their writer is publishing them."""
        self.retry_after_failure_s = retry_after_failure_s
        self.replica = replica or Replica.unnamed()
        self.owner = self.replica.owner
        self._wake = asyncio.Event()
        self._retry: set[tuple[str, Any]] = set()
        """Documents whose publish failed: retried by `_id`, with backoff."""
        self._sweep_now = False
        self._retry_pause = False
        self._stopped = False
        self.sweeps = 0
        """Full sweeps this relay ran (each one reads whole collections)."""
        self.dead_after = timedelta(seconds=max(3 * sweep_interval_s, 10.0))
        self._publishing: dict[tuple[str, str], _CountedLock] = {}
        self._task: asyncio.Task[None] | None = None
        self.removal_linger_s = removal_linger_s
        self._removals: dict[str, GroupedUpdates] = {}
        """Removals after an immediate publish (in the background): those of the next
        `removal_linger_s` go to the store as one command."""
        self._removals_now: dict[str, GroupedUpdates] = {}
        """Removals the sweep waits for (it holds a lease meanwhile): sent at once."""
        for c in self.collections:
            self._grouped(c, later=True)
            self._grouped(c, later=False)
        self._removing: dict[tuple[str, str], set[str]] = {}
        """Entries published here whose removal has not landed yet, per document."""
        self._removal_tasks: set[asyncio.Task[None]] = set()
        self._unpublished: dict[tuple[str, str], tuple[int, datetime]] = {}
        """Documents this relay is publishing or will retry: (pending count, oldest
        stored_at). The outbox backlog metrics are computed from it, never from a scan."""
        register_backlog(self)

    def backlog(self) -> dict[str, Backlog]:
        """Unpublished events this relay knows of, per collection (for `/metrics`)."""
        out: dict[str, Backlog] = {c: Backlog(0, None) for c in self.collections}
        for (collection, _), (n, stored_at) in list(self._unpublished.items()):
            b = out.get(collection, Backlog(0, None))
            oldest = stored_at if b.oldest is None or stored_at < b.oldest else b.oldest
            out[collection] = Backlog(b.pending + n, oldest)
        return out

    def kick(self) -> None:
        """Ask for a full sweep now (after a repair that stored events, for instance)."""
        self._sweep_now = True
        self._wake.set()

    def _retry_soon(self, collection: str, document_id: Any) -> None:
        self._retry.add((collection, document_id))
        self._wake.set()

    # -- the normal path ------------------------------------------------------------------

    async def publish_now(
        self,
        collection: str,
        document_id: Any,
        *,
        stored: Sequence[Envelope] = (),
        pending: int | None = None,
        written: Document | None = None,
    ) -> int:
        """Publish `document_id`'s pending events now; on failure, retried by `_id` soon.

        `stored` are the events the caller's write stored and `pending` the
        document's pending count that write left (an insert: `len(stored)`; an
        update: `_outbox_n` as returned by `find_one_and_update`). When they
        agree, those are all the document's pending events and they are sent
        without reading the document back; otherwise (an older event is still
        pending: it must go first) the document is read by `_id`. `written` is
        the whole document as the caller's insert just stored it (`Outbox.attach`):
        its entries are all the document has, sent without a read too.

        Never raises for a broker or store error: the events are stored, so the
        write that produced them has succeeded whatever happens here.
        """
        coll = self.mongo.db[collection]
        try:
            if pending == 0:  # the write left nothing pending
                return 0
            async with self._one_publisher(collection, document_id):
                removing = self._published_here(collection, document_id)
                # the write's count includes entries published here whose removal is
                # still on its way: those and the ones just stored are all it holds
                if stored and pending == len(stored) + len(removing):
                    doc: Document | None = {
                        "_id": document_id,
                        PENDING: Outbox.entries(stored),
                    }
                elif written is not None:
                    doc = {"_id": document_id, PENDING: written.get(PENDING) or {}}
                else:
                    doc = await coll.find_one({"_id": document_id}, {PENDING: 1})
                return await self._publish(collection, doc, removing, remove_later=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._retry_later("outbox.publish_deferred", collection, document_id, exc)
            return 0

    async def _retry_later(
        self, what: str, collection: str, document_id: Any, exc: Exception
    ) -> None:
        """A document whose entries are still pending after a failure: retried by `_id`
        soon; when this relay has stopped, the next one sweeps for it."""
        log.warning(
            what,
            collection=collection,
            document=str(document_id),
            error_type=type(exc).__name__,
            error=str(exc),
        )
        self._retry_soon(collection, document_id)
        if self._stopped:  # nobody here will retry: leave a dead session behind
            with contextlib.suppress(Exception):
                await self.mongo.db[SESSIONS].update_one(
                    {"_id": self.owner},
                    {"$set": {"heartbeat": datetime(1970, 1, 1, tzinfo=UTC)}},
                    upsert=True,
                )

    @contextlib.asynccontextmanager
    async def _one_publisher(self, collection: str, document_id: Any) -> AsyncIterator[None]:
        """One publisher per document in this process (immediate or sweep): no duplicates."""
        key = (collection, str(document_id))
        lock = self._publishing.setdefault(key, _CountedLock())
        lock.users += 1
        try:
            async with lock:
                yield
        finally:
            lock.users -= 1
            if not lock.users:
                self._publishing.pop(key, None)

    def _published_here(self, collection: str, document_id: Any) -> frozenset[str]:
        """The document's entries published here whose removal has not landed, taken
        under its `_one_publisher` lock before it is read: while the lock is held none
        is added, and a removal landing during the read leaves its entries in that
        (older) read, where they must not be sent again."""
        return frozenset(self._removing.get((collection, str(document_id)), ()))

    async def _publish(
        self,
        collection: str,
        doc: Document | None,
        published_here: frozenset[str],
        *,
        remove_later: bool = False,
    ) -> int:
        """Send the document's pending entries but `published_here` (`_published_here`),
        then remove them: in the background with `remove_later`."""
        if doc is None:
            return 0
        key = (collection, str(doc["_id"]))
        entries = [(i, e) for i, e in Outbox.pending(doc) if i not in published_here]
        if not entries:
            self._unpublished.pop(key, None)
            return 0
        self._unpublished[key] = (len(entries), entries[0][1]["stored_at"])
        await self.publisher.send_all(
            [
                OutgoingRecord(e["topic"], e["key"], e["headers"], e["body"].encode(), logical=True)
                for _, e in entries
            ]
        )
        acked = datetime.now(UTC)
        OUTBOX_PUBLISHED.labels(collection).inc(len(entries))
        latency = OUTBOX_PUBLISH_LATENCY.labels(collection)
        for _, e in entries:
            latency.observe(max(0.0, (acked - e["stored_at"]).total_seconds()))
        event_ids = [event_id for event_id, _ in entries]
        if remove_later:
            self._remove_later(collection, doc["_id"], event_ids)
        else:
            await self._remove(collection, doc["_id"], event_ids)
        self._unpublished.pop(key, None)
        return len(entries)

    def _grouped(self, collection: str, *, later: bool) -> GroupedUpdates:
        """This collection's removals: lingering (background) or sent at once (sweep)."""
        groups = self._removals if later else self._removals_now
        if collection not in groups:
            linger = self.removal_linger_s if later else 0.0
            groups[collection] = GroupedUpdates(self.mongo.db[collection], linger_s=linger)
        return groups[collection]

    def _remove_later(self, collection: str, document_id: Any, event_ids: list[str]) -> None:
        key = (collection, str(document_id))
        self._removing.setdefault(key, set()).update(event_ids)
        task = asyncio.create_task(self._removal(collection, document_id, event_ids))
        self._removal_tasks.add(task)
        task.add_done_callback(self._removal_tasks.discard)

    async def _removal(self, collection: str, document_id: Any, event_ids: list[str]) -> None:
        key = (collection, str(document_id))
        try:
            await self._remove(collection, document_id, event_ids, later=True)
            failed = None
        except Exception as exc:  # the entries stay: the retry publishes them again (same id)
            failed = exc
        finally:
            left = self._removing.get(key)
            if left is not None:
                left.difference_update(event_ids)
                if not left:
                    del self._removing[key]
        if failed is not None:  # known as published no more: the retry sends them
            await self._retry_later("outbox.removal_failed", collection, document_id, failed)

    async def flush(self) -> None:
        """Wait until the removals of the entries published so far have landed (or, when
        the store failed, were handed to the retry)."""
        while self._removal_tasks:
            await asyncio.gather(*list(self._removal_tasks), return_exceptions=True)

    async def _remove(
        self, collection: str, document_id: Any, event_ids: list[str], *, later: bool = False
    ) -> None:
        """Remove exactly these entries; the counter drops by what was really removed."""
        coll = self.mongo.db[collection]
        present = {f"{PENDING}.{i}": {"$exists": True} for i in event_ids}
        if await self._grouped(collection, later=later).update_one(
            {"_id": document_id, **present},
            {"$unset": dict.fromkeys(present, ""), "$inc": {COUNT: -len(event_ids)}},
        ):
            return
        # someone else removed some of them meanwhile (or another removal of the same
        # command missed): remove what is still there one by one
        for field in present:
            await coll.update_one(
                {"_id": document_id, field: {"$exists": True}},
                {"$unset": {field: ""}, "$inc": {COUNT: -1}},
            )

    # -- the fallback ---------------------------------------------------------------------

    async def sweep(self, *, grace: timedelta | None = None) -> int:
        """Publish what no immediate publish sent (crash, broker outage); returns the count.

        Reads candidates with a projection (no lock held), then claims each by
        `_id` with a lease so replicas do not publish the same document at once.
        """
        sent = 0
        now = datetime.now(UTC)
        older_than = now - (self.grace if grace is None else grace)
        for collection in self.collections:
            coll = self.mongo.db[collection]
            candidates = [
                d async for d in coll.find({COUNT: {"$gt": 0}}, {"_id": 1, LEASE: 1, PENDING: 1})
            ]
            for d in candidates:
                entries = Outbox.pending(d)
                if not entries or entries[0][1]["stored_at"] > older_than:
                    continue
                lease = d.get(LEASE)
                if lease and lease["until"] > now:
                    continue
                try:
                    sent += await self._sweep_one(collection, d["_id"])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # this document only; the others go on
                    self._retry_soon(collection, d["_id"])
                    log.warning(
                        "outbox.sweep_failed",
                        collection=collection,
                        document=str(d["_id"]),
                        error_type=type(exc).__name__,
                        error=str(exc),
                    )
        return sent

    async def _sweep_one(self, collection: str, document_id: Any) -> int:
        coll = self.mongo.db[collection]
        async with self._one_publisher(collection, document_id):
            removing = self._published_here(collection, document_id)
            now = datetime.now(UTC)
            doc = await coll.find_one_and_update(
                {
                    "_id": document_id,
                    COUNT: {"$gt": 0},
                    "$or": [{LEASE: {"$exists": False}}, {f"{LEASE}.until": {"$lt": now}}],
                },
                {"$set": {LEASE: {"owner": self.owner, "until": now + self.lease}}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                self._unpublished.pop((collection, str(document_id)), None)
                return 0  # another replica has it, or it was published meanwhile
            try:
                return await self._publish(collection, doc, removing)
            finally:
                await coll.update_one(
                    {"_id": document_id, f"{LEASE}.owner": self.owner}, {"$unset": {LEASE: ""}}
                )

    # -- crash detection: sweep only when a relay died --------------------------------

    async def _heartbeat(self) -> None:
        now = datetime.now(UTC)
        await self.mongo.db[SESSIONS].update_one(
            {"_id": self.owner},
            {"$set": {"heartbeat": now}, "$setOnInsert": {"started": now}},
            upsert=True,
        )

    async def _crashed(self) -> bool:
        """Was there a relay that stopped without finishing its work (or is this the
        store's first relay)? Claims the dead sessions it found: this relay sweeps."""
        sessions = self.mongo.db[SESSIONS]
        found = False
        if await sessions.find_one({"_id": _FIRST_RUN}) is None:
            # events stored before any relay kept a session (an upgrade): look once
            with contextlib.suppress(DuplicateKeyError):
                await sessions.insert_one({"_id": _FIRST_RUN, "at": datetime.now(UTC)})
                found = True
        cutoff = datetime.now(UTC) - self.dead_after
        # a session stopped beating, or it was an earlier run of this replica (dead for
        # sure: no need to wait until it would have missed its beats)
        stale = {"heartbeat": {"$lt": cutoff}}
        dead = [
            (d["_id"], {} if self.replica.is_predecessor(d["_id"]) else stale)
            async for d in sessions.find(
                {"$or": [stale, {"_id": self.replica.predecessors()}]}, {"_id": 1}
            )
            if d["_id"] != self.owner
        ]
        for session, why in dead:  # the one that deletes it sweeps for it
            res = await sessions.delete_one({"_id": session, **why})
            if res.deleted_count:
                log.warning("outbox.relay_died", session=str(session))
                found = True
        return found

    async def run_forever(self) -> None:
        """Publish what a dead relay left, retry what failed here; never scan otherwise.

        Each relay keeps a session document with a heartbeat and deletes it when it
        stops cleanly with nothing left to publish. A full sweep (it reads whole
        collections: on FerretDB a minute per 100,000 documents) runs only when a
        session stopped beating (a crash), at the store's first start, or when
        asked (`kick`). A document whose publish failed here is retried by `_id`,
        soon and with backoff.
        """
        loop = asyncio.get_running_loop()
        next_check, streak = loop.time(), 0
        while True:
            self._wake.clear()
            if loop.time() >= next_check:
                next_check = loop.time() + self.sweep_interval_s
                try:
                    await self._heartbeat()
                    if await self._crashed():
                        self._sweep_now = True
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # store down: next time
                    log.warning(
                        "outbox.check_failed", error_type=type(exc).__name__, error=str(exc)
                    )
            if self._sweep_now:
                self._sweep_now = False
                try:
                    n = await self.sweep(grace=timedelta(0))
                    self.sweeps += 1
                    if n:
                        log.info("outbox.swept", count=n)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # store down: try again soon
                    self._sweep_now = True
                    self._retry_pause = True
                    log.warning(
                        "outbox.sweep_failed", error_type=type(exc).__name__, error=str(exc)
                    )
            retry, self._retry = self._retry, set()
            for collection, document_id in retry:
                try:
                    await self._sweep_one(collection, document_id)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._retry.add((collection, document_id))
                    log.warning(
                        "outbox.retry_failed",
                        collection=collection,
                        document=str(document_id),
                        error_type=type(exc).__name__,
                        error=str(exc),
                    )
            if self._retry or self._retry_pause:
                self._retry_pause = False
                streak += 1
                step = self.retry_after_failure_s * 2 ** min(streak - 1, 6)
                await asyncio.sleep(min(step, self.sweep_interval_s))
                continue
            streak = 0
            await wake_or_timeout(self._wake, max(0.0, next_check - loop.time()))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop; a clean stop with nothing left to publish ends this relay's session."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.flush()
        self._stopped = task is not None
        if self._stopped and not self._retry and not self._sweep_now:
            with contextlib.suppress(Exception):
                await self.mongo.db[SESSIONS].delete_one({"_id": self.owner})
