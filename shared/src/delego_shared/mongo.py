"""MongoDB access with PyMongo's async API (Motor is end-of-life).

Kept to what both MongoDB and FerretDB v1 support: single-document atomic
updates, unique indexes, `find_one_and_update`; no transactions, no change
streams, no TTL indexes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]

__all__ = ["Document", "DuplicateKeyError", "IndexSpec", "Mongo", "find_by_ids"]

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
