"""Event handling and the quiet-hours release loop: I/O at the edges of the domain.

`EventRouter.handle` turns one consumed event into planned deliveries (domain
`plan_deliveries`) and stores each under its delivery key before anything is
sent: that insert is the claim, so a replayed event stores nothing new and
sends nothing. Deliveries in quiet hours are stored `held`; the others are
handed to the `Dispatcher`, which sends them at once. Every read on this path
is by `_id` (recipients and endpoint sets in one read, the delivery keys already taken).

`Releaser.run` (background, slow timer) turns held deliveries whose quiet hours
ended into one message per recipient and channel (a digest when several were
held). It finds them in the small `schedule` collection, not among all
deliveries. Held deliveries live in the database, so they survive a restart;
the release is safe with several replicas: one short lease per (recipient,
channel) group, and a digest's key is derived from the set of deliveries it
merges (insert = claim again). A digest's parts are marked with its key before
it is stored, so a replica that dies half-way is finished by the next release.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel
from delego_shared.logging import get_logger
from delego_shared.mongo import Document
from delego_shared.timing import survive

from .dispatch import Dispatcher
from .domain import (
    HeldNotification,
    Op,
    Recipient,
    RoutingRules,
    State,
    digest_key,
    group_held,
    plan_deliveries,
)
from .settings import Clock, NotificationsSettings
from .store import NotificationsStore, planned_of, source_of

log = get_logger(__name__)


class EventRouter:
    def __init__(
        self,
        store: NotificationsStore,
        rules: RoutingRules,
        *,
        clock: Clock,
        dispatcher: Dispatcher,
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.dispatcher = dispatcher

    async def handle(self, envelope: Envelope) -> None:
        event = envelope.data
        ids = self.rules.recipients_of(event)
        route = await self.store.routing(ids)
        subscriptions, owned, recipients = route.subscriptions, route.owned, route.recipients
        if not ids and not any(e.subscribes(envelope.type) for e in subscriptions):
            return  # nobody to notify about this event
        now = self.clock()
        plans = plan_deliveries(
            envelope.id, event, recipients, [*subscriptions, *owned], now=now, rules=self.rules
        )
        # A recipient already reached for this event (even on another channel, if
        # their settings changed since) is not planned again on a replay.
        first = await self.store.first_routing(envelope.id, now)
        already = (
            set()
            if first
            else await self.store.recipients_reached(envelope.id, [p.recipient_id for p in plans])
        )
        stored = held = 0
        for p in plans:
            if p.recipient_id in already:
                continue
            sender = self.dispatcher.sender(now)
            doc = await self.store.claim(p, envelope, now=now, sender=sender)
            if doc is None:
                continue
            stored += 1
            if p.hold_until is not None and p.hold_until > now:
                held += 1
            else:  # stored already taken by our dispatcher: sent without a claim or a read
                # (a user the routing read did not find is planned as the default recipient)
                known = recipients.get(p.recipient_id) or Recipient(recipient_id=p.recipient_id)
                self.dispatcher.submit_taken(doc, known)
        log.info("event.routed", planned=len(plans), stored=stored, held=held)


class Releaser:
    """Releases held notifications after quiet hours, as digests."""

    def __init__(
        self,
        store: NotificationsStore,
        settings: NotificationsSettings,
        *,
        clock: Clock,
        dispatcher: Dispatcher,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.dispatcher = dispatcher
        self.owner = uuid.uuid4().hex
        self.lease = timedelta(seconds=settings.release_lease_s)

    async def run(self) -> None:
        while True:
            await survive(self.release_once, "release.failed")
            await asyncio.sleep(self.settings.release_interval_s)

    async def release_once(self) -> int:
        """Release every due group once; returns how many messages were made due."""
        now = self.clock()
        groups: dict[tuple[str, Channel], list[Document]] = {}
        for entry in await self.store.due(Op.RELEASE, now):
            group = (entry["recipient_id"], Channel(entry["channel"]))
            groups.setdefault(group, []).append(entry)
        released = 0
        for (recipient_id, channel), entries in sorted(groups.items()):
            lock = f"{recipient_id}|{channel.value}"
            if not await self.store.acquire_release_lock(lock, self.owner, now, self.lease):
                continue  # another replica is on it
            try:
                released += await self._release_group(entries)
            finally:
                with contextlib.suppress(Exception):
                    await self.store.release_release_lock(lock, self.owner)
        return released

    async def _release_group(self, entries: list[Document]) -> int:
        now = self.clock()
        # a replica that died after storing a digest, before marking its parts
        covered: set[str] = set()
        for dkey in sorted({e["digest"] for e in entries if e.get("digest")}):
            digest = await self.store.delivery(dkey)
            if digest is not None:
                await self.store.mark_digested(digest["parts"], dkey, now)
                covered.update(digest["parts"])
                self.dispatcher.submit([dkey])
        keys = [e["_id"] for e in entries if e["_id"] not in covered]
        docs = await self.store.parts(keys)
        ready = [
            d
            for d in docs
            if d["state"] == State.HELD and d.get("hold_until") and d["hold_until"] <= now
        ]
        for key in set(keys) - {d["_id"] for d in ready}:
            await self.dispatcher.repair(key)  # already released, gone, or not due yet
        held = [
            HeldNotification(
                planned=planned_of(d), event=source_of(d).data, occurred_at=d["occurred_at"]
            )
            for d in ready
        ]
        released = 0
        for (rid, ch), items in group_held(held).items():
            parts = [h.planned.key for h in items]
            if len(items) == 1:
                if await self.store.release_single(parts[0], now):
                    released += 1
                    self.dispatcher.submit(parts)
                    log.info("release.single", recipient_id=rid, channel=ch.value)
                continue
            key = digest_key(rid, ch, parts)
            for part in parts:
                await self.store.mark_entry_digest(part, key)
            await self.store.insert_digest(key, recipient_id=rid, channel=ch, parts=parts, now=now)
            await self.store.mark_digested(parts, key, now)
            released += 1
            self.dispatcher.submit([key])
            log.info("release.digest", recipient_id=rid, channel=ch.value, parts=len(parts))
        return released
