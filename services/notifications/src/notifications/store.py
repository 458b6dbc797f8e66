"""All MongoDB code of the notifications service.

Collections (database `delego_notifications` by default):

- `recipients`: one document per user id: the contact data (e-mail, locale,
  zone, quiet hours, channel order) and the preference opt-outs, stored as
  `"<kind>:<channel>"` strings so a switch is one `$addToSet` / `$pull`. This
  is the only place on the platform where an e-mail address is stored.
- `webhooks`: the endpoints operators registered (URL, secret, event types,
  optional owner).
- `deliveries`: one document per delivery, `_id` = the domain's delivery key
  (`dlv_...`) or digest key (`dgs_...`). Inserting it *is* the claim: a replay
  of the same event computes the same key, the insert fails on the unique
  `_id` and nothing is sent twice. The document carries the state machine
  (`held` -> `pending` -> `sending` -> `delivered` | `failed`, or `held` ->
  `digested`), the source event (to render and to forward to webhooks), the
  attempts, and the NotificationDelivered / NotificationFailed events in its
  outbox, written by the same single-document update as the state.
- `inbox`: in-app messages, one per in-app delivery (`_id` = delivery key).
- `release_locks`: one short lease per (recipient, channel) while a replica
  turns held notifications into a digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from delego_shared.events.envelope import Envelope
from delego_shared.events.notifications import Channel
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo
from pymongo import ReturnDocument

from .domain import (
    PlannedDelivery,
    Preferences,
    QuietHours,
    Recipient,
    Rendered,
    WebhookEndpoint,
)

RECIPIENTS = "recipients"
WEBHOOKS = "webhooks"
DELIVERIES = "deliveries"
INBOX = "inbox"
RELEASE_LOCKS = "release_locks"
OUTBOX_COLLECTIONS = (DELIVERIES,)


class State:
    HELD = "held"
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    DIGESTED = "digested"
    ALL = ("held", "pending", "sending", "delivered", "failed", "digested")


def store_indexes() -> list[IndexSpec]:
    return [
        IndexSpec(DELIVERIES, [("state", 1), ("due_at", 1)]),
        IndexSpec(DELIVERIES, [("state", 1), ("hold_until", 1)]),
        IndexSpec(DELIVERIES, [("recipient_id", 1), ("created_at", -1)]),
        IndexSpec(DELIVERIES, [("event_id", 1)]),
        IndexSpec(DELIVERIES, [("parts", 1)]),
        IndexSpec(INBOX, [("user_id", 1), ("created_at", -1)]),
        IndexSpec(WEBHOOKS, [("active", 1)]),
    ]


# --- conversions ---------------------------------------------------------------


def _pref_entries(p: Preferences) -> list[str]:
    return sorted(f"{kind}:{ch.value}" for kind, chs in p.off.items() for ch in chs)


def _preferences(entries: Iterable[str]) -> Preferences:
    off: dict[str, set[Channel]] = {}
    for e in entries:
        kind, _, ch = e.rpartition(":")
        off.setdefault(kind, set()).add(Channel(ch))
    return Preferences(off={k: frozenset(v) for k, v in sorted(off.items())})


def recipient_of(doc: Document) -> Recipient:
    quiet = doc.get("quiet_hours")
    return Recipient(
        recipient_id=doc["_id"],
        email=doc.get("email"),
        locale=doc.get("locale") or "fr",
        zone=doc.get("zone") or "Europe/Paris",
        quiet_hours=QuietHours(start=quiet["start"], end=quiet["end"]) if quiet else None,
        channels=tuple(Channel(c) for c in doc.get("channels") or ("email", "inapp")),
        preferences=_preferences(doc.get("preferences_off") or ()),
    )


def endpoint_of(doc: Document) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id=doc["_id"],
        url=doc["url"],
        secret=doc["secret"],
        event_types=frozenset(doc["event_types"]),
        owner_id=doc.get("owner_id"),
        active=bool(doc.get("active", True)),
    )


def planned_fields(p: PlannedDelivery) -> Document:
    return {
        "event_id": p.event_id,
        "event_type": p.event_type,
        "kind": p.kind,
        "recipient_id": p.recipient_id,
        "channel": p.channel.value,
        "critical": p.critical,
        "hold_until": p.hold_until,
        "endpoint_id": p.endpoint_id,
        "via_subscription": p.via_subscription,
    }


def planned_of(doc: Mapping[str, Any], key: str | None = None) -> PlannedDelivery:
    return PlannedDelivery(
        key=key or doc["_id"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        kind=doc["kind"],
        recipient_id=doc["recipient_id"],
        channel=Channel(doc["channel"]),
        critical=bool(doc["critical"]),
        hold_until=doc.get("hold_until"),
        endpoint_id=doc.get("endpoint_id"),
        via_subscription=bool(doc.get("via_subscription")),
    )


def source_of(doc: Mapping[str, Any]) -> Envelope:
    """The event a delivery was planned from, as it was received."""
    src = doc["source"]
    return Envelope.from_record(src["headers"], src["body"].encode())


@dataclass(frozen=True)
class InboxItem:
    item_id: str
    kind: str
    subject: str
    text: str
    html: str
    source_event_id: str
    created_at: datetime
    read_at: datetime | None


def _inbox_item(doc: Document) -> InboxItem:
    return InboxItem(
        item_id=doc["_id"],
        kind=doc["kind"],
        subject=doc["subject"],
        text=doc["text"],
        html=doc["html"],
        source_event_id=doc["source_event_id"],
        created_at=doc["created_at"],
        read_at=doc.get("read_at"),
    )


class NotificationsStore:
    """The service's only Mongo code."""

    def __init__(self, mongo: Mongo) -> None:
        self.db = mongo.db
        self.recipients_c = mongo.db[RECIPIENTS]
        self.webhooks_c = mongo.db[WEBHOOKS]
        self.deliveries_c = mongo.db[DELIVERIES]
        self.inbox_c = mongo.db[INBOX]
        self.locks_c = mongo.db[RELEASE_LOCKS]

    # --- recipients ------------------------------------------------------------

    async def recipient(self, recipient_id: str) -> Recipient | None:
        doc = await self.recipients_c.find_one({"_id": recipient_id})
        return recipient_of(doc) if doc else None

    async def recipients(self, ids: Sequence[str]) -> dict[str, Recipient]:
        if not ids:
            return {}
        docs = await self.recipients_c.find({"_id": {"$in": list(ids)}}).to_list()
        return {d["_id"]: recipient_of(d) for d in docs}

    async def _ensure_recipient(self, recipient_id: str, now: datetime) -> None:
        try:
            await self.recipients_c.insert_one(
                {"_id": recipient_id, "preferences_off": [], "created_at": now}
            )
        except DuplicateKeyError:
            pass

    async def put_contact(self, recipient: Recipient, now: datetime) -> Recipient:
        """Replace the contact data (not the preferences) of one user."""
        await self._ensure_recipient(recipient.recipient_id, now)
        quiet = recipient.quiet_hours
        await self.recipients_c.update_one(
            {"_id": recipient.recipient_id},
            {
                "$set": {
                    "email": recipient.email,
                    "locale": recipient.locale,
                    "zone": recipient.zone,
                    "quiet_hours": (
                        {"start": quiet.start.isoformat(), "end": quiet.end.isoformat()}
                        if quiet
                        else None
                    ),
                    "channels": [c.value for c in recipient.channels],
                    "updated_at": now,
                }
            },
        )
        stored = await self.recipient(recipient.recipient_id)
        assert stored is not None
        return stored

    async def set_preference(
        self, recipient_id: str, kind: str, channel: Channel, enabled: bool, now: datetime
    ) -> Recipient:
        """One switch, applied atomically (`$pull` / `$addToSet` of `kind:channel`)."""
        await self._ensure_recipient(recipient_id, now)
        entry = f"{kind}:{channel.value}"
        op = "$pull" if enabled else "$addToSet"
        await self.recipients_c.update_one(
            {"_id": recipient_id},
            {op: {"preferences_off": entry}, "$set": {"updated_at": now}},
        )
        stored = await self.recipient(recipient_id)
        assert stored is not None
        return stored

    # --- webhook endpoints -------------------------------------------------------

    async def add_endpoint(self, endpoint: WebhookEndpoint, now: datetime) -> None:
        await self.webhooks_c.insert_one(
            {
                "_id": endpoint.endpoint_id,
                "url": endpoint.url,
                "secret": endpoint.secret,
                "event_types": sorted(endpoint.event_types),
                "owner_id": endpoint.owner_id,
                "active": endpoint.active,
                "created_at": now,
                "updated_at": now,
            }
        )

    async def replace_endpoint(self, endpoint: WebhookEndpoint, now: datetime) -> bool:
        res = await self.webhooks_c.update_one(
            {"_id": endpoint.endpoint_id},
            {
                "$set": {
                    "url": endpoint.url,
                    "secret": endpoint.secret,
                    "event_types": sorted(endpoint.event_types),
                    "owner_id": endpoint.owner_id,
                    "active": endpoint.active,
                    "updated_at": now,
                }
            },
        )
        return res.matched_count == 1

    async def endpoint(self, endpoint_id: str) -> tuple[WebhookEndpoint, Document] | None:
        doc = await self.webhooks_c.find_one({"_id": endpoint_id})
        return (endpoint_of(doc), doc) if doc else None

    async def endpoints(self) -> list[tuple[WebhookEndpoint, Document]]:
        docs = await self.webhooks_c.find({}).sort("_id", 1).to_list()
        return [(endpoint_of(d), d) for d in docs]

    async def active_endpoints(self) -> list[WebhookEndpoint]:
        docs = await self.webhooks_c.find({"active": True}).to_list()
        return [endpoint_of(d) for d in docs]

    async def deactivate_endpoint(self, endpoint_id: str, now: datetime) -> bool:
        res = await self.webhooks_c.update_one(
            {"_id": endpoint_id}, {"$set": {"active": False, "updated_at": now}}
        )
        return res.matched_count == 1

    # --- deliveries: claim -------------------------------------------------------

    async def claim(self, planned: PlannedDelivery, source: Envelope, *, now: datetime) -> bool:
        """Store a planned delivery under its key; False if it already exists (replay)."""
        held = planned.hold_until is not None and planned.hold_until > now
        doc = {
            "_id": planned.key,
            **planned_fields(planned),
            "digest": False,
            "state": State.HELD if held else State.PENDING,
            "due_at": None if held else now,
            "attempts": 0,
            "occurred_at": source.time,
            "source": source.to_document(),
            "history": [],
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.deliveries_c.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def recipients_reached(self, event_id: str) -> set[str]:
        """Who already has a delivery (any channel) for this event."""
        docs = await self.deliveries_c.find({"event_id": event_id}, {"recipient_id": 1}).to_list()
        return {d["recipient_id"] for d in docs}

    async def claim_due(self, owner: str, now: datetime, lease: timedelta) -> Document | None:
        """Take the next due send (or one whose sender's lease expired) for `owner`."""
        return await self.deliveries_c.find_one_and_update(
            {
                "$or": [
                    {"state": State.PENDING, "due_at": {"$lte": now}},
                    {"state": State.SENDING, "lease_until": {"$lt": now}},
                ]
            },
            {
                "$set": {
                    "state": State.SENDING,
                    "lease_owner": owner,
                    "lease_until": now + lease,
                    "updated_at": now,
                }
            },
            sort=[("due_at", 1)],
            return_document=ReturnDocument.AFTER,
        )

    # --- deliveries: outcomes ----------------------------------------------------

    def _mine(self, key: str, owner: str) -> Document:
        return {"_id": key, "state": State.SENDING, "lease_owner": owner}

    async def mark_delivered(
        self,
        key: str,
        owner: str,
        *,
        attempts: int,
        now: datetime,
        events: Sequence[Envelope],
    ) -> bool:
        update = Outbox.push(
            {
                "$set": {
                    "state": State.DELIVERED,
                    "attempts": attempts,
                    "delivered_at": now,
                    "due_at": None,
                    "updated_at": now,
                },
                "$unset": {"lease_owner": "", "lease_until": ""},
                "$push": {"history": {"attempt": attempts, "at": now, "outcome": "delivered"}},
            },
            events,
        )
        res = await self.deliveries_c.update_one(self._mine(key, owner), update)
        return res.modified_count == 1

    async def schedule_retry(
        self, key: str, owner: str, *, attempts: int, at: datetime, code: str, now: datetime
    ) -> bool:
        res = await self.deliveries_c.update_one(
            self._mine(key, owner),
            {
                "$set": {
                    "state": State.PENDING,
                    "attempts": attempts,
                    "due_at": at,
                    "last_error": code,
                    "updated_at": now,
                },
                "$unset": {"lease_owner": "", "lease_until": ""},
                "$push": {"history": {"attempt": attempts, "at": now, "outcome": code}},
            },
        )
        return res.modified_count == 1

    async def mark_failed(
        self,
        key: str,
        owner: str,
        *,
        attempts: int,
        code: str,
        now: datetime,
        events: Sequence[Envelope],
        failover: Sequence[PlannedDelivery] = (),
    ) -> bool:
        """Failed for good; the successors (failover) are recorded in the same update and
        inserted afterwards (`complete_failover`), so a crash in between loses none."""
        update = Outbox.push(
            {
                "$set": {
                    "state": State.FAILED,
                    "attempts": attempts,
                    "last_error": code,
                    "failed_at": now,
                    "due_at": None,
                    "failover_to": [p.key for p in failover],
                    "updated_at": now,
                    **(
                        {
                            "failover_pending": [
                                {"key": p.key, **planned_fields(p)} for p in failover
                            ]
                        }
                        if failover
                        else {}
                    ),
                },
                "$unset": {"lease_owner": "", "lease_until": ""},
                "$push": {"history": {"attempt": attempts, "at": now, "outcome": code}},
            },
            events,
        )
        res = await self.deliveries_c.update_one(self._mine(key, owner), update)
        return res.modified_count == 1

    async def pending_failovers(self, limit: int = 50) -> list[Document]:
        return await self.deliveries_c.find(
            {"failover_pending": {"$exists": True}},
        ).to_list(limit)

    async def complete_failover(self, doc: Document, now: datetime) -> list[str]:
        """Insert the successors a failed delivery recorded; returns the keys inserted now."""
        inserted: list[str] = []
        parts_by_key: dict[str, Document] = {}
        if doc.get("digest"):
            parts = await self.deliveries_c.find({"_id": {"$in": doc.get("parts", [])}}).to_list()
            parts_by_key = {p["event_id"]: p for p in parts}
        for entry in doc.get("failover_pending", []):
            planned = planned_of(entry, key=entry["key"])
            origin = parts_by_key.get(planned.event_id, doc)
            source = source_of(origin)
            if await self.claim(planned, source, now=now):
                inserted.append(planned.key)
        await self.deliveries_c.update_one(
            {"_id": doc["_id"]}, {"$unset": {"failover_pending": ""}}
        )
        return inserted

    # --- held notifications and digests -----------------------------------------

    async def due_held(self, now: datetime, limit: int = 500) -> list[Document]:
        return await self.deliveries_c.find(
            {"state": State.HELD, "hold_until": {"$lte": now}},
            {"recipient_id": 1, "channel": 1},
        ).to_list(limit)

    async def held_group(
        self, recipient_id: str, channel: Channel, now: datetime
    ) -> list[Document]:
        return await self.deliveries_c.find(
            {
                "state": State.HELD,
                "recipient_id": recipient_id,
                "channel": channel.value,
                "hold_until": {"$lte": now},
            }
        ).to_list()

    async def digests_containing(self, keys: Sequence[str]) -> list[Document]:
        return await self.deliveries_c.find(
            {"digest": True, "parts": {"$in": list(keys)}}, {"parts": 1}
        ).to_list()

    async def release_single(self, key: str, now: datetime) -> bool:
        res = await self.deliveries_c.update_one(
            {"_id": key, "state": State.HELD},
            {"$set": {"state": State.PENDING, "due_at": now, "updated_at": now}},
        )
        return res.modified_count == 1

    async def insert_digest(
        self,
        key: str,
        *,
        recipient_id: str,
        channel: Channel,
        parts: Sequence[str],
        now: datetime,
    ) -> bool:
        try:
            await self.deliveries_c.insert_one(
                {
                    "_id": key,
                    "digest": True,
                    "kind": "digest",
                    "recipient_id": recipient_id,
                    "channel": channel.value,
                    "critical": False,
                    "parts": list(parts),
                    "state": State.PENDING,
                    "due_at": now,
                    "attempts": 0,
                    "history": [],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def mark_digested(self, parts: Sequence[str], digest_key: str, now: datetime) -> None:
        await self.deliveries_c.update_many(
            {"_id": {"$in": list(parts)}, "state": State.HELD},
            {"$set": {"state": State.DIGESTED, "digest_id": digest_key, "updated_at": now}},
        )

    async def parts(self, keys: Sequence[str]) -> list[Document]:
        return await self.deliveries_c.find({"_id": {"$in": list(keys)}}).to_list()

    async def settle_parts(self, keys: Sequence[str], state: str, now: datetime) -> None:
        """After a digest's outcome: its parts take the same final state (status reads)."""
        await self.deliveries_c.update_many(
            {"_id": {"$in": list(keys)}, "state": State.DIGESTED},
            {"$set": {"state": state, "updated_at": now}},
        )

    async def acquire_release_lock(
        self, group: str, owner: str, now: datetime, lease: timedelta
    ) -> bool:
        taken = await self.locks_c.find_one_and_update(
            {"_id": group, "$or": [{"until": {"$lt": now}}, {"owner": owner}]},
            {"$set": {"owner": owner, "until": now + lease}},
        )
        if taken is not None:
            return True
        try:
            await self.locks_c.insert_one({"_id": group, "owner": owner, "until": now + lease})
        except DuplicateKeyError:
            return False
        return True

    async def release_release_lock(self, group: str, owner: str) -> None:
        await self.locks_c.delete_one({"_id": group, "owner": owner})

    # --- status reads --------------------------------------------------------------

    async def delivery(self, key: str) -> Document | None:
        return Outbox.strip(await self.deliveries_c.find_one({"_id": key}, {"source": 0}))

    async def delivery_with_source(self, key: str) -> Document | None:
        return await self.deliveries_c.find_one({"_id": key})

    async def find_deliveries(
        self,
        *,
        recipient_id: str | None = None,
        event_id: str | None = None,
        state: str | None = None,
        limit: int = 50,
        skip: int = 0,
    ) -> list[Document]:
        query: Document = {}
        if recipient_id:
            query["recipient_id"] = recipient_id
        if event_id:
            query["event_id"] = event_id
        if state:
            query["state"] = state
        docs = (
            await self.deliveries_c.find(query, {"source": 0})
            .sort("created_at", -1)
            .skip(skip)
            .limit(limit)
            .to_list()
        )
        return [d for d in (Outbox.strip(x) for x in docs) if d is not None]

    # --- in-app inbox -------------------------------------------------------------

    async def add_inbox_item(
        self,
        key: str,
        *,
        user_id: str,
        kind: str,
        rendered: Rendered,
        source_event_id: str,
        now: datetime,
    ) -> bool:
        try:
            await self.inbox_c.insert_one(
                {
                    "_id": key,
                    "user_id": user_id,
                    "kind": kind,
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "html": rendered.html_body,
                    "locale": rendered.locale,
                    "source_event_id": source_event_id,
                    "created_at": now,
                    "read_at": None,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def inbox(
        self, user_id: str, *, unread_only: bool, limit: int, skip: int
    ) -> tuple[list[InboxItem], int]:
        query: Document = {"user_id": user_id}
        if unread_only:
            query["read_at"] = None
        docs = (
            await self.inbox_c.find(query).sort("created_at", -1).skip(skip).limit(limit).to_list()
        )
        unread = await self.inbox_c.count_documents({"user_id": user_id, "read_at": None})
        return [_inbox_item(d) for d in docs], unread

    async def mark_read(self, user_id: str, item_id: str, now: datetime) -> InboxItem | None:
        """Idempotent: the first read time is kept. None if the item is not this user's."""
        await self.inbox_c.update_one(
            {"_id": item_id, "user_id": user_id, "read_at": None}, {"$set": {"read_at": now}}
        )
        doc = await self.inbox_c.find_one({"_id": item_id, "user_id": user_id})
        return _inbox_item(doc) if doc else None

    async def mark_all_read(self, user_id: str, now: datetime) -> int:
        res = await self.inbox_c.update_many(
            {"user_id": user_id, "read_at": None}, {"$set": {"read_at": now}}
        )
        return res.modified_count
