"""Sealed private details over real Kafka + FerretDB: who reads them, the audit of every
read, crypto-shredding by erasure, retention, and the subject index backfill."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from delego_cli.privacy import access_audit
from delego_shared.testing.waiting import wait_for
from delego_shared.types import utcnow
from matching.details import CLEAR_TEXT_MIGRATION, PrivateDetails
from matching.privacy import (
    SUBJECT_INDEX_MIGRATION,
    MatchingErasure,
    PrivacyStore,
    backfill_subject_index,
)
from matching.store import MatchingStore

from .helpers import (
    PRIVATE,
    auth,
    draft,
    matching_settings,
    publish_provider_with_offer,
    running,
    wait_indexed,
)

pytestmark = pytest.mark.integration


async def stored_text_of(store: MatchingStore, request_id: str) -> str:
    """Everything stored about the request, as text (the request and its key)."""
    req = await store.requests.find_one({"_id": request_id})
    key = await store.request_keys.find_one({"_id": request_id})
    return json.dumps([req, key], default=repr, ensure_ascii=False)


async def submit(http: Any, headers: dict[str, str]) -> dict[str, Any]:
    r = await http.post("/requests", json=draft(), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "proposed"
    return body


async def test_readers_of_the_private_details_and_the_audit_of_every_read(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_asha", "off_asha")
    client_h = auth(settings, "cli_marie", "client")
    prov_h = auth(settings, "prv_asha", "provider")
    ops_h = auth(settings, "ops_1", "operator")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_asha")
        req = await submit(http, client_h)
        rid = req["request_id"]
        assert req["description"] is None
        assert req["private_details"] == {"present": True, "readable_by_you": True, "erased": False}
        # sealed at rest: the text is nowhere in the stored documents
        assert PRIVATE not in await stored_text_of(app.state.store, rid)

        # before acceptance: the proposed provider sees a redacted summary, 403 on the text
        [proposal] = (await http.get("/proposals", headers=prov_h)).json()
        assert proposal["private_details"]["readable_by_you"] is False
        assert proposal["description"] is None
        r = await http.get(f"/requests/{rid}/details", headers=prov_h)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 403 and PRIVATE not in r.text
        # a provider never asked: the request does not exist for them
        stranger = auth(settings, "prv_other", "provider")
        assert (await http.get(f"/requests/{rid}/details", headers=stranger)).status_code == 404

        r = await http.post(f"/requests/{rid}/accept", headers=prov_h)
        assert r.status_code == 200, r.text
        r = await http.get(f"/requests/{rid}/details", headers=prov_h)
        assert r.status_code == 200, r.text
        assert r.json() == {"request_id": rid, "description": PRIVATE}

        # operators: only with a reason (a code), and the read is recorded
        assert (await http.get(f"/requests/{rid}/details", headers=ops_h)).status_code == 403
        bad = await http.get(f"/requests/{rid}/details?reason=curious", headers=ops_h)
        assert bad.status_code == 422
        r = await http.get(
            f"/requests/{rid}/details?reason=dispute&reference=case-42", headers=ops_h
        )
        assert r.status_code == 200 and r.json()["description"] == PRIVATE

        reads = await access_audit(
            settings.kafka_bootstrap, "cli_marie", prefix=settings.topic_prefix
        )
    assert [(x.reader_id, x.reader_role, x.reason, x.reference) for x in reads] == [
        ("prv_asha", "provider", None, None),
        ("ops_1", "operator", "dispute", "case-42"),
    ]
    assert all(x.request_id == rid for x in reads)


async def test_erasure_makes_the_text_unreadable_even_from_an_earlier_copy(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_e", "off_e")
    client_h = auth(settings, "cli_marie", "client")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_e")
        rid = (await submit(http, client_h))["request_id"]
        store: MatchingStore = app.state.store
        backup = await store.requests.find_one({"_id": rid})  # e.g. last night's backup
        assert backup is not None and backup["sealed"]["ciphertext"]
        r = await http.get(f"/requests/{rid}/details", headers=client_h)
        assert r.json()["description"] == PRIVATE

        assert await app.state.details.erase(rid) is True

        r = await http.get(f"/requests/{rid}/details", headers=client_h)
        assert r.status_code == 410, r.text
        assert await store.request_keys.find_one({"_id": rid}) is None  # the key is gone
        assert "sealed" not in (await store.requests.find_one({"_id": rid}) or {})
        view = (await http.get(f"/requests/{rid}", headers=client_h)).json()
        assert view["private_details"] == {
            "present": False,
            "readable_by_you": False,
            "erased": True,
        }


async def test_retention_erases_details_older_than_the_retention_and_not_younger(settings_for):
    settings = matching_settings(settings_for, details_retention_days=90)
    await publish_provider_with_offer(settings, "prv_r", "off_r", capacity="80")
    client_h = auth(settings, "cli_r", "client")
    prov_h = auth(settings, "prv_r", "provider")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_r")
        completed: dict[str, datetime] = {}
        for _ in range(2):
            rid = (await submit(http, client_h))["request_id"]
            assert (await http.post(f"/requests/{rid}/accept", headers=prov_h)).status_code == 200
            r = await http.post(
                f"/requests/{rid}/complete", json={"actual_hours": "1"}, headers=prov_h
            )
            assert r.status_code == 200, r.text
            completed[rid] = datetime.fromisoformat(r.json()["completed_at"])
            await asyncio.sleep(1.5)
        older, younger = sorted(completed, key=completed.__getitem__)
        # the sweep's "now": 90 days and a second after the older completion only
        now = completed[older] + timedelta(days=90, seconds=1)
        assert completed[younger] + timedelta(days=90) > now
        store: MatchingStore = app.state.store
        sweep = PrivateDetails(
            store,
            app.state.matching.sealer,
            retention=settings.details_retention,
            source=settings.source,
            clock=lambda: now,
        )

        assert await sweep.sweep_retention() == 1

        assert (await http.get(f"/requests/{older}/details", headers=client_h)).status_code == 410
        r = await http.get(f"/requests/{younger}/details", headers=client_h)
        assert r.status_code == 200 and r.json()["description"] == PRIVATE
        # the younger one keeps its date; a later sweep erases it
        key = await store.request_keys.find_one({"_id": younger}, {"erase_after": 1})
        assert key is not None and key["erase_after"] is not None


async def test_requests_stored_before_the_subject_index_are_added_to_it_once(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_b", "off_b")
    client_h = auth(settings, "cli_old", "client")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_b")
        rid = (await submit(http, client_h))["request_id"]
        store: MatchingStore = app.state.store
        # as if stored before the index existed, and before the backfill ran
        await store.subject_requests.delete_one({"_id": "cli_old"})
        await store.migrations.delete_one({"_id": SUBJECT_INDEX_MIGRATION})

        assert await backfill_subject_index(store, utcnow) == 1
        doc = await store.subject_requests.find_one({"_id": "cli_old"})
        assert doc is not None and doc["request_ids"] == [rid]
        assert await backfill_subject_index(store, utcnow) == 0  # done once
        # so the person's erasure reaches it
        erase = MatchingErasure(PrivacyStore(store), app.state.details.erase)
        assert (await erase("cli_old")).erased["request_descriptions"] == 1
        assert (await http.get(f"/requests/{rid}/details", headers=client_h)).status_code == 410


async def test_a_description_stored_in_clear_before_sealing_is_sealed_at_start_up(settings_for):
    settings = matching_settings(settings_for)
    await publish_provider_with_offer(settings, "prv_l", "off_l")
    client_h = auth(settings, "cli_l", "client")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_l")
        rid = (await submit(http, client_h))["request_id"]
        store: MatchingStore = app.state.store
        # as stored before sealing existed: the text in the state, no key, no ciphertext
        await store.requests.update_one(
            {"_id": rid},
            {
                "$set": {"state.spec.description": PRIVATE, "state.sealed_details": False},
                "$unset": {"sealed": ""},
            },
        )
        await store.request_keys.delete_one({"_id": rid})
        await store.migrations.delete_one({"_id": CLEAR_TEXT_MIGRATION})
        assert PRIVATE in await stored_text_of(store, rid)
    async with running(settings) as (app, http):  # a restart runs the migration

        async def sealed() -> bool:
            return PRIVATE not in await stored_text_of(app.state.store, rid)

        await wait_for(sealed, timeout=30)
        r = await http.get(f"/requests/{rid}/details", headers=client_h)
        assert r.status_code == 200 and r.json()["description"] == PRIVATE
