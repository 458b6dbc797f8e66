"""Two matching instances on one database and one consumer group never overbook a provider."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from .helpers import (
    auth,
    draft,
    matching_settings,
    publish_provider_with_offer,
    request_events,
    running,
    types_of,
    wait_indexed,
)

pytestmark = pytest.mark.integration

CAPACITY_H = 5  # 2 h per request: at most 2 requests fit in one week
REQUESTS = 16


async def test_concurrent_requests_on_two_instances_never_overbook(settings_for):
    settings = matching_settings(settings_for)
    async with running(settings) as (app1, http1), running(settings) as (app2, http2):
        # the catalog events reach one instance or the other (same group);
        # each index learns the rest from the shared read model
        await publish_provider_with_offer(
            settings, "prv_small", "off_small", capacity=str(CAPACITY_H)
        )
        await wait_indexed(app1, "off_small")
        await wait_indexed(app2, "off_small")

        async def submit(i: int) -> dict:
            http = http1 if i % 2 else http2
            r = await http.post(
                "/requests", json=draft(), headers=auth(settings, f"cli_{i}", "client")
            )
            assert r.status_code == 201, r.text
            return r.json()

        results = await asyncio.gather(*(submit(i) for i in range(REQUESTS)))
        statuses = Counter(r["status"] for r in results)
        proposed = [r for r in results if r["status"] == "proposed"]
        assert statuses["proposed"] + statuses["unmatched"] == REQUESTS
        assert proposed, "the provider had room for at least one request"

        # no week of the provider holds more than its capacity
        ops = auth(settings, "ops", "operator")
        weeks = (await http1.get("/providers/prv_small/capacity", headers=ops)).json()
        assert weeks
        assert all(float(w["reserved_hours"]) <= CAPACITY_H for w in weeks)
        # and the reservations are exactly those of the open proposals
        held = sum(float(r["proposal"]["reserved_hours"]) for r in proposed)
        assert sum(float(w["reserved_hours"]) for w in weeks) == pytest.approx(held)
        if len(weeks) == 1:  # work did not straddle a week boundary
            assert statuses["proposed"] == CAPACITY_H // 2
        unmatched = [r for r in results if r["status"] == "unmatched"]
        assert all("capacity" in {x["filter"] for x in r["unmatched_reasons"]} for r in unmatched)

        # declining frees the hours, which the next request can take (on the other instance)
        first = proposed[0]
        r = await http2.post(
            f"/requests/{first['request_id']}/decline",
            headers=auth(settings, "prv_small", "provider"),
        )
        assert r.status_code == 200
        assert r.json()["status"] == "unmatched"  # the only provider was already tried
        r = await http1.post("/requests", json=draft(), headers=auth(settings, "cli_x", "client"))
        assert r.json()["status"] == "proposed"
        weeks = (await http2.get("/providers/prv_small/capacity", headers=ops)).json()
        assert all(float(w["reserved_hours"]) <= CAPACITY_H for w in weeks)

        records = await request_events(settings)  # all of them, until the topic is idle
    # An instance that writes a request whose earlier entries the other instance has
    # published but not yet removed (a removal lingers up to 50 ms, longer on a busy
    # machine) publishes them again under their ce_id: consumers drop such copies, and
    # so does this count. A copy is the same event, never a second decision.
    once = {r.headers["ce_id"]: r for r in records}
    assert all(r.value == once[r.headers["ce_id"]].value for r in records)
    kinds = Counter(types_of(list(once.values())))
    assert kinds["RequestSubmitted"] == REQUESTS + 1
    assert kinds["MatchProposed"] == statuses["proposed"] + 1
