"""Idempotent commands: the `Idempotency-Key` header on `POST`s that create something.

A client that timed out does not know whether its command happened; retrying
with the same key must not do it twice. The same key with the same request
(method, path, query, JSON body) answers the first result (same status, same
body); with another request it answers 422.

One record per (service, caller, key), found by `_id` in the service's
`idempotency_keys` collection, holding a fingerprint of the request:

1. claim: insert `{state: pending, fingerprint}` (a unique `_id`: one winner);
2. run the command;
3. record: store the response body on the claim (`state: done`).

A crash between 2 and 3 leaves a pending claim. Its retry, once the claim is
older than `LEASE` (far longer than any command), or at once when it reaches
the same replica started again (`delego_shared.replica`), takes it over and first asks
the route's `recover` for the result already stored: the command created its
document under an id derived from the key (`derived_id`), so that result is
found by `_id`; when nothing is found the command never ran and runs now under
the same id. Commands that are idempotent by themselves (the same input yields
the same document id) need no `recover`: running them again returns the first
result. A command that fails with a 4xx problem changed nothing: its claim is
released and a retry runs it again. Records are purged after
`DELEGO_IDEMPOTENCY_RETENTION_S` (default 48 h): a retry must come within it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from pydantic import TypeAdapter

from ..mongo import Document, DuplicateKeyError, IndexSpec, Mongo
from ..replica import Replica
from ..settings import Settings
from ..types import utcnow
from .auth import Caller
from .problems import Conflict, ProblemError, Unprocessable

COLLECTION = "idempotency_keys"
KEY_HEADER = "Idempotency-Key"
KEY_REUSED = "already used with another request; use a new key"
"""The 422 of a key reused with another request (a rule of every idempotent route)."""
LEASE = timedelta(seconds=60)
"""A pending claim older than this belongs to a process that died mid-command."""
IN_USE_RETRY_AFTER_S = 1
"""The `Retry-After` of a 409 for a key still being processed: a command takes well
under a second, so the retry usually finds its result."""
PENDING, DONE = "pending", "done"

T = TypeVar("T")


class IdempotencyRecords:
    """The `idempotency_keys` collection: every access by `_id`, except the hourly purge."""

    def __init__(self, mongo: Mongo) -> None:
        self.coll = mongo.db[COLLECTION]

    @staticmethod
    def indexes() -> list[IndexSpec]:
        return [IndexSpec(COLLECTION, [("created_at", 1)])]

    async def claim(
        self, record_id: str, fingerprint: str, now: datetime, owner: str = ""
    ) -> Document | None:
        """Claim the key; None when claimed now, else the record already there."""
        try:
            await self.coll.insert_one(
                {
                    "_id": record_id,
                    "state": PENDING,
                    "fingerprint": fingerprint,
                    "created_at": now,
                    "claimed_at": now,
                    "owner": owner,
                }
            )
        except DuplicateKeyError:
            return await self.coll.find_one({"_id": record_id}) or {}
        return None

    async def take_over(
        self, record_id: str, claimed_at: datetime, now: datetime, owner: str = ""
    ) -> bool:
        """Take an abandoned claim over (one retry wins)."""
        res = await self.coll.update_one(
            {"_id": record_id, "state": PENDING, "claimed_at": claimed_at},
            {"$set": {"claimed_at": now, "owner": owner}},
        )
        return res.modified_count == 1

    async def complete(self, record_id: str, response: Any) -> None:
        await self.coll.update_one(
            {"_id": record_id}, {"$set": {"state": DONE, "response": response}}
        )

    async def release(self, record_id: str, claimed_at: datetime) -> None:
        await self.coll.delete_one({"_id": record_id, "state": PENDING, "claimed_at": claimed_at})

    async def purge(self, before: datetime) -> int:
        res = await self.coll.delete_many({"created_at": {"$lt": before}})
        return res.deleted_count


@dataclass(frozen=True)
class IdempotentCall:
    """One request's idempotency: `run` its command once per key."""

    key: str | None
    record_id: str
    fingerprint: str
    records: IdempotencyRecords
    replica: Replica | None = None
    """This run of the replica: a claim of an earlier run of it is abandoned at once."""

    def derived_id(self, prefix: str) -> str | None:
        """The id the command's document gets for this key (None without a key):
        the same on every retry, so a retry finds (or cannot duplicate) it."""
        if self.key is None:
            return None
        return f"{prefix}_{hashlib.sha256(self.record_id.encode()).hexdigest()[:32]}"

    async def run(
        self,
        response: type[T],
        command: Callable[[], Awaitable[T]],
        *,
        recover: Callable[[], Awaitable[T | None]] | None = None,
        refusals: tuple[type[Exception], ...] = (),
    ) -> T:
        """`command` once per key, its result (of type `response`, the route's) stored as
        the route answers it; `recover` finds the result after a crash (see above);
        `refusals`: the service's exceptions that, like a `ProblemError`, mean nothing
        was done (the claim is released)."""
        if self.key is None:
            return await command()
        now = utcnow()
        owner = self.replica.owner if self.replica is not None else ""
        found = await self.records.claim(self.record_id, self.fingerprint, now, owner)
        if found is not None:
            if found.get("fingerprint") != self.fingerprint:
                raise Unprocessable(
                    f"this {KEY_HEADER} was used with another request; use a new key",
                    errors=[{"field": KEY_HEADER, "in": "header", "message": KEY_REUSED}],
                    type_="idempotency-key-reused",
                )
            if found.get("state") == DONE:
                return TypeAdapter(response).validate_python(found["response"])
            claimed_at = found.get("claimed_at")
            dead = self.replica is not None and self.replica.is_predecessor(found.get("owner"))
            if (
                not isinstance(claimed_at, datetime)
                or (now - claimed_at < LEASE and not dead)
                or not await self.records.take_over(self.record_id, claimed_at, now, owner)
            ):
                raise Conflict(
                    f"a request with this {KEY_HEADER} is still being processed; retry shortly",
                    type_="idempotency-key-in-use",
                    retry_after=IN_USE_RETRY_AFTER_S,
                )
            first = await recover() if recover is not None else None
            if first is not None:
                await self.records.complete(self.record_id, _as_json(response, first))
                return first
        nothing_done: tuple[type[Exception], ...] = (ProblemError, *refusals)
        try:
            result = await command()
        except nothing_done:
            await self.records.release(self.record_id, now)
            raise
        await self.records.complete(self.record_id, _as_json(response, result))
        return result


def _as_json(response: type[T], value: T) -> Any:
    """The body as FastAPI renders a route's return value (pydantic's JSON mode)."""
    return TypeAdapter(response).dump_python(value, mode="json", by_alias=True)


def fingerprint(method: str, path: str, query: list[tuple[str, str]], body: bytes) -> str:
    """The request a key stands for: the JSON body compared by value, not by spelling."""
    try:
        parsed: Any = json.loads(body) if body else None
        canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        canonical = body.hex()
    text = json.dumps([method, path, sorted(query), canonical])
    return hashlib.sha256(text.encode()).hexdigest()


async def idempotent_call(
    request: Request,
    who: Caller,
    key: Annotated[
        str | None,
        Header(
            alias=KEY_HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[!-~]+$",
            description="Any unique string (e.g. a UUID) chosen by the client for this "
            "command: a retry with the same key and the same request returns the first "
            "result (same status and body) instead of doing it again; the same key with "
            "another request answers 422. Kept for `DELEGO_IDEMPOTENCY_RETENTION_S` "
            "(default 48 h).",
        ),
    ] = None,
) -> IdempotentCall:
    settings: Settings = request.app.state.settings
    runtime = request.app.state.runtime
    mongo: Mongo = runtime.mongo
    return IdempotentCall(
        key=key,
        record_id=f"{settings.service_name}:{who.role.value}:{who.subject}:{key}",
        fingerprint=fingerprint(
            request.method,
            request.url.path,
            list(request.query_params.multi_items()),
            await request.body(),
        ),
        records=IdempotencyRecords(mongo),
        replica=runtime.replica,
    )


Idempotent = Annotated[IdempotentCall, Depends(idempotent_call)]
"""Route parameter: `idem: Idempotent`, then `return await idem.run(View, command)`."""
