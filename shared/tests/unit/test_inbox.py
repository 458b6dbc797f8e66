"""The inbox prunes itself in the background, never on an event's own path."""

import asyncio
from datetime import timedelta

from delego_shared.messaging.inbox import Inbox


class FakeMongo:
    def __init__(self) -> None:
        self.db = {"processed_events": object()}


async def test_a_prune_starts_only_when_due_and_one_at_a_time():
    inbox = Inbox(FakeMongo(), "billing", prune_every=timedelta(hours=1))  # type: ignore[arg-type]
    started = 0
    release = asyncio.Event()

    async def prune() -> int:
        nonlocal started
        started += 1
        await release.wait()
        return 0

    inbox.prune = prune  # type: ignore[method-assign]
    inbox._maybe_prune()  # the first event only schedules the first prune (replicas spread)
    assert inbox._next_prune is not None and started == 0
    for _ in range(100):  # not due yet: no I/O at all
        inbox._maybe_prune()
    await asyncio.sleep(0)
    assert started == 0
    inbox._next_prune = 0.0  # due
    for _ in range(100):
        inbox._maybe_prune()
    await asyncio.sleep(0)
    assert started == 1  # one prune, in the background
    inbox._next_prune = 0.0  # due again while the first one still runs: no second one
    inbox._maybe_prune()
    await asyncio.sleep(0)
    assert started == 1
    release.set()
    await asyncio.sleep(0.01)
    inbox._maybe_prune()
    await asyncio.sleep(0)
    assert started == 2
    release.set()
    await asyncio.sleep(0.01)
