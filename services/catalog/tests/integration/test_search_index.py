"""The search read model on real Kafka + FerretDB: built at start-up from the offers
collection, caught up from the topics after a restart, read-your-writes through HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest
from catalog.app import create_app
from catalog.domain import Offer, OfferDraft, parse
from catalog.follower import SearchFollower
from catalog.settings import CatalogSettings
from catalog.store import offer_document
from delego_shared.events.topics import OFFERS, PROVIDERS
from delego_shared.messaging.topics_admin import end_offsets
from delego_shared.mongo import Mongo
from delego_shared.settings import Settings
from delego_shared.types import utcnow

from ..conftest import Catalog, offer_body

pytestmark = pytest.mark.integration


async def _not_following(self: SearchFollower) -> None:
    await asyncio.Event().wait()


@asynccontextmanager
async def replica(
    settings: Settings, index_dir: Path, *, follow: bool = True
) -> AsyncIterator[Catalog]:
    """One catalog replica with its own index directory (the database is kept after).

    `follow=False`: after start-up, its index learns only from its own commands.
    """
    with ExitStack() as patches:
        if not follow:
            patches.enter_context(patch.object(SearchFollower, "run", _not_following))
        app = create_app(CatalogSettings.of(settings, search_index_dir=str(index_dir)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as http:
            yield Catalog(app, settings, http)


def follower(c: Catalog) -> SearchFollower:
    f: SearchFollower = c.app.state.follower
    return f


async def found(c: Catalog, **params: Any) -> list[str]:
    r = await c.http.get("/offers", params=params, headers=c.auth("cli_1", "client"))
    assert r.status_code == 200, r.text
    return [o["offer_id"] for o in r.json()["items"]]


async def eventually(c: Catalog, expected: list[str], timeout: float = 15.0, **params: Any) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (got := await found(c, **params)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{got} != {expected}"
        await asyncio.sleep(0.2)


async def insert_without_event(c: Catalog, provider_id: str, title: str) -> str:
    """A published offer written straight into the offers collection: no event on any topic."""
    provider = await c.store.get_provider(provider_id)
    assert provider is not None
    offer = Offer.create(
        c.unique("off"), provider, parse(OfferDraft, offer_body(title=title)), utcnow()
    )
    offer.publish(provider, utcnow())
    await c.store.offers.insert_one(offer_document(offer.snapshot(), provider.snapshot()))
    return offer.offer_id


async def drop(settings: Settings) -> None:
    mongo = Mongo(settings.mongodb_url, settings.database)
    try:
        await mongo.client.drop_database(settings.database)
    finally:
        await mongo.close()


async def test_a_fresh_replica_builds_its_index_from_the_offers_collection(settings_for, tmp_path):
    settings = settings_for("catalog")
    try:
        async with replica(settings, tmp_path / "a") as a:
            assert follower(a).rebuilt
            await a.register("prv_asha")
            published = await a.published("prv_asha", title="Traduction juridique")
            direct = await insert_without_event(a, "prv_asha", "Traduction médicale")
        async with replica(settings, tmp_path / "b") as b:
            assert follower(b).rebuilt  # no index file yet: built from the store
            assert sorted(await found(b, text="traduction")) == sorted(
                [published["offer_id"], direct]
            )
            assert await found(b, text="medic") == [direct]
    finally:
        await drop(settings)


async def test_a_restarted_replica_only_catches_up_from_the_topics(settings_for, tmp_path):
    settings = settings_for("catalog")
    try:
        async with replica(settings, tmp_path / "a") as a:
            await a.register("prv_asha")
            first = await a.published("prv_asha", title="Cours de maths")
        async with replica(settings, tmp_path / "b") as b:  # another replica, while a is down
            second = await b.published("prv_asha", title="Cours de physique")
            r = await b.http.post(
                f"/offers/{first['offer_id']}/withdraw", headers=b.auth("prv_asha", "provider")
            )
            assert r.status_code == 200, r.text
            # in the store only: a replica that rebuilds would find it, one that catches up not
            hidden = await insert_without_event(b, "prv_asha", "Cours de chimie")
        async with replica(settings, tmp_path / "a") as again:
            assert not follower(again).rebuilt
            assert await found(again, text="cours") == [second["offer_id"]]
            assert hidden not in await found(again)
            topics = [settings.topic(PROVIDERS.name), settings.topic(OFFERS.name)]
            ends = await end_offsets(settings.kafka_bootstrap, topics)
            at = await again.app.state.search_index.positions()
            assert {(tp.topic, tp.partition): o for tp, o in ends.items()} == at
    finally:
        await drop(settings)


async def test_read_your_writes_through_the_http_api_and_other_replicas_follow(
    settings_for, tmp_path
):
    settings = settings_for("catalog")
    try:
        async with (
            replica(settings, tmp_path / "a", follow=False) as a,
            replica(settings, tmp_path / "b") as b,
        ):
            await a.register("prv_asha")
            offer = await a.published("prv_asha", title="Relecture de CV en français")
            # the same replica answers with the offer at once, from its own write (it reads
            # no topic here), with no waiting and no retry
            assert await found(a, text="relecture francais") == [offer["offer_id"]]
            # another replica sees it once its follower has read the event
            await eventually(b, [offer["offer_id"]], text="relecture")
            r = await a.http.post(
                "/providers/prv_asha/suspend", headers=a.auth("op_1", "operator"), json={}
            )
            assert r.status_code == 200, r.text
            assert await found(a, text="relecture") == []
            await eventually(b, [], text="relecture")
    finally:
        await drop(settings)
