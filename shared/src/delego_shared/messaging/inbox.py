"""Idempotent consumption: remember which events a consumer group has applied.

`Inbox` makes a replay skip an event whose handling completed. A crash between
a handler's effect and `mark` re-runs the handler, so handlers still write
idempotently: deterministic ids with a unique index, or a conditional update on
the aggregate that records the event id in the same document
(`apply_once_filter`/`apply_once_update`), which is exactly-once on one document.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from ..mongo import Mongo

COLLECTION = "processed_events"


class Inbox:
    def __init__(self, mongo: Mongo, group: str) -> None:
        self.coll = mongo.db[COLLECTION]
        self.group = group

    def _id(self, event_id: str) -> str:
        return f"{self.group}:{event_id}"

    async def seen(self, event_id: str) -> bool:
        return await self.coll.find_one({"_id": self._id(event_id)}, {"_id": 1}) is not None

    async def mark(self, event_id: str, event_type: str = "") -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.coll.insert_one(
                {"_id": self._id(event_id), "type": event_type, "at": datetime.now(UTC)}
            )


APPLIED = "_applied_events"


def apply_once_filter(filter_: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Match the aggregate only if this event was not applied to it yet."""
    return {**filter_, APPLIED: {"$ne": event_id}}


def apply_once_update(update: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Record the event id in the same atomic update as the effect."""
    out = {k: dict(v) for k, v in update.items()}
    out.setdefault("$addToSet", {})[APPLIED] = event_id
    return out
