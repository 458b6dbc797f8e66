"""Sending: claim a due delivery, send it on its channel, store the outcome.

Every delivery document is sent by whichever replica claims it first
(`find_one_and_update` with a lease). After the attempt ONE conditional
update stores the outcome and its NotificationDelivered / NotificationFailed
event (outbox): delivered; retry later (domain RetryPolicy: exponential
backoff with full jitter, persisted in `due_at`, so retries survive a
restart); or failed for good, with the successor on the recipient's next
channel (failover) recorded in the same update and inserted right after.

A sender that dies mid-send leaves the delivery `sending`; once its lease
expires another replica takes it over. That is the one at-least-once window
(the send happened, its outcome was not stored): webhook receivers dedupe on
the `Delego-Delivery-Id` header, e-mails carry a stable Message-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel
from delego_shared.logging import get_logger
from delego_shared.timing import wake_or_timeout

from .channels import EmailSender, InAppSender, WebhookSender
from .domain import (
    FailOver,
    Failure,
    HeldNotification,
    PlannedDelivery,
    Recipient,
    Rendered,
    Renderer,
    RetryAt,
    Rng,
    WebhookEndpoint,
    after_failure,
    delivered_event,
    failed_event,
    next_delivery,
    release_message,
)
from .settings import Clock, NotificationsSettings
from .store import NotificationsStore, State, planned_of, source_of

log = get_logger(__name__)

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
        on_events: Callable[[], None],
        rng: Rng | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.renderer = renderer
        self.clock = clock
        self.email = email
        self.webhook = webhook
        self.inapp = inapp
        self.on_events = on_events
        self.rng: Rng = rng or random.SystemRandom()
        self.policy = settings.retry_policy()
        self.lease = timedelta(seconds=settings.delivery_lease_s)
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """New deliveries are due: look now rather than at the next poll."""
        self._wake.set()

    # --- loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Background loop: `dispatch_concurrency` workers sharing the due deliveries."""
        workers = [
            asyncio.create_task(self._worker(i), name=f"notifications-dispatch-{i}")
            for i in range(self.settings.dispatch_concurrency)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w

    async def _worker(self, n: int) -> None:
        while True:
            busy = False
            try:
                busy = await self.dispatch_once()
                if not busy and n == 0:
                    await self.complete_failovers()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # store down: keep trying
                log.warning("dispatch.failed", error_type=type(exc).__name__, error=str(exc))
            if busy:
                continue
            await wake_or_timeout(self._wake, self.settings.dispatch_interval_s)
            self._wake.clear()

    async def complete_failovers(self) -> None:
        """Insert successors recorded by failed deliveries but not inserted yet (crash)."""
        for doc in await self.store.pending_failovers():
            if await self.store.complete_failover(doc, self.clock()):
                self.kick()

    async def dispatch_once(self) -> bool:
        """Send one due delivery; False when none is due."""
        doc = await self.store.claim_due(self.owner, self.clock(), self.lease)
        if doc is None:
            return False
        with structlog.contextvars.bound_contextvars(
            delivery_id=doc["_id"],
            recipient_id=doc["recipient_id"],
            channel=doc["channel"],
            kind=doc["kind"],
        ):
            if doc.get("digest"):
                await self._send_digest(doc)
            else:
                await self._send_one(doc)
        return True

    # --- one delivery -------------------------------------------------------------

    async def _send_one(self, doc: dict[str, Any]) -> None:
        planned = planned_of(doc)
        attempts = int(doc.get("attempts", 0)) + 1
        source = source_of(doc)
        endpoints = await self.store.active_endpoints()
        if planned.via_subscription:
            recipient = Recipient(recipient_id=planned.recipient_id, channels=(Channel.WEBHOOK,))
        else:
            recipient = await self.store.recipient(planned.recipient_id) or Recipient(
                recipient_id=planned.recipient_id
            )
        now = self.clock()
        try:
            failure = await self._attempt(planned, recipient, endpoints, source, now)
        except Exception as exc:
            log.exception("delivery.attempt_error", error_type=type(exc).__name__)
            failure = INTERNAL_ERROR
        now = self.clock()
        if failure is None:
            event = source.caused(
                delivered_event(planned, attempts=attempts, at=now), self.settings.source
            )
            stored = await self.store.mark_delivered(
                planned.key, self.owner, attempts=attempts, now=now, events=[event]
            )
            self._stored(stored, "delivery.delivered", attempts=attempts)
            return
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
            stored = await self.store.schedule_retry(
                planned.key,
                self.owner,
                attempts=attempts,
                at=decision.at,
                code=failure.code,
                now=now,
            )
            self._stored(stored, "delivery.retry_scheduled", attempts=attempts, code=failure.code)
            return
        failed = source.caused(
            failed_event(planned, attempts=attempts, error_code=decision.failed_code, at=now),
            self.settings.source,
        )
        successors = [decision.next] if isinstance(decision, FailOver) else []
        stored = await self.store.mark_failed(
            planned.key,
            self.owner,
            attempts=attempts,
            code=decision.failed_code,
            now=now,
            events=[failed],
            failover=successors,
        )
        self._stored(
            stored,
            "delivery.failed",
            attempts=attempts,
            code=decision.failed_code,
            failover_channel=successors[0].channel.value if successors else None,
        )
        if stored and successors:
            await self._complete(planned.key)

    async def _attempt(
        self,
        planned: PlannedDelivery,
        recipient: Recipient,
        endpoints: list[WebhookEndpoint],
        source: Envelope,
        now: datetime,
    ) -> Failure | None:
        if planned.channel is Channel.WEBHOOK:
            endpoint = next((e for e in endpoints if e.endpoint_id == planned.endpoint_id), None)
            if endpoint is None:
                return Failure("webhook_endpoint_inactive", permanent=True)
            return await self.webhook.send(endpoint, source, delivery_key=planned.key, now=now)
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
            stored = await self.store.mark_delivered(
                key, self.owner, attempts=attempts, now=now, events=events
            )
            if stored:
                await self.store.settle_parts(doc["parts"], State.DELIVERED, now)
            self._stored(stored, "digest.delivered", attempts=attempts, parts=len(parts))
            return
        retry_at = (
            None if failure.permanent else self.policy.next_attempt_at(now, attempts, self.rng)
        )
        if retry_at is not None:
            stored = await self.store.schedule_retry(
                key, self.owner, attempts=attempts, at=retry_at, code=failure.code, now=now
            )
            self._stored(stored, "digest.retry_scheduled", attempts=attempts, code=failure.code)
            return
        endpoints = await self.store.active_endpoints()
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
        stored = await self.store.mark_failed(
            key,
            self.owner,
            attempts=attempts,
            code=failure.code,
            now=now,
            events=events,
            failover=successors,
        )
        if stored:
            await self.store.settle_parts(doc["parts"], State.FAILED, now)
        self._stored(stored, "digest.failed", attempts=attempts, code=failure.code)
        if stored and successors:
            await self._complete(key)

    # --- helpers ----------------------------------------------------------------------

    async def _complete(self, key: str) -> None:
        doc = await self.store.delivery_with_source(key)
        if doc is not None and doc.get("failover_pending"):
            await self.store.complete_failover(doc, self.clock())
            self.kick()

    def _stored(self, stored: bool, what: str, **fields: Any) -> None:
        if stored:
            log.info(what, **fields)
            self.on_events()
        else:  # our lease expired and another replica took the delivery over
            log.warning("delivery.lease_lost", outcome=what, **fields)
