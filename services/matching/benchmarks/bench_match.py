"""Match latency: candidate index vs brute-force scan over the same catalog.

Not a test. For each size (default 1k, 10k, 100k and 1M offers, fixed seed),
in a fresh process so that memory is measured per size:

- index build time: the index's own work on the snapshots (their generation
  is timed apart and left out); then the working-time tables for the requests'
  two months (`CandidateIndex.prepare`, column 'tables s': a service builds them
  on its first request and every few weeks), and the process RSS once both are
  built (before the brute force's own copy of the catalog exists);
- p50 / p99 of `find_matches` over `--queries` requests, with what the service
  then reads of the outcome (`matched`: the proposed candidate's agreed terms,
  score and booking, or the explanation when nobody qualifies; they are built
  when first read);
- p50 / p99 of `find_matches_bruteforce` (every offer, one by one) over the
  first `--scan-queries` of those requests (fewer at large sizes: a scan of
  1M offers takes seconds; the output says how many); each of them must give
  the very same outcome as the index, else the run stops. At 1M the scan
  regenerates the catalog chunk by chunk (generation time subtracted), as 1M
  pydantic snapshots would not fit in memory; the ratio compares the two on
  the same sampled requests.

Run: `.venv/bin/python services/matching/benchmarks/bench_match.py`
(`--sizes 1000 10000`, `--queries N`, `--scan-queries N` to change).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

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
SCAN_CHUNK = 20_000


class Pools:
    """Shared immutable parts, so that generating 1M snapshots takes seconds, not minutes
    (snapshots are built with `model_construct`: the values are valid by construction)."""

    def __init__(self) -> None:
        self.spans: dict[tuple[Weekday, int, int], WorkingSpan] = {}
        self.skills: dict[tuple[str, int], SkillLevel] = {}
        self.money: dict[int, Money] = {}

    def span(self, d: Weekday, start_h: int, length: int) -> WorkingSpan:
        key = (d, start_h, length)
        if key not in self.spans:
            self.spans[key] = WorkingSpan(
                day=d, start=f"{start_h:02d}:00", end=f"{(start_h + length) % 24:02d}:00"
            )
        return self.spans[key]

    def skill(self, code: str, level: int) -> SkillLevel:
        key = (code, level)
        if key not in self.skills:
            self.skills[key] = SkillLevel(code=code, level=level)
        return self.skills[key]

    def eur(self, amount: int) -> Money:
        if amount not in self.money:
            self.money[amount] = Money.of(amount, "EUR")
        return self.money[amount]


def _provider(rng: random.Random, pools: Pools, i: int) -> ProviderSnapshot:
    start_h = rng.choice([6, 8, 9, 10, 14, 20])
    length = rng.choice([4, 6, 8, 9])
    days = DAYS[:5] if rng.random() < 0.8 else rng.sample(DAYS, k=rng.randint(2, 6))
    return ProviderSnapshot.model_construct(
        provider_id=f"prv_{i}",
        version=1,
        display_name=f"Provider {i}",
        country="FR",
        languages=rng.sample(LANGS, k=2),
        time_zone=rng.choice(ZONES),
        schedule=[pools.span(d, start_h, length) for d in days],
        weekly_capacity_hours=Decimal(rng.choice([10, 20, 35, 40])),
        skills=[],
        sap_declaration=None,
        status=ProviderStatus.ACTIVE if rng.random() > 0.03 else ProviderStatus.SUSPENDED,
        updated_at=STAMP,
        response_window_minutes=None,
    )


def _pricing(
    rng: random.Random, pools: Pools
) -> HourlyPricing | PackagePricing | SubscriptionPricing | PerUnitPricing:
    r = rng.random()
    if r < 0.6:
        return HourlyPricing(rate=pools.eur(rng.randint(8, 60)))
    if r < 0.75:
        return PackagePricing(
            price=pools.eur(rng.randint(40, 700)), hours_included=Decimal(rng.randint(2, 40))
        )
    if r < 0.9:
        return SubscriptionPricing(
            price_per_period=pools.eur(rng.randint(10, 50)),
            included_hours=Decimal(rng.randint(1, 6)),
            overage_rate=pools.eur(rng.randint(10, 30)),
        )
    return PerUnitPricing(unit_name="module", unit_price=pools.eur(rng.randint(5, 40)))


def _offer(rng: random.Random, pools: Pools, j: int, n_providers: int) -> OfferSnapshot:
    cat = rng.choice(CATEGORIES)
    return OfferSnapshot.model_construct(
        offer_id=f"off_{j}",
        provider_id=f"prv_{rng.randrange(n_providers)}",
        version=1,
        status=OfferStatus.PUBLISHED if rng.random() > 0.02 else OfferStatus.WITHDRAWN,
        title=f"Offer {j}",
        description="",
        category=cat,
        skills=[pools.skill(c, rng.randint(1, 5)) for c in rng.sample(SKILLS[cat], k=2)],
        languages=rng.sample(LANGS, k=rng.randint(1, 3)),
        delivery_mode=DeliveryMode.REMOTE,
        sap_activity=None,
        sap_remote_flag=False,
        typical_effort_hours=Decimal(rng.choice([1, 2, 3])),
        currency="EUR",
        pricing=_pricing(rng, pools),
        updated_at=STAMP,
    )


def n_providers(n_offers: int) -> int:
    return max(10, n_offers // 4)


def providers(n_offers: int) -> Iterator[ProviderSnapshot]:
    rng, pools = random.Random(SEED + n_offers), Pools()
    for i in range(n_providers(n_offers)):
        yield _provider(rng, pools, i)


def offers(n_offers: int) -> Iterator[OfferSnapshot]:
    rng, pools = random.Random(SEED - n_offers), Pools()
    for j in range(n_offers):
        yield _offer(rng, pools, j, n_providers(n_offers))


class Timed:
    """Wraps a generator and adds up the time spent producing its items."""

    def __init__(self, items: Iterable[object]) -> None:
        self.items, self.spent = iter(items), 0.0

    def __iter__(self) -> Iterator[object]:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(self.items)
            except StopIteration:
                return
            self.spent += time.perf_counter() - t0
            yield item


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


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - Linux only


def chunked_items(idx: CandidateIndex, n: int, clock: list[float]) -> Iterator[Item]:
    """The catalog again, generated SCAN_CHUNK offers at a time; generation time goes
    to `clock[0]` (subtracted from the scan's)."""
    gen = offers(n)
    while True:
        t0 = time.perf_counter()
        chunk = [(o, idx.provider(o.provider_id)) for o in _take(gen, SCAN_CHUNK)]
        clock[0] += time.perf_counter() - t0
        if not chunk:
            return
        yield from chunk


def _take(gen: Iterator[OfferSnapshot], k: int) -> list[OfferSnapshot]:
    out = []
    for o in gen:
        out.append(o)
        if len(out) == k:
            break
    return out


def matched(
    idx: Any, spec: RequestSpec, now: datetime, find: Callable[..., Any] = find_matches
) -> Any:
    """`find_matches` and what the service then reads of the outcome (parts are built
    when first read): the proposed candidate's agreed terms, score, reservation,
    capacity and response window (`ClientRequest.propose`, the reservation), or the
    explanation when nobody qualifies."""
    out = find(idx, spec, now)
    best = out.best
    if best is None:
        _ = out.reasons
    else:
        _ = (best.terms(), best.score, best.reservation, best.capacity, best.response)
    return out


def one(n: int, n_queries: int, n_scan: int) -> dict[str, float]:
    """One size, measured in this process."""
    gc.collect()
    base_rss = rss_mb()
    ps, os_ = Timed(providers(n)), Timed(offers(n))
    t0 = time.perf_counter()
    idx = CandidateIndex.build(ps, os_)  # type: ignore[arg-type]
    build = time.perf_counter() - t0 - ps.spent - os_.spent
    qs = requests(n_queries)
    t0 = time.perf_counter()
    # the working-time tables of the requests' two months (a service builds them on its
    # first request, then every four weeks; see the README)
    idx.prepare(min(now for _, now in qs), max(now for _, now in qs))
    tables = time.perf_counter() - t0
    gc.collect()
    rss = rss_mb()
    for spec, now in requests(5):  # first calls: imports, lazy zone data
        find_matches(idx, spec, now)
    t_idx: list[float] = []
    c_idx: list[float] = []
    outcomes: list[MatchOutcome] = []
    for spec, now in qs:
        c, t = time.process_time(), time.perf_counter()
        outcomes.append(matched(idx, spec, now))
        t_idx.append((time.perf_counter() - t) * 1000)
        c_idx.append((time.process_time() - c) * 1000)
    held: list[Item] | None = None
    if n < 500_000:  # 100k snapshots fit in memory (about 400 MB); 1M would not
        held = [(o, idx.provider(o.provider_id)) for o in offers(n)]
    t_scan: list[float] = []
    for k, (spec, now) in enumerate(qs[:n_scan]):
        clock = [0.0]
        items = held if held is not None else chunked_items(idx, n, clock)
        t = time.perf_counter()
        out = find_matches_bruteforce(items, spec, now)
        t_scan.append((time.perf_counter() - t - clock[0]) * 1000)
        if out != outcomes[k]:
            raise SystemExit(f"index and scan disagree on request {k} at {n} offers")
    same = t_idx[: len(t_scan)]
    return {
        "offers": n,
        "build_s": build,
        "tables_s": tables,
        "gen_s": ps.spent + os_.spent,
        "rss_mb": rss,
        "base_rss_mb": base_rss,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "queries": len(t_idx),
        "index_p50": pct(t_idx, 50),
        "index_p99": pct(t_idx, 99),
        "index_cpu_p50": pct(c_idx, 50),
        "index_cpu_p99": pct(c_idx, 99),
        "scan_queries": len(t_scan),
        "scan_p50": pct(t_scan, 50),
        "scan_p99": pct(t_scan, 99),
        "ratio_p50": pct(t_scan, 50) / pct(same, 50),
    }


def default_scan(n: int, n_queries: int) -> int:
    return n_queries if n <= 10_000 else 40 if n <= 100_000 else 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--scan-queries", type=int, default=None)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        scan = args.scan_queries or default_scan(args.one, args.queries)
        print(json.dumps(one(args.one, args.queries, scan)))
        return
    print(
        f"{args.queries} requests per size for the index; the brute force on the first "
        "--scan-queries of them (column 'scan n'); times in ms; ratio = scan p50 / index "
        "p50 on those same requests; 'idx cpu' = the index's CPU time per request (the "
        "part of the wall time that is not waiting for a core on a shared machine)"
    )
    print(
        f"{'offers':>9} {'build s':>8} {'tables s':>8} {'RSS MB':>7} "
        f"{'index p50':>10} {'index p99':>10} "
        f"{'scan n':>7} {'scan p50':>9} {'scan p99':>9} {'ratio':>7} "
        f"{'idx cpu p50':>11} {'idx cpu p99':>11}"
    )
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--queries", str(args.queries)]
        if args.scan_queries:
            cmd += ["--scan-queries", str(args.scan_queries)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)  # noqa: S603 - this script
        r = json.loads(done.stdout)
        print(
            f"{n:>9} {r['build_s']:>8.2f} {r['tables_s']:>8.2f} {r['rss_mb']:>7.0f} "
            f"{r['index_p50']:>10.3f} "
            f"{r['index_p99']:>10.3f} {r['scan_queries']:>7} {r['scan_p50']:>9.2f} "
            f"{r['scan_p99']:>9.2f} {r['ratio_p50']:>6.0f}x "
            f"{r['index_cpu_p50']:>11.3f} {r['index_cpu_p99']:>11.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
