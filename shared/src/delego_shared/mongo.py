"""MongoDB access with PyMongo's async API (Motor is end-of-life).

Kept to what both MongoDB and FerretDB v1 support: single-document atomic
updates, unique indexes, `find_one_and_update`; no transactions, no change
streams, no TTL indexes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]

__all__ = ["Document", "DuplicateKeyError", "GroupedUpdates", "IndexSpec", "Mongo", "find_by_ids"]

IDS_PER_QUERY = 1000
"""Our FerretDB build pushes an `_id` `$in` of up to 1000 ids down to its index."""


async def find_by_ids(
    collection: AsyncCollection[Document],
    ids: Iterable[Any],
    projection: Mapping[str, Any] | None = None,
) -> dict[Any, Document]:
    """Several documents by `_id` in one round trip (`$in` on the `_id` index).

    One command instead of one per id: on a per-event path each command costs
    the store far more than the documents it returns.
    """
    wanted = list(dict.fromkeys(ids))
    found: dict[Any, Document] = {}
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[start : start + IDS_PER_QUERY]
        filt = {"_id": chunk[0]} if len(chunk) == 1 else {"_id": {"$in": chunk}}
        # limit = batch size = the ids asked: one reply, no cursor left open
        cursor = collection.find(filt, projection, limit=len(chunk), batch_size=len(chunk))
        async for doc in cursor:
            found[doc["_id"]] = doc
    return found


class GroupedUpdates:
    """Single-document updates of one collection, made by concurrent tasks, sent together.

    An update that arrives while a command is in flight waits for it, then goes
    with every other waiting update in ONE unordered bulk command: no delay
    when the store is idle, and under load one command instead of many (on our
    FerretDB a bulk of 10 updates costs the store about half and the client a
    fifth of 10 single updates, per update).

    `update_one` answers True when every update of its bulk matched a
    document, else False: a bulk does not say which of its updates missed, so
    it is only for conditional updates the caller can check again alone (such
    as "remove these entries if they are still there").

    With `linger_s`, the first update that finds the store idle waits that long
    for company before it goes: for updates nobody on a hot path waits for,
    where fewer commands matter more than a few milliseconds.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        max_batch: int = 500,
        linger_s: float = 0.0,
    ) -> None:
        self.collection = collection
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._waiting: list[tuple[Document, Document, asyncio.Future[bool]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.commands = 0
        """Commands sent so far (for tests and benchmarks)."""

    async def update_one(self, filter: Document, update: Document) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((filter, update, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_waiting())
        return await done

    async def _send_waiting(self) -> None:
        if self.linger_s:
            await asyncio.sleep(self.linger_s)
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            self.commands += 1
            try:
                if len(batch) == 1:
                    res = await self.collection.update_one(batch[0][0], batch[0][1])
                    matched = res.matched_count == 1
                else:
                    bulk = await self.collection.bulk_write(
                        [UpdateOne(f, u) for f, u, _ in batch], ordered=False
                    )
                    matched = bulk.matched_count == len(batch)
            except Exception as exc:  # handed to every caller of this command
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(matched)


@dataclass(frozen=True)
class IndexSpec:
    """An index a service needs; created at start-up (idempotent)."""

    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def model(self) -> IndexModel:
        name = self.name or "_".join(f"{k}_{d}" for k, d in self.keys)
        return IndexModel(list(self.keys), unique=self.unique, name=name, **self.options)


class Mongo:
    """One client per process, one database per service."""

    def __init__(self, url: str, database: str, *, timeout_ms: int = 5000) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            tz_aware=True,
            uuidRepresentation="standard",
        )
        self.db: AsyncDatabase[Document] = self.client[database]

    async def ensure_indexes(self, specs: Sequence[IndexSpec]) -> None:
        """Create missing indexes, one per command.

        FerretDB 1.24 closes the connection when one `createIndexes` command
        re-creates several existing indexes (every restart would fail), so we
        skip those that exist and send one index at a time.
        """
        existing: dict[str, set[str]] = {}
        for spec in specs:
            model = spec.model()
            name = model.document["name"]
            if spec.collection not in existing:
                coll = self.db[spec.collection]
                existing[spec.collection] = {ix["name"] async for ix in await coll.list_indexes()}
            if name in existing[spec.collection]:
                continue
            await self.db[spec.collection].create_indexes([model])
            existing[spec.collection].add(name)

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.client.close()
