"""A state write that fails after the store applied it (the reply lost: a store
restarting, a connection cut) still gets its events out, and its holds settled.

Found by the chaos run: the accept was stored, the answer was lost, the retry
answered 409 (already accepted), and MatchAccepted stayed in the outbox: nobody
had asked for its publication, and the relay sweeps only after a crash.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from delego_shared.testing.waiting import wait_for
from delego_shared.types import utcnow
from pymongo.errors import AutoReconnect

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


async def test_an_accept_stored_but_not_acknowledged_is_published_and_its_hold_kept(
    settings_for,
):
    settings = matching_settings(settings_for, hold_grace_s=60)
    await publish_provider_with_offer(settings, "prv_aw", "off_aw")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_aw")
        store, handlers = app.state.store, app.state.matching
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_aw", "client"))
        assert r.status_code == 201, r.text
        rid = r.json()["request_id"]
        reservation = dict((await store.get_request(rid)).request.proposal.reservation)
        held = await store.reserved_hours(list(reservation))

        real_save = store.save_request

        async def stored_then_cut(*args, **kwargs):
            await real_save(*args, **kwargs)
            raise AutoReconnect("connection closed before the reply")

        store.save_request = stored_then_cut
        provider_h = auth(settings, "prv_aw", "provider")
        try:  # the caller does not know (a 503 problem in production); the store does
            with pytest.raises(AutoReconnect):
                await http.post(f"/requests/{rid}/accept", headers=provider_h)
        finally:
            store.save_request = real_save
        assert (await store.get_request(rid)).request.status.value == "accepted"

        records = await request_events(settings, expect=3)
        assert types_of(records, rid) == ["RequestSubmitted", "MatchProposed", "MatchAccepted"]

        async def outbox_empty() -> bool:  # the published entries' removal lands just after
            doc = await store.requests.find_one({"_id": rid})
            return not doc.get("_outbox")

        assert await wait_for(outbox_empty, timeout=10)  # nothing left behind

        # the hold stays: the accepted request refers to it (settled, not given back)
        handlers.clock = lambda: utcnow() + timedelta(minutes=5)
        await handlers.reconcile_holds()
        assert await store.reserved_hours(list(reservation)) == held
