"""Waiting helpers for background loops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .logging import get_logger


async def wake_or_timeout(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True when woken.

    `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow a
    cancellation that arrives as the event is set, and the loop then never stops.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task[object] | None, *, step_s: float = 1.0) -> None:
    """Cancel `task` until it has really ended (a loop may absorb one cancellation)."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=step_s)


async def survive(job: Callable[[], Awaitable[object]], event: str, **fields: Any) -> bool:
    """One pass of a background loop: a failure is logged as `event` and swallowed, so
    the loop tries again on its next turn (store or broker down); cancellation passes."""
    try:
        await job()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        get_logger(__name__).warning(event, error_type=type(exc).__name__, error=str(exc), **fields)
        return False
    return True
