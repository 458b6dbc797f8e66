"""Wiring of the matching service: the one place its parts are put together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from delego_shared.events.topics import OFFERS, PROVIDERS
from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.settings import Settings
from delego_shared.types import utcnow
from fastapi import FastAPI

from .api import api_router
from .details import CLEAR_TEXT_MIGRATION, PrivateDetails, retention_loop, run_once
from .domain import CandidateIndex
from .follower import CatalogFollower
from .handlers import CatalogProjection, RequestHandlers
from .privacy import backfill_subject_index, wire_privacy
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
    # every replica also reads every catalog partition itself into its index
    # (the group gives each replica only some partitions): see follower.py
    follower = CatalogFollower(
        s, [PROVIDERS.name, OFFERS.name], projection.apply_to_index, group=runtime.consumer.group
    )
    handlers = RequestHandlers(store, index, s, publish=runtime.relay.publish_now)
    details = PrivateDetails(
        store,
        handlers.sealer,
        retention=s.details_retention,
        source=s.source,
        publish=runtime.relay.publish_now,
    )
    privacy = wire_privacy(runtime, store, details)

    async def details_loop() -> None:
        await retention_loop(
            details,
            s.retention_sweep_interval_s,
            at_start=[
                lambda: backfill_subject_index(store, utcnow),
                lambda: run_once(store, CLEAR_TEXT_MIGRATION, details.seal_clear_texts, utcnow),
            ],
        )

    runtime.add_background(handlers.sweep_loop)
    runtime.add_background(projection.tables_loop)
    runtime.add_background(follower.run)
    runtime.add_background(details_loop)

    app = create_http_app(
        runtime,
        title="Delego matching",
        description="Pairs client requests with providers on skills, languages, time zones "
        "and weekly capacity; runs each request's lifecycle to completion.",
        routers=[api_router(handlers, store, details), privacy],
    )
    platform_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        await runtime.mongo.ensure_indexes(runtime.indexes)
        # positions first, then the read model: nothing falls between the two
        await follower.start_positions()
        await projection.rebuild()  # the index is whole before the first request
        await projection.prepare_tables()  # and so are its working-time tables
        async with platform_lifespan(a):
            yield

    app.router.lifespan_context = lifespan
    app.state.matching = handlers
    app.state.projection = projection
    app.state.follower = follower
    app.state.store = store
    app.state.details = details
    return app
