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
    draft,
    env,
    matching_settings,
    offer,
    provider,
    publish,
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
        body = draft(
            effort_hours="4.5",
            client_zone="America/Toronto",
            deadline=iso(local("America/Toronto", 2026, 11, 2, 9)),
        )
        r = await http.post("/requests", json=body, headers=auth(settings, "cli_tor", "client"))
        assert r.status_code == 201, r.text
        req = r.json()
        assert req["status"] == "proposed", req["unmatched_summary"]
        # 4.5 real hours after Sunday 00:00 EDT (04:00Z) end at 03:30 EST (08:30Z)
        assert req["promised_at"].startswith("2026-11-01T08:30")
        key = "prv_tor:2026-W44"
        assert (await app.state.store.reserved_hours([key]))[key] == Decimal("4.5")
