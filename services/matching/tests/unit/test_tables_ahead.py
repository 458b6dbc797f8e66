"""The working-time tables are built in the background, before a request would need them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from matching.domain.availability import to_us
from matching.domain.index import CandidateIndex
from matching.handlers import TABLES_AHEAD, CatalogProjection

from .builders import offer, provider, utc

DAY = timedelta(days=1)


async def test_start_up_builds_the_tables_so_the_first_request_does_not():
    idx = CandidateIndex.build([provider("p1")], [offer("a", "p1")])
    now = utc(2026, 3, 2, 8)
    projection = CatalogProjection(cast(Any, None), idx, clock=lambda: now)
    assert idx.timeline_due(to_us(now))
    assert await projection.prepare_tables()
    assert not idx.timeline_due(to_us(now))
    built = idx.timeline(to_us(now))
    assert built is not None and built.covers(to_us(now))
    assert not await projection.prepare_tables()  # still ahead: nothing built again
    assert idx.timeline(to_us(now)) is built


async def test_the_tables_move_on_a_day_before_a_request_would_rebuild_them():
    idx = CandidateIndex.build([provider("p1")], [offer("a", "p1")])
    start = utc(2026, 3, 2, 8)
    clock = [start]
    projection = CatalogProjection(cast(Any, None), idx, clock=lambda: clock[0])
    await projection.prepare_tables()
    first = idx.timeline(to_us(start))
    # the last hour at which the tables still serve a request a day later
    days = next(d for d in range(60) if idx.timeline_due(to_us(start + (d + 1) * DAY)))
    clock[0] = start + days * DAY
    assert not idx.timeline_due(to_us(clock[0]))  # a request now would not rebuild...
    assert await projection.prepare_tables()  # ...but one tomorrow would: built now
    moved = idx.timeline(to_us(clock[0] + TABLES_AHEAD))
    assert moved is not first and moved is not None
    assert not idx.timeline_due(to_us(clock[0] + TABLES_AHEAD))


def test_building_the_tables_ahead_moves_the_caches_out_of_the_collectors_reach():
    """What requests cached before the build (here: a list standing for a cache entry)
    is frozen with the tables, so full collections no longer rescan it."""
    import gc

    idx = CandidateIndex.build([provider("p1")], [offer("a", "p1")])
    gc.unfreeze()
    try:
        cached = [{"entry": i} for i in range(100)]
        assert gc.get_freeze_count() == 0 and gc.is_tracked(cached)
        idx.prepare(utc(2026, 3, 2, 8), utc(2026, 3, 3, 8))
        assert gc.get_freeze_count() >= len(cached)
        assert not any(cached is o for o in gc.get_objects())  # not in a collected generation
    finally:
        gc.unfreeze()


def test_building_the_tables_ahead_computes_each_schedules_wall_clock_hours():
    """A week's ceiling compares the declared capacity with the schedule's wall-clock
    hours: `prepare` computes them for every schedule, so no first request does."""
    from matching.domain.capacity import nominal_weekly_hours

    idx = CandidateIndex.build(
        [provider("p1"), provider("p2", zone="Asia/Kolkata")], [offer("a", "p1")]
    )
    nominal_weekly_hours.cache_clear()
    idx.prepare(utc(2026, 3, 2, 8), utc(2026, 3, 3, 8))
    before = nominal_weekly_hours.cache_info()
    for p in ("p1", "p2"):
        entry = idx.provider(p)
        assert entry is not None
        nominal_weekly_hours(entry.schedule)
    after = nominal_weekly_hours.cache_info()
    assert before.currsize == 2
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 0)
