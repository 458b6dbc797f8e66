"""Event handling and the quiet-hours release loop: I/O at the edges of the domain.

`EventRouter.handle` turns one consumed event into planned deliveries (domain
`plan_deliveries`) and stores each under its delivery key before anything is
sent: that insert is the claim, so a replayed event stores nothing new and
sends nothing. Deliveries in quiet hours are stored `held`; the others are
picked up by the `Dispatcher`.

`Releaser.run` (background) turns held deliveries whose quiet hours ended
into one message per recipient and channel (a digest when several were
held). Held deliveries live in the database, so they survive a restart; the
release is safe with several replicas: one short lease per (recipient,
channel) group, and a digest's key is derived from the set of deliveries it
merges (insert = claim again).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel
from delego_shared.logging import get_logger

from .dispatch import Dispatcher
from .domain import (
    HeldNotification,
    RoutingRules,
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
        endpoints = await self.store.active_endpoints()
        ids = self.rules.recipients_of(event)
        if not ids and not any(
            e.owner_id is None and e.subscribes(envelope.type) for e in endpoints
        ):
            return  # nobody to notify about this event
        recipients = await self.store.recipients(ids)
        now = self.clock()
        plans = plan_deliveries(
            envelope.id, event, recipients, endpoints, now=now, rules=self.rules
        )
        # A recipient already reached for this event (even on another channel, if
        # their settings changed since) is not planned again on a replay.
        already = await self.store.recipients_reached(envelope.id)
        stored = held = 0
        for p in plans:
            if p.recipient_id in already:
                continue
            if await self.store.claim(p, envelope, now=now):
                stored += 1
                held += p.hold_until is not None and p.hold_until > now
        log.info("event.routed", planned=len(plans), stored=stored, held=held)
        if stored > held:
            self.dispatcher.kick()


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
            try:
                await self.release_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store down: keep trying
                log.warning("release.failed", error_type=type(exc).__name__, error=str(exc))
            await asyncio.sleep(self.settings.release_interval_s)

    async def release_once(self) -> int:
        """Release every due group once; returns how many messages were made due."""
        now = self.clock()
        due = await self.store.due_held(now)
        groups = sorted({(d["recipient_id"], Channel(d["channel"])) for d in due})
        released = 0
        for recipient_id, channel in groups:
            lock = f"{recipient_id}|{channel.value}"
            if not await self.store.acquire_release_lock(lock, self.owner, now, self.lease):
                continue  # another replica is on it
            try:
                released += await self._release_group(recipient_id, channel)
            finally:
                with contextlib.suppress(Exception):
                    await self.store.release_release_lock(lock, self.owner)
        if released:
            self.dispatcher.kick()
        return released

    async def _release_group(self, recipient_id: str, channel: Channel) -> int:
        now = self.clock()
        docs = await self.store.held_group(recipient_id, channel, now)
        if not docs:
            return 0
        # a replica that died between creating a digest and marking its parts
        covered: set[str] = set()
        for digest in await self.store.digests_containing([d["_id"] for d in docs]):
            await self.store.mark_digested(digest["parts"], digest["_id"], now)
            covered.update(digest["parts"])
        held = [
            HeldNotification(
                planned=planned_of(d), event=source_of(d).data, occurred_at=d["occurred_at"]
            )
            for d in docs
            if d["_id"] not in covered
        ]
        released = 0
        for (rid, ch), items in group_held(held).items():
            keys = [h.planned.key for h in items]
            if len(items) == 1:
                released += await self.store.release_single(keys[0], now)
                log.info("release.single", recipient_id=rid, channel=ch.value)
                continue
            key = digest_key(rid, ch, keys)
            await self.store.insert_digest(key, recipient_id=rid, channel=ch, parts=keys, now=now)
            await self.store.mark_digested(keys, key, now)
            released += 1
            log.info("release.digest", recipient_id=rid, channel=ch.value, parts=len(keys))
        return released
