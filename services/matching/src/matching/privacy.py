"""A person's erasure in matching (GDPR art. 17): the private details of their requests.

What matching holds about a client, and what erasure does to it (each by `_id`):

- each request's private description, sealed (`details.py`): its data key is
  deleted (crypto-shredding: every copy of the ciphertext, backups included,
  is unreadable from then on), then the ciphertext (and any clear text of a
  request stored before sealing) is removed from the request. The rest of the
  request (category, skills, hours, prices, dates, ids) stays: it is not about
  the person once the client id no longer leads to them (notifications erases
  that link), and billing's kept invoices refer to it;
- `client_ratings/<client>`: the (provider, stars) pairs the client gave:
  deleted. Ratings are stars only; matching stores no rating text.

The client's requests are found through `subject_requests/<client>` (written
before each request is inserted, `store.py`); requests stored before that
index existed are added to it once, at start-up (`backfill_subject_index`).
The export (`GET /v1/me/data`) opens each request's details for the caller:
each such read is recorded in the access audit like any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from delego_shared.http import Principal, ServiceRuntime
from delego_shared.logging import get_logger
from delego_shared.mongo import find_by_ids
from delego_shared.privacy import ErasureResult, export_router, take_part_in_erasure
from delego_shared.types import utcnow
from fastapi import APIRouter

from .details import (
    DetailsErased,
    DetailsForbidden,
    DetailsNotVisible,
    PrivateDetails,
    run_once,
)
from .domain.details import OperatorReason, Reader, ReaderRole
from .store import MatchingStore

log = get_logger(__name__)

SUBJECT_INDEX_MIGRATION = "subject_requests_backfill"


class PrivacyStore:
    """One subject's documents, each by `_id` (the details themselves: `details.py`)."""

    def __init__(self, store: MatchingStore) -> None:
        self.store = store

    async def request_ids(self, client_id: str) -> list[str]:
        doc = await self.store.subject_requests.find_one({"_id": client_id}, {"request_ids": 1})
        return list((doc or {}).get("request_ids") or [])

    async def requests_of(self, request_ids: list[str]) -> list[dict[str, Any]]:
        found = await find_by_ids(self.store.requests, request_ids, {"state": 1})
        return [found[i]["state"] for i in request_ids if i in found]

    async def ratings(self, subject_id: str) -> dict[str, Any]:
        given = await self.store.client_ratings.find_one({"_id": subject_id}, {"given": 1})
        received = await self.store.provider_ratings.find_one(
            {"_id": subject_id}, {"count": 1, "total": 1}
        )
        return {"given": given, "received": received}

    async def delete_client_ratings(self, client_id: str) -> int:
        res = await self.store.client_ratings.delete_one({"_id": client_id})
        return res.deleted_count


class MatchingErasure:
    """The use case: erase the private details of one client's requests (idempotent)."""

    def __init__(
        self, store: PrivacyStore, erase_details: Callable[[str], Awaitable[bool]]
    ) -> None:
        self.store = store
        self.erase_details = erase_details

    async def __call__(self, subject_id: str) -> ErasureResult:
        descriptions = 0
        for request_id in await self.store.request_ids(subject_id):
            descriptions += await self.erase_details(request_id)
        return ErasureResult(
            erased={
                "request_descriptions": descriptions,
                "client_ratings": await self.store.delete_client_ratings(subject_id),
            }
        )


class MatchingExport:
    """The use case: the client's requests in full (their private details opened for
    the caller, each read audited) and the ratings given or received (right of access).

    A provider's proposals and assignments are not listed yet: matching keeps no
    per-provider index of requests, and finding them would scan `requests`.
    """

    def __init__(self, store: PrivacyStore, details: PrivateDetails) -> None:
        self.store = store
        self.details = details

    async def _opened(self, state: dict[str, Any], reader: Reader) -> dict[str, Any]:
        try:
            text = await self.details.read(str(state["request_id"]), reader)
        except (DetailsErased, DetailsForbidden, DetailsNotVisible):
            return state
        return {**state, "spec": {**state["spec"], "description": text}}

    async def __call__(self, subject_id: str, who: Principal) -> dict[str, Any]:
        if who.is_operator:  # an operator exporting someone's data: an access request
            reader = Reader(
                who.subject,
                ReaderRole.OPERATOR,
                reason=OperatorReason.SUBJECT_ACCESS_REQUEST,
                channel="export",
            )
        else:
            reader = Reader(who.subject, ReaderRole.CLIENT, channel="export")
        ids = await self.store.request_ids(subject_id)
        return {
            "requests": [await self._opened(r, reader) for r in await self.store.requests_of(ids)],
            "ratings": await self.store.ratings(subject_id),
        }


async def backfill_subject_index(store: MatchingStore, clock: Callable[[], datetime]) -> int:
    """Add requests stored before `subject_requests` existed to it (once: a marker in
    `migrations` says it is done; one scan of `requests` at that start-up)."""

    async def add_all() -> int:
        by_client: dict[str, list[str]] = {}
        for request_id, client_id in await store.request_clients():
            by_client.setdefault(client_id, []).append(request_id)
        for client_id, request_ids in by_client.items():
            await store.add_subject_requests(client_id, request_ids)
        return sum(len(ids) for ids in by_client.values())

    return await run_once(store, SUBJECT_INDEX_MIGRATION, add_all, clock)


def wire_privacy(
    runtime: ServiceRuntime, store: MatchingStore, details: PrivateDetails
) -> APIRouter:
    """Take part in erasures; return the export router."""
    privacy = PrivacyStore(store)
    take_part_in_erasure(runtime, MatchingErasure(privacy, details.erase), clock=utcnow)
    return export_router("matching", export_for=MatchingExport(privacy, details))
