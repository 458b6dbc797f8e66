"""The catalog read model: idempotent, version-aware, rebuilt from topics or from the store."""

from __future__ import annotations

from decimal import Decimal

import pytest
from delego_shared.events import Envelope
from delego_shared.events.catalog import (
    OfferPublished,
    OfferStatus,
    OfferUpdated,
    OfferWithdrawn,
    ProviderRegistered,
    ProviderStatus,
    ProviderSuspended,
    ProviderUpdated,
)

from .helpers import (
    auth,
    draft,
    matching_settings,
    offer,
    provider,
    publish,
    running,
    wait_for,
)

pytestmark = pytest.mark.integration


def src(event) -> Envelope:
    return Envelope(data=event, source="/delego/catalog")


async def test_replayed_and_older_events_change_nothing(settings_for):
    settings = matching_settings(settings_for)
    registered = src(ProviderRegistered(provider=provider("prv_r", capacity="10")))
    updated = src(ProviderUpdated(provider=provider("prv_r", version=2, capacity="20")))
    published = src(OfferPublished(offer=offer("off_r", "prv_r", rate="30.00")))
    repriced = src(OfferUpdated(offer=offer("off_r", "prv_r", version=2, rate="25.00")))
    # duplicates (same envelope twice) and older versions after newer ones,
    # all published before the service starts: a fresh group replays them
    await publish(settings, registered, updated, registered, updated, published, repriced)
    await publish(settings, published, repriced, published)
    async with running(settings) as (app, http):
        store, index = app.state.store, app.state.projection.index

        async def settled() -> bool:
            o = index.offer("off_r")
            return o is not None and o.version == 2 and index.provider("prv_r") is not None

        await wait_for(settled)
        await wait_for(handled(app, 9))  # every record, stale ones included
        assert app.state.projection.handled == {"applied": 4, "stale": 5}
        assert await store.offer_version("off_r") == 2
        assert await store.provider_version("prv_r") == 2
        doc = await store.offers.find_one({"_id": "off_r"})
        assert doc["snapshot"]["pricing"]["rate"]["amount"] == "25.00"
        assert index.provider("prv_r").snapshot.weekly_capacity_hours == Decimal("20")

        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_r", "client"))
        terms = r.json()["proposal"]["terms"]
        assert terms["offer_version"] == 2
        assert terms["pricing"]["rate"]["amount"] == "25.00"

        # a suspension and a withdrawal take effect; their replays or older
        # snapshots do not bring the offer back
        suspended = src(
            ProviderSuspended(
                provider=provider("prv_r", version=3, status=ProviderStatus.SUSPENDED)
            )
        )
        withdrawn = src(
            OfferWithdrawn(
                offer=offer("off_r", "prv_r", version=3).model_copy(
                    update={"status": OfferStatus.WITHDRAWN}
                )
            )
        )
        await publish(settings, withdrawn, repriced, withdrawn, suspended, updated)

        async def gone() -> bool:
            o = index.offer("off_r")
            p = index.provider("prv_r")
            return o is not None and o.version == 3 and p is not None and p.snapshot.version == 3

        await wait_for(gone)
        await wait_for(handled(app, 14))
        assert app.state.projection.handled == {"applied": 6, "stale": 8}
        assert await store.offer_version("off_r") == 3
        assert await store.provider_version("prv_r") == 3
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_s", "client"))
        assert r.json()["status"] == "unmatched"
        assert r.json()["unmatched_reasons"] == []  # no published offer left in the category


def handled(app, n: int):
    """A predicate: this instance has handled `n` catalog events (applied or stale)."""
    projection = app.state.projection

    async def check() -> bool:
        return sum(projection.handled.values()) >= n

    return check


async def test_restart_rebuilds_the_index_from_the_read_model(settings_for):
    settings = matching_settings(settings_for)
    await publish(
        settings,
        src(ProviderRegistered(provider=provider("prv_k"))),
        src(OfferPublished(offer=offer("off_k", "prv_k"))),
    )
    async with running(settings) as (app, _):
        index = app.state.projection.index
        await wait_for(lambda: _has(index, "off_k"))
        await wait_for(handled(app, 2))
    # same group: offsets are committed, nothing is replayed; the index comes
    # from the read model before the first request is served
    async with running(settings) as (app, http):
        assert app.state.projection.index.offer("off_k") is not None
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_k", "client"))
        assert r.json()["status"] == "proposed"


async def _has(index, offer_id: str) -> bool:
    return index.offer(offer_id) is not None and index.provider("prv_k") is not None
