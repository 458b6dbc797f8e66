"""Ranking, explanations, and the index agreeing with a brute-force scan."""

import random
from datetime import timedelta
from decimal import Decimal

from delego_shared.events.catalog import OfferStatus, ProviderStatus
from delego_shared.events.matching import LiveWindow
from delego_shared.types import Money
from matching.domain.availability import to_us
from matching.domain.index import CandidateIndex
from matching.domain.matcher import (
    MatchContext,
    find_matches,
    find_matches_bruteforce,
)
from matching.domain.policy import MatchingPolicy
from matching.domain.rating import RatingStats
from matching.domain.spec import NextWorkingDay, RequestDraft

from .builders import MIXED_PRICINGS, WEEKDAYS, at, hourly, offer, provider, skills, spans, spec

NOW = at("Europe/Paris", 2026, 2, 10, 18, 30)  # Tuesday evening in Paris
NEXT_MORNING = at("Europe/Paris", 2026, 2, 11, 9)


def kolkata(pid: str, **kw):
    return provider(pid, zone="Asia/Kolkata", **kw)


def test_explained_failure_counts_each_offer_once_with_times_in_client_zone():
    providers, offers = [], []
    for i in range(5):  # would fit, but skill too low
        providers.append(kolkata(f"ps{i}"))
        offers.append(offer(f"os{i}", f"ps{i}", skill_levels=skills(("translation.en-fr", 3))))
    for i in range(4):  # Paris office hours: cannot finish before 09:00
        providers.append(provider(f"pp{i}"))
        offers.append(offer(f"op{i}", f"pp{i}", pricing=hourly("20")))
    for i in range(3):  # in time, too expensive
        providers.append(kolkata(f"pb{i}"))
        offers.append(offer(f"ob{i}", f"pb{i}", pricing=hourly("30")))
    idx = CandidateIndex.build(providers, offers)
    s = spec(deadline=NEXT_MORNING, budget=Money.of("50.00", "EUR"))

    out = find_matches(idx, s, NOW)

    assert out.best is None
    assert out.offers_considered == 12
    assert [(r.filter, r.count) for r in out.reasons] == [
        ("skill", 5),
        ("deadline", 4),
        ("budget", 3),
    ]
    assert out.summary == (
        "12 offers in category translation; 5 lack skill translation.en-fr ≥ 4; "
        "4 cannot finish before 09:00 Europe/Paris (Wed 2026-02-11); "
        "3 over budget (50.00 EUR)"
    )
    assert find_matches_bruteforce(idx.items(), s, NOW) == out


def test_explanation_for_other_filters_and_empty_category():
    idx = CandidateIndex.build(
        [kolkata("p1", status=ProviderStatus.SUSPENDED), kolkata("p2"), kolkata("p3")],
        [
            offer("o1", "p1"),
            offer("o2", "p2", languages=["de"]),
            offer("o3", "p3", pricing=hourly("30", "USD")),
        ],
    )
    s = spec(deadline=NEXT_MORNING, budget=Money.of("500", "EUR"))
    out = find_matches(idx, s, NOW)
    assert {r.filter: r.message for r in out.reasons} == {
        "available": "1 not published or their provider is not active",
        "language": "1 share no language with fr",
        "currency": "1 priced in another currency than EUR",
    }
    empty = find_matches(idx, spec(deadline=NEXT_MORNING, category="tax"), NOW)
    assert empty.summary == "no published offer in category tax"
    assert empty.offers_considered == 0


def test_live_window_and_capacity_reasons_are_explained():
    idx = CandidateIndex.build(
        [kolkata("p1"), kolkata("p2", capacity="1")], [offer("o1", "p1"), offer("o2", "p2")]
    )
    window = LiveWindow(
        start=at("Europe/Paris", 2026, 2, 11, 16), end=at("Europe/Paris", 2026, 2, 11, 17)
    )
    s = spec(deadline=at("Europe/Paris", 2026, 2, 12, 9), live_window=window)
    out = find_matches(idx, s, NOW)
    assert {r.filter: r.count for r in out.reasons} == {"live_window": 2}
    assert "(Wed 16:00-Wed 17:00 Europe/Paris)" in out.reasons[0].message
    out2 = find_matches(idx, spec(deadline=at("Europe/Paris", 2026, 2, 12, 9)), NOW)
    assert [c.offer.offer_id for c in out2.candidates] == ["o1"]
    assert [(r.filter, r.message) for r in out2.reasons] == [
        ("capacity", "1 lack weekly capacity for 2 h")
    ]
    assert out2.summary.startswith("2 offers in category translation; 1 qualify; ")


def test_ranking_follows_the_weighted_score():
    idx = CandidateIndex.build(
        [kolkata("fast"), kolkata("cheap"), kolkata("loved")],
        [
            offer("o_fast", "fast", pricing=hourly("40")),
            offer("o_cheap", "cheap", pricing=hourly("10")),
            offer("o_loved", "loved", pricing=hourly("40")),
        ],
    )
    s = spec(deadline=NEXT_MORNING, budget=Money.of("100", "EUR"))
    ctx = MatchContext(
        ratings={"loved": RatingStats(40, 192)},
        trusted_providers=frozenset({"loved"}),
    )
    out = find_matches(idx, s, NOW, context=ctx)
    assert [c.provider.provider_id for c in out.candidates] == ["loved", "cheap", "fast"]
    best = out.candidates[0]
    assert best.score.trust_bonus == 1.0
    assert best.score.total == max(c.score.total for c in out.candidates)
    price_only = MatchingPolicy(weights={"price": 1.0})
    out2 = find_matches(idx, s, NOW, context=ctx, policy=price_only)
    assert out2.candidates[0].provider.provider_id == "cheap"
    assert out2.candidates[0].score.total == 0.8  # 1 - 20/100


def test_load_spreads_work_to_the_less_busy_provider():
    idx = CandidateIndex.build(
        [kolkata("busy"), kolkata("idle")], [offer("o1", "busy"), offer("o2", "idle")]
    )
    ctx = MatchContext(reserved_hours={"busy:2026-W07": Decimal(30)})
    out = find_matches(idx, spec(deadline=NEXT_MORNING), NOW, context=ctx)
    assert [c.provider.provider_id for c in out.candidates] == ["idle", "busy"]
    assert out.candidates[1].score.load == 0.25


def test_limit_and_exclusion():
    idx = CandidateIndex.build(
        [kolkata(f"p{i}") for i in range(8)], [offer(f"o{i}", f"p{i}") for i in range(8)]
    )
    out = find_matches(idx, spec(deadline=NEXT_MORNING), NOW, limit=3)
    assert len(out.candidates) == 3
    out2 = find_matches(
        idx,
        spec(deadline=NEXT_MORNING),
        NOW,
        exclude_providers=frozenset(f"p{i}" for i in range(7)),
    )
    assert [c.provider.provider_id for c in out2.candidates] == ["p7"]
    assert ("already_tried", 7) in [(r.filter, r.count) for r in out2.reasons]


def _random_world(rng: random.Random, n: int):
    zones = ["Europe/Paris", "Asia/Kolkata", "America/Montreal", "Australia/Sydney"]
    codes = ["translation.en-fr", "translation.fr-en", "proofreading.fr"]
    providers, offers = [], []
    for i in range(n // 2):
        start = rng.choice(["06:00", "09:00", "14:00", "22:00"])
        end = rng.choice(["12:00", "18:00", "02:00"])
        providers.append(
            provider(
                f"p{i}",
                zone=rng.choice(zones),
                schedule=spans(WEEKDAYS, start, end),
                capacity=str(rng.choice([1, 10, 40])),
                skill_levels=skills((rng.choice(codes), rng.randint(1, 5))),
                status=ProviderStatus.ACTIVE if rng.random() > 0.1 else ProviderStatus.SUSPENDED,
            )
        )
    pricings = MIXED_PRICINGS
    for j in range(n):
        offers.append(
            offer(
                f"o{j}",
                f"p{rng.randrange(n // 2)}",
                category=rng.choice(["translation", "translation", "tutoring"]),
                skill_levels=skills((rng.choice(codes), rng.randint(1, 5))),
                languages=rng.sample(["fr", "en", "de", "fr-CA"], k=rng.randint(1, 2)),
                pricing=rng.choice(pricings),
                status=OfferStatus.PUBLISHED if rng.random() > 0.05 else OfferStatus.WITHDRAWN,
            )
        )
    return providers, offers


def test_index_and_brute_force_agree_on_random_worlds():
    rng = random.Random(7)
    providers, offers = _random_world(rng, 600)
    idx = CandidateIndex.build(providers, offers)
    seen_filters: set[str] = set()
    qualified = 0
    for k in range(40):
        now = NOW + timedelta(hours=rng.randint(0, 24 * 14))
        s = spec(
            deadline=now + timedelta(hours=rng.choice([8, 16, 48, 120])),
            required=skills(("translation.en-fr", rng.randint(1, 5)))[: rng.randint(0, 1)],
            languages=rng.sample(["fr", "en", "de"], k=rng.randint(1, 2)),
            effort=rng.choice(["1", "2.5", "6"]),
            budget=rng.choice([None, Money.of("60", "EUR"), Money.of("200", "EUR")]),
            zone=rng.choice(["Europe/Paris", "America/Montreal"]),
        )
        ctx = MatchContext(reserved_hours={f"p{k}:2026-W07": Decimal(9)})
        a = find_matches(idx, s, now, context=ctx, limit=10_000)
        b = find_matches_bruteforce(idx.items(), s, now, context=ctx, limit=10_000)
        assert a == b
        assert sum(r.count for r in a.reasons) + len(a.candidates) == a.offers_considered
        seen_filters.update(r.filter for r in a.reasons)
        qualified += len(a.candidates)
    # the worlds exercise most filters and do produce matches
    assert qualified > 0
    assert {"available", "skill", "language", "budget", "deadline", "currency"} <= seen_filters


def test_draft_resolves_next_working_day_in_the_client_zone():
    draft = RequestDraft(
        category="translation",
        languages=["fr"],
        effort_hours=Decimal(2),
        client_zone="America/Montreal",
        deadline=NextWorkingDay(),
    )
    friday_night = at("America/Montreal", 2026, 3, 6, 20)
    assert draft.resolve(friday_night).deadline == at("America/Montreal", 2026, 3, 9, 9)


def test_offers_the_timeline_cannot_decide_take_the_python_walk_with_the_same_outcome(
    monkeypatch,
):
    """A schedule added after the working-time tables were built, and a deadline beyond
    their weeks: those candidates take the Python verdict, the outcome is unchanged."""
    from matching.domain import matcher

    monkeypatch.setattr(matcher, "VECTOR_FROM", 1)  # the columns even for a few offers
    now = at("Europe/Paris", 2026, 3, 27, 17)
    ps = [provider(f"p{i}", schedule=spans(WEEKDAYS, "09:00", f"1{i}:00")) for i in range(4)]
    idx = CandidateIndex.build(ps, [offer(f"o{i}", f"p{i}") for i in range(4)])
    s = spec(deadline=now + timedelta(days=3))
    assert idx.timeline(to_us(now)) is not None  # builds the tables
    idx.upsert_provider(provider("p9", schedule=spans(["sat", "sun"], "06:00", "08:00")))
    idx.upsert_offer(offer("o9", "p9"))
    tl = idx.timeline(to_us(now))
    assert tl is not None and tl.n == 4  # p9's schedule is not in it
    assert tl.hi < to_us(now + timedelta(days=120))
    for deadline in (now + timedelta(days=3), now + timedelta(days=120)):
        s = spec(deadline=deadline, effort="2")
        got = find_matches(idx, s, now, limit=10)
        assert got == find_matches_bruteforce(idx.items(), s, now, limit=10)
        assert "o9" in {c.offer.offer_id for c in got.candidates}


def test_candidates_parse_their_offer_snapshot_only_when_read():
    """Ranking parses no snapshot and builds no score breakdown or booking (most
    candidates are never proposed); reading `offer` parses the row's, equal to the
    catalog's, reading `score` builds the brute force's, and the outcomes (bookings
    included) are equal."""
    from matching.domain import index as index_module
    from matching.domain.matcher import Lazy

    providers = [kolkata(f"p{i}") for i in range(40)]
    offers = [offer(f"o{i}", f"p{i}", pricing=hourly(str(10 + i))) for i in range(40)]
    idx = CandidateIndex.build(providers, offers)
    s = spec(deadline=at("Europe/Paris", 2026, 2, 12, 9))
    index_module._offer_snapshot.cache_clear()

    out = find_matches(idx, s, NOW)

    assert len(out.candidates) == 5
    assert index_module._offer_snapshot.cache_info().currsize == 0
    best = out.candidates[0]
    assert best.offer_id == best.offer.offer_id
    assert best.offer == next(o for o in offers if o.offer_id == best.offer_id)
    assert best.terms().offer_id == best.offer_id
    assert index_module._offer_snapshot.cache_info().currsize == 1
    assert all(isinstance(c.scored, Lazy) for c in out.candidates)
    assert all(isinstance(c.booked, Lazy) for c in out.candidates)
    brute = find_matches_bruteforce(idx.items(), s, NOW)
    assert [c.score for c in out.candidates] == [c.score for c in brute.candidates]
    assert brute == out


def test_agreed_terms_are_the_snapshots_without_parsing_them():
    """A proposal's terms come from the index's row and provider entry: the same terms
    as made from the catalog's snapshots (SAP number, delivery mode, activity and
    currency included), and no snapshot is parsed for them."""
    from delego_shared.events.common import AgreedTerms, DeliveryMode
    from matching.domain import index as index_module
    from matching.domain import readmodel

    providers = [kolkata(f"p{i}", sap=f"SAP{i:09d}" if i % 2 else None) for i in range(12)]
    offers = [
        offer(f"o{i}", f"p{i}", pricing=hourly(str(10 + i))).model_copy(
            update={
                "delivery_mode": DeliveryMode.AT_HOME if i % 3 else DeliveryMode.REMOTE,
                "sap_activity": "assistance_administrative" if i % 2 else None,
            }
        )
        for i in range(12)
    ]
    idx = CandidateIndex.build(providers, offers)
    index_module._offer_snapshot.cache_clear()
    readmodel._provider_snapshot.cache_clear()

    out = find_matches(idx, spec(deadline=at("Europe/Paris", 2026, 2, 12, 9)), NOW)
    got = [c.terms() for c in out.candidates]

    assert len(got) == 5
    assert index_module._offer_snapshot.cache_info().currsize == 0
    assert readmodel._provider_snapshot.cache_info().currsize == 0
    for terms in got:
        o = next(x for x in offers if x.offer_id == terms.offer_id)
        p = next(x for x in providers if x.provider_id == o.provider_id)
        assert terms == AgreedTerms(
            offer_id=o.offer_id,
            offer_version=o.version,
            provider_id=p.provider_id,
            provider_display_name=p.display_name,
            provider_sap_number=p.sap_declaration.number if p.sap_declaration else None,
            category=o.category,
            delivery_mode=o.delivery_mode,
            sap_activity=o.sap_activity,
            currency=o.currency,
            pricing=o.pricing,
        )
    assert {t.provider_sap_number is None for t in got} == {True, False}
    assert {t.delivery_mode for t in got} == {DeliveryMode.AT_HOME, DeliveryMode.REMOTE}


def test_the_explanation_is_built_when_first_read(monkeypatch):
    """Matching counts the exclusions but writes no text; the first read of `reasons`
    builds them once, the same as `explain` on those counts."""
    from matching.domain import matcher as matcher_module

    calls = []
    real = matcher_module.explain
    monkeypatch.setattr(
        matcher_module, "explain", lambda *a: calls.append(a) or real(*a), raising=True
    )
    idx = CandidateIndex.build(
        [kolkata("p1"), kolkata("p2")], [offer("o1", "p1"), offer("o2", "p2", languages=["de"])]
    )
    s = spec(deadline=NEXT_MORNING, budget=Money.of("500", "EUR"))

    out = find_matches(idx, s, NOW)

    assert calls == []
    assert [(r.filter, r.count) for r in out.reasons] == [("language", 1)]
    assert out.summary == "2 offers in category translation; 1 qualify; 1 share no language with fr"
    assert out.summary_fr.startswith("2 offres dans la catégorie translation ; 1 convient")
    assert len(calls) == 1
    reasons, summary, summary_fr = real(*calls[0])
    assert (tuple(reasons), summary, summary_fr) == (out.reasons, out.summary, out.summary_fr)
