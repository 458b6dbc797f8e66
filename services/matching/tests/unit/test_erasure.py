"""The matching erasure use case on an in-memory store: descriptions, ratings, races."""

from __future__ import annotations

import pytest
from matching.privacy import ATTEMPTS, MatchingErasure


class MemoryStore:
    """The `PrivacyStore` surface: requests as {id: (version, description)}."""

    def __init__(self) -> None:
        self.index = {"cli-1": ["req-1", "req-2", "req-gone"]}
        self.requests = {"req-1": (3, "my door code is 4242"), "req-2": (5, "")}
        self.ratings = {"cli-1": [("prv-1", 5)]}
        self.concurrent_writes = 0
        """Each read is followed by another writer's update this many times."""

    async def request_ids(self, client_id: str) -> list[str]:
        return list(self.index.get(client_id, []))

    async def description_state(self, request_id: str) -> tuple[int, bool] | None:
        if request_id not in self.requests:
            return None
        version, text = self.requests[request_id]
        if self.concurrent_writes:
            self.concurrent_writes -= 1
            self.requests[request_id] = (version + 1, text)
        return version, bool(text)

    async def clear_description(self, request_id: str, version: int) -> bool:
        current, _ = self.requests[request_id]
        if current != version:
            return False
        self.requests[request_id] = (version + 1, "")
        return True

    async def delete_client_ratings(self, client_id: str) -> int:
        return 1 if self.ratings.pop(client_id, None) is not None else 0


async def test_empties_descriptions_as_a_new_version_and_deletes_the_ratings_given():
    store = MemoryStore()
    result = await MatchingErasure(store)("cli-1")  # type: ignore[arg-type]
    assert result.erased == {"request_descriptions": 1, "client_ratings": 1}
    assert store.requests == {"req-1": (4, ""), "req-2": (5, "")}
    assert store.ratings == {}


async def test_a_second_run_changes_nothing():
    store = MemoryStore()
    await MatchingErasure(store)("cli-1")  # type: ignore[arg-type]
    again = await MatchingErasure(store)("cli-1")  # type: ignore[arg-type]
    assert again.erased == {"request_descriptions": 0, "client_ratings": 0}
    assert store.requests["req-1"] == (4, "")


async def test_a_request_changed_meanwhile_is_read_again_then_erased():
    store = MemoryStore()
    store.concurrent_writes = 2
    result = await MatchingErasure(store)("cli-1")  # type: ignore[arg-type]
    assert result.erased["request_descriptions"] == 1
    assert store.requests["req-1"][1] == ""


async def test_a_request_that_never_stops_changing_fails_the_handler_for_a_retry():
    store = MemoryStore()
    store.concurrent_writes = ATTEMPTS * 10
    with pytest.raises(RuntimeError, match="kept changing"):
        await MatchingErasure(store)("cli-1")  # type: ignore[arg-type]
