"""The live context read by `_id` is enough: same outcome as reading every provider's load."""

import random
from datetime import date, timedelta
from decimal import Decimal

from matching.domain.capacity import capacity_key, planning_keys, week_key, weeks_between
from matching.domain.index import CandidateIndex
from matching.domain.matcher import MatchContext, context_keys, context_providers, find_matches
from matching.domain.rating import RatingStats

from .builders import at, skills, spec, utc
from .test_matcher import NOW, _random_world


def test_weeks_between_crosses_the_iso_year():
    assert weeks_between(date(2026, 12, 27), date(2027, 1, 5)) == [
        "2026-W52",
        "2026-W53",
        "2027-W01",
    ]
    assert weeks_between(date(2026, 3, 2), date(2026, 3, 2)) == ["2026-W10"]
    assert weeks_between(date(2026, 3, 3), date(2026, 3, 2)) == []


def test_planning_keys_hold_the_current_week_in_the_provider_zone():
    # Sunday 23:30 UTC is already Monday (next ISO week) in Kolkata
    now = utc(2026, 3, 8, 23, 30)
    keys = planning_keys("p", "Asia/Kolkata", now, now + timedelta(hours=5))
    assert week_key("p", now, "Asia/Kolkata") in keys
    assert keys == [capacity_key("p", "2026-W10"), capacity_key("p", "2026-W11")]
    # a deadline in the past still reads the current week (the load component)
    assert week_key("p", now, "Asia/Kolkata") in planning_keys(
        "p", "Asia/Kolkata", now, now - timedelta(days=3)
    )


def _full_context(rng: random.Random, idx: CandidateIndex, now) -> MatchContext:
    """Load on every week around `now` for every provider, ratings and trust for some."""
    reserved: dict[str, Decimal] = {}
    ratings: dict[str, RatingStats] = {}
    trusted: set[str] = set()
    for _, entry in idx.items():
        if entry is None:
            continue
        pid = entry.provider_id
        for k in range(-2, 10):
            if rng.random() < 0.5:
                week = week_key(pid, now + timedelta(weeks=k), entry.snapshot.time_zone)
                reserved[week] = Decimal(rng.choice([1, 5, 9, 39]))
        if rng.random() < 0.5:
            n = rng.randint(1, 30)
            ratings[pid] = RatingStats(n, rng.randint(n, 5 * n))
        if rng.random() < 0.2:
            trusted.add(pid)
    return MatchContext(reserved, ratings, frozenset(trusted))


def test_context_of_the_providers_that_can_qualify_gives_the_same_outcome():
    rng = random.Random(11)
    providers, offers = _random_world(rng, 600)
    idx = CandidateIndex.build(providers, offers)
    read = 0
    for _ in range(40):
        now = NOW + timedelta(hours=rng.randint(0, 24 * 14))
        start = now + timedelta(hours=rng.choice([0, 0, 30, 24 * 20]))  # not_before
        s = spec(
            deadline=start + timedelta(hours=rng.choice([8, 16, 48, 120, 24 * 40])),
            required=skills(("translation.en-fr", rng.randint(1, 5)))[: rng.randint(0, 1)],
            languages=rng.sample(["fr", "en", "de"], k=rng.randint(1, 2)),
            effort=rng.choice(["1", "2.5", "6", "12"]),
        ).model_copy(update={"not_before": start if start > now else None})
        tried = frozenset(f"p{rng.randrange(300)}" for _ in range(3))
        full = _full_context(rng, idx, now)
        wanted = context_providers(idx, s, now, exclude_providers=tried)
        keys = set()
        for pid in wanted:
            entry = idx.provider(pid)
            assert entry is not None
            keys |= set(context_keys(entry, s, now))  # what the edge reads
        # what the edge reads by `_id`: only these providers' counters and weeks
        partial = MatchContext(
            {k: v for k, v in full.reserved_hours.items() if k in keys},
            {p: r for p, r in full.ratings.items() if p in wanted},
            full.trusted_providers,
        )
        a = find_matches(idx, s, now, context=full, exclude_providers=tried, limit=10_000)
        b = find_matches(idx, s, now, context=partial, exclude_providers=tried, limit=10_000)
        assert a == b
        read += len(wanted)
    candidates = sum(len({o.provider_id for o, _ in idx.items()}) for _ in range(40))
    assert 0 < read < candidates  # fewer reads than every provider each time


def test_planning_keys_cover_every_week_a_plan_reserves():
    rng = random.Random(3)
    providers, offers = _random_world(rng, 300)
    idx = CandidateIndex.build(providers, offers)
    seen = 0
    for _ in range(30):
        now = at("Europe/Paris", 2026, 12, 24, 12) + timedelta(hours=rng.randint(0, 24 * 10))
        start = now + timedelta(days=rng.choice([0, 0, 2, 40]))
        s = spec(deadline=start + timedelta(days=rng.choice([1, 3, 20])), effort="12")
        s = s.model_copy(update={"not_before": start if start > now else None})
        for c in find_matches(idx, s, now, limit=10_000).candidates:
            assert set(c.reservation) <= set(context_keys(c.provider, s, now))
            seen += 1
    assert seen
