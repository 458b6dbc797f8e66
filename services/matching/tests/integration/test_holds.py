"""Capacity holds: the request is their record; a crash mid-change is settled by it.

A capacity document keeps only the holds in the middle of a change
(`pending`), so it stays small however many requests a provider takes; the
reconciliation settles what a crash left pending by the request's stored state.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from delego_shared.types import utcnow
from matching.store import RELEASE, RESERVE, Hold, to_e4

from .helpers import (
    auth,
    draft,
    matching_settings,
    publish_provider_with_offer,
    running,
    wait_indexed,
)

pytestmark = pytest.mark.integration

LONG_AGO = timedelta(hours=1)


@asynccontextmanager
async def _serving(settings_for, provider_id: str, offer_id: str, **overrides):
    """Matching running, with one provider and its offer indexed."""
    settings = matching_settings(settings_for, **overrides)
    await publish_provider_with_offer(settings, provider_id, offer_id)
    async with running(settings) as (app, http):
        await wait_indexed(app, offer_id)
        yield settings, app, http


async def _submit(app, http, settings, client_id: str) -> tuple[str, dict[str, Decimal]]:
    r = await http.post("/requests", json=draft(), headers=auth(settings, client_id, "client"))
    assert r.status_code == 201 and r.json()["status"] == "proposed", r.text
    rid = r.json()["request_id"]
    stored = await app.state.store.get_request(rid)
    assert stored is not None and stored.request.proposal is not None
    return rid, dict(stored.request.proposal.reservation)


async def _reserved(store, reservation: dict[str, Decimal]) -> Decimal:
    return sum((await store.reserved_hours(list(reservation))).values(), Decimal(0))


async def _mark(store, reservation: dict[str, Decimal], hold: Hold, op: str, hours_too: bool):
    """What a crash leaves: a pending marker (and, for a release, hours not given back)."""
    for key, hours in reservation.items():
        entry = {"op": op, "e4": to_e4(hours), "at": utcnow() - LONG_AGO}
        update: dict = {"$set": {f"pending.{hold.id}": entry}}
        if hours_too:
            update["$inc"] = {"reserved_e4": to_e4(hours)}
        await store.capacity.update_one({"_id": key}, update)


async def test_a_reservation_whose_request_was_never_stored_is_given_back(settings_for):
    async with _serving(settings_for, "prv_h", "off_h", hold_grace_s=60) as (settings, app, http):
        store, handlers = app.state.store, app.state.matching
        _, reservation = await _submit(app, http, settings, "cli_h")
        key = next(iter(reservation))
        live = await _reserved(store, {key: Decimal(0)})
        # a reservation whose request was never stored (crash in between), long ago
        orphan = Hold("req_never_stored", 1)
        assert await store.reserve(
            "prv_h", {key: Decimal("40")}, {key: Decimal("3")}, orphan, utcnow() - LONG_AGO
        )
        assert await _reserved(store, {key: Decimal(0)}) == live + 3

        assert await handlers.reconcile_holds() == 1
        assert await _reserved(store, {key: Decimal(0)}) == live
        assert await handlers.reconcile_holds() == 0  # idempotent; the live hold stays
        assert await _reserved(store, {key: Decimal(0)}) == live


async def test_a_reservation_whose_request_was_stored_is_confirmed(settings_for):
    async with _serving(settings_for, "prv_c", "off_c", hold_grace_s=60) as (settings, app, http):
        store, handlers = app.state.store, app.state.matching
        rid, reservation = await _submit(app, http, settings, "cli_c")
        held = await _reserved(store, reservation)
        assert held > 0
        # a crash after the request was stored, before its hold was confirmed
        await _mark(store, reservation, Hold(rid, 1), RESERVE, hours_too=False)

        assert await handlers.reconcile_holds() == 1
        assert await _reserved(store, reservation) == held  # kept: the request refers to it
        for key in reservation:
            assert (await store.capacity.find_one({"_id": key}))["pending"] == {}


async def test_a_release_is_finished_when_its_state_was_stored_else_dropped(settings_for):
    async with _serving(settings_for, "prv_r", "off_r", hold_grace_s=60) as (settings, app, http):
        store, handlers = app.state.store, app.state.matching
        cancelled, res_cancelled = await _submit(app, http, settings, "cli_r1")
        live, res_live = await _submit(app, http, settings, "cli_r2")
        r = await http.post(
            f"/requests/{cancelled}/cancel", headers=auth(settings, "cli_r1", "client")
        )
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        before = await _reserved(store, res_live)
        every = {k: Decimal(0) for k in [*res_live, *res_cancelled]}
        # a crash after the cancellation was stored, before its hours were given back
        await _mark(store, res_cancelled, Hold(cancelled, 1), RELEASE, hours_too=True)
        # a crash before a state ending the live hold was stored (it never was)
        await _mark(store, res_live, Hold(live, 1), RELEASE, hours_too=False)
        marked = await _reserved(store, every)

        assert await handlers.reconcile_holds() == 2
        gone = sum(res_cancelled.values(), Decimal(0))
        assert await _reserved(store, every) == marked - gone  # given back once
        assert await _reserved(store, res_live) == before  # the live hold stays
        assert await handlers.reconcile_holds() == 0


async def test_the_capacity_document_does_not_grow_with_the_requests_it_holds(settings_for):
    async with _serving(settings_for, "prv_s", "off_s") as (settings, app, http):
        store = app.state.store
        reservations = [await _submit(app, http, settings, f"cli_s{i}") for i in range(4)]
        keys = {k for _, res in reservations for k in res}
        total = sum((h for _, res in reservations for h in res.values()), Decimal(0))
        assert sum((await store.reserved_hours(list(keys))).values(), Decimal(0)) == total
        for key in keys:
            doc = await store.capacity.find_one({"_id": key})
            assert doc["pending"] == {} and "holds" not in doc, doc


async def test_holds_of_the_earlier_per_hold_map_are_adopted_and_settled(settings_for):
    async with _serving(settings_for, "prv_l", "off_l", hold_grace_s=60) as (settings, app, http):
        store, handlers = app.state.store, app.state.matching
        rid, reservation = await _submit(app, http, settings, "cli_l")
        key, hours = next(iter(reservation.items()))
        held = await _reserved(store, {key: Decimal(0)})
        # the earlier layout: every hold of the week in `holds`, a dead one among them
        at = utcnow() - LONG_AGO
        await store.capacity.update_one(
            {"_id": key},
            {
                "$set": {
                    f"holds.{Hold(rid, 1).id}": {"e4": to_e4(hours), "at": at},
                    "holds.req_gone__a1": {"e4": to_e4(Decimal(1)), "at": at},
                },
                "$inc": {"reserved_e4": to_e4(Decimal(1))},
            },
        )

        assert await handlers.reconcile_holds() == 2
        doc = await store.capacity.find_one({"_id": key})
        assert "holds" not in doc and doc["pending"] == {}
        assert await _reserved(store, {key: Decimal(0)}) == held  # the dead hour given back
