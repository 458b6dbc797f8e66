"""Sending: a delivery is sent as soon as it is stored, by the process that stored it.

The handler stores a delivery (the durable record) already taken by this
dispatcher (its insert carries our sending lease) and hands it over with the
recipient it read (`Dispatcher.submit_taken`), so nothing is read again; other
deliveries (retries, failovers, digests, the sweep's) go by key to
`Dispatcher.submit`, and a worker claims each by `_id` (conditional update with
a lease). The worker sends it on its channel and stores the outcome with ONE
conditional update carrying its NotificationDelivered / NotificationFailed
event (outbox), published without reading it back:
delivered; retry later (domain RetryPolicy: exponential backoff with full
jitter, persisted in `due_at` and in the schedule entry, and awaited here by an
in-process timer); or failed for good, with the successor on the recipient's
next channel (failover) recorded in the same update and inserted right after.

Nothing polls per delivery. A slow sweep (`dispatch_interval_s`, and at
start-up) reads the small `schedule` collection for entries that are due (a
crash before the send, a retry whose timer died with its process, a sender
whose lease expired) and claims each by `_id`; an entry that disagrees with
its delivery is repaired (domain `schedule.repair`).

A sender that dies mid-send leaves the delivery `sending`; once its lease
expires another replica takes it over, and the same replica started again
takes it over at once (its start-up sweep; `delego_shared.replica`). That is
the one at-least-once window (the send happened, its outcome was not
stored): webhook receivers dedupe on the `Delego-Delivery-Id` header, e-mails
carry a stable Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from delego_shared import tracing
from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel
from delego_shared.logging import get_logger
from delego_shared.messaging import PublishNow, is_transient
from delego_shared.metrics import count_business_events
from delego_shared.replica import Replica
from delego_shared.timing import survive, wake_or_timeout

from .channels import EmailSender, InAppSender, WebhookSender
from .domain import (
    Drop,
    FailOver,
    Failure,
    FinishFailover,
    HeldNotification,
    Op,
    PlannedDelivery,
    Recipient,
    Rendered,
    Renderer,
    Reschedule,
    RetryAt,
    Rng,
    State,
    after_failure,
    delivered_event,
    failed_event,
    next_delivery,
    release_message,
    repair,
    retry_timer_delay,
)
from .settings import Clock, NotificationsSettings
from .store import DELIVERIES, NotificationsStore, planned_of, source_of

log = get_logger(__name__)
T = TypeVar("T")

INTERNAL_ERROR = Failure("internal_error", permanent=False)


class Dispatcher:
    def __init__(
        self,
        store: NotificationsStore,
        settings: NotificationsSettings,
        *,
        renderer: Renderer,
        clock: Clock,
        email: EmailSender,
        webhook: WebhookSender,
        inapp: InAppSender,
        publish: PublishNow,
        rng: Rng | None = None,
        replica: Replica | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.renderer = renderer
        self.clock = clock
        self.email = email
        self.webhook = webhook
        self.inapp = inapp
        self.publish = publish
        """Publishes a delivery's outcome event right after it is stored."""
        self.rng: Rng = rng or random.SystemRandom()
        self.policy = settings.retry_policy()
        self.lease = timedelta(seconds=settings.delivery_lease_s)
        self.timer_horizon = timedelta(seconds=max(settings.retry_cap_s, settings.delivery_lease_s))
        self.replica = replica or Replica.unnamed()
        self.owner = self.replica.owner
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._taken: dict[str, tuple[dict[str, Any], Recipient]] = {}
        """Deliveries stored already taken by us, with their recipient (no claim, no read)."""
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._finished: set[str] = set()
        """Schedule entries of final deliveries, removed together (one command)."""
        self._finished_wake = asyncio.Event()
        self._traces: dict[str, Any] = {}
        """Tracing on: the context (consumer span) each queued delivery was submitted in."""

    def sender(self, now: datetime) -> tuple[str, datetime]:
        """(owner, lease end) for a delivery stored already taken by this dispatcher."""
        return self.owner, now + self.lease

    def submit(self, keys: Iterable[str]) -> None:
        """Send these stored deliveries now, in this process (once each while queued)."""
        trace = tracing.capture()
        for key in keys:
            if trace is not None:
                self._traces[key] = trace
            if key not in self._queued:
                self._queued.add(key)
                self._queue.put_nowait(key)

    def submit_taken(self, doc: dict[str, Any], recipient: Recipient) -> None:
        """Send this delivery, stored already taken by us (`sender`), with its recipient."""
        key: str = doc["_id"]
        self._taken[key] = (doc, recipient)  # also when the key is already queued
        trace = tracing.capture()
        if trace is not None:  # the send joins the trace of the event that caused it
            self._traces[key] = trace
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def kick(self) -> None:
        """Sweep the schedule now rather than at the next slow tick."""
        self._wake.set()

    def _submit_at(self, key: str, at: datetime) -> None:
        """Wake up for a retry (or a lease takeover) at `at`; the sweep is the fallback."""
        delay = retry_timer_delay(at, self.clock(), horizon=self.timer_horizon)
        if delay is None:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.submit([key])

        self._timers[key] = asyncio.get_running_loop().call_later(delay, fire)

    # --- loops -------------------------------------------------------------------

    async def run(self) -> None:
        """Background: `dispatch_concurrency` senders and the slow schedule sweep."""
        tasks = [
            asyncio.create_task(self._worker(), name=f"notifications-dispatch-{i}")
            for i in range(self.settings.dispatch_concurrency)
        ]
        tasks.append(asyncio.create_task(self._sweeper(), name="notifications-sweep"))
        tasks.append(asyncio.create_task(self._unscheduler(), name="notifications-unschedule"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            with contextlib.suppress(Exception):
                await self.email.close()

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                with tracing.resumed(self._traces.pop(key, None)):
                    taken = self._taken.pop(key, None)
                    # the sweep may have queued the key of a delivery this process was storing
                    # already taken (its entry comes first): the claim fails, the doc arrives
                    if taken is None and not await self.dispatch(key):
                        taken = self._taken.pop(key, None)
                    if taken is not None:
                        await self._send_taken(*taken)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store down: the sweep brings it back
                log.warning(
                    "dispatch.failed",
                    delivery_id=key,
                    error_type=type(exc).__name__,
                    error=str(exc),
                )
            finally:
                self._queued.discard(key)

    async def _unscheduler(self) -> None:
        """Removes finished deliveries' schedule entries in batches; one left behind by
        a crash is dropped by the sweep (`repair`: its delivery is final)."""
        while True:
            await self._finished_wake.wait()
            self._finished_wake.clear()
            await asyncio.sleep(0.05)  # let a few more finish
            keys, self._finished = sorted(self._finished), set()
            try:
                await self.store.unschedule_many(keys)
            except Exception as exc:  # store down: the sweep drops them later
                log.warning("unschedule.failed", count=len(keys), error_type=type(exc).__name__)

    def _unschedule_soon(self, key: str) -> None:
        self._finished.add(key)
        self._finished_wake.set()

    async def _sweeper(self) -> None:
        # at start-up, also the sends due within a lease: an earlier run of this replica
        # may have left them taken (another replica's sweep dates them at the lease end)
        ahead = self.lease
        while True:
            await survive(functools.partial(self.sweep_once, ahead), "sweep.failed")
            ahead = timedelta(0)
            await wake_or_timeout(self._wake, self.settings.dispatch_interval_s)
            self._wake.clear()

    async def sweep_once(self, ahead: timedelta = timedelta(0)) -> int:
        """Catch-up after crashes: endpoint sets, then due sends (claimed by `_id`)."""
        await self.store.sync_endpoint_sets()
        entries = await self.store.due(Op.SEND, self.clock() + ahead)
        keys = [e["_id"] for e in entries if e["_id"] not in self._queued]
        if keys:
            log.info("sweep.due", count=len(keys))
        self.submit(keys)
        return len(keys)

    async def dispatch(self, key: str) -> bool:
        """Claim this delivery by `_id` and send it; False when it is not ours to send now."""
        doc = await self.store.claim_send(
            key, self.owner, self.clock(), self.lease, dead_owners=self.replica.predecessors()
        )
        if doc is None:
            await self.repair(key)
            return False
        await self._send(doc)
        return True

    async def _send_taken(self, doc: dict[str, Any], recipient: Recipient) -> None:
        """A delivery stored already taken by us; renew the lease if it was queued long."""
        now = self.clock()
        if doc["lease_until"] - now < self.lease / 2:
            until = now + self.lease
            if not await self.store.renew_lease(doc["_id"], self.owner, until):
                return  # taken over meanwhile: not ours to send
            doc["lease_until"] = until
        await self._send(doc, recipient)

    async def _send(self, doc: dict[str, Any], recipient: Recipient | None = None) -> None:
        with structlog.contextvars.bound_contextvars(
            delivery_id=doc["_id"],
            recipient_id=doc["recipient_id"],
            channel=doc["channel"],
            kind=doc["kind"],
        ):
            if doc.get("digest"):
                await self._send_digest(doc)
            else:
                await self._send_one(doc, recipient)

    async def repair(self, key: str) -> None:
        """Bring a schedule entry in line with its delivery (after a crash or a race)."""
        entry = await self.store.schedule_entry(key)
        if entry is None:
            return
        now = self.clock()
        action = repair(
            await self.store.status(key),
            entry_created_at=entry["created_at"],
            now=now,
            grace=self.lease,
        )
        if isinstance(action, Drop):
            await self.store.unschedule(key)
        elif isinstance(action, Reschedule):
            if (action.op, action.at) != (entry.get("op"), entry.get("at")):
                await self.store.reschedule(key, action.op, action.at)
            if action.op == Op.SEND and action.at > now:
                self._submit_at(key, action.at)
        elif isinstance(action, FinishFailover):
            await self._complete(key)

    # --- one delivery -------------------------------------------------------------

    async def _send_one(self, doc: dict[str, Any], known: Recipient | None = None) -> None:
        planned = planned_of(doc)
        attempts = int(doc.get("attempts", 0)) + 1
        source = source_of(doc)
        if planned.via_subscription:
            recipient = Recipient(recipient_id=planned.recipient_id, channels=(Channel.WEBHOOK,))
        elif known is not None:
            recipient = known
        else:
            recipient = await self.store.recipient(planned.recipient_id) or Recipient(
                recipient_id=planned.recipient_id
            )
        now = self.clock()
        try:
            failure = await self._attempt(planned, recipient, source, now)
        except Exception as exc:
            log.exception("delivery.attempt_error", error_type=type(exc).__name__)
            failure = INTERNAL_ERROR
        now = self.clock()
        if failure is None:
            event = source.caused(
                delivered_event(planned, attempts=attempts, at=now), self.settings.source
            )
            pending = await self._outcome(
                lambda: self.store.mark_delivered(
                    planned.key, self.owner, attempts=attempts, now=now, events=[event]
                )
            )
            if pending is not None:
                self._unschedule_soon(planned.key)
            await self._stored(
                pending is not None,
                "delivery.delivered",
                planned.key,
                events=[event],
                pending=pending,
                attempts=attempts,
            )
            return
        # the recipient's own webhooks, for failover (one read by `_id`)
        endpoints = []
        if not planned.via_subscription:
            endpoints = await self.store.owned_endpoints([recipient.recipient_id])
        decision = after_failure(
            planned,
            attempts=attempts,
            failure=failure,
            policy=self.policy,
            rng=self.rng,
            now=now,
            recipient=recipient,
            endpoints=endpoints,
        )
        if isinstance(decision, RetryAt):
            stored = await self._outcome(
                lambda: self.store.schedule_retry(
                    planned.key,
                    self.owner,
                    attempts=attempts,
                    at=decision.at,
                    code=failure.code,
                    now=now,
                )
            )
            await self._stored(
                stored, "delivery.retry_scheduled", None, attempts=attempts, code=failure.code
            )
            if stored:
                self._submit_at(planned.key, decision.at)
            return
        failed = source.caused(
            failed_event(planned, attempts=attempts, error_code=decision.failed_code, at=now),
            self.settings.source,
        )
        successors = [decision.next] if isinstance(decision, FailOver) else []
        stored = await self._outcome(
            lambda: self.store.mark_failed(
                planned.key,
                self.owner,
                attempts=attempts,
                code=decision.failed_code,
                now=now,
                events=[failed],
                failover=successors,
            )
        )
        if stored:
            await self._complete(planned.key)
        await self._stored(
            stored,
            "delivery.failed",
            planned.key,
            events=[failed],
            attempts=attempts,
            code=decision.failed_code,
            failover_channel=successors[0].channel.value if successors else None,
        )

    async def _attempt(
        self,
        planned: PlannedDelivery,
        recipient: Recipient,
        source: Envelope,
        now: datetime,
    ) -> Failure | None:
        if planned.channel is Channel.WEBHOOK:
            found = await self.store.endpoint(planned.endpoint_id) if planned.endpoint_id else None
            if found is None or not found[0].active:
                return Failure("webhook_endpoint_inactive", permanent=True)
            return await self.webhook.send(found[0], source, delivery_key=planned.key, now=now)
        rendered = self._render(planned.kind, recipient, source)
        return await self._send_rendered(
            planned.channel,
            recipient,
            rendered,
            key=planned.key,
            kind=planned.kind,
            source_event_id=planned.event_id,
            now=now,
        )

    async def _send_rendered(
        self,
        channel: Channel,
        recipient: Recipient,
        rendered: Rendered,
        *,
        key: str,
        kind: str,
        source_event_id: str,
        now: datetime,
    ) -> Failure | None:
        if channel is Channel.EMAIL:
            if recipient.email is None:
                return Failure("email_missing", permanent=True)
            return await self.email.send(to=recipient.email, rendered=rendered, delivery_key=key)
        if channel is Channel.INAPP:
            await self.inapp.send(
                user_id=recipient.recipient_id,
                kind=kind,
                rendered=rendered,
                delivery_key=key,
                source_event_id=source_event_id,
                now=now,
            )
            return None
        return Failure("channel_unsupported", permanent=True)

    def _render(self, kind: str, recipient: Recipient, source: Envelope) -> Rendered:
        return self.renderer.render(
            kind, locale=recipient.locale, zone=recipient.zone, context={"event": source.data}
        )

    # --- digests --------------------------------------------------------------------

    async def _send_digest(self, doc: dict[str, Any]) -> None:
        key: str = doc["_id"]
        channel = Channel(doc["channel"])
        attempts = int(doc.get("attempts", 0)) + 1
        part_docs = await self.store.parts(doc["parts"])
        sources = {p["_id"]: source_of(p) for p in part_docs}
        held = [
            HeldNotification(
                planned=planned_of(p), event=sources[p["_id"]].data, occurred_at=p["occurred_at"]
            )
            for p in part_docs
        ]
        recipient = await self.store.recipient(doc["recipient_id"]) or Recipient(
            recipient_id=doc["recipient_id"]
        )
        now = self.clock()
        try:
            message = release_message(recipient, held, self.renderer)
            if message.key != key:
                raise ValueError("digest parts do not match the digest key")
            failure = await self._send_rendered(
                channel,
                recipient,
                message.rendered,
                key=key,
                kind=message.kind,
                source_event_id=held[0].planned.event_id,
                now=now,
            )
        except Exception as exc:
            log.exception("delivery.attempt_error", error_type=type(exc).__name__)
            failure = INTERNAL_ERROR
        now = self.clock()
        parts = [h.planned for h in held]
        if failure is None:
            events = [
                sources[p.key].caused(
                    delivered_event(p, attempts=attempts, at=now), self.settings.source
                )
                for p in parts
            ]
            pending = await self._outcome(
                lambda: self.store.mark_delivered(
                    key, self.owner, attempts=attempts, now=now, events=events
                )
            )
            if pending is not None:
                await self.store.settle_parts(doc["parts"], State.DELIVERED, now)
                self._unschedule_soon(key)
            await self._stored(
                pending is not None,
                "digest.delivered",
                key,
                events=events,
                pending=pending,
                attempts=attempts,
                parts=len(parts),
            )
            return
        retry_at = (
            None if failure.permanent else self.policy.next_attempt_at(now, attempts, self.rng)
        )
        if retry_at is not None:
            stored = await self._outcome(
                lambda: self.store.schedule_retry(
                    key, self.owner, attempts=attempts, at=retry_at, code=failure.code, now=now
                )
            )
            await self._stored(
                stored, "digest.retry_scheduled", None, attempts=attempts, code=failure.code
            )
            if stored:
                self._submit_at(key, retry_at)
            return
        endpoints = await self.store.owned_endpoints([recipient.recipient_id])
        successors = [
            n for p in parts if (n := next_delivery(p, recipient, endpoints, now=now)) is not None
        ]
        events = [
            sources[p.key].caused(
                failed_event(p, attempts=attempts, error_code=failure.code, at=now),
                self.settings.source,
            )
            for p in parts
        ]
        stored = await self._outcome(
            lambda: self.store.mark_failed(
                key,
                self.owner,
                attempts=attempts,
                code=failure.code,
                now=now,
                events=events,
                failover=successors,
            )
        )
        if stored:
            await self.store.settle_parts(doc["parts"], State.FAILED, now)
        if stored:
            await self._complete(key)
        await self._stored(
            stored, "digest.failed", key, events=events, attempts=attempts, code=failure.code
        )

    # --- helpers ----------------------------------------------------------------------

    async def _outcome(self, write: Callable[[], Awaitable[T]]) -> T:
        """Store what a send did. The send happened: a store outage is waited out (with
        backoff, while our lease holds) rather than leaving the delivery to be sent again
        by the sweep once the lease ends."""
        deadline = time.monotonic() + self.lease.total_seconds() / 2
        delay = 0.2
        while True:
            try:
                return await write()
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("delivery.outcome_waits_for_store", error_type=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _complete(self, key: str) -> None:
        """After a final failure: insert the recorded successors, send the due ones now,
        then drop the failed delivery from the schedule."""
        doc = await self.store.delivery_with_source(key)
        if doc is None:
            return
        if not doc.get("failover_pending"):
            await self.store.unschedule(key)
            return
        now = self.clock()
        inserted = await self.store.complete_failover(doc, now)
        self.submit(p.key for p in inserted if p.hold_until is None or p.hold_until <= now)

    async def _stored(
        self,
        stored: bool,
        what: str,
        published_from: str | None,
        *,
        events: Sequence[Envelope] = (),
        pending: int | None = None,
        **fields: Any,
    ) -> None:
        """Log the outcome; publish the events stored with it (from delivery `published_from`;
        `events` and `pending` as `publish_now` takes them)."""
        if stored:
            log.info(what, **fields)
            count_business_events(e.data for e in events)
            if published_from is not None:
                await self.publish(DELIVERIES, published_from, stored=events, pending=pending)
        else:
            # our lease expired and another replica took the delivery over, or our write
            # was applied and its reply lost: what the document holds still goes out
            log.warning("delivery.lease_lost", outcome=what, **fields)
            if published_from is not None:
                await self.publish(DELIVERIES, published_from)
