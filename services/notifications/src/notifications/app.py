"""Wiring of the notifications service: the one place its parts are put together.

`create_app(settings=None, *, clock=None, rules=None)`:

- `settings`: `NotificationsSettings`, or platform `Settings` (e.g. a test's
  isolated ones) completed with the notifications defaults; default: the
  `DELEGO_*` environment.
- `clock`: what "now" is for routing (quiet hours), retries and releases;
  default `delego_shared.types.utcnow` (real time, or `DELEGO_CLOCK_START`).
  Tests pass a clock they can move forward to the end of quiet hours.
- `rules`: the routing table; default the shipped `routing.toml`.
"""

from __future__ import annotations

from delego_shared.events import INVOICES, OFFERS, PROVIDERS, REQUESTS, registry
from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.logging import get_logger
from delego_shared.settings import Settings
from delego_shared.types import utcnow
from fastapi import FastAPI

from .api import api_router
from .channels import EmailSender, InAppSender, WebhookSender
from .dispatch import Dispatcher
from .domain import Renderer, RoutingRules, default_rules
from .handlers import EventRouter, Releaser
from .privacy import wire_privacy
from .settings import Clock, NotificationsSettings
from .store import OUTBOX_COLLECTIONS, NotificationsStore, store_indexes

log = get_logger(__name__)

CONSUMED = (REQUESTS, INVOICES, PROVIDERS, OFFERS)
"""Routed events come from matching and billing; webhook subscriptions may ask for
any platform event (catalog included). Our own topic is not consumed."""


def _template_fallback(template: str, requested: str, used: str) -> None:
    log.warning("template.fallback", template=template, requested=requested, used=used)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    rules: RoutingRules | None = None,
) -> FastAPI:
    s = NotificationsSettings.of(settings)
    now = clock or utcnow
    routing = rules or default_rules()
    # no consumer inbox: `EventRouter` records each event's first routing itself (one
    # insert by `_id`), and delivery keys make every send effectively-once
    runtime = ServiceRuntime(
        s, outbox_collections=OUTBOX_COLLECTIONS, indexes=store_indexes(), use_inbox=False
    )
    store = NotificationsStore(runtime.mongo)
    renderer = Renderer(app_url=s.app_url, on_fallback=_template_fallback)
    dispatcher = Dispatcher(
        store,
        s,
        renderer=renderer,
        clock=now,
        email=EmailSender(s),
        webhook=WebhookSender(timeout_s=s.webhook_timeout_s),
        inapp=InAppSender(store),
        publish=runtime.relay.publish_now,
        replica=runtime.replica,
    )
    router = EventRouter(store, routing, clock=now, dispatcher=dispatcher)
    for topic in CONSUMED:
        runtime.consumer.on(*registry.for_topic(topic))(router.handle)
    runtime.consumer.subscribe(CONSUMED)
    privacy = wire_privacy(runtime, store, now)
    releaser = Releaser(store, s, clock=now, dispatcher=dispatcher)
    runtime.add_background(dispatcher.run)
    runtime.add_background(releaser.run)
    app = create_http_app(
        runtime,
        title="Delego notifications",
        description="Recipients, preferences, in-app inbox, webhook endpoints, delivery status.",
        routers=[api_router(store, routing, now), *privacy],
    )
    app.state.store = store
    app.state.dispatcher = dispatcher
    app.state.releaser = releaser
    return app
