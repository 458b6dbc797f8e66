"""The whole lifecycle over real Kafka + FerretDB, and the API's answers to bad calls."""

from __future__ import annotations

import pytest

from .helpers import (
    PRIVATE,
    auth,
    body,
    draft,
    matching_settings,
    publish_provider_with_offer,
    request_events,
    running,
    types_of,
    wait_indexed,
)

pytestmark = pytest.mark.integration


async def test_full_lifecycle_from_submitted_to_rated(settings_for):
    settings = matching_settings(settings_for)
    # published before the service starts: a fresh consumer group replays the topics
    await publish_provider_with_offer(settings, "prv_asha", "off_asha")
    client_h = auth(settings, "cli_marie", "client")
    prov_h = auth(settings, "prv_asha", "provider")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_asha")

        r = await http.post("/requests", json=draft(), headers=client_h)
        assert r.status_code == 201, r.text
        req = r.json()
        rid = req["request_id"]
        assert req["status"] == "proposed"
        assert req["proposal"]["provider_id"] == "prv_asha"
        assert req["proposal"]["terms"]["offer_version"] == 1
        assert req["promised_at"] is not None and req["promised_local"].endswith(
            ("+01:00", "+02:00")
        )
        assert req["description"] is None  # never in a view: at /details, audited
        r = await http.get(f"/requests/{rid}/details", headers=client_h)
        assert r.json()["description"] == PRIVATE  # the client reads its own

        r = await http.get("/proposals", headers=prov_h)
        assert r.status_code == 200
        [proposal] = r.json()
        assert proposal["request_id"] == rid
        assert proposal["description"] is None
        r = await http.get(f"/requests/{rid}/details", headers=prov_h)
        assert r.status_code == 403  # not before accepting

        r = await http.post(f"/requests/{rid}/accept", headers=prov_h)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
        r = await http.get(f"/requests/{rid}/details", headers=prov_h)
        assert r.json()["description"] == PRIVATE  # the accepted provider reads it

        r = await http.post(
            f"/requests/{rid}/complete", json={"actual_hours": "2.5"}, headers=prov_h
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "completed"

        r = await http.post(f"/requests/{rid}/rate", json={"stars": 5}, headers=client_h)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "rated" and r.json()["rating"] == 5

        r = await http.get(f"/requests/{rid}", headers=auth(settings, "ops", "operator"))
        assert r.status_code == 200 and r.json()["description"] is None
        r = await http.get(f"/requests/{rid}/details", headers=auth(settings, "ops", "operator"))
        assert r.status_code == 403  # not for operators without a reason

        records = await request_events(settings, expect=5)
    assert types_of(records, rid) == [
        "RequestSubmitted",
        "MatchProposed",
        "MatchAccepted",
        "WorkCompleted",
        "WorkRated",
    ]
    by_type = {r.headers["ce_type"].split(".")[2]: r for r in records}
    for t in ("MatchProposed", "MatchAccepted", "WorkCompleted"):
        terms = body(by_type[t])["terms"]
        assert terms["offer_id"] == "off_asha"
        assert terms["pricing"]["rate"] == {"amount": "30.00", "currency": "EUR"}
    assert body(by_type["WorkCompleted"])["actual_hours"] == "2.5"
    assert body(by_type["WorkRated"])["rating"] == 5
    # one correlation id for the whole story; never the private description
    assert len({r.headers["ce_correlationid"] for r in records}) == 1
    assert all(r.key == rid.encode() for r in records)
    assert not any(b"4242" in r.value or PRIVATE.encode() in r.value for r in records)


async def test_bad_calls_get_problem_answers_never_500(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_b", "off_b")
    client_h = auth(settings, "cli_1", "client")
    other_client = auth(settings, "cli_2", "client")
    prov_h = auth(settings, "prv_b", "provider")
    stranger = auth(settings, "prv_x", "provider")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_b")
        assert (await http.post("/requests", json=draft())).status_code == 401
        assert (await http.post("/requests", json=draft(), headers=prov_h)).status_code == 403
        for bad in (
            {"effort_hours": None},
            {"client_zone": "Mars/Olympus"},
            {"deadline": "2001-01-01T00:00:00Z"},
            {"budget": {"amount": "-3", "currency": "EUR"}},
            {"unknown": 1},
            {"languages": []},
        ):
            r = await http.post("/requests", json=draft(**bad), headers=client_h)
            assert r.status_code == 422, (bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        r = await http.post("/requests", content=b"{not json", headers=client_h)
        assert r.status_code == 422

        r = await http.post("/requests", json=draft(), headers=client_h)
        rid = r.json()["request_id"]
        assert (await http.get(f"/requests/{rid}", headers=other_client)).status_code == 404
        assert (await http.get(f"/requests/{rid}", headers=stranger)).status_code == 404
        assert (await http.post(f"/requests/{rid}/accept", headers=stranger)).status_code == 404
        assert (await http.post(f"/requests/{rid}/accept", headers=client_h)).status_code == 403
        assert (await http.post(f"/requests/{rid}/cancel", headers=other_client)).status_code == 404
        assert (await http.get("/requests/nope", headers=client_h)).status_code == 404
        # illegal transitions
        r = await http.post(f"/requests/{rid}/complete", json={"units": 1}, headers=prov_h)
        assert r.status_code == 409
        r = await http.post(f"/requests/{rid}/rate", json={"stars": 4}, headers=client_h)
        assert r.status_code == 409
        r = await http.post(f"/requests/{rid}/rate", json={"stars": 9}, headers=client_h)
        assert r.status_code == 422
        assert (await http.post(f"/requests/{rid}/accept", headers=prov_h)).status_code == 200
        assert (await http.post(f"/requests/{rid}/accept", headers=prov_h)).status_code == 409
        r = await http.post(f"/requests/{rid}/complete", json={}, headers=prov_h)
        assert r.status_code == 422
        r = await http.get("/requests", params={"status": "weird"}, headers=client_h)
        assert r.status_code == 422
        mine = await http.get("/requests", headers=client_h)
        assert [x["request_id"] for x in mine.json()] == [rid]
        assert (await http.get("/requests", headers=other_client)).json() == []

        # cancel after acceptance releases the provider's capacity
        cap = await http.get("/providers/prv_b/capacity", headers=prov_h)
        assert sum(float(w["reserved_hours"]) for w in cap.json()) == 2.0
        r = await http.post(f"/requests/{rid}/cancel", headers=client_h)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert (await http.post(f"/requests/{rid}/cancel", headers=client_h)).status_code == 409
        cap = await http.get("/providers/prv_b/capacity", headers=prov_h)
        assert sum(float(w["reserved_hours"]) for w in cap.json()) == 0.0
        assert (await http.get("/providers/prv_b/capacity", headers=stranger)).status_code == 403

        records = await request_events(settings, expect=4)
    assert types_of(records, rid) == [
        "RequestSubmitted",
        "MatchProposed",
        "MatchAccepted",
        "RequestCancelled",
    ]
    assert body(records[-1])["provider_id"] == "prv_b"
