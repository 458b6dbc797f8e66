"""Property: the index path gives exactly the brute-force outcome, DST weeks included.

Random catalogs (providers in Paris, New York, Kolkata, Sydney, with night and
day schedules), random incremental updates applied to the index after its
build, random live context (load, ratings, trust), exclusions and limits, and
requests around the 2026 transitions of Europe/Paris and America/New_York.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from delego_shared.events.catalog import OfferStatus, ProviderStatus
from delego_shared.events.matching import LiveWindow
from delego_shared.types import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matching.domain import matcher
from matching.domain.capacity import week_key
from matching.domain.index import CandidateIndex
from matching.domain.matcher import (
    MatchContext,
    context_providers,
    find_matches,
    find_matches_bruteforce,
)
from matching.domain.rating import RatingStats

from .builders import MIXED_PRICINGS, at, offer, provider, skills, spans, spec


@contextmanager
def candidates_from(n: int) -> Iterator[None]:
    """Take the vectorised verdicts from `n` candidates on (1: always; huge: never)."""
    old = matcher.VECTOR_FROM
    matcher.VECTOR_FROM = n
    try:
        yield
    finally:
        matcher.VECTOR_FROM = old


PATHS = (1, 10**9)
"""Both paths: the columns (`classify`) and the Python verdicts (`check`)."""

ZONES = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
CODES = ["translation.en-fr", "translation.fr-en"]
# Fridays before the spring and autumn transitions of Paris and New York (2026)
MOMENTS = [
    at("Europe/Paris", 2026, 3, 27, 17),
    at("Europe/Paris", 2026, 10, 23, 17),
    at("America/New_York", 2026, 3, 6, 17),
    at("America/New_York", 2026, 10, 30, 17),
]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hhmm = st.sampled_from(["00:30", "01:30", "02:30", "06:00", "09:00", "14:00", "18:00", "22:00"])


@st.composite
def providers(draw: st.DrawFn, pid: str, version: int = 1):
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    window = draw(st.sampled_from([None, None, 30, 240]))  # their own response window
    return provider(
        pid,
        zone=draw(st.sampled_from(ZONES)),
        schedule=spans(days, draw(hhmm), draw(hhmm)),
        capacity=draw(st.sampled_from(["1", "6", "40"])),
        skill_levels=skills((draw(st.sampled_from(CODES)), draw(st.integers(1, 5)))),
        status=draw(st.sampled_from([ProviderStatus.ACTIVE] * 4 + [ProviderStatus.SUSPENDED])),
        version=version,
    ).model_copy(update={"response_window_minutes": window})


@st.composite
def offers(draw: st.DrawFn, oid: str, n_providers: int, version: int = 1):
    return offer(
        oid,
        f"p{draw(st.integers(0, n_providers - 1))}",
        category=draw(st.sampled_from(["translation", "translation", "tutoring"])),
        skill_levels=skills((draw(st.sampled_from(CODES)), draw(st.integers(1, 5)))),
        languages=draw(
            st.lists(st.sampled_from(["fr", "en", "de", "fr-CA"]), min_size=1, max_size=2)
        ),
        pricing=draw(st.sampled_from(MIXED_PRICINGS)),
        status=draw(st.sampled_from([OfferStatus.PUBLISHED] * 5 + [OfferStatus.WITHDRAWN])),
        typical=draw(st.sampled_from(["1", "2"])),
        version=version,
    )


@st.composite
def worlds(draw: st.DrawFn):
    n_p = draw(st.integers(1, 12))
    ps = [draw(providers(f"p{i}")) for i in range(n_p)]
    os_ = [draw(offers(f"o{j}", n_p)) for j in range(draw(st.integers(1, 30)))]
    idx = CandidateIndex.build(ps, os_)
    for _ in range(draw(st.integers(0, 8))):  # incremental updates after the build
        kind = draw(st.sampled_from(["offer", "provider", "withdraw", "remove"]))
        if kind == "offer":
            oid = f"o{draw(st.integers(0, 35))}"
            idx.upsert_offer(draw(offers(oid, n_p, version=draw(st.integers(2, 9)))))
        elif kind == "provider":
            pid = f"p{draw(st.integers(0, n_p - 1))}"
            idx.upsert_provider(draw(providers(pid, version=draw(st.integers(2, 9)))))
        elif kind == "withdraw":
            oid = f"o{draw(st.integers(0, 35))}"
            idx.upsert_offer(
                offer(oid, "p0", status=OfferStatus.WITHDRAWN, version=draw(st.integers(2, 9)))
            )
        else:
            idx.remove_offer(f"o{draw(st.integers(0, 35))}", version=draw(st.integers(2, 9)))
    return idx, n_p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_index_and_brute_force_agree(world, data):
    idx, n_p = world
    now = data.draw(st.sampled_from(MOMENTS)) + timedelta(
        minutes=data.draw(st.integers(0, 4 * 24 * 60))
    )
    live = None
    if data.draw(st.booleans()) and data.draw(st.booleans()):
        start = now + timedelta(hours=data.draw(st.integers(1, 30)))
        live = LiveWindow(start=start, end=start + timedelta(hours=1))
    effort = data.draw(st.sampled_from(["0.5", "2.5", "7", None]))
    s = spec(
        deadline=now + timedelta(hours=data.draw(st.sampled_from([6, 14, 40, 120]))),
        required=skills(("translation.en-fr", data.draw(st.integers(1, 5))))[
            : data.draw(st.integers(0, 1))
        ],
        languages=data.draw(st.lists(st.sampled_from(["fr", "en", "de"]), min_size=1, max_size=2)),
        effort=effort,
        units=3 if effort is None else data.draw(st.sampled_from([None, 3])),
        budget=data.draw(st.sampled_from([None, Money.of("60", "EUR"), Money.of("200", "EUR")])),
        live_window=live,
    )
    pids = [f"p{i}" for i in range(n_p)]
    loaded = data.draw(st.lists(st.sampled_from(pids), max_size=3, unique=True))
    context = MatchContext(
        reserved_hours={
            week_key(p, now + timedelta(days=d), "Europe/Paris"): Decimal(
                data.draw(st.sampled_from(["0.5", "3", "39"]))
            )
            for p in loaded
            for d in (0, 3)
        },
        ratings={p: RatingStats(4, data.draw(st.integers(4, 20))) for p in loaded},
        trusted_providers=frozenset(data.draw(st.lists(st.sampled_from(pids), max_size=2))),
    )
    exclude = frozenset(data.draw(st.lists(st.sampled_from(pids), max_size=2)))
    limit = data.draw(st.sampled_from([None, 1, 2, 10_000]))

    want = find_matches_bruteforce(
        idx.items(), s, now, context=context, exclude_providers=exclude, limit=limit
    )
    for path in PATHS:
        with candidates_from(path):
            got = find_matches(idx, s, now, context=context, exclude_providers=exclude, limit=limit)
            assert got == want
            # the live-context shortcut: with only those providers' load, the same outcome
            few = context_providers(idx, s, now, exclude_providers=exclude)
            narrowed = MatchContext(
                reserved_hours={
                    k: v for k, v in context.reserved_hours.items() if k.split(":")[0] in few
                },
                ratings={k: v for k, v in context.ratings.items() if k in few},
                trusted_providers=context.trusted_providers,
            )
            assert (
                find_matches(idx, s, now, context=narrowed, exclude_providers=exclude, limit=limit)
                == want
            )
    assert sum(r.count for r in want.reasons) + len(want.candidates) <= want.offers_considered


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.sampled_from(MOMENTS), st.integers(1, 5))
def test_top_k_by_branch_and_bound_is_the_brute_force_top_k(rng, moment, limit):
    """Dense worlds where many offers qualify, so pruning the ranking matters."""
    ps = [
        provider(
            f"p{i}",
            zone=rng.choice(ZONES),
            schedule=spans(DAYS, rng.choice(["00:00", "06:00", "08:00"]), "23:00"),
            capacity=rng.choice(["6", "40"]),
            skill_levels=skills(("translation.en-fr", 5)),
        )
        for i in range(15)
    ]
    os_ = [
        offer(
            f"o{j}", f"p{rng.randrange(15)}", pricing=rng.choice(MIXED_PRICINGS), languages=["fr"]
        )
        for j in range(40)
    ]
    idx = CandidateIndex.build(ps, os_)
    now = moment + timedelta(minutes=rng.randrange(3 * 24 * 60))
    s = spec(
        deadline=now + timedelta(hours=rng.choice([20, 48, 96])),
        effort=rng.choice(["1", "2.5"]),
        budget=rng.choice([None, Money.of("200", "EUR")]),
    )
    context = MatchContext(
        reserved_hours={
            week_key(f"p{i}", now, ps[i].time_zone): Decimal(rng.choice([0, 2, 5]))
            for i in range(15)
        },
        ratings={f"p{i}": RatingStats(rng.randint(0, 9), rng.randint(0, 9) * 5) for i in range(15)},
    )
    want = find_matches_bruteforce(idx.items(), s, now, context=context, limit=limit)
    assert len(want.candidates) == limit  # dense enough to prune
    for path in PATHS:
        with candidates_from(path):
            assert find_matches(idx, s, now, context=context, limit=limit) == want
