"""A person's erasure in matching (GDPR art. 17): the private details of their requests.

What matching holds about a client, and what erasure does to it (each by `_id`):

- each request's private description (`state.spec.description`, free text for
  the accepted provider): emptied. The rest of the request (category, skills,
  hours, prices, dates, ids) stays: it is not about the person once the
  client id no longer leads to them (notifications erases that link), and
  billing's kept invoices refer to it;
- `client_ratings/<client>`: the (provider, stars) pairs the client gave:
  deleted. Ratings are stars only; matching stores no rating text.

The client's requests are found through `subject_requests/<client>` (written
before each request is inserted, `store.py`). Requests stored before that index
existed are not listed there and are not reached by this path.
"""

from __future__ import annotations

from typing import Any

from delego_shared.http import ServiceRuntime
from delego_shared.mongo import find_by_ids
from delego_shared.privacy import ErasureResult, export_router, take_part_in_erasure
from delego_shared.types import utcnow
from fastapi import APIRouter

from .store import MatchingStore

ATTEMPTS = 5
"""Conditional writes retried when the request changed meanwhile (version moved)."""


class PrivacyStore:
    """One subject's documents, each by `_id`; writes conditional on the request's version."""

    def __init__(self, store: MatchingStore) -> None:
        self.store = store

    async def request_ids(self, client_id: str) -> list[str]:
        doc = await self.store.subject_requests.find_one({"_id": client_id}, {"request_ids": 1})
        return list((doc or {}).get("request_ids") or [])

    async def description_state(self, request_id: str) -> tuple[int, bool] | None:
        """(version, whether a description is stored), None if there is no such request."""
        doc = await self.store.requests.find_one(
            {"_id": request_id}, {"version": 1, "state.spec.description": 1}
        )
        if doc is None:
            return None
        described = bool(((doc.get("state") or {}).get("spec") or {}).get("description"))
        return int(doc["version"]), described

    async def clear_description(self, request_id: str, version: int) -> bool:
        """Empty the description, as a new version (a concurrent writer then reloads)."""
        res = await self.store.requests.update_one(
            {"_id": request_id, "version": version},
            {
                "$set": {"state.spec.description": ""},
                "$inc": {"version": 1, "state.version": 1},
            },
        )
        return res.modified_count == 1

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

    def __init__(self, store: PrivacyStore) -> None:
        self.store = store

    async def _erase_request(self, request_id: str) -> int:
        for _ in range(ATTEMPTS):
            state = await self.store.description_state(request_id)
            if state is None or not state[1]:
                return 0
            if await self.store.clear_description(request_id, state[0]):
                return 1
        raise RuntimeError(f"request {request_id} kept changing during its erasure; retried")

    async def __call__(self, subject_id: str) -> ErasureResult:
        descriptions = 0
        for request_id in await self.store.request_ids(subject_id):
            descriptions += await self._erase_request(request_id)
        return ErasureResult(
            erased={
                "request_descriptions": descriptions,
                "client_ratings": await self.store.delete_client_ratings(subject_id),
            }
        )


class MatchingExport:
    """The use case: the client's requests in full (their own private descriptions
    included) and the ratings given or received (right of access).

    A provider's proposals and assignments are not listed yet: matching keeps no
    per-provider index of requests, and finding them would scan `requests`.
    """

    def __init__(self, store: PrivacyStore) -> None:
        self.store = store

    async def __call__(self, subject_id: str) -> dict[str, Any]:
        ids = await self.store.request_ids(subject_id)
        return {
            "requests": await self.store.requests_of(ids),
            "ratings": await self.store.ratings(subject_id),
        }


def wire_privacy(runtime: ServiceRuntime, store: MatchingStore) -> APIRouter:
    """Take part in erasures; return the export router."""
    privacy = PrivacyStore(store)
    take_part_in_erasure(runtime, MatchingErasure(privacy), clock=utcnow)
    return export_router("matching", MatchingExport(privacy))
