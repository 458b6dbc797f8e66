"""A replica's runs: an owner of its name but another run is a dead predecessor."""

from __future__ import annotations

import re

import pytest
from delego_shared.replica import Replica


def test_an_earlier_run_of_the_same_replica_is_a_predecessor():
    earlier, now = Replica("host:8001"), Replica("host:8001")
    assert earlier.owner != now.owner
    assert now.is_predecessor(earlier.owner)
    assert not now.is_predecessor(now.owner)  # itself: alive
    assert not now.is_predecessor(Replica("host:8002").owner)  # another replica
    assert not now.is_predecessor(Replica("host:80011").owner)  # a longer name
    assert not now.is_predecessor(None) and not now.is_predecessor("legacy-uuid")


def test_the_query_condition_says_the_same():
    now = Replica("host.example:8001")
    cond = now.predecessors()
    pattern = re.compile(cond["$regex"])
    for owner in (
        Replica("host.example:8001").owner,
        now.owner,
        Replica("hostXexample:8001").owner,
    ):
        matches = bool(pattern.match(owner)) and owner != cond["$ne"]
        assert matches == now.is_predecessor(owner), owner


@pytest.mark.parametrize("name", ["", "a/b"])
def test_a_name_is_not_empty_and_has_no_separator(name: str):
    with pytest.raises(ValueError, match="not empty"):
        Replica(name)
