"""Wiring: the one place runtime, store, search index, handlers and routes are put together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from delego_shared.events.topics import OFFERS, PROVIDERS
from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.settings import Settings
from fastapi import FastAPI

from .adapters.sqlite_search import SqliteSearchIndex
from .api import api_router, install_domain_problems
from .follower import SearchFollower
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
Search is answered from this replica's search index, kept current from those topics.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The catalog's HTTP app; its lifespan starts Mongo indexes, topics, broker, relay and
    the search index (rebuilt from the store or caught up from the topics before serving)."""
    s = CatalogSettings.of(settings)
    runtime = ServiceRuntime(
        s, outbox_collections=list(OUTBOX_COLLECTIONS), indexes=store_indexes()
    )
    store = CatalogStore(runtime.mongo, s.source)
    index = SqliteSearchIndex(s.search_index_path())
    follower = SearchFollower(s, [PROVIDERS.name, OFFERS.name], index, store)
    service = CatalogService(store, index, publish=runtime.relay.publish_now)
    runtime.add_background(follower.run)  # waits for follower.start()
    privacy = wire_privacy(runtime, service)
    app = create_http_app(
        runtime,
        title="Delego catalog",
        description=DESCRIPTION,
        routers=[api_router(service), privacy],
    )
    install_domain_problems(app)
    platform_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        try:
            async with platform_lifespan(a):  # topics exist from here
                await follower.start()  # the index is whole before the first search
                yield
        finally:
            index.close()

    app.router.lifespan_context = lifespan
    app.state.store = store
    app.state.service = service
    app.state.search_index = index
    app.state.follower = follower
    return app
