"""Wiring: the one place ServiceRuntime, store, handlers and routes are put together."""

from __future__ import annotations

from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.settings import Settings
from fastapi import FastAPI

from .api import api_router, install_domain_problems
from .handlers import CatalogService
from .privacy import wire_privacy
from .settings import CatalogSettings
from .store import OUTBOX_COLLECTIONS, CatalogStore, store_indexes

DESCRIPTION = """Providers describe what they sell; clients search published offers.

Publishes `catalog.providers.v1` (ProviderRegistered, ProviderUpdated,
ProviderSuspended, ProviderReinstated) and `catalog.offers.v1` (OfferPublished,
OfferUpdated, OfferWithdrawn): full snapshots with a version, keyed by the
aggregate id, through the transactional outbox. Authenticate with
`Authorization: Bearer <jwt>` (roles client, provider, operator).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The catalog's HTTP app; its lifespan starts Mongo indexes, topics, broker and relay."""
    settings = settings or CatalogSettings()
    runtime = ServiceRuntime(
        settings, outbox_collections=list(OUTBOX_COLLECTIONS), indexes=store_indexes()
    )
    store = CatalogStore(runtime.mongo, settings.source)
    service = CatalogService(store, publish=runtime.relay.publish_now)
    privacy = wire_privacy(runtime, service)
    app = create_http_app(
        runtime,
        title="Delego catalog",
        description=DESCRIPTION,
        routers=[api_router(service), privacy],
    )
    install_domain_problems(app)
    app.state.store = store
    app.state.service = service
    return app
