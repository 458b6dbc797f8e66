"""The person's erasure in notifications (GDPR art. 17) and the person's own request for it.

Notifications is the only holder of contact data on the platform, so it is where
the person asks (`POST /v1/me/erasure`, 202; `GET /v1/me/data` exports) and
where the link between an id and a person is cut. What it erases, each by `_id` (no scan):

- `recipients/<subject>`: e-mail, locale, zone, quiet hours, preferences;
- the rendered in-app messages listed in `inbox_index/<subject>` (their text
  was rendered for the person), then that index;
- `recipients/#owner:<subject>`: the routing entry of webhooks the person owns.

`deliveries` keep only ids, kinds and the source event (ids only, as on the
topics): nothing that names the person once the recipient document is gone.
Inbox items older than the index's newest 1,000 (`INBOX_KEPT`) are not listed in
it and are not erased by this path.
"""

from __future__ import annotations

import uuid
from typing import Any

from delego_shared.events.envelope import Envelope
from delego_shared.events.privacy import ErasureRequested
from delego_shared.http import ServiceRuntime
from delego_shared.http.auth import Caller
from delego_shared.mongo import find_by_ids
from delego_shared.privacy import ErasureResult, export_router, take_part_in_erasure
from fastapi import APIRouter, status
from pydantic import BaseModel

from .domain import set_key
from .settings import Clock
from .store import INBOX, INBOX_INDEX, RECIPIENTS, NotificationsStore


class PrivacyStore:
    """Deletes of one subject's documents, each by `_id`."""

    def __init__(self, store: NotificationsStore) -> None:
        self.db = store.db

    async def delete(self, collection: str, _id: str) -> int:
        res = await self.db[collection].delete_one({"_id": _id})
        return res.deleted_count

    async def document(self, collection: str, _id: str) -> dict[str, Any] | None:
        return await self.db[collection].find_one({"_id": _id})

    async def documents(self, collection: str, ids: list[str]) -> list[dict[str, Any]]:
        found = await find_by_ids(self.db[collection], ids)
        return [found[i] for i in ids if i in found]

    async def inbox_item_ids(self, subject_id: str) -> list[str]:
        doc = await self.db[INBOX_INDEX].find_one({"_id": subject_id}, {"items": 1})
        return list((doc or {}).get("items") or [])


class NotificationsErasure:
    """The use case: erase what notifications holds about one subject (idempotent).

    Items first, their index last: a crash in between leaves the index to find
    the remaining items on the redelivered request.
    """

    def __init__(self, store: PrivacyStore) -> None:
        self.store = store

    async def __call__(self, subject_id: str) -> ErasureResult:
        items = 0
        for item_id in await self.store.inbox_item_ids(subject_id):
            items += await self.store.delete(INBOX, item_id)
        return ErasureResult(
            erased={
                "inbox_items": items,
                "inbox_index": await self.store.delete(INBOX_INDEX, subject_id),
                "owned_endpoint_set": await self.store.delete(RECIPIENTS, set_key(subject_id)),
                "recipients": await self.store.delete(RECIPIENTS, subject_id),
            }
        )


class NotificationsExport:
    """The use case: what notifications holds about one subject (right of access).

    Contact data and preferences, and the in-app messages listed in the inbox
    index. Deliveries are left out: ids, kinds and states of what was sent,
    whose content is the messages themselves.
    """

    def __init__(self, store: PrivacyStore) -> None:
        self.store = store

    async def __call__(self, subject_id: str) -> dict[str, Any]:
        ids = await self.store.inbox_item_ids(subject_id)
        return {
            "contact": await self.store.document(RECIPIENTS, subject_id),
            "inbox": await self.store.documents(INBOX, ids),
        }


class ErasureAccepted(BaseModel):
    erasure_id: str
    subject_id: str
    status: str = "accepted"


def privacy_router(runtime: ServiceRuntime, clock: Clock) -> APIRouter:
    """`POST /v1/me/erasure`: the authenticated person asks to be erased."""
    router = APIRouter(prefix="/v1/me", tags=["privacy"])

    @router.post(
        "/erasure",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Erase me: every service erases or pseudonymises what it holds about the caller",
        responses={401: {"description": "no valid token"}},
    )
    async def request_erasure(who: Caller) -> ErasureAccepted:
        request = ErasureRequested(
            erasure_id=f"era_{uuid.uuid4().hex}",
            subject_id=who.subject,
            requested_by="subject",
            requested_at=clock(),
        )
        # answered once the request is on its topic (acks=all): the services take it from there
        await runtime.publisher.publish(Envelope(data=request, source=runtime.settings.source))
        return ErasureAccepted(erasure_id=request.erasure_id, subject_id=who.subject)

    return router


def wire_privacy(
    runtime: ServiceRuntime, store: NotificationsStore, clock: Clock
) -> list[APIRouter]:
    """Take part in erasures; return the routers for the person's erasure and export."""
    privacy = PrivacyStore(store)
    take_part_in_erasure(runtime, NotificationsErasure(privacy), clock=clock)
    return [
        privacy_router(runtime, clock),
        export_router("notifications", NotificationsExport(privacy), clock=clock),
    ]


__all__ = ["NotificationsErasure", "NotificationsExport", "PrivacyStore", "wire_privacy"]
