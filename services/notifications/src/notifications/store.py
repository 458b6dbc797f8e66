"""All MongoDB code of the notifications service.

Rule: on a per-event or per-request path every access goes by `_id` (or is an
insert); only slow timers and start-up scan, and only small bounded
collections (`schedule`, `webhooks`).

Collections (database `delego_notifications` by default):

- `recipients`: one document per user id: the contact data (e-mail, locale,
  zone, quiet hours, channel order) and the preference opt-outs, stored as
  `"<kind>:<channel>"` strings so a switch is one `$addToSet` / `$pull`. This
  is the only place on the platform where an e-mail address is stored.
  Beside them, the endpoint sets (domain `endpoint_sets`): `#subscriptions`
  and `#owner:<user id>`, so that an event reads the people it notifies and
  the endpoints that may receive it in one command by `_id` (`routing`).
- `webhooks`: the endpoints operators registered (URL, secret, event types,
  optional owner), the truth for them; `version` counts writes, `sets` names
  the endpoint sets it may appear in, `sync_pending` marks a write whose sets
  are not updated yet.
- `deliveries`: one document per delivery, `_id` = the domain's delivery key
  (`dlv_...`) or digest key (`dgs_...`). Inserting it *is* the claim: a replay
  of the same event computes the same key, the insert fails on the unique
  `_id` and nothing is sent twice. The document carries the state machine
  (`held` -> `pending` -> `sending` -> `delivered` | `failed`, or `held` ->
  `digested`), the source event (to render and to forward to webhooks), the
  attempts, and the NotificationDelivered / NotificationFailed events in its
  outbox, written by the same single-document update as the state.
- `schedule`: one entry per delivery not yet final (`_id` = its key): `send`
  at `at`, or `release` at the end of quiet hours. Written before the
  delivery, removed once it is final: bounded by what is in flight. The timers
  scan it (never `deliveries`) and claim each delivery by `_id`.
- `inbox`: in-app messages, one per in-app delivery (`_id` = delivery key);
  `inbox_index`: per user (`_id` = user id) the newest item ids and the unread
  ones, so a page of the inbox is read by `_id`.
- `release_locks`: one short lease per (recipient, channel) while a replica
  turns held notifications into a digest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from delego_shared.events.envelope import Envelope
from delego_shared.events.notifications import Channel
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo, find_by_ids
from pymongo import ReturnDocument

from .domain import (
    DeliveryStatus,
    Op,
    PlannedDelivery,
    Preferences,
    QuietHours,
    Recipient,
    Rendered,
    State,
    WebhookEndpoint,
    delivery_key,
    endpoints_of,
    set_entries,
    set_key,
)
from .domain.endpoint_sets import SUBSCRIPTIONS

RECIPIENTS = "recipients"
WEBHOOKS = "webhooks"
LEGACY_ENDPOINT_SETS = "endpoint_sets"
"""Where endpoint sets lived before they moved beside the recipients (dropped once moved)."""
SETS_MOVED = "#sets-moved"
"""Marks (in `recipients`) that the sets were rebuilt there from the webhooks."""
DELIVERIES = "deliveries"
SCHEDULE = "schedule"
INBOX = "inbox"
INBOX_INDEX = "inbox_index"
RELEASE_LOCKS = "release_locks"
ROUTED_EVENTS = "routed_events"
OUTBOX_COLLECTIONS = (DELIVERIES,)
INBOX_KEPT = 1000
"""Items an inbox lists (newest first); older ones stay stored but drop out of the list."""


def store_indexes() -> list[IndexSpec]:
    """For MongoDB: the queries that are not by `_id` (timers, operator status reads)."""
    return [
        IndexSpec(SCHEDULE, [("op", 1), ("at", 1)]),
        IndexSpec(WEBHOOKS, [("sync_pending", 1)]),
        IndexSpec(DELIVERIES, [("recipient_id", 1), ("created_at", -1)]),
        IndexSpec(DELIVERIES, [("event_id", 1)]),
        IndexSpec(DELIVERIES, [("state", 1), ("created_at", -1)]),
        IndexSpec(INBOX, [("user_id", 1), ("created_at", -1)]),  # once per user: index build
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
        urgent_kinds=frozenset(doc.get("urgent_kinds") or ()),
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
class Routing:
    """What routing one event reads (`NotificationsStore.routing`)."""

    subscriptions: list[WebhookEndpoint]
    owned: list[WebhookEndpoint]
    recipients: dict[str, Recipient]


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
        self.schedule_c = mongo.db[SCHEDULE]
        self.inbox_c = mongo.db[INBOX]
        self.inbox_index_c = mongo.db[INBOX_INDEX]
        self.locks_c = mongo.db[RELEASE_LOCKS]
        self._sets_moved = False

    # --- recipients ------------------------------------------------------------

    async def recipient(self, recipient_id: str) -> Recipient | None:
        doc = await self.recipients_c.find_one({"_id": recipient_id})
        return recipient_of(doc) if doc else None

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
                    "urgent_kinds": sorted(recipient.urgent_kinds),
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

    @staticmethod
    def _endpoint_fields(endpoint: WebhookEndpoint, now: datetime) -> Document:
        return {
            "url": endpoint.url,
            "secret": endpoint.secret,
            "event_types": sorted(endpoint.event_types),
            "owner_id": endpoint.owner_id,
            "active": endpoint.active,
            "sync_pending": True,
            "updated_at": now,
        }

    async def add_endpoint(self, endpoint: WebhookEndpoint, now: datetime) -> None:
        doc = {
            "_id": endpoint.endpoint_id,
            **self._endpoint_fields(endpoint, now),
            "version": 1,
            "sets": [set_key(endpoint.owner_id)],
            "created_at": now,
        }
        await self.webhooks_c.insert_one(doc)
        await self._sync_sets(doc)

    async def _write_endpoint(self, endpoint_id: str, update: Document) -> bool:
        """Change the endpoint (the truth), then its endpoint sets; a crash in between
        leaves `sync_pending`, which the start-up/timer sweep completes."""
        doc = await self.webhooks_c.find_one_and_update(
            {"_id": endpoint_id}, update, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            return False
        await self._sync_sets(doc)
        return True

    async def replace_endpoint(self, endpoint: WebhookEndpoint, now: datetime) -> bool:
        return await self._write_endpoint(
            endpoint.endpoint_id,
            {
                "$set": self._endpoint_fields(endpoint, now),
                "$inc": {"version": 1},
                "$addToSet": {"sets": set_key(endpoint.owner_id)},
            },
        )

    async def deactivate_endpoint(self, endpoint_id: str, now: datetime) -> bool:
        return await self._write_endpoint(
            endpoint_id,
            {
                "$set": {"active": False, "sync_pending": True, "updated_at": now},
                "$inc": {"version": 1},
            },
        )

    async def endpoint(self, endpoint_id: str) -> tuple[WebhookEndpoint, Document] | None:
        doc = await self.webhooks_c.find_one({"_id": endpoint_id})
        return (endpoint_of(doc), doc) if doc else None

    async def endpoints(self) -> list[tuple[WebhookEndpoint, Document]]:
        """Operators' list: the registrations (a small collection, not per event)."""
        docs = await self.webhooks_c.find({}).sort("_id", 1).to_list()
        return [(endpoint_of(d), d) for d in docs]

    async def _endpoint_set(self, key: str) -> list[WebhookEndpoint]:
        doc = await self.recipients_c.find_one({"_id": key})
        return endpoints_of(doc.get("eps") or {}) if doc else []

    async def subscription_endpoints(self) -> list[WebhookEndpoint]:
        """Active endpoints without owner (integrations): one read by `_id`."""
        return await self._endpoint_set(SUBSCRIPTIONS)

    async def owned_endpoints(self, owner_ids: Iterable[str]) -> list[WebhookEndpoint]:
        """Active endpoints these users own (their webhook channel): one batch read."""
        return (await self.routing(owner_ids, with_recipients=False)).owned

    async def routing(self, user_ids: Iterable[str], *, with_recipients: bool = True) -> Routing:
        """What routing an event needs, in ONE batch read by `_id`: these users' contact
        data, the endpoints they own and the subscriptions."""
        ids = list(dict.fromkeys(user_ids))
        keys = [set_key(o) for o in ids]
        found = await find_by_ids(
            self.recipients_c, [SUBSCRIPTIONS, *keys, *(ids if with_recipients else ())]
        )

        def of(key: str) -> list[WebhookEndpoint]:
            doc = found.get(key)
            return endpoints_of(doc.get("eps") or {}) if doc else []

        return Routing(
            subscriptions=of(SUBSCRIPTIONS),
            owned=[e for k in keys for e in of(k)],
            recipients={i: recipient_of(found[i]) for i in ids if i in found}
            if with_recipients
            else {},
        )

    async def _sync_sets(self, doc: Document) -> None:
        """Write the endpoint's entry into every set it is or was in, newest version wins."""
        endpoint_id: str = doc["_id"]
        version = doc.get("version")
        if version is None:  # registered before endpoint sets existed
            await self.webhooks_c.update_one(
                {"_id": endpoint_id, "version": {"$exists": False}},
                {"$set": {"version": 1, "sets": [set_key(doc.get("owner_id"))]}},
            )
            fresh = await self.webhooks_c.find_one({"_id": endpoint_id})
            if fresh is None or fresh.get("version") is None:
                return
            doc, version = fresh, fresh["version"]
        endpoint = endpoint_of(doc)
        for key, entry in set_entries(endpoint, version, doc.get("sets") or ()).items():
            with contextlib.suppress(DuplicateKeyError):
                await self.recipients_c.insert_one({"_id": key, "eps": {}})
            field = f"eps.{endpoint_id}"
            await self.recipients_c.update_one(
                {
                    "_id": key,
                    "$or": [{f"{field}.v": {"$exists": False}}, {f"{field}.v": {"$lt": version}}],
                },
                {"$set": {field: entry}},
            )
        await self.webhooks_c.update_one(
            {"_id": endpoint_id, "version": version},
            {"$set": {"sets": [set_key(endpoint.owner_id)]}, "$unset": {"sync_pending": ""}},
        )

    async def sync_endpoint_sets(self) -> int:
        """Start-up/timer sweep: finish endpoint writes whose sets were not updated."""
        await self._move_endpoint_sets()
        docs = await self.webhooks_c.find(
            {"$or": [{"sync_pending": True}, {"version": {"$exists": False}}]}, {"_id": 1}
        ).to_list()
        for d in docs:
            full = await self.webhooks_c.find_one({"_id": d["_id"]})
            if full is not None:
                await self._sync_sets(full)
        return len(docs)

    async def _move_endpoint_sets(self) -> None:
        """Once: rebuild the sets beside the recipients from the webhooks (the truth),
        then drop where they were before (`endpoint_sets`). Webhooks are few."""
        if self._sets_moved or await self.recipients_c.find_one({"_id": SETS_MOVED}):
            self._sets_moved = True
            return
        async for doc in self.webhooks_c.find({}):
            fresh = await self.webhooks_c.find_one_and_update(
                {"_id": doc["_id"]},
                {"$set": {"sets": [set_key(doc.get("owner_id"))], "sync_pending": True}},
                return_document=ReturnDocument.AFTER,
            )
            if fresh is not None and fresh.get("version") is not None:
                await self._sync_sets(fresh)
        await self.db.drop_collection(LEGACY_ENDPOINT_SETS)
        with contextlib.suppress(DuplicateKeyError):
            await self.recipients_c.insert_one({"_id": SETS_MOVED})
        self._sets_moved = True

    # --- schedule: the deliveries in flight -----------------------------------------

    async def _schedule(
        self, key: str, op: str, at: datetime, *, recipient_id: str, channel: Channel, now: datetime
    ) -> bool:
        try:
            await self.schedule_c.insert_one(
                {
                    "_id": key,
                    "op": op,
                    "at": at,
                    "recipient_id": recipient_id,
                    "channel": channel.value,
                    "created_at": now,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def due(self, op: str, now: datetime, limit: int = 500) -> list[Document]:
        """Timer sweep over the small `schedule` collection (never over `deliveries`)."""
        return (
            await self.schedule_c.find(
                {"op": op, "at": {"$lte": now}},
                {"recipient_id": 1, "channel": 1, "digest": 1, "created_at": 1},
            )
            .sort("at", 1)
            .limit(limit)
            .to_list()
        )

    async def schedule_entry(self, key: str) -> Document | None:
        return await self.schedule_c.find_one({"_id": key})

    async def reschedule(self, key: str, op: str, at: datetime) -> None:
        await self.schedule_c.update_one({"_id": key}, {"$set": {"op": op, "at": at}})

    async def unschedule(self, key: str) -> None:
        await self.schedule_c.delete_one({"_id": key})

    async def unschedule_many(self, keys: Sequence[str]) -> None:
        """Several finished deliveries' entries in one command (the `_id` index)."""
        if keys:
            await self.schedule_c.delete_many({"_id": {"$in": list(keys)}})

    # --- deliveries: claim -------------------------------------------------------

    async def claim(
        self,
        planned: PlannedDelivery,
        source: Envelope,
        *,
        now: datetime,
        sender: tuple[str, datetime] | None = None,
    ) -> Document | None:
        """Store a planned delivery under its key; None if it already exists (replay).

        Its schedule entry is written first, so a crash in between leaves an entry
        without a delivery (dropped by the sweep), never a delivery nobody will send.
        With `sender` (owner, lease end) a delivery due now is stored already
        taken by that sender, as `claim_send` would leave it: the insert is the
        claim, and a crash before the send is taken over when the lease ends.
        Returns the stored document.
        """
        held = planned.hold_until is not None and planned.hold_until > now
        taken = sender is not None and not held
        scheduled = await self._schedule(
            planned.key,
            Op.RELEASE if held else Op.SEND,
            planned.hold_until if held and planned.hold_until else now,
            recipient_id=planned.recipient_id,
            channel=planned.channel,
            now=now,
        )
        doc = {
            "_id": planned.key,
            **planned_fields(planned),
            "digest": False,
            "state": State.HELD if held else State.SENDING if taken else State.PENDING,
            "due_at": None if held else now,
            "attempts": 0,
            "occurred_at": source.time,
            "source": source.to_document(),
            "history": [],
            "created_at": now,
            "updated_at": now,
        }
        if taken and sender is not None:
            doc["lease_owner"], doc["lease_until"] = sender
        try:
            await self.deliveries_c.insert_one(doc)
        except DuplicateKeyError:
            if scheduled:  # the delivery was already final: its entry had been removed
                await self.unschedule(planned.key)
            return None
        return doc

    async def first_routing(self, event_id: str, now: datetime) -> bool:
        """Record that this event is being routed; False when it was before (a replay).

        One insert by `_id` replaces the consumer inbox here: on the first routing
        nothing can have been stored for the event yet, so the probes of
        `recipients_reached` are only needed on a replay.
        """
        try:
            await self.db[ROUTED_EVENTS].insert_one({"_id": event_id, "at": now})
        except DuplicateKeyError:
            return False
        return True

    async def recipients_reached(self, event_id: str, recipient_ids: Iterable[str]) -> set[str]:
        """Who already has a delivery (any channel) for this event: the keys are
        derived from (event, recipient, channel): one batch read by `_id`."""
        ids = list(dict.fromkeys(recipient_ids))
        probes = [(rid, delivery_key(event_id, rid, ch)) for rid in ids for ch in Channel]
        found = await find_by_ids(self.deliveries_c, [key for _, key in probes], {"_id": 1})
        return {rid for rid, key in probes if key in found}

    async def claim_send(
        self,
        key: str,
        owner: str,
        now: datetime,
        lease: timedelta,
        *,
        dead_owners: Document | None = None,
    ) -> Document | None:
        """Take this delivery if it is due (or its sender's lease expired, or its sender
        matches `dead_owners`: an earlier run of this replica), by `_id`."""
        taken_over: list[Document] = [{"state": State.SENDING, "lease_until": {"$lt": now}}]
        if dead_owners is not None:
            taken_over.append({"state": State.SENDING, "lease_owner": dead_owners})
        return await self.deliveries_c.find_one_and_update(
            {
                "_id": key,
                "$or": [{"state": State.PENDING, "due_at": {"$lte": now}}, *taken_over],
            },
            {
                "$set": {
                    "state": State.SENDING,
                    "lease_owner": owner,
                    "lease_until": now + lease,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    async def status(self, key: str) -> DeliveryStatus | None:
        doc = await self.deliveries_c.find_one(
            {"_id": key},
            {"state": 1, "due_at": 1, "lease_until": 1, "hold_until": 1, "failover_pending": 1},
        )
        if doc is None:
            return None
        return DeliveryStatus(
            state=doc["state"],
            due_at=doc.get("due_at"),
            lease_until=doc.get("lease_until"),
            hold_until=doc.get("hold_until"),
            failover_pending=bool(doc.get("failover_pending")),
        )

    # --- deliveries: outcomes ----------------------------------------------------

    def _mine(self, key: str, owner: str) -> Document:
        return {"_id": key, "state": State.SENDING, "lease_owner": owner}

    async def renew_lease(self, key: str, owner: str, until: datetime) -> bool:
        """Extend our own sending lease (a delivery taken at routing, sent late)."""
        res = await self.deliveries_c.update_one(
            self._mine(key, owner), {"$set": {"lease_until": until}}
        )
        return res.matched_count == 1

    async def mark_delivered(
        self,
        key: str,
        owner: str,
        *,
        attempts: int,
        now: datetime,
        events: Sequence[Envelope],
    ) -> int | None:
        """Delivered, with its events; the pending-event count after the write, or
        None when the delivery is no longer ours (for `publish_now`)."""
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
        doc = await self.deliveries_c.find_one_and_update(
            self._mine(key, owner),
            update,
            return_document=ReturnDocument.AFTER,
        )
        return Outbox.count(doc)

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
        if res.modified_count != 1:
            return False
        await self.reschedule(key, Op.SEND, at)
        return True

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

    async def complete_failover(self, doc: Document, now: datetime) -> list[PlannedDelivery]:
        """Insert the successors a failed delivery recorded; returns those inserted now.
        The failed delivery's schedule entry goes last: until then a sweep finishes this."""
        inserted: list[PlannedDelivery] = []
        parts_by_event: dict[str, Document] = {}
        if doc.get("digest"):
            parts = await self.parts(doc.get("parts", []))
            parts_by_event = {p["event_id"]: p for p in parts}
        for entry in doc.get("failover_pending", []):
            planned = planned_of(entry, key=entry["key"])
            origin = parts_by_event.get(planned.event_id, doc)
            if await self.claim(planned, source_of(origin), now=now):
                inserted.append(planned)
        await self.deliveries_c.update_one(
            {"_id": doc["_id"]}, {"$unset": {"failover_pending": ""}}
        )
        await self.unschedule(doc["_id"])
        return inserted

    # --- held notifications and digests -----------------------------------------

    async def release_single(self, key: str, now: datetime) -> bool:
        """Held -> due now. The entry turns to `send` first: a crash in between is
        repaired back to `release` by the sweep, and released again."""
        await self.reschedule(key, Op.SEND, now)
        res = await self.deliveries_c.update_one(
            {"_id": key, "state": State.HELD},
            {"$set": {"state": State.PENDING, "due_at": now, "updated_at": now}},
        )
        return res.modified_count == 1

    async def mark_entry_digest(self, key: str, digest_key: str) -> None:
        """Intent: this held delivery goes into that digest (finished after a crash)."""
        await self.schedule_c.update_one({"_id": key}, {"$set": {"digest": digest_key}})

    async def insert_digest(
        self,
        key: str,
        *,
        recipient_id: str,
        channel: Channel,
        parts: Sequence[str],
        now: datetime,
    ) -> bool:
        await self._schedule(key, Op.SEND, now, recipient_id=recipient_id, channel=channel, now=now)
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
        """Each part by `_id`: held -> digested, then its schedule entry goes."""
        for key in parts:
            await self.deliveries_c.update_one(
                {"_id": key, "state": State.HELD},
                {"$set": {"state": State.DIGESTED, "digest_id": digest_key, "updated_at": now}},
            )
            await self.unschedule(key)

    async def parts(self, keys: Sequence[str]) -> list[Document]:
        """Deliveries by key, in the given order (one batch read by `_id`)."""
        found = await find_by_ids(self.deliveries_c, keys)
        return [found[k] for k in dict.fromkeys(keys) if k in found]

    async def settle_parts(self, keys: Sequence[str], state: str, now: datetime) -> None:
        """After a digest's outcome: its parts take the same final state (status reads)."""
        for key in keys:
            await self.deliveries_c.update_one(
                {"_id": key, "state": State.DIGESTED},
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
        """Operators' status search (indexed on MongoDB; a scan on FerretDB v1)."""
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
        """Store the item, then list it in the user's index (both idempotent)."""
        inserted = True
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
            inserted = False
        with contextlib.suppress(DuplicateKeyError):  # listed already: the upsert collides
            await self.inbox_index_c.update_one(
                {"_id": user_id, "items": {"$ne": key}},
                {
                    "$push": {
                        "items": {"$each": [key], "$slice": -INBOX_KEPT},
                        "unread": {"$each": [key], "$slice": -INBOX_KEPT},
                    }
                },
                upsert=True,
            )
        return inserted

    async def _ensure_index(self, user_id: str) -> Document:
        """The user's inbox index. Once per user (first read), items stored before the
        index existed are merged in; `complete` marks that it was done."""
        for _ in range(3):
            doc = await self.inbox_index_c.find_one({"_id": user_id})
            if doc is not None and doc.get("complete"):
                return doc
            stored = (
                await self.inbox_c.find({"user_id": user_id}, {"read_at": 1})
                .sort("created_at", 1)
                .to_list()
            )
            merged = {
                "items": [d["_id"] for d in stored][-INBOX_KEPT:],
                "unread": [d["_id"] for d in stored if d.get("read_at") is None][-INBOX_KEPT:],
                "complete": True,
            }
            if doc is None:
                try:
                    await self.inbox_index_c.insert_one({"_id": user_id, **merged})
                except DuplicateKeyError:
                    continue
                return {"_id": user_id, **merged}
            # unchanged since read, or an item listed meanwhile would be lost: retry
            res = await self.inbox_index_c.update_one(
                {"_id": user_id, "items": doc.get("items", [])}, {"$set": merged}
            )
            if res.modified_count == 1:
                return {"_id": user_id, **merged}
        doc = await self.inbox_index_c.find_one({"_id": user_id})
        return doc or {"_id": user_id, "items": [], "unread": []}

    async def inbox(
        self, user_id: str, *, unread_only: bool, limit: int, skip: int
    ) -> tuple[list[InboxItem], int]:
        """A page of the user's index, newest first (one batch read by `_id`)."""
        index = await self._ensure_index(user_id)
        unread: list[str] = index.get("unread") or []
        ids = list(reversed(unread if unread_only else index.get("items") or []))
        page = ids[skip : skip + limit]
        found = await find_by_ids(self.inbox_c, page)
        return [_inbox_item(found[i]) for i in page if i in found], len(unread)

    async def mark_read(self, user_id: str, item_id: str, now: datetime) -> InboxItem | None:
        """Idempotent: the first read time is kept. None if the item is not this user's."""
        await self.inbox_c.update_one(
            {"_id": item_id, "user_id": user_id, "read_at": None}, {"$set": {"read_at": now}}
        )
        doc = await self.inbox_c.find_one({"_id": item_id, "user_id": user_id})
        if doc is None:
            return None
        await self.inbox_index_c.update_one({"_id": user_id}, {"$pull": {"unread": item_id}})
        return _inbox_item(doc)

    async def mark_all_read(self, user_id: str, now: datetime) -> int:
        index = await self._ensure_index(user_id)
        unread: list[str] = index.get("unread") or []
        marked = 0
        for item_id in unread:
            res = await self.inbox_c.update_one(
                {"_id": item_id, "user_id": user_id, "read_at": None}, {"$set": {"read_at": now}}
            )
            marked += res.modified_count
        if unread:
            await self.inbox_index_c.update_one({"_id": user_id}, {"$pullAll": {"unread": unread}})
        return marked
