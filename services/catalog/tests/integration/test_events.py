"""Catalog events on a real Kafka broker and a real Mongo-wire database (FerretDB or MongoDB)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from catalog.adapters.sqlite_search import SqliteSearchIndex
from catalog.app import create_app
from catalog.domain import OfferDraft, ProviderProfile, parse
from catalog.handlers import CatalogService
from catalog.settings import CatalogSettings
from catalog.store import CatalogStore
from delego_shared.events import OFFERS, PROVIDERS, Envelope
from delego_shared.events.catalog import (
    OfferPublished,
    OfferUpdated,
    OfferWithdrawn,
    ProviderRegistered,
    ProviderReinstated,
    ProviderSuspended,
    ProviderUpdated,
)
from delego_shared.http import Principal, Role
from delego_shared.messaging import EventPublisher, OutboxRelay
from delego_shared.messaging.outbox import COUNT
from delego_shared.mongo import Mongo
from delego_shared.testing.kafka_tools import Record, read_records, topic_length

pytestmark = pytest.mark.integration

CE_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_time", "ce_subject", "ce_specversion")


async def records(catalog, topic, expect=None, timeout=20.0) -> list[Record]:
    """What reached the topic; with expect=None, everything until 1.5 s of silence."""
    return await read_records(
        catalog.settings.kafka_bootstrap,
        catalog.settings.topic(topic.name),
        expect=expect,
        timeout=timeout,
    )


def assert_cloudevent(rec: Record, ce_type: str, key: str, source: str) -> Envelope:
    for h in CE_HEADERS:
        assert rec.headers.get(h), f"missing {h}"
    assert rec.key == key.encode()
    assert rec.headers["ce_subject"] == key
    assert rec.headers["ce_type"] == ce_type
    assert rec.headers["ce_source"] == source
    assert rec.headers["ce_specversion"] == "1.0"
    assert datetime.fromisoformat(rec.headers["ce_time"].replace("Z", "+00:00")).tzinfo
    return Envelope.from_record(rec.headers, rec.value)


async def test_registering_a_provider_publishes_provider_registered_with_cloudevents_headers(
    catalog,
):
    snap = await catalog.register("prv_asha")

    [rec] = await records(catalog, PROVIDERS)  # exactly one, nothing more within the idle time
    env = assert_cloudevent(rec, ProviderRegistered.event_type, "prv_asha", catalog.settings.source)
    assert isinstance(env.data, ProviderRegistered)
    assert env.data.provider.model_dump(mode="json") == snap
    assert env.data.provider.version == 1
    assert env.data.provider.status == "active"


async def test_publishing_an_offer_publishes_offer_published_keyed_by_offer_id(catalog):
    await catalog.register("prv_asha")
    draft = await catalog.draft("prv_asha")
    assert draft["status"] == "draft"
    published = await catalog.publish("prv_asha", draft["offer_id"])

    [rec] = await records(catalog, OFFERS)  # the draft itself produced no event
    env = assert_cloudevent(
        rec, OfferPublished.event_type, draft["offer_id"], catalog.settings.source
    )
    assert isinstance(env.data, OfferPublished)
    assert env.data.offer.model_dump(mode="json") == published
    assert env.data.offer.status == "published"
    assert env.data.offer.version == draft["version"] + 1
    body = json.loads(rec.value)
    assert body["offer"]["pricing"]["price"] == {"amount": "650", "currency": "EUR"}


async def test_an_update_publishes_version_plus_one_with_the_full_snapshot(catalog):
    await catalog.register("prv_asha")
    published = await catalog.published("prv_asha")
    oid = published["offer_id"]

    r = await catalog.http.patch(
        f"/offers/{oid}",
        json={"title": "Six guaranteed dates, Paris"},
        headers=catalog.auth("prv_asha", "provider"),
    )
    assert r.status_code == 200, r.text
    r = await catalog.http.post(f"/offers/{oid}/withdraw", headers=catalog.auth("op_1", "operator"))
    assert r.status_code == 200, r.text

    recs = await records(catalog, OFFERS, expect=3)
    events = [Envelope.from_record(r.headers, r.value).data for r in recs]
    assert [type(e) for e in events] == [OfferPublished, OfferUpdated, OfferWithdrawn]
    first, updated, withdrawn = (e.offer for e in events)  # type: ignore[attr-defined]
    assert updated.version == first.version + 1
    assert withdrawn.version == updated.version + 1
    assert updated.title == "Six guaranteed dates, Paris"
    # full snapshot: everything else is still there, unchanged
    unchanged = {"title", "version", "updated_at"}
    assert updated.model_dump(exclude=unchanged) == first.model_dump(exclude=unchanged)
    assert withdrawn.status == "withdrawn"
    assert {r.key for r in recs} == {oid.encode()}

    r = await catalog.http.patch(
        "/providers/prv_asha",
        json={"display_name": "Asha Krishnan"},
        headers=catalog.auth("prv_asha", "provider"),
    )
    assert r.status_code == 200, r.text
    recs = await records(catalog, PROVIDERS, expect=2)
    reg, upd = (Envelope.from_record(r.headers, r.value).data for r in recs)
    assert isinstance(upd, ProviderUpdated)
    assert upd.provider.version == reg.provider.version + 1  # type: ignore[attr-defined]
    assert upd.provider.display_name == "Asha Krishnan"
    assert upd.provider.skills == reg.provider.skills  # type: ignore[attr-defined]


async def test_concurrent_updates_each_publish_their_own_version(catalog):
    """Optimistic concurrency: N racing PATCHes give N events with N distinct versions."""
    await catalog.register("prv_asha")
    published = await catalog.published("prv_asha")
    oid = published["offer_id"]
    n = 5
    rs = await asyncio.gather(
        *(
            catalog.http.patch(
                f"/offers/{oid}",
                json={"typical_effort_hours": str(41 + i)},
                headers=catalog.auth("prv_asha", "provider"),
            )
            for i in range(n)
        )
    )
    assert [r.status_code for r in rs] == [200] * n, [r.text for r in rs]
    recs = await records(catalog, OFFERS, expect=1 + n)
    versions = sorted(Envelope.from_record(r.headers, r.value).data.offer.version for r in recs)  # type: ignore[attr-defined]
    assert versions == list(range(published["version"], published["version"] + n + 1))
    r = await catalog.http.get(f"/offers/{oid}", headers=catalog.auth("cli_1", "client"))
    assert r.json()["offer"]["version"] == published["version"] + n


async def test_suspension_and_reinstatement_publish_events_and_hide_offers_meanwhile(catalog):
    await catalog.register("prv_asha")
    offer = await catalog.published("prv_asha")
    client = catalog.auth("cli_1", "client")
    operator = catalog.auth("op_1", "operator")

    async def found() -> list[str]:
        r = await catalog.http.get("/offers", headers=client)
        assert r.status_code == 200, r.text
        return [o["offer_id"] for o in r.json()["items"]]

    assert await found() == [offer["offer_id"]]
    r = await catalog.http.post(
        "/providers/prv_asha/suspend", json={"reason_code": "fraud_suspected"}, headers=operator
    )
    assert r.status_code == 200, r.text
    assert r.json()["suspension_reason"] == "fraud_suspected"
    assert await found() == []
    r = await catalog.http.post("/providers/prv_asha/reinstate", headers=operator)
    assert r.status_code == 200, r.text
    assert await found() == [offer["offer_id"]]

    recs = await records(catalog, PROVIDERS, expect=3)
    events = [Envelope.from_record(r.headers, r.value).data for r in recs]
    assert [type(e) for e in events] == [ProviderRegistered, ProviderSuspended, ProviderReinstated]
    assert events[1].reason_code == "fraud_suspected"  # type: ignore[attr-defined]
    assert [e.provider.version for e in events] == [1, 2, 3]  # type: ignore[attr-defined]


async def test_a_crash_between_store_and_publish_loses_no_event(settings_for, tmp_path):
    """State and event are stored together; a relay started later publishes exactly once."""
    settings = settings_for("catalog")
    mongo = Mongo(settings.mongodb_url, settings.database)
    try:
        # the process that handled the request "dies" before any relay ran
        store = CatalogStore(mongo, settings.source)  # no relay, no kick
        service = CatalogService(store, SqliteSearchIndex(tmp_path / "search.sqlite"))
        profile = parse(
            ProviderProfile,
            {
                "display_name": "Tomás R.",
                "country": "PH",
                "languages": ["en", "es"],
                "time_zone": "Asia/Manila",
                "schedule": [{"day": "mon", "start": "22:00", "end": "06:00"}],
                "weekly_capacity_hours": "8",
                "skills": [{"code": "translation.en-fr", "level": 2}],
            },
        )
        await service.register_provider(Principal("prv_tomas", Role.PROVIDER), profile)
        stored = await mongo.db["providers"].find_one({"_id": "prv_tomas"})
        assert stored is not None and stored[COUNT] == 1  # state + pending event, one document
        nothing = await read_records(
            settings.kafka_bootstrap, settings.topic(PROVIDERS.name), timeout=3.0
        )
        assert nothing == []

        # a new process starts: its relay finds the pending event and publishes it
        app = create_app(CatalogSettings.of(settings, search_index_dir=str(tmp_path / "new")))
        async with app.router.lifespan_context(app):
            recs = await read_records(settings.kafka_bootstrap, settings.topic(PROVIDERS.name))
            assert len(recs) == 1
            env = Envelope.from_record(recs[0].headers, recs[0].value)
            assert isinstance(env.data, ProviderRegistered)
            assert env.data.provider.provider_id == "prv_tomas"
            assert recs[0].key == b"prv_tomas"
            after = await mongo.db["providers"].find_one({"_id": "prv_tomas"})
            assert after is not None and after[COUNT] == 0
        again = await read_records(settings.kafka_bootstrap, settings.topic(PROVIDERS.name))
        assert len(again) == 1  # nothing published twice
    finally:
        await mongo.client.drop_database(settings.database)
        await mongo.close()


async def test_an_accepted_command_has_its_events_on_the_topics_when_it_answers(catalog):
    """Issue 10: `make run` raced the catalog's outbox relay.

    The catalog answered "published" while its events still sat in the outbox
    (and the relay could sleep through the kick), so "matching has read every
    catalog event" held while the provider's event was not on its topic yet.
    Now the command's own process publishes before answering: no background
    relay runs here, and the events are on the topics as soon as each call returns.
    """
    settings = catalog.settings
    mongo = Mongo(settings.mongodb_url, settings.database)
    relay = OutboxRelay(mongo, EventPublisher(catalog.app.state.runtime.broker, settings), [])
    service = CatalogService(
        CatalogStore(mongo, settings.source),
        catalog.app.state.search_index,
        publish=relay.publish_now,
    )
    providers = settings.topic(PROVIDERS.name)
    offers = settings.topic(OFFERS.name)
    try:
        who = Principal("prv_ready", Role.PROVIDER)
        await service.register_provider(who, parse(ProviderProfile, catalog.profile_body()))
        assert await topic_length(settings.kafka_bootstrap, providers) == 1
        for n in range(1, 4):
            draft = parse(OfferDraft, catalog.offer_body(title=f"Offer {n}"))
            offer = await service.create_offer(who, draft)
            await service.publish_offer(who, offer.offer_id)
            assert await topic_length(settings.kafka_bootstrap, offers) == n
        await service.suspend_provider("prv_ready", "fraud_suspected")
        assert await topic_length(settings.kafka_bootstrap, providers) == 2
    finally:
        await mongo.close()
