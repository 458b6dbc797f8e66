"""Concurrent updates of one collection go to the store together, without waiting when idle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from delego_shared.mongo import GroupedUpdates


@dataclass
class _Result:
    matched_count: int


class _SlowCollection:
    """Each command waits until the test lets it through; records what it was sent."""

    def __init__(self, missing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.commands: list[list[str]] = []
        self.gate = asyncio.Event()
        self.missing = missing
        self.fail = False

    async def _apply(self, ids: list[str]) -> int:
        self.commands.append(ids)
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("store down")
        return sum(1 for i in ids if i not in self.missing)

    async def update_one(self, filter: dict[str, Any], update: dict[str, Any]) -> _Result:
        return _Result(await self._apply([filter["_id"]]))

    async def bulk_write(self, requests: list[Any], ordered: bool = True) -> _Result:
        assert ordered is False
        return _Result(await self._apply([r._filter["_id"] for r in requests]))


async def _started(coll: _SlowCollection, grouped: GroupedUpdates, ids: list[str]) -> list[Any]:
    tasks = [asyncio.create_task(grouped.update_one({"_id": i}, {"$set": {"x": 1}})) for i in ids]
    await asyncio.sleep(0)
    return tasks


async def test_the_first_update_goes_at_once_and_those_arriving_meanwhile_go_as_one_command():
    coll = _SlowCollection()
    grouped = GroupedUpdates(coll)  # type: ignore[arg-type]
    first = await _started(coll, grouped, ["a"])
    await asyncio.sleep(0)
    assert coll.commands == [["a"]]  # not held back to wait for company
    rest = await _started(coll, grouped, ["b", "c", "d"])
    coll.gate.set()
    assert await asyncio.gather(*first, *rest) == [True] * 4
    assert coll.commands == [["a"], ["b", "c", "d"]]
    assert grouped.commands == 2


async def test_a_miss_in_a_grouped_command_is_reported_to_every_update_of_it():
    coll = _SlowCollection(missing={"c"})
    grouped = GroupedUpdates(coll)  # type: ignore[arg-type]
    first = await _started(coll, grouped, ["a"])
    rest = await _started(coll, grouped, ["b", "c"])
    coll.gate.set()
    assert await asyncio.gather(*first, *rest) == [True, False, False]


async def test_a_grouped_command_is_never_larger_than_its_limit():
    coll = _SlowCollection()
    grouped = GroupedUpdates(coll, max_batch=2)  # type: ignore[arg-type]
    tasks = await _started(coll, grouped, ["a", "b", "c", "d", "e"])
    coll.gate.set()
    await asyncio.gather(*tasks)
    assert coll.commands == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_store_error_reaches_every_caller_of_that_command_and_not_the_next_ones():
    coll = _SlowCollection()
    grouped = GroupedUpdates(coll)  # type: ignore[arg-type]
    failing = await _started(coll, grouped, ["a", "b"])
    coll.fail = True
    coll.gate.set()
    for t in failing:
        with pytest.raises(ConnectionError):
            await t
    coll.fail = False
    assert await grouped.update_one({"_id": "c"}, {"$set": {"x": 1}}) is True


async def test_with_a_linger_updates_made_one_after_another_go_as_one_command():
    coll = _SlowCollection()
    coll.gate.set()
    grouped = GroupedUpdates(coll, linger_s=1.0)  # type: ignore[arg-type]
    first = await _started(coll, grouped, ["a"])
    for _ in range(3):
        await asyncio.sleep(0)
    assert coll.commands == []  # held back, waiting for company
    second = await _started(coll, grouped, ["b"])
    assert await asyncio.gather(*first, *second) == [True, True]
    assert coll.commands == [["a", "b"]]
    assert grouped.commands == 1
