"""Waiting for an asynchronous effect in a test (consumers and relays run in the background)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 45.0, interval: float = 0.1
) -> Any:
    """Poll `predicate` until it returns something truthy, and return that; fail after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")
