"""A capacity hold nobody refers to (crash between reserve and store) is given back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from delego_shared.types import utcnow
from matching.store import Hold

from .helpers import (
    auth,
    draft,
    matching_settings,
    publish_provider_with_offer,
    running,
    wait_indexed,
)

pytestmark = pytest.mark.integration


async def test_orphan_holds_are_reconciled_live_ones_kept(settings_for):
    settings = matching_settings(settings_for, hold_grace_s=60)
    await publish_provider_with_offer(settings, "prv_h", "off_h")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_h")
        store, handlers = app.state.store, app.state.matching
        r = await http.post("/requests", json=draft(), headers=auth(settings, "cli_h", "client"))
        live = r.json()
        key = (await store.capacity.find_one({"provider_id": "prv_h"}))["_id"]
        # a reservation whose request was never stored, made long ago
        long_ago = utcnow() - timedelta(hours=1)
        orphan = Hold("req_never_stored", 1)
        assert await store.reserve(
            "prv_h", {key: Decimal("40")}, {key: Decimal("3")}, orphan, long_ago
        )
        assert (await store.reserved_hours([key]))[key] == Decimal("5")

        assert await handlers.reconcile_holds() == 1
        assert (await store.reserved_hours([key]))[key] == Decimal("2")
        assert await handlers.reconcile_holds() == 0  # idempotent; the live hold stays
        assert live["status"] == "proposed"
