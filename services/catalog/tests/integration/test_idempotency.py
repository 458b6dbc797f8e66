"""`Idempotency-Key` on POST /offers, through the HTTP API on the real store."""

from __future__ import annotations

import pytest
from delego_shared.http.idempotency import COLLECTION, LEASE
from delego_shared.types import utcnow

pytestmark = pytest.mark.integration


async def test_creating_an_offer_twice_with_one_key_creates_it_once(catalog):
    await catalog.register("prv_idem")
    headers = {**catalog.auth("prv_idem", "provider"), "Idempotency-Key": "offer-1"}
    body = catalog.offer_body()
    first = await catalog.http.post("/offers", json=body, headers=headers)
    again = await catalog.http.post("/offers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    listed = await catalog.http.get(
        "/providers/prv_idem/offers", headers=catalog.auth("prv_idem", "provider")
    )
    assert [o["offer_id"] for o in listed.json()["items"]] == [first.json()["offer"]["offer_id"]]

    other = await catalog.http.post(
        "/offers", json={**body, "title": "Another title for it"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")


async def test_a_refused_command_releases_its_key(catalog):
    headers = {**catalog.auth("prv_late", "provider"), "Idempotency-Key": "offer-early"}
    body = catalog.offer_body()
    refused = await catalog.http.post("/offers", json=body, headers=headers)
    assert refused.status_code == 409  # not registered yet: nothing was created
    await catalog.register("prv_late")
    created = await catalog.http.post("/offers", json=body, headers=headers)
    assert created.status_code == 201, created.text


async def test_a_retry_after_a_crash_between_command_and_record_finds_the_offer(catalog):
    await catalog.register("prv_crash")
    headers = {**catalog.auth("prv_crash", "provider"), "Idempotency-Key": "offer-crash"}
    body = catalog.offer_body()
    first = await catalog.http.post("/offers", json=body, headers=headers)
    assert first.status_code == 201
    records = catalog.app.state.runtime.mongo.db[COLLECTION]
    res = await records.update_one(
        {"_id": "catalog:provider:prv_crash:offer-crash"},
        {
            "$set": {"state": "pending", "claimed_at": utcnow() - 2 * LEASE},
            "$unset": {"response": ""},
        },
    )
    assert res.modified_count == 1
    retry = await catalog.http.post("/offers", json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.json()["offer"]["offer_id"] == first.json()["offer"]["offer_id"]
    listed = await catalog.http.get(
        "/providers/prv_crash/offers", headers=catalog.auth("prv_crash", "provider")
    )
    assert len(listed.json()["items"]) == 1
