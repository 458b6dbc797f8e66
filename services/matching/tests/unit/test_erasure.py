"""The matching erasure use case on an in-memory store: sealed details, ratings, races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from matching.details import ATTEMPTS, PrivateDetails
from matching.privacy import MatchingErasure

from .fake_details import MemoryDetailsStore, sealer
from .test_request import NOW, SECRET, proposed, world


class MemoryPrivacy:
    """The `PrivacyStore` surface: the subject index and the ratings given."""

    def __init__(self) -> None:
        self.index = {"cli_1": ["req_1", "req_2", "req_gone"]}
        self.ratings = {"cli_1": [("prv-1", 5)]}

    async def request_ids(self, client_id: str) -> list[str]:
        return list(self.index.get(client_id, []))

    async def delete_client_ratings(self, client_id: str) -> int:
        return 1 if self.ratings.pop(client_id, None) is not None else 0


def stores() -> tuple[MemoryPrivacy, MemoryDetailsStore, MatchingErasure]:
    """cli_1 has req_1 (sealed text), req_2 (no text) and req_gone (never stored)."""
    details, s = MemoryDetailsStore(), sealer()
    with_text, _ = proposed(world())
    without, _ = proposed(world())
    without.request_id = "req_2"
    details.put(with_text, s, SECRET)
    details.put(without, s, "")
    use_cases = PrivateDetails(
        details, s, retention=timedelta(days=90), source="/delego/matching", clock=lambda: NOW
    )
    privacy = MemoryPrivacy()
    return privacy, details, MatchingErasure(privacy, use_cases.erase)  # type: ignore[arg-type]


async def test_shreds_the_key_clears_the_details_and_deletes_the_ratings_given():
    privacy, details, erase = stores()
    result = await erase("cli_1")
    assert result.erased == {"request_descriptions": 1, "client_ratings": 1}
    assert details.keys == {} and details.sealed == {}
    assert details.requests["req_1"].details_erased
    assert not details.requests["req_2"].details_erased  # it had nothing to erase
    assert privacy.ratings == {}


async def test_a_second_run_changes_nothing():
    _, details, erase = stores()
    await erase("cli_1")
    version = details.requests["req_1"].version
    again = await erase("cli_1")
    assert again.erased == {"request_descriptions": 0, "client_ratings": 0}
    assert details.requests["req_1"].version == version


async def test_a_run_cut_after_the_shredding_finishes_on_the_next_run():
    _, details, erase = stores()
    assert await details.shred_key("req_1")  # the crash came right after this
    assert "req_1" in details.sealed
    result = await erase("cli_1")
    assert result.erased["request_descriptions"] == 1
    assert "req_1" not in details.sealed and details.requests["req_1"].details_erased


async def test_a_request_that_never_stops_changing_fails_the_handler_for_a_retry():
    _, details, erase = stores()
    details.concurrent_writes = ATTEMPTS * 10
    with pytest.raises(RuntimeError, match="kept changing"):
        await erase("cli_1")
