"""`Idempotency-Key` on POST /requests and /accept, through the HTTP API on the real store."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from delego_shared.http.idempotency import COLLECTION, LEASE, fingerprint
from delego_shared.types import utcnow
from fastapi import FastAPI

from .helpers import (
    auth,
    draft,
    matching_settings,
    publish_provider_with_offer,
    running,
    wait_indexed,
)

pytestmark = pytest.mark.integration


def records(app: FastAPI):
    return app.state.runtime.mongo.db[COLLECTION]


async def crash_after_command(app: FastAPI, record_id: str) -> None:
    """What a process that died between the command and its record leaves: the
    command's document, and a claim without a response, older than the lease."""
    res = await records(app).update_one(
        {"_id": record_id},
        {
            "$set": {"state": "pending", "claimed_at": utcnow() - 2 * LEASE},
            "$unset": {"response": ""},
        },
    )
    assert res.modified_count == 1


async def own_requests(http, headers) -> list[dict]:
    r = await http.get("/requests", headers=headers)
    assert r.status_code == 200
    return r.json()


async def test_same_key_same_body_gives_the_first_result_and_creates_once(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_idem", "off_idem")
    client = auth(settings, "cli_idem", "client")
    body = draft()
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_idem")
        keyed = {**client, "Idempotency-Key": "k-1"}
        first = await http.post("/requests", json=body, headers=keyed)
        again = await http.post("/requests", json=body, headers=keyed)
        assert first.status_code == again.status_code == 201, again.text
        assert again.json() == first.json()
        assert [r["request_id"] for r in await own_requests(http, client)] == [
            first.json()["request_id"]
        ]

        other = await http.post("/requests", json={**body, "effort_hours": "3"}, headers=keyed)
        assert other.status_code == 422
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["type"].endswith("/idempotency-key-reused")

        # another key (or none) is another command
        second = await http.post(
            "/requests", json=body, headers={**client, "Idempotency-Key": "k-2"}
        )
        assert second.status_code == 201
        assert second.json()["request_id"] != first.json()["request_id"]
        assert len(await own_requests(http, client)) == 2


async def test_the_key_is_per_caller(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_idem", "off_idem")
    body = draft()
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_idem")
        a = await http.post(
            "/requests",
            json=body,
            headers={**auth(settings, "cli_a", "client"), "Idempotency-Key": "same"},
        )
        b = await http.post(
            "/requests",
            json=body,
            headers={**auth(settings, "cli_b", "client"), "Idempotency-Key": "same"},
        )
        assert a.status_code == b.status_code == 201
        assert a.json()["request_id"] != b.json()["request_id"]


async def test_a_retry_after_a_crash_between_command_and_record_finds_the_first_request(
    settings_for,
):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_idem", "off_idem")
    client = auth(settings, "cli_crash", "client")
    body = draft()
    keyed = {**client, "Idempotency-Key": "crash-1"}
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_idem")
        first = await http.post("/requests", json=body, headers=keyed)
        assert first.status_code == 201
        await crash_after_command(app, "matching:client:cli_crash:crash-1")

        retry = await http.post("/requests", json=body, headers=keyed)
        assert retry.status_code == 201, retry.text
        assert retry.json()["request_id"] == first.json()["request_id"]
        assert len(await own_requests(http, client)) == 1
        stored = await records(app).find_one({"_id": "matching:client:cli_crash:crash-1"})
        assert stored is not None and stored["state"] == "done"


async def test_a_retry_after_a_crash_before_the_command_runs_it_once(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_idem", "off_idem")
    client = auth(settings, "cli_early", "client")
    body = draft()
    record_id = "matching:client:cli_early:early-1"
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_idem")
        # the claim was written, then the process died before the command ran
        await records(app).insert_one(
            {
                "_id": record_id,
                "state": "pending",
                "fingerprint": fingerprint("POST", "/requests", [], json.dumps(body).encode()),
                "created_at": utcnow(),
                "claimed_at": utcnow() - 2 * LEASE,
            }
        )
        retry = await http.post(
            "/requests", json=body, headers={**client, "Idempotency-Key": "early-1"}
        )
        assert retry.status_code == 201, retry.text
        assert len(await own_requests(http, client)) == 1


async def test_a_key_still_being_processed_answers_409(settings_for):
    settings = matching_settings(settings_for)
    client = auth(settings, "cli_busy", "client")
    body = draft()
    async with running(settings) as (app, http):
        await records(app).insert_one(
            {
                "_id": "matching:client:cli_busy:busy-1",
                "state": "pending",
                "fingerprint": fingerprint("POST", "/requests", [], json.dumps(body).encode()),
                "created_at": utcnow(),
                "claimed_at": utcnow() - timedelta(seconds=1),
            }
        )
        r = await http.post("/requests", json=body, headers={**client, "Idempotency-Key": "busy-1"})
        assert r.status_code == 409
        assert r.json()["type"].endswith("/idempotency-key-in-use")
        assert r.headers["Retry-After"] == "1"  # the retry a careful client makes
        assert await own_requests(http, client) == []


async def test_accept_with_a_key_answers_the_first_result_also_after_a_crash(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_acc", "off_acc")
    client = auth(settings, "cli_acc", "client")
    provider = {**auth(settings, "prv_acc", "provider"), "Idempotency-Key": "acc-1"}
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_acc")
        rid = (await http.post("/requests", json=draft(), headers=client)).json()["request_id"]
        first = await http.post(f"/requests/{rid}/accept", headers=provider)
        assert first.status_code == 200 and first.json()["status"] == "accepted"
        again = await http.post(f"/requests/{rid}/accept", headers=provider)
        assert again.status_code == 200 and again.json() == first.json()
        # without the key, accepting twice is the illegal transition it always was
        plain = await http.post(
            f"/requests/{rid}/accept", headers=auth(settings, "prv_acc", "provider")
        )
        assert plain.status_code == 409

        await crash_after_command(app, "matching:provider:prv_acc:acc-1")
        retry = await http.post(f"/requests/{rid}/accept", headers=provider)
        assert retry.status_code == 200, retry.text
        assert retry.json()["status"] == "accepted"
        assert retry.json()["request_id"] == rid
