"""The candidate index: set intersections, incremental and version-aware updates."""

import numpy as np
from delego_shared.events.catalog import OfferStatus, ProviderStatus
from hypothesis import given
from hypothesis import strategies as st
from matching.domain.index import CandidateIndex

from .builders import offer, provider, skills

EN_FR_4 = skills(("translation.en-fr", 4))


def ids(idx: CandidateIndex, required=EN_FR_4, langs=("fr",), category="translation"):
    return idx.candidate_ids(category, required, list(langs))


def test_selects_by_category_skill_level_and_language():
    idx = CandidateIndex.build(
        [provider("p1"), provider("p2"), provider("p3"), provider("p4")],
        [
            offer("o1", "p1"),
            offer("o2", "p2", skill_levels=skills(("translation.en-fr", 3))),
            offer("o3", "p3", languages=["de"]),
            offer("o4", "p4", category="tutoring"),
        ],
    )
    assert ids(idx) == {"o1"}
    assert ids(idx, required=skills(("translation.en-fr", 3))) == {"o1", "o2"}
    assert ids(idx, langs=("de",), required=[]) == {"o3"}
    assert ids(idx, langs=("fr-BE", "de"), required=[]) == {"o1", "o2", "o3"}
    assert ids(idx, category="tutoring", required=[]) == {"o4"}
    assert ids(idx, category="nothing") == set()


def test_provider_skills_count_for_its_offers():
    idx = CandidateIndex.build(
        [provider("p1", skill_levels=skills(("translation.en-fr", 5)))],
        [offer("o1", "p1", skill_levels=[])],
    )
    assert ids(idx, required=skills(("translation.en-fr", 5))) == {"o1"}


def test_an_older_snapshot_never_overwrites_a_newer_one():
    idx = CandidateIndex()
    assert idx.upsert_provider(provider("p1"))
    assert idx.upsert_offer(offer("o1", "p1", version=3))
    assert not idx.upsert_offer(offer("o1", "p1", version=2, category="tutoring"))
    assert not idx.upsert_offer(offer("o1", "p1", version=3, category="tutoring"))  # replay
    got = idx.offer("o1")
    assert got is not None
    assert got.version == 3
    assert got.category == "translation"
    assert not idx.upsert_provider(provider("p1", status=ProviderStatus.SUSPENDED))  # v1 again
    assert ids(idx) == {"o1"}


def test_updates_move_the_offer_between_sets():
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1")])
    idx.upsert_offer(offer("o1", "p1", version=2, category="tutoring", languages=["de"]))
    assert ids(idx) == set()
    assert ids(idx, category="tutoring", langs=("de",)) == {"o1"}
    assert idx.published_in("translation") == set()
    idx.upsert_offer(offer("o1", "p1", version=3, skill_levels=skills(("translation.en-fr", 2))))
    assert ids(idx) == set()
    assert ids(idx, required=skills(("translation.en-fr", 2))) == {"o1"}


def test_withdrawn_offer_leaves_the_index():
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1")])
    idx.upsert_offer(offer("o1", "p1", version=2, status=OfferStatus.WITHDRAWN))
    assert ids(idx) == set()
    assert idx.published_in("translation") == set()


def test_suspending_a_provider_hides_its_offers_and_reinstating_restores_them():
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1"), offer("o2", "p1")])
    idx.upsert_provider(provider("p1", version=2, status=ProviderStatus.SUSPENDED))
    assert ids(idx) == set()
    assert idx.published_in("translation") == {"o1", "o2"}  # still counted for explanations
    idx.upsert_provider(provider("p1", version=3))
    assert ids(idx) == {"o1", "o2"}


def test_an_offer_before_its_provider_waits_for_it():
    idx = CandidateIndex()
    idx.upsert_offer(offer("o1", "p9"))
    assert ids(idx) == set()
    idx.upsert_provider(provider("p9"))
    assert ids(idx) == {"o1"}


def test_removal_is_tombstoned_by_version():
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1", version=2)])
    assert not idx.remove_offer("o1", version=1)  # older than what we hold
    assert idx.remove_offer("o1", version=4)
    assert ids(idx) == set()
    assert len(idx) == 0
    assert not idx.upsert_offer(offer("o1", "p1", version=3))  # late, stale event
    assert idx.upsert_offer(offer("o1", "p1", version=5))
    assert ids(idx) == {"o1"}


def test_removing_a_provider_unindexes_its_offers():
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1")])
    assert idx.remove_provider("p1", version=2)
    assert ids(idx) == set()
    assert not idx.upsert_provider(provider("p1", version=1))
    assert idx.upsert_provider(provider("p1", version=3))
    assert ids(idx) == {"o1"}


def test_prefilter_counts_attribute_the_first_failing_filter():
    idx = CandidateIndex.build(
        [provider(f"p{i}") for i in range(5)] + [provider("px", status=ProviderStatus.SUSPENDED)],
        [
            offer("o0", "p0"),
            offer("o1", "p1", skill_levels=skills(("translation.en-fr", 2)), languages=["de"]),
            offer("o2", "p2", skill_levels=skills(("translation.en-fr", 2))),
            offer("o3", "p3", languages=["de"]),
            offer("o4", "p4", skill_levels=skills(("translation.en-fr", 4), ("legal", 1))),
            offer("ox", "px"),
        ],
    )
    counts = idx.prefilter_counts("translation", EN_FR_4, ["fr"])
    assert {k.value if hasattr(k, "value") else k: v for (k, _), v in counts.items() if v} == {
        "available": 1,
        "skill": 2,
        "language": 1,
    }


def test_load_over_a_live_index_gives_the_same_sets_as_applying_one_by_one():
    one_by_one = CandidateIndex()
    for p in (provider("p1"), provider("p2")):
        one_by_one.upsert_provider(p)
    for o in (offer("o1", "p1"), offer("o2", "p2", languages=["de"])):
        one_by_one.upsert_offer(o)
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1")])
    idx.load(
        [provider("p2"), provider("p1", version=2)],
        [offer("o2", "p2", languages=["de"]), offer("o1", "p1", version=1)],  # o1 v1: stale
    )
    for langs in (("fr",), ("de",), ("fr", "de")):
        assert ids(idx, langs=langs) == ids(one_by_one, langs=langs)
    assert idx.published_in("translation") == {"o1", "o2"}
    idx.upsert_offer(offer("o2", "p2", version=2, status=OfferStatus.WITHDRAWN))
    assert ids(idx, langs=("de",)) == set()


def test_the_stored_snapshots_come_back_equal():
    p, o = provider("p1", sap="SAP123456789"), offer("o1", "p1", typical="1.5")
    idx = CandidateIndex.build([p], [o])
    assert idx.offer("o1") == o
    entry = idx.provider("p1")
    assert entry is not None
    assert entry.snapshot == p
    assert idx.offer("nope") is None


def test_price_memo_is_shared_by_requests_of_the_same_work_and_bounded():
    """Requests with the same effort and units share one dict of estimates (the matcher
    fills it); another effort gets its own; past the bound every dict starts afresh."""
    from decimal import Decimal

    idx = CandidateIndex()
    two_hours = idx.priced((Decimal(2), None))
    two_hours[1] = (Decimal(2), 2, None, 7_200_000_000, Decimal(2))
    idx.note_priced(1)
    assert idx.priced((Decimal(2), None)) is two_hours
    assert idx.priced((Decimal(3), None)) == {}
    assert idx.priced((None, 4)) is not idx.priced((Decimal(3), None))
    idx.note_priced(200_000)
    assert idx.priced((Decimal(5), None)) == {}
    assert idx.priced((Decimal(2), None)) == {}


def test_offers_share_a_price_class_exactly_when_pricing_and_typical_effort_are_equal():
    """The matcher caches estimates per price class: equal pricing and typical effort
    (equal values, distinct objects) share one, any difference gets its own."""
    from .builders import hourly

    idx = CandidateIndex.build(
        [provider("p1", capacity="1")],
        [
            offer("a", "p1", pricing=hourly("25")),
            offer("b", "p1", pricing=hourly("25")),
            offer("c", "p1", pricing=hourly("25"), typical="2"),
            offer("d", "p1", pricing=hourly("26")),
        ],
    )
    cls = {row.offer_id: row.price_class for row in idx.rows_of("p1")}
    assert cls["a"] == cls["b"]
    assert len({cls["a"], cls["c"], cls["d"]}) == 3


def test_the_price_pool_holds_each_price_once_and_cached_estimates_are_untracked():
    """Equal estimates of different pricings share one pool entry (its digits kept);
    after a collection the cached estimates are no longer tracked by the GC (atoms
    only), so a full collection does not walk them. (The Python path fills them: a
    provider whose capacity needs checking week by week takes it.)"""
    import gc
    from decimal import Decimal

    from matching.domain.matcher import find_matches

    from .builders import hourly, spec, utc

    idx = CandidateIndex.build(
        [provider("p1", capacity="1")],
        [
            offer("a", "p1", pricing=hourly("25")),
            offer("b", "p1", pricing=hourly("25", minimum=30, inc=30), typical="2"),
            offer("c", "p1", pricing=hourly("26")),
        ],
    )
    now = utc(2026, 3, 2, 8)
    find_matches(idx, spec(effort="2", deadline=utc(2026, 3, 9)), now)
    assert sorted(str(m.amount) for m in idx.prices) == ["50.00", "52.00"]
    entries = list(idx.priced((Decimal(2), None)).values())
    assert len(entries) == 3
    gc.collect()
    assert not any(gc.is_tracked(e) for e in entries)


def test_price_columns_are_kept_for_a_bounded_number_of_request_shapes():
    from decimal import Decimal

    idx = CandidateIndex.build([provider("p1")], [offer("a", "p1")])
    first = idx.price_columns((Decimal(1), None))
    assert idx.price_columns((Decimal(1), None)) is first
    for h in range(2, 18):
        idx.price_columns((Decimal(h), None))
    assert idx.price_columns((Decimal(1), None)) is not first  # started afresh


def test_the_timeline_follows_now_and_the_schedules_added():
    """Built on first need around `now`, kept while `now` and its next two weeks are
    held, rebuilt further on; a schedule added later is in the next build."""
    from matching.domain.availability import to_us

    from .builders import spans, utc

    idx = CandidateIndex.build([provider("p1")], [offer("a", "p1")])
    now = to_us(utc(2026, 3, 2, 8))
    tl = idx.timeline(now)
    assert tl is not None and tl.covers(now) and tl.n == 1
    assert idx.timeline(now + 3 * 86_400_000_000) is tl
    later = now + 30 * 86_400_000_000
    moved = idx.timeline(later)
    assert moved is not tl and moved is not None and moved.covers(later)
    assert moved.covers(now)  # the weeks held before are kept (within 26 weeks)
    idx.upsert_provider(provider("p2", schedule=spans(["sat"], "09:00", "12:00")))
    assert idx.timeline(later) is moved  # one new schedule: its walks take the Python path
    assert idx.prepare(utc(2026, 3, 2), utc(2026, 3, 9)).n == 2


@given(st.sets(st.integers(0, 5000), max_size=200))
def test_ordinal_array_lists_the_set_bits_in_order(positions):
    from matching.domain.index import ordinal_array

    bits = sum(1 << i for i in positions)
    got = ordinal_array(bits)
    assert got.dtype == np.int64
    assert got.tolist() == sorted(positions)
