"""Decline and expiry move on to the next candidate; capacity follows the proposal."""

from __future__ import annotations

import pytest

from .helpers import (
    auth,
    body,
    draft,
    matching_settings,
    publish_provider_with_offer,
    request_events,
    running,
    types_of,
    wait_for,
    wait_indexed,
)

pytestmark = pytest.mark.integration


async def reserved(http, settings, pid: str) -> float:
    r = await http.get(f"/providers/{pid}/capacity", headers=auth(settings, "ops", "operator"))
    return sum(float(w["reserved_hours"]) for w in r.json())


def released(http, settings, *pids: str):
    """A predicate: nothing reserved for these providers any more (the background expiry
    stores the new state first, then gives the hold back)."""

    async def check() -> bool:
        return all([await reserved(http, settings, p) == 0.0 for p in pids])

    return check


async def test_decline_proposes_the_next_candidate_then_unmatched(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_1", "off_1")
    await publish_provider_with_offer(settings, "prv_2", "off_2")
    client_h = auth(settings, "cli_d", "client")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_1", "off_2")
        r = await http.post("/requests", json=draft(), headers=client_h)
        req = r.json()
        rid, first = req["request_id"], req["proposal"]["provider_id"]
        second = ({"prv_1", "prv_2"} - {first}).pop()
        assert await reserved(http, settings, first) == 2.0

        r = await http.post(f"/requests/{rid}/decline", headers=auth(settings, first, "provider"))
        assert r.status_code == 200, r.text
        r = await http.get(f"/requests/{rid}", headers=client_h)
        assert r.json()["status"] == "proposed"
        assert r.json()["proposal"]["provider_id"] == second
        assert r.json()["proposal"]["attempt"] == 2
        assert await reserved(http, settings, first) == 0.0
        assert await reserved(http, settings, second) == 2.0
        # the first provider can no longer answer, and sees only its own attempt
        r = await http.post(f"/requests/{rid}/accept", headers=auth(settings, first, "provider"))
        assert r.status_code == 409
        r = await http.get(f"/requests/{rid}", headers=auth(settings, first, "provider"))
        assert [a["provider_id"] for a in r.json()["attempts"]] == [first]

        r = await http.post(f"/requests/{rid}/decline", headers=auth(settings, second, "provider"))
        assert r.status_code == 200
        r = await http.get(f"/requests/{rid}", headers=client_h)
        assert r.json()["status"] == "unmatched"
        assert "already_tried" in {x["filter"] for x in r.json()["unmatched_reasons"]}
        assert await reserved(http, settings, second) == 0.0

        records = await request_events(settings, expect=6)
    assert types_of(records, rid) == [
        "RequestSubmitted",
        "MatchProposed",
        "MatchDeclined",
        "MatchProposed",
        "MatchDeclined",
        "RequestUnmatched",
    ]
    unmatched = body(records[-1])
    assert unmatched["attempts"] == 2 and unmatched["summary"]


async def test_expiry_proposes_the_next_candidate_and_gives_up_after_max_attempts(settings_for):
    settings = matching_settings(
        settings_for, acceptance_window_s=1, expiry_sweep_interval_s=0.2, max_attempts=2
    )
    for i in (1, 2, 3):
        await publish_provider_with_offer(settings, f"prv_{i}", f"off_{i}")
    client_h = auth(settings, "cli_e", "client")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_1", "off_2", "off_3")
        r = await http.post("/requests", json=draft(), headers=client_h)
        rid, first = r.json()["request_id"], r.json()["proposal"]["provider_id"]

        async def status() -> dict:
            return (await http.get(f"/requests/{rid}", headers=client_h)).json()

        async def second_proposal() -> bool:
            s = await status()
            return s["status"] == "proposed" and s["proposal"]["attempt"] == 2

        await wait_for(second_proposal, timeout=15)
        second = (await status())["proposal"]["provider_id"]
        assert second != first
        await wait_for(released(http, settings, first))

        # accepting after the window is refused
        async def unmatched() -> bool:
            return (await status())["status"] == "unmatched"

        await wait_for(unmatched, timeout=15)
        r = await http.post(f"/requests/{rid}/accept", headers=auth(settings, second, "provider"))
        assert r.status_code == 409
        final = await status()
        assert [a["outcome"] for a in final["attempts"]] == ["expired", "expired"]
        assert final["unmatched_reasons"][0]["filter"] == "attempts"
        await wait_for(released(http, settings, "prv_1", "prv_2", "prv_3"))

        records = await request_events(settings, expect=6)
    assert types_of(records, rid) == [
        "RequestSubmitted",
        "MatchProposed",
        "ProposalExpired",
        "MatchProposed",
        "ProposalExpired",
        "RequestUnmatched",
    ]
