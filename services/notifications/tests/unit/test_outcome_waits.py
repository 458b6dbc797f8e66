"""After a send, a store outage is waited out: the outcome is stored, not the send redone."""

from __future__ import annotations

from typing import Any

import pytest
from notifications.dispatch import Dispatcher
from notifications.settings import NotificationsSettings
from pymongo.errors import AutoReconnect


def dispatcher(lease_s: float = 120.0) -> Dispatcher:
    none: Any = None
    return Dispatcher(
        none,
        NotificationsSettings(delivery_lease_s=lease_s),
        renderer=none,
        clock=none,
        email=none,
        webhook=none,
        inapp=none,
        publish=none,
    )


async def test_an_outcome_write_is_retried_through_a_store_outage(monkeypatch) -> None:
    calls: list[int] = []

    async def write() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise AutoReconnect("store away")
        return 7

    monkeypatch.setattr("notifications.dispatch.asyncio.sleep", _no_sleep)
    assert await dispatcher()._outcome(write) == 7
    assert len(calls) == 3


async def test_other_errors_and_outages_past_half_the_lease_are_not_waited_out(
    monkeypatch,
) -> None:
    monkeypatch.setattr("notifications.dispatch.asyncio.sleep", _no_sleep)

    async def bug() -> None:
        raise ValueError("not the store")

    with pytest.raises(ValueError, match="not the store"):
        await dispatcher()._outcome(bug)

    async def away() -> None:
        raise AutoReconnect("store away")

    with pytest.raises(AutoReconnect):  # lease 0.1 s: no time to wait, the sweep takes over
        await dispatcher(lease_s=0.1)._outcome(away)


async def _no_sleep(_: float) -> None:
    return None
