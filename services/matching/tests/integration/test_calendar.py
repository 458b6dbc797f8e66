"""Real calendars through the public API: DST weeks, working-time response windows,
start-after requests and minutes reporting (real Kafka + FerretDB).

The service's clock is pinned (`RequestHandlers.clock`) to the moment each
story happens; everything else is the running service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from delego_shared.events.catalog import OfferPublished, ProviderRegistered
from delego_shared.events.common import Weekday, WorkingSpan
from fastapi import FastAPI

from .helpers import (
    auth,
    body,
    draft,
    env,
    matching_settings,
    offer,
    provider,
    publish,
    request_events,
    running,
    wait_indexed,
)

pytestmark = pytest.mark.integration


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def pin_clock(app: FastAPI, at: datetime) -> None:
    app.state.matching.clock = lambda: at


async def publish_custom(settings: Any, pid: str, oid: str, **changes: Any) -> None:
    p = provider(pid).model_copy(update=changes)
    await publish(
        settings,
        env(ProviderRegistered(provider=p), settings),
        env(OfferPublished(offer=offer(oid, pid)), settings),
    )


TORONTO_NIGHT = [WorkingSpan(day=Weekday.SUN, start="00:00", end="04:00")]


async def test_the_toronto_fall_back_night_is_booked_beyond_its_wall_clock_hours(settings_for):
    settings = matching_settings(settings_for)
    await publish_custom(
        settings,
        "prv_tor",
        "off_tor",
        time_zone="America/Toronto",
        schedule=TORONTO_NIGHT,
        weekly_capacity_hours=Decimal(4),  # all the catalog allowed before: 4 wall-clock hours
    )
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_tor")
        # Saturday 31 October 2026, noon in Toronto; clocks go back Sunday 02:00 → 01:00
        pin_clock(app, local("America/Toronto", 2026, 10, 31, 12))
        req_body = draft(
            effort_hours="4.5",
            client_zone="America/Toronto",
            deadline=iso(local("America/Toronto", 2026, 11, 2, 9)),
        )
        r = await http.post("/requests", json=req_body, headers=auth(settings, "cli_tor", "client"))
        assert r.status_code == 201, r.text
        req = r.json()
        assert req["status"] == "proposed", req["unmatched_summary"]
        # answer window Sunday 00:00-00:15 EDT (04:00Z), then 4.5 real hours: 03:45 EST
        assert req["promised_at"].startswith("2026-11-01T08:45")
        key = "prv_tor:2026-W44"
        assert (await app.state.store.reserved_hours([key]))[key] == Decimal("4.5")


BANGALORE_DAYS = [
    WorkingSpan(day=d, start="09:00", end="18:00")
    for d in (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)
]


async def test_a_proposal_made_at_night_is_answered_in_the_morning(settings_for):
    settings = matching_settings(settings_for)
    await publish_custom(
        settings, "prv_blr", "off_blr", time_zone="Asia/Kolkata", schedule=BANGALORE_DAYS
    )
    client_h = auth(settings, "cli_paris", "client")
    prov_h = auth(settings, "prv_blr", "provider")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_blr")
        # Tuesday 1 December 2026, 18:30 in Paris = 23:00 in Bangalore
        pin_clock(app, local("Europe/Paris", 2026, 12, 1, 18, 30))
        req_body = draft(deadline={"kind": "next_working_day", "start": "09:00"})
        r = await http.post("/requests", json=req_body, headers=client_h)
        assert r.status_code == 201, r.text
        req = r.json()
        rid, p = req["request_id"], req["proposal"]
        assert req["status"] == "proposed", req["unmatched_summary"]
        # not "reply before 23:15": the first 15 minutes of her next working day
        assert p["expires_at"].startswith("2026-12-02T03:45")  # 09:15 IST
        assert p["answer_from"].startswith("2026-12-02T03:30")  # 09:00 IST
        # she answers by 09:15 IST and works 2 h: 11:15 IST = 06:45 in Paris
        assert req["promised_local"] == "2026-12-02T06:45:00+01:00"
        assert "outside their working hours" in p["explanation"]
        assert "hors de ses heures de travail" in p["explanation_fr"]
        [attempt] = req["attempts"]
        assert attempt["provider_zone"] == "Asia/Kolkata"
        assert attempt["proposed_local"] == "2026-12-01T23:00:00+05:30"
        assert attempt["expires_local"] == "2026-12-02T09:15:00+05:30"

        # the night passes: the sweep does not expire it
        pin_clock(app, local("Asia/Kolkata", 2026, 12, 2, 9, 5))
        assert await app.state.matching.expire_due() == 0
        r = await http.post(f"/requests/{rid}/accept", headers=prov_h)
        assert r.status_code == 200, r.text
        accepted = r.json()
        assert accepted["status"] == "accepted"
        assert accepted["promised_local"] == "2026-12-02T06:45:00+01:00"


async def test_not_before_delays_the_work_the_reservation_and_the_promise(settings_for):
    settings = matching_settings(settings_for)
    await publish_custom(settings, "prv_nb", "off_nb")  # works around the clock
    client_h = auth(settings, "cli_nb", "client")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_nb")
        pin_clock(app, local("Europe/Paris", 2026, 12, 1, 18, 30))  # Tuesday
        monday_8 = local("Europe/Paris", 2026, 12, 7, 8)
        req_body = draft(
            not_before=iso(monday_8),
            deadline=iso(local("Europe/Paris", 2026, 12, 9, 18)),
            client_zone="Europe/Paris",
        )
        r = await http.post("/requests", json=req_body, headers=client_h)
        assert r.status_code == 201, r.text
        req = r.json()
        assert req["status"] == "proposed", req["unmatched_summary"]
        assert req["not_before_local"] == "2026-12-07T08:00:00+01:00"
        # not "tonight": Monday 08:00 + 2 h, shown in the client's zone
        assert req["promised_local"] == "2026-12-07T10:00:00+01:00"
        key = "prv_nb:2026-W50"  # the week of Monday 7 December in Bangalore
        reserved = await app.state.store.reserved_hours([key, "prv_nb:2026-W49"])
        assert reserved == {key: Decimal("2")}

        records = await request_events(settings, expect=2)
        [submitted] = [body(x) for x in records if "RequestSubmitted" in x.headers["ce_type"]]
        assert submitted["not_before"].startswith("2026-12-07T07:00")

        # a deadline before the start is a clear 422
        bad = draft(not_before=iso(monday_8), deadline=iso(local("Europe/Paris", 2026, 12, 6)))
        r = await http.post("/requests", json=bad, headers=client_h)
        assert r.status_code == 422
        assert "not_before" in r.text


async def test_work_is_reported_in_exact_minutes(settings_for):
    settings = matching_settings(settings_for)
    await publish_custom(settings, "prv_min", "off_min")
    client_h = auth(settings, "cli_min", "client")
    prov_h = auth(settings, "prv_min", "provider")
    async with running(settings) as (app, http):
        await wait_indexed(app, "off_min")
        r = await http.post("/requests", json=draft(), headers=client_h)
        assert r.status_code == 201, r.text
        rid = r.json()["request_id"]
        assert (await http.post(f"/requests/{rid}/accept", headers=prov_h)).status_code == 200

        for bad, why in (
            ({"actual_hours": "1.5", "actual_minutes": 90}, "not both"),
            ({"actual_minutes": -5}, "greater than or equal to 0"),
            ({"actual_minutes": "1h10"}, "integer"),
            ({}, "minutes"),
        ):
            r = await http.post(f"/requests/{rid}/complete", json=bad, headers=prov_h)
            assert r.status_code == 422, (bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert why in r.text, (bad, r.text)

        r = await http.post(
            f"/requests/{rid}/complete", json={"actual_minutes": 70}, headers=prov_h
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert (done["status"], done["actual_minutes"]) == ("completed", 70)
        assert Decimal(done["actual_hours"]) == Decimal("1.1667")

        records = await request_events(settings, expect=4)
        [completed] = [body(x) for x in records if "WorkCompleted" in x.headers["ce_type"]]
        assert completed["actual_minutes"] == 70
