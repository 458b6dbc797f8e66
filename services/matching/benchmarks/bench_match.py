"""Match latency: candidate index vs brute-force scan over the same read model.

Not a test: prints p50/p99 per catalog size (1k, 10k, 100k offers, fixed seed).
Run: `uv run python services/matching/benchmarks/bench_match.py [--queries N]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from delego_shared.events.catalog import (
    OfferSnapshot,
    OfferStatus,
    ProviderSnapshot,
    ProviderStatus,
)
from delego_shared.events.common import (
    DeliveryMode,
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SkillLevel,
    SubscriptionPricing,
    Weekday,
    WorkingSpan,
)
from delego_shared.types import Money
from matching.domain.index import CandidateIndex
from matching.domain.matcher import MatchOutcome, find_matches, find_matches_bruteforce
from matching.domain.readmodel import ProviderEntry
from matching.domain.spec import RequestSpec

Item = tuple[OfferSnapshot, ProviderEntry | None]
SEED = 20121201
STAMP = datetime(2026, 1, 1, tzinfo=UTC)
ZONES = [
    "Europe/Paris",
    "Asia/Kolkata",
    "America/Montreal",
    "Australia/Sydney",
    "Africa/Casablanca",
    "Asia/Manila",
    "America/Sao_Paulo",
    "Europe/Bucharest",
]
CATEGORIES = [f"cat{i:02d}" for i in range(40)]
SKILLS = {c: [f"{c}.s{j}" for j in range(8)] for c in CATEGORIES}
LANGS = ["fr", "en", "es", "de", "pt", "ar", "hi", "it"]
DAYS = list(Weekday)


def _provider(rng: random.Random, i: int) -> ProviderSnapshot:
    start_h = rng.choice([6, 8, 9, 10, 14, 20])
    length = rng.choice([4, 6, 8, 9])
    days = DAYS[:5] if rng.random() < 0.8 else rng.sample(DAYS, k=rng.randint(2, 6))
    schedule = [
        WorkingSpan(day=d, start=f"{start_h:02d}:00", end=f"{(start_h + length) % 24:02d}:00")
        for d in days
    ]
    return ProviderSnapshot(
        provider_id=f"prv_{i}",
        version=1,
        display_name=f"Provider {i}",
        country="FR",
        languages=rng.sample(LANGS, k=2),
        time_zone=rng.choice(ZONES),
        schedule=schedule,
        weekly_capacity_hours=Decimal(rng.choice([10, 20, 35, 40])),
        skills=[],
        status=ProviderStatus.ACTIVE if rng.random() > 0.03 else ProviderStatus.SUSPENDED,
        updated_at=STAMP,
    )


def eur(amount: int) -> Money:
    return Money.of(amount, "EUR")


def _pricing(
    rng: random.Random,
) -> HourlyPricing | PackagePricing | SubscriptionPricing | PerUnitPricing:
    r = rng.random()
    if r < 0.6:
        return HourlyPricing(rate=eur(rng.randint(8, 60)))
    if r < 0.75:
        return PackagePricing(
            price=eur(rng.randint(40, 700)), hours_included=Decimal(rng.randint(2, 40))
        )
    if r < 0.9:
        return SubscriptionPricing(
            price_per_period=eur(rng.randint(10, 50)),
            included_hours=Decimal(rng.randint(1, 6)),
            overage_rate=eur(rng.randint(10, 30)),
        )
    return PerUnitPricing(unit_name="module", unit_price=eur(rng.randint(5, 40)))


def _offer(rng: random.Random, j: int, n_providers: int) -> OfferSnapshot:
    cat = rng.choice(CATEGORIES)
    return OfferSnapshot(
        offer_id=f"off_{j}",
        provider_id=f"prv_{rng.randrange(n_providers)}",
        version=1,
        status=OfferStatus.PUBLISHED if rng.random() > 0.02 else OfferStatus.WITHDRAWN,
        title=f"Offer {j}",
        category=cat,
        skills=[SkillLevel(code=c, level=rng.randint(1, 5)) for c in rng.sample(SKILLS[cat], k=2)],
        languages=rng.sample(LANGS, k=rng.randint(1, 3)),
        delivery_mode=DeliveryMode.REMOTE,
        typical_effort_hours=Decimal(rng.choice([1, 2, 3])),
        currency="EUR",
        pricing=_pricing(rng),
        updated_at=STAMP,
    )


def world(n_offers: int) -> tuple[list[ProviderSnapshot], list[OfferSnapshot]]:
    rng = random.Random(SEED + n_offers)
    n_providers = max(10, n_offers // 4)
    return (
        [_provider(rng, i) for i in range(n_providers)],
        [_offer(rng, j, n_providers) for j in range(n_offers)],
    )


def requests(n: int) -> list[tuple[RequestSpec, datetime]]:
    rng = random.Random(SEED)
    base = datetime(2026, 3, 2, 8, tzinfo=UTC)
    out = []
    for _ in range(n):
        cat = rng.choice(CATEGORIES)
        now = base + timedelta(minutes=rng.randrange(60 * 24 * 60))
        spec = RequestSpec(
            category=cat,
            required_skills=[SkillLevel(code=rng.choice(SKILLS[cat]), level=rng.randint(2, 4))],
            languages=rng.sample(LANGS, k=rng.randint(1, 2)),
            effort_hours=Decimal(rng.choice(["1", "2", "3.5", "6"])),
            client_zone=rng.choice(ZONES),
            budget=Money.of(rng.choice([80, 150, 400]), "EUR") if rng.random() < 0.7 else None,
            deadline=now + timedelta(hours=rng.choice([12, 24, 48, 96])),
        )
        out.append((spec, now))
    return out


def _time(fn: Callable[[], MatchOutcome]) -> tuple[float, MatchOutcome]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def run(sizes: list[int], n_queries: int) -> None:
    qs = requests(n_queries)
    print(f"{n_queries} requests per size; times in ms (p50 / p99)")
    print(
        f"{'offers':>8} {'build s':>8} {'index p50':>10} {'index p99':>10} "
        f"{'scan p50':>9} {'scan p99':>9} {'p50 ratio':>10} {'avg cands':>10}"
    )
    for n in sizes:
        providers, offers = world(n)
        t0 = time.perf_counter()
        idx = CandidateIndex.build(providers, offers)
        build = time.perf_counter() - t0
        items = list(idx.items())
        for spec, now in qs[:5]:  # warm caches for both paths alike
            find_matches(idx, spec, now)
            find_matches_bruteforce(items, spec, now)
        t_idx: list[float] = []
        t_scan: list[float] = []
        cands = 0
        for k, (spec, now) in enumerate(qs):

            def a(
                spec: RequestSpec = spec, now: datetime = now, idx: CandidateIndex = idx
            ) -> MatchOutcome:
                return find_matches(idx, spec, now)

            def b(
                spec: RequestSpec = spec, now: datetime = now, items: list[Item] = items
            ) -> MatchOutcome:
                return find_matches_bruteforce(items, spec, now)

            if k % 2:
                ti, oi = _time(a)
                ts, os_ = _time(b)
            else:
                ts, os_ = _time(b)
                ti, oi = _time(a)
            if oi != os_:
                raise SystemExit(f"index and scan disagree on request {k}")
            t_idx.append(ti)
            t_scan.append(ts)
            cands += len(idx.candidate_ids(spec.category, spec.required_skills, spec.languages))
        i50, i99, s50, s99 = pct(t_idx, 50), pct(t_idx, 99), pct(t_scan, 50), pct(t_scan, 99)
        print(
            f"{n:>8} {build:>8.2f} {i50:>10.3f} {i99:>10.3f} {s50:>9.2f} {s99:>9.2f} "
            f"{s50 / i50:>9.0f}x {cands / len(qs):>10.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    args = ap.parse_args()
    run(args.sizes, args.queries)


if __name__ == "__main__":
    main()
