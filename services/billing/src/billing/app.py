"""Wiring: the one place where settings, runtime, store, service, handlers and HTTP meet."""

from __future__ import annotations

import uuid

from delego_shared.http.app import ServiceRuntime, create_http_app
from fastapi import FastAPI

from .api import api_router
from .domain.rules import BillingRules
from .handlers import BillingHandlers, Clock, system_clock
from .privacy import wire_privacy
from .service import BillingService
from .settings import BillingSettings
from .store import OUTBOX_COLLECTIONS, BillingStore, store_indexes


def create_app(settings: BillingSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The billing service. `clock` (UTC now) is injectable so tests can move time."""
    settings = settings or BillingSettings()
    now = clock or system_clock
    runtime = ServiceRuntime(
        settings, outbox_collections=OUTBOX_COLLECTIONS, indexes=store_indexes()
    )
    store = BillingStore(runtime.mongo, entity=settings.billing_entity)
    service = BillingService(
        store,
        rules=BillingRules.load(),
        default_country=settings.default_tax_country,
        source=settings.source,
        instance=uuid.uuid4().hex[:12],
        publish=runtime.relay.publish_now,
    )
    handlers = BillingHandlers(service, clock=now, sweep=runtime.relay.kick)
    handlers.register(runtime)
    privacy = wire_privacy(runtime, store, now)

    async def scheduler() -> None:
        await handlers.run_scheduler(settings.scheduler_interval_s, settings.repair_interval_s)

    runtime.add_background(scheduler)
    app = create_http_app(
        runtime,
        title="Delego billing",
        description="Invoices, credit notes, ledger, tax profile and annual tax certificates.",
        routers=[api_router(service, now), privacy],
    )
    app.state.store = store
    app.state.service = service
    app.state.handlers = handlers
    return app
