"""Wiring of the matching service: the one place its parts are put together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.settings import Settings
from fastapi import FastAPI

from .api import api_router
from .domain import CandidateIndex
from .handlers import CatalogProjection, RequestHandlers
from .settings import MatchingSettings
from .store import OUTBOX_COLLECTIONS, MatchingStore, store_indexes


def create_app(settings: Settings | None = None) -> FastAPI:
    """The matching app; `settings` may be platform settings (tests) or matching ones."""
    s = MatchingSettings.of(settings)
    # Catalog effects are idempotent by version (an older or equal snapshot is
    # ignored), so no inbox is needed; without one, replaying the catalog topics
    # with a fresh consumer group always rebuilds an emptied read model.
    runtime = ServiceRuntime(
        s, outbox_collections=OUTBOX_COLLECTIONS, indexes=store_indexes(), use_inbox=False
    )
    store = MatchingStore(runtime.mongo)
    index = CandidateIndex()
    projection = CatalogProjection(store, index)
    projection.register(runtime.consumer)
    handlers = RequestHandlers(store, index, s, on_stored=runtime.relay.kick)

    async def refresh_index() -> None:
        await projection.refresh_loop(s.index_refresh_interval_s)

    runtime.add_background(handlers.sweep_loop)
    runtime.add_background(refresh_index)

    app = create_http_app(
        runtime,
        title="Delego matching",
        description="Pairs client requests with providers on skills, languages, time zones "
        "and weekly capacity; runs each request's lifecycle to completion.",
        routers=[api_router(handlers, store)],
    )
    platform_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        await runtime.mongo.ensure_indexes(runtime.indexes)
        await projection.rebuild()  # the index is whole before the first request
        async with platform_lifespan(a):
            yield

    app.router.lifespan_context = lifespan
    app.state.matching = handlers
    app.state.projection = projection
    app.state.store = store
    return app
