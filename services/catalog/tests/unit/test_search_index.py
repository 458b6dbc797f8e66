"""The SQLite search read model against `domain.search`, its specification.

The property test feeds random catalogs (several versions of each snapshot,
applied in random order and batches, as the topics and commands deliver
them) and random queries, then pages through both to the end: same items,
same cursors. The other tests pin one behaviour each.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from catalog.adapters.sqlite_search import SqliteSearchIndex
from catalog.domain import (
    OfferQuery,
    SearchPage,
    ValidationFailed,
    check_query,
    search_offers,
)
from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
ZONES = ["Europe/Paris", "Asia/Kolkata", "America/Montreal"]
CATEGORIES = ["tutoring", "translation", "dating_assistance"]
SKILLS = [
    "tutoring.maths",
    "tutoring.french",
    "translation.en-fr",
    "dating_assistance.date_planning",
]
LANGS = ["fr", "fr-BE", "fr-CA", "en", "en-GB", "hi"]
WORDS = [
    "Traduction",
    "juridique",
    "été",
    "ÉLÈVE",
    "naïve",
    "cœur",
    "déménagement",
    "translation",
    "Translator",
    "maths",
    "résumé",
    "CV",
    "ça",
    "leçons",
    "2026",
]
AMOUNTS = ["5", "12.50", "12.5", "20", "40", "650", "1000.99"]


def provider(
    pid: str, version: int, status: str = "active", tz: str = "Europe/Paris"
) -> ProviderSnapshot:
    return ProviderSnapshot.model_validate(
        {
            "provider_id": pid,
            "version": version,
            "display_name": pid,
            "country": "FR",
            "languages": ["fr", "en"],
            "time_zone": tz,
            "schedule": [],
            "weekly_capacity_hours": "30",
            "skills": [{"code": s, "level": 5} for s in SKILLS],
            "status": status,
            "updated_at": NOW.isoformat(),
        }
    )


def pricing(model: str, amount: str, currency: str) -> dict[str, Any]:
    money = {"amount": amount, "currency": currency}
    return {
        "hourly": {"model": "hourly", "rate": money},
        "package": {"model": "package", "price": money, "hours_included": "10"},
        "subscription": {"model": "subscription", "price_per_period": money, "included_hours": "4"},
        "per_unit": {"model": "per_unit", "unit_name": "module", "unit_price": money},
    }[model]


def offer(oid: str, pid: str, version: int, **overrides: Any) -> OfferSnapshot:
    data: dict[str, Any] = {
        "offer_id": oid,
        "provider_id": pid,
        "version": version,
        "status": "published",
        "title": "Traduction juridique",
        "description": "",
        "category": "translation",
        "skills": [{"code": "translation.en-fr", "level": 3}],
        "languages": ["fr"],
        "delivery_mode": "remote",
        "typical_effort_hours": "2",
        "currency": "EUR",
        "pricing": pricing("hourly", "20", "EUR"),
        "updated_at": NOW.isoformat(),
    }
    data.update(overrides)
    return OfferSnapshot.model_validate(data)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteSearchIndex]:
    idx = SqliteSearchIndex(tmp_path / "search.sqlite")
    yield idx
    idx.close()


def all_pages(search: Any, query: OfferQuery) -> list[SearchPage]:
    """Every page of a query, following `next_cursor`."""
    pages = [search(query)]
    while pages[-1].next_cursor is not None and len(pages) < 200:
        pages.append(search(query.model_copy(update={"cursor": pages[-1].next_cursor})))
    return pages


def index_search(index: SqliteSearchIndex):
    return lambda q: index.search_now(q, check_query(q))


# -- the property ---------------------------------------------------------------------------

text_words = st.lists(
    st.sampled_from(WORDS) | st.text(alphabet="abcéèçœEÉ- '", min_size=1, max_size=6),
    min_size=0,
    max_size=4,
)


@st.composite
def offer_versions(draw: st.DrawFn, oid: str) -> list[OfferSnapshot]:
    """One offer's history (1-3 versions), each version a different state."""
    pid = draw(st.sampled_from(["p0", "p1", "p2", "p0", "p1", "p_unknown"]))
    versions = []
    for v in range(1, draw(st.integers(1, 3)) + 1):
        langs = draw(st.lists(st.sampled_from(LANGS), min_size=1, max_size=3, unique_by=str.lower))
        currency = draw(st.sampled_from(["EUR", "EUR", "USD"]))
        versions.append(
            offer(
                oid,
                pid,
                v,
                status=draw(st.sampled_from(["published"] * 4 + ["withdrawn", "draft"])),
                title=" ".join(draw(text_words)) or "x",
                description=" ".join(draw(text_words)),
                category=draw(st.sampled_from(CATEGORIES)),
                skills=[
                    {"code": c, "level": draw(st.integers(1, 5))}
                    for c in draw(
                        st.lists(st.sampled_from(SKILLS), min_size=1, max_size=2, unique=True)
                    )
                ],
                languages=langs,
                delivery_mode=draw(st.sampled_from(["remote", "at_home", "mixed"])),
                currency=currency,
                pricing=pricing(
                    draw(st.sampled_from(["hourly", "package", "subscription", "per_unit"])),
                    draw(st.sampled_from(AMOUNTS)),
                    currency,
                ),
            )
        )
    return versions


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[ProviderSnapshot | OfferSnapshot], list[int]]:
    snaps: list[ProviderSnapshot | OfferSnapshot] = []
    for pid in ["p0", "p1", "p2"]:
        for v in range(1, draw(st.integers(1, 3)) + 1):
            status = draw(st.sampled_from(["active", "active", "suspended"]))
            snaps.append(provider(pid, v, status, draw(st.sampled_from(ZONES))))
    for i in range(draw(st.integers(0, 20))):
        snaps.extend(draw(offer_versions(f"off_{i:02d}")))
    order = draw(st.permutations(list(range(len(snaps)))))
    batches = draw(st.lists(st.integers(1, 5), min_size=1, max_size=len(snaps) + 1))
    return [snaps[i] for i in order], batches


def sometimes() -> st.SearchStrategy[bool]:
    """A filter in a third of the queries (several filters at once still match something)."""
    return st.integers(0, 2).map(lambda n: n == 0)


@st.composite
def queries(draw: st.DrawFn) -> OfferQuery:
    data: dict[str, Any] = {"limit": draw(st.integers(1, 4))}
    if draw(sometimes()):
        data["category"] = draw(st.sampled_from(CATEGORIES))
    if draw(sometimes()):
        data["skill"] = draw(st.sampled_from(SKILLS))
        data["min_level"] = draw(st.none() | st.integers(1, 5))
    if draw(sometimes()):
        data["language"] = draw(st.sampled_from([*LANGS, "FR", "fr-be", "de", "en-US"]))
    if draw(sometimes()):
        amount = draw(st.sampled_from([*AMOUNTS, "12.49", "12.501", "0.01", "999999999999999999"]))
        data["max_price"] = {"amount": amount, "currency": draw(st.sampled_from(["EUR", "USD"]))}
    if draw(sometimes()):
        data["pricing_model"] = draw(
            st.sampled_from(["hourly", "package", "subscription", "per_unit"])
        )
    if draw(sometimes()):
        data["delivery_mode"] = draw(st.sampled_from(["remote", "at_home", "mixed"]))
    if draw(sometimes()):
        data["time_zones"] = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=2))
    if draw(sometimes()):
        words = draw(
            st.lists(
                st.sampled_from(WORDS).flatmap(
                    lambda w: st.integers(1, len(w)).map(lambda n: w[:n])
                )
                | st.text(alphabet="abcéçEÉ", min_size=1, max_size=3),
                min_size=1,
                max_size=3,
            )
        )
        data["text"] = draw(st.sampled_from([" ", ", ", "-"])).join(words)
    return OfferQuery.model_validate(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(), query=queries(), text_walk=st.sampled_from([0, 1, 3, 1000]))
def test_read_model_returns_exactly_what_the_specification_returns(world, query, text_walk):
    """`text_walk`: text by FTS5 only (0), by a walk that stops early and goes on with
    FTS5 (1, 3: the seam between the two), by the walk alone (1000)."""
    snaps, batches = world
    latest_offers: dict[str, OfferSnapshot] = {}
    latest_providers: dict[str, ProviderSnapshot] = {}
    for s in snaps:
        if isinstance(s, OfferSnapshot):
            if s.offer_id not in latest_offers or latest_offers[s.offer_id].version < s.version:
                latest_offers[s.offer_id] = s
        elif (
            s.provider_id not in latest_providers
            or latest_providers[s.provider_id].version < s.version
        ):
            latest_providers[s.provider_id] = s
    with tempfile.TemporaryDirectory() as tmp:
        index = SqliteSearchIndex(Path(tmp) / "search.sqlite", text_walk=text_walk)
        try:
            rest, sizes = list(snaps), iter(batches)
            while rest:
                n = next(sizes, len(rest))
                batch, rest = rest[:n], rest[n:]
                index.apply_now(
                    offers=[s for s in batch if isinstance(s, OfferSnapshot)],
                    providers=[s for s in batch if isinstance(s, ProviderSnapshot)],
                )
            try:
                expected = all_pages(
                    lambda q: search_offers(latest_offers.values(), latest_providers, q), query
                )
            except ValidationFailed:
                return  # e.g. text without a word: the API answers 422 before any search
            assert all_pages(index_search(index), query) == expected
        finally:
            index.close()


# -- one behaviour each ---------------------------------------------------------------------


def ids(page: SearchPage) -> list[str]:
    return [o.offer_id for o in page.items]


def search(index: SqliteSearchIndex, **filters: Any) -> SearchPage:
    q = OfferQuery.model_validate(filters)
    return index.search_now(q, check_query(q))


def test_an_older_snapshot_never_overwrites_a_newer_one(index):
    index.apply_now(providers=[provider("p0", 1)])
    assert index.apply_now(offers=[offer("o1", "p0", 2, category="tutoring")]) == 1
    assert index.apply_now(offers=[offer("o1", "p0", 1, category="translation")]) == 0
    assert ids(search(index, category="tutoring")) == ["o1"]
    assert ids(search(index, category="translation")) == []


def test_a_withdrawn_offer_is_not_revived_by_a_late_published_snapshot(index):
    index.apply_now(providers=[provider("p0", 1)])
    index.apply_now(offers=[offer("o1", "p0", 3, status="withdrawn")])
    index.apply_now(offers=[offer("o1", "p0", 2)])
    assert ids(search(index)) == []


def test_suspending_a_provider_hides_its_offers_and_reinstating_shows_them(index):
    index.apply_now(offers=[offer("o1", "p0", 1)])  # before its provider is known
    assert ids(search(index)) == []
    index.apply_now(providers=[provider("p0", 1)])
    assert ids(search(index)) == ["o1"]
    index.apply_now(providers=[provider("p0", 2, status="suspended")])
    assert ids(search(index)) == []
    index.apply_now(providers=[provider("p0", 3, tz="Asia/Kolkata")])
    assert ids(search(index, time_zones=["Asia/Kolkata"])) == ["o1"]


def test_text_folds_accents_and_case_and_matches_word_prefixes_in_french_and_english(index):
    index.apply_now(providers=[provider("p0", 1)])
    index.apply_now(
        offers=[
            offer("o_fr", "p0", 1, title="Traduction juridique", description="Contrats, été 2026"),
            offer("o_en", "p0", 1, title="Legal translation", description="Contracts & résumés"),
        ]
    )
    assert ids(search(index, text="ETE")) == ["o_fr"]
    assert ids(search(index, text="tradu jurid")) == ["o_fr"]
    assert ids(search(index, text="translat")) == ["o_en"]
    assert ids(search(index, text="resume")) == ["o_en"]
    assert sorted(ids(search(index, text="contra"))) == ["o_en", "o_fr"]
    assert ids(search(index, text="juridique translation")) == []  # every word is required
    assert ids(search(index, text="ridique")) == []  # prefixes, not infixes


def test_text_without_a_word_is_refused():
    with pytest.raises(ValidationFailed) as exc:
        check_query(OfferQuery(text=" -- "))
    assert exc.value.issues[0].field == "text"


def test_cursor_paging_has_no_gaps_or_repeats_while_offers_are_added(index):
    index.apply_now(providers=[provider("p0", 1)])
    prices = [Decimal(p) for p in range(10, 30)]
    index.apply_now(
        offers=[
            offer(f"o{i:02d}", "p0", 1, pricing=pricing("hourly", str(p), "EUR"))
            for i, p in enumerate(prices)
        ]
    )
    seen: list[str] = []
    page = search(index, limit=5)
    rng = random.Random(7)
    while True:
        seen.extend(ids(page))
        # concurrent publications on both sides of the cursor
        extra = f"n{len(seen):02d}"
        index.apply_now(
            offers=[
                offer(extra + "lo", "p0", 1, pricing=pricing("hourly", "1", "EUR")),
                offer(
                    extra + "hi",
                    "p0",
                    1,
                    pricing=pricing("hourly", str(rng.randint(31, 40)), "EUR"),
                ),
            ]
        )
        if page.next_cursor is None:
            break
        page = search(index, limit=5, cursor=page.next_cursor)
    assert len(seen) == len(set(seen))
    assert [s for s in seen if s.startswith("o")] == [f"o{i:02d}" for i in range(20)]
    assert not [s for s in seen if s.endswith("lo")]  # behind the cursor: never seen


def test_positions_are_kept_with_the_snapshots_across_a_reopen(tmp_path):
    path = tmp_path / "search.sqlite"
    first = SqliteSearchIndex(path)
    first.apply_now(providers=[provider("p0", 1)], positions={("catalog.providers.v1", 0): 4})
    first.apply_now(offers=[offer("o1", "p0", 1)], positions={("catalog.offers.v1", 2): 9})
    first.close()
    again = SqliteSearchIndex(path)
    try:
        assert again.positions_now() == {
            ("catalog.providers.v1", 0): 4,
            ("catalog.offers.v1", 2): 9,
        }
        assert ids(search(again)) == ["o1"]
    finally:
        again.close()


async def test_a_rebuild_replaces_everything_and_records_the_positions(index):
    index.apply_now(providers=[provider("p0", 1)], offers=[offer("gone", "p0", 1)])

    async def batches():
        yield [
            offer("o1", "p0", 1).model_dump(mode="json"),
            offer("o2", "p0", 1, status="withdrawn").model_dump(mode="json"),
        ]
        yield [offer("o3", "p0", 2).model_dump(mode="json")]

    count = await index.rebuild({("t", 0): 5}, [provider("p0", 1)], batches())
    assert count == 3
    assert await index.positions() == {("t", 0): 5}
    page = await index.search(OfferQuery(), None)
    assert ids(page) == ["o1", "o3"]


async def test_a_rebuild_is_swapped_in_under_readers_that_searched_the_old_file(index, tmp_path):
    index.apply_now(providers=[provider("p0", 1)], offers=[offer("old", "p0", 1)])
    assert ids(await index.search(OfferQuery(), None)) == ["old"]  # a reader is open

    async def batches():
        yield [offer("new", "p0", 1).model_dump(mode="json")]

    await index.rebuild({("t", 0): 1}, [provider("p0", 1)], batches())
    assert ids(await index.search(OfferQuery(), None)) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir() if "rebuild" in p.name) == []
    index.apply_now(offers=[offer("later", "p0", 1, title="Cours de maths")])
    assert ids(search(index, text="math")) == ["later"]


def test_a_rebuild_cut_short_leaves_the_index_as_it_was_until_the_next_one(tmp_path):
    path = tmp_path / "search.sqlite"
    first = SqliteSearchIndex(path)
    first.apply_now(
        providers=[provider("p0", 1)], offers=[offer("o1", "p0", 1)], positions={("t", 0): 7}
    )
    first.begin_rebuild([provider("p0", 1)])
    first.load_now([offer("half", "p0", 1).model_dump(mode="json")])
    first.close()  # the process dies before end_rebuild
    again = SqliteSearchIndex(path)
    try:
        assert ids(search(again)) == ["o1"]
        assert again.positions_now() == {("t", 0): 7}
        again.begin_rebuild([provider("p0", 1)])  # the leftover file is replaced
        again.load_now([offer("o2", "p0", 1).model_dump(mode="json")])
        again.end_rebuild({("t", 0): 9})
        assert ids(search(again)) == ["o2"]
        assert again.positions_now() == {("t", 0): 9}
    finally:
        again.close()


def test_text_too_rare_for_the_walk_is_found_by_fts_after_where_the_walk_stopped(tmp_path):
    index = SqliteSearchIndex(tmp_path / "search.sqlite", text_walk=3)
    try:
        index.apply_now(providers=[provider("p0", 1)])
        index.apply_now(
            offers=[
                offer(
                    f"o{i}",
                    "p0",
                    1,
                    title="Traduction juridique" if i in (1, 6, 7) else "Cours de maths",
                    pricing=pricing("hourly", str(10 + i), "EUR"),
                )
                for i in range(10)
            ]
        )
        # the walk meets o0-o2 (o1 matches), FTS5 finds o6 and o7 after o2; page of 2
        first = search(index, text="jurid", limit=2)
        assert ids(first) == ["o1", "o6"]
        assert ids(search(index, text="jurid", limit=2, cursor=first.next_cursor)) == ["o7"]
        assert ids(search(index, text="juridique cours")) == []
        assert ids(search(index, text="m", limit=3)) == ["o0", "o2", "o3"]  # 1-letter prefix
    finally:
        index.close()
