"""Counters and bounded collections on the real store: ratings counted once (even when a
crash forces the reconciliation to repeat the work), open proposals tracked and swept."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from delego_shared.types import utcnow
from matching.store import RatingToCount

from .helpers import (
    auth,
    draft,
    matching_settings,
    publish_provider_with_offer,
    running,
    wait_indexed,
)

pytestmark = pytest.mark.integration


async def _rated(http, settings, client: str, provider: str, stars: int) -> str:
    client_h, prov_h = auth(settings, client, "client"), auth(settings, provider, "provider")
    r = await http.post("/requests", json=draft(), headers=client_h)
    rid = r.json()["request_id"]
    assert r.json()["proposal"]["provider_id"] == provider
    assert (await http.post(f"/requests/{rid}/accept", headers=prov_h)).status_code == 200
    r = await http.post(f"/requests/{rid}/complete", json={"actual_hours": "2"}, headers=prov_h)
    assert r.status_code == 200
    r = await http.post(f"/requests/{rid}/rate", json={"stars": stars}, headers=client_h)
    assert r.status_code == 200, r.text
    return rid


async def test_ratings_are_counted_once_and_repaired_after_a_crash(settings_for):
    settings = matching_settings(settings_for, hold_grace_s=0.05)
    await publish_provider_with_offer(settings, "prv_c", "off_c")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_c")
        store, handlers = app.state.store, app.state.matching
        rid = await _rated(http, settings, "cli_c", "prv_c", 5)

        counter = await store.provider_ratings.find_one({"_id": "prv_c"})
        assert (counter["count"], counter["total"]) == (1, 5)
        assert await store.client_ratings_of("cli_c") == [("prv_c", 5)]
        assert (await store.requests.find_one({"_id": rid}))["rating_counted"] is True

        # the same rating applied again (a reconciliation racing the handler) counts once
        again = RatingToCount(rid, "cli_c", "prv_c", 5, utcnow())
        await store.count_rating(again, utcnow())
        assert (await store.rating_stats(["prv_c"]))["prv_c"].count == 1
        assert await store.client_ratings_of("cli_c") == [("prv_c", 5)]

        # crash after the counters, before the request was flagged: nothing is added
        await store.requests.update_one({"_id": rid}, {"$set": {"rating_counted": False}})
        await asyncio.sleep(0.1)
        assert await handlers.reconcile_ratings() == 1
        assert (await store.rating_stats(["prv_c"]))["prv_c"].count == 1
        assert await handlers.reconcile_ratings() == 0  # flagged now

        # crash right after the state was stored (no counters at all): counted by the sweep
        await store.provider_ratings.delete_one({"_id": "prv_c"})
        await store.client_ratings.delete_one({"_id": "cli_c"})
        await store.requests.update_one({"_id": rid}, {"$unset": {"rating_counted": ""}})
        assert await handlers.reconcile_ratings() == 1
        assert (await store.rating_stats(["prv_c"]))["prv_c"].count == 1
        assert await store.client_ratings_of("cli_c") == [("prv_c", 5)]

        # a second rating adds up; the next request of this client trusts the provider
        await _rated(http, settings, "cli_c", "prv_c", 3)
        stats = (await store.rating_stats(["prv_c"]))["prv_c"]
        assert (stats.count, stats.total) == (2, 8)
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_c", "client"))
        score = r.json()["proposal"]["score"]
        assert score["trust_bonus"] == 1.0
        assert score["rating"] == pytest.approx(((40 + 8) / 12 - 1) / 4, abs=1e-6)
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_x", "client"))
        assert r.json()["proposal"]["score"]["trust_bonus"] == 0.0


async def test_open_proposals_follow_the_requests_and_stale_entries_go(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_o", "off_o")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_o")
        store, handlers = app.state.store, app.state.matching
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_o", "client"))
        rid, expires = r.json()["request_id"], r.json()["proposal"]["expires_at"]
        entry = await store.open_proposals.find_one({"_id": rid})
        assert entry["due"].isoformat()[:19] == expires[:19]

        # an entry left by a write that never made it (or by a crash): dropped when due
        past = utcnow() - timedelta(minutes=5)  # older than hold_grace_s
        await store.proposal_due("req_never_stored", past, "prv_o")
        # an entry dated too early for a live proposal: re-dated, not expired
        await store.proposal_due(rid, past, "prv_other")
        assert await handlers.expire_due() == 0
        assert await store.open_proposals.find_one({"_id": "req_never_stored"}) is None
        entry = await store.open_proposals.find_one({"_id": rid})
        assert entry["due"].isoformat()[:19] == expires[:19]
        assert entry["providers"] == ["prv_o"]
        prov_h = auth(settings, "prv_o", "provider")
        [waiting] = (await http.get("/proposals", headers=prov_h)).json()
        assert waiting["request_id"] == rid
        got = (await http.get(f"/requests/{rid}", headers=auth(settings, "cli_o", "client"))).json()
        assert got["status"] == "proposed"

        # proposals stored before the collection existed are picked up at start-up
        await store.open_proposals.delete_one({"_id": rid})
        assert await handlers.backfill_open_proposals() == 1
        assert await store.open_proposals.find_one({"_id": rid}) is not None

        # a closed proposal leaves the collection
        r = await http.post(f"/requests/{rid}/accept", headers=auth(settings, "prv_o", "provider"))
        assert r.status_code == 200
        assert await store.open_proposals.find_one({"_id": rid}) is None
        assert await store.open_proposal_count() == 0
        assert (await http.get("/proposals", headers=prov_h)).json() == []
