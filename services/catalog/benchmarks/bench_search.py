"""Catalog search: the search read model (SQLite + FTS5) and the store query, side by side.

Not a test: it prints a table per size. For each size it

- generates synthetic providers and offers (French and English titles and
  descriptions) and builds the search index through the service's own path
  (`SqliteSearchIndex.rebuild`, fed with the offers' JSON form as they come
  out of the store), timing the build;
- times `CatalogService`'s search path on it (`check_query` + the index),
  structured filters and text plus filters, half of the runs on page 2;
- at sizes up to `--store-max` only, bulk-loads the same offers into a
  throw-away database (`offer_document`, the store's format) and times
  `CatalogStore.search` (the previous implementation; FerretDB scans the
  whole collection, ~25 s per search at 100k, so larger sizes are skipped);
- reports RSS (current and peak) of this process.

    DELEGO_MONGODB_URL=mongodb://127.0.0.1:27217/ \\
        .venv/bin/python services/catalog/benchmarks/bench_search.py \\
        --offers 10000 100000 1000000 [--runs 200] [--store-max 10000] [--store-runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from catalog.adapters.sqlite_search import SqliteSearchIndex
from catalog.domain import OfferQuery, SearchPage, check_query
from catalog.store import OFFERS, CatalogStore, offer_document, search_filter, store_indexes
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
from delego_shared.mongo import Mongo
from delego_shared.types import Money

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ZONES = ["Asia/Kolkata", "Asia/Manila", "Europe/Paris", "America/Montreal", "Africa/Dakar"]
LANGS = ["en", "fr", "fr-BE", "es", "hi", "pt-BR", "de"]
SKILLS = {
    "tutoring": ["tutoring.maths", "tutoring.physics_chemistry", "tutoring.french"],
    "translation": ["translation.en-fr", "translation.fr-en", "translation.es-fr"],
    "virtual_assistance": ["virtual_assistance.agenda", "virtual_assistance.bookings"],
    "dating_assistance": ["dating_assistance.profile_writing"],
    "cv_writing": ["cv_writing.cv"],
    "concierge": ["concierge.reservations"],
}
TITLES = {
    "tutoring": [
        "Cours de maths",
        "Soutien scolaire en physique-chimie",
        "Maths tutoring for high school",
        "Aide aux devoirs du soir",
        "Préparation au baccalauréat",
        "French lessons for beginners",
    ],
    "translation": [
        "Traduction juridique anglais-français",
        "Legal translation English to French",
        "Traduction de documents officiels",
        "Relecture et correction de traductions",
        "Certified translation of diplomas",
    ],
    "virtual_assistance": [
        "Assistante virtuelle pour votre agenda",
        "Virtual assistant: bookings and travel",
        "Gestion des rendez-vous médicaux",
        "Inbox and calendar management",
    ],
    "dating_assistance": [
        "Six rendez-vous garantis",
        "Dating profile writing",
        "Rédaction de profil de rencontre",
    ],
    "cv_writing": ["Rédaction de CV percutant", "CV and cover letter review", "Relecture de CV"],
    "concierge": [
        "Conciergerie privée à distance",
        "Restaurant and theatre reservations",
        "Réservations et cadeaux d'anniversaire",
    ],
}
EXTRA = [
    "rapide",
    "urgent",
    "certifié",
    "expérimentée",
    "experienced",
    "native",
    "bilingue",
    "professionnel",
    "weekend",
    "soirée",
    "détaillé",
    "patient",
    "friendly",
    "thorough",
    "qualité",
    "confidentiel",
    "discreet",
    "efficace",
    "été",
    "hiver",
    "étudiants",
    "lycée",
    "collège",
    "université",
    "entreprises",
    "particuliers",
]
N_PROVIDERS = 2_000
BATCH = 5_000


def providers(rng: random.Random) -> list[ProviderSnapshot]:
    return [
        ProviderSnapshot(
            provider_id=f"prv_b{i:05d}",
            version=1,
            display_name=f"Provider {i}",
            country="FR",
            languages=["en", "fr"],
            time_zone=rng.choice(ZONES),
            schedule=[WorkingSpan(day=Weekday.MON, start="09:00", end="17:00")],
            weekly_capacity_hours=Decimal(30),
            skills=[],
            status=ProviderStatus.SUSPENDED if i % 50 == 0 else ProviderStatus.ACTIVE,
            updated_at=NOW,
        )
        for i in range(N_PROVIDERS)
    ]


def pricing(rng: random.Random) -> Any:
    def eur(lo: int, hi: int) -> Money:
        return Money(amount=Decimal(rng.randint(lo * 100, hi * 100)) / 100, currency="EUR")

    match rng.randrange(4):
        case 0:
            return HourlyPricing(rate=eur(8, 80))
        case 1:
            return PackagePricing(price=eur(50, 1500), hours_included=Decimal(10))
        case 2:
            return SubscriptionPricing(price_per_period=eur(10, 60), included_hours=Decimal(4))
        case _:
            return PerUnitPricing(unit_name="module", unit_price=eur(5, 40))


def offer(i: int, rng: random.Random, provider: ProviderSnapshot) -> OfferSnapshot:
    category = rng.choice(list(SKILLS))
    status = rng.choices(
        [OfferStatus.PUBLISHED, OfferStatus.DRAFT, OfferStatus.WITHDRAWN], weights=[85, 10, 5]
    )[0]
    title = f"{rng.choice(TITLES[category])} {' '.join(rng.sample(EXTRA, 2))}"
    description = " ".join(rng.sample(EXTRA, 8)) + ". " + rng.choice(TITLES[category]) + "."
    return OfferSnapshot(
        offer_id=f"off_b{i:07d}",
        provider_id=provider.provider_id,
        version=2,
        status=status,
        title=title,
        description=description,
        category=category,
        skills=[SkillLevel(code=rng.choice(SKILLS[category]), level=rng.randint(1, 5))],
        languages=rng.sample(LANGS, k=rng.randint(1, 2)),
        delivery_mode=rng.choices(list(DeliveryMode), weights=[80, 10, 10])[0],
        typical_effort_hours=Decimal(4),
        currency="EUR",
        pricing=pricing(rng),
        updated_at=NOW,
    )


def catalog(n: int, seed: int) -> tuple[list[ProviderSnapshot], Iterator[OfferSnapshot]]:
    rng = random.Random(seed)
    provs = providers(rng)

    def offers() -> Iterator[OfferSnapshot]:
        for i in range(n):
            yield offer(i, rng, rng.choice(provs))

    return provs, offers()


def eur(amount: int) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


STRUCTURED: dict[str, OfferQuery] = {
    "category + max price (tutoring, <= 30 EUR)": OfferQuery(
        category="tutoring", max_price=eur(30)
    ),
    "skill >= 3 + language (translation.en-fr, fr)": OfferQuery(
        skill="translation.en-fr", min_level=3, language="fr"
    ),
    "zone + delivery + model (Kolkata, remote, hourly)": OfferQuery(
        time_zones=["Asia/Kolkata"], delivery_mode=DeliveryMode.REMOTE, pricing_model="hourly"
    ),
    "language variant + at home (fr-BE)": OfferQuery(
        language="fr-BE", delivery_mode=DeliveryMode.AT_HOME
    ),
    "no filter (first pages of everything)": OfferQuery(),
    "rare: cv skill 5 + de + mixed + Dakar": OfferQuery(
        skill="cv_writing.cv",
        min_level=5,
        language="de",
        delivery_mode=DeliveryMode.MIXED,
        time_zones=["Africa/Dakar"],
    ),
}
TEXT: dict[str, OfferQuery] = {
    "text 'traduction juridique' + language fr": OfferQuery(
        text="traduction juridique", language="fr"
    ),
    "text 'tradu' (prefix) + max price 40 EUR": OfferQuery(text="tradu", max_price=eur(40)),
    "text 'maths lycee' (accents) + hourly": OfferQuery(text="maths lycée", pricing_model="hourly"),
    "text 'cv' + category cv_writing + Paris": OfferQuery(
        text="cv", category="cv_writing", time_zones=["Europe/Paris"]
    ),
    "text 'ete' (common word) alone": OfferQuery(text="ete"),
    "text 'ete' + at home + Dakar (no key serves them)": OfferQuery(
        text="ete", delivery_mode=DeliveryMode.AT_HOME, time_zones=["Africa/Dakar"]
    ),
}


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, MB."""
    current = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, max(0, round(0.99 * len(samples)) - 1))]
    return statistics.median(samples), p99


async def timed(
    search: Callable[[OfferQuery], Awaitable[SearchPage]], query: OfferQuery, runs: int
) -> tuple[float, float, bool]:
    """p50, p99 (ms) over `runs` searches, every other one on page 2; whether it found any."""
    first = await search(query)  # warm-up; also the page-2 cursor
    second = query.model_copy(update={"cursor": first.next_cursor}) if first.next_cursor else query
    samples = []
    for r in range(runs):
        t0 = time.perf_counter()
        await search(query if r % 2 == 0 else second)
        samples.append((time.perf_counter() - t0) * 1000)
    p50, p99 = percentiles(samples)
    return p50, p99, bool(first.items)


async def build_index(path: Path, n: int, seed: int) -> tuple[SqliteSearchIndex, float, float]:
    """The index built by `rebuild` from offers in their stored JSON form (what
    `CatalogStore.public_offers` yields); seconds spent in the index, elapsed and CPU of
    this process (generating the synthetic offers is not counted; on a shared machine
    the CPU seconds say what the build costs, the elapsed ones what it took)."""
    provs, offers = catalog(n, seed)
    index = SqliteSearchIndex(path)
    generating, generating_cpu = 0.0, 0.0

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        nonlocal generating, generating_cpu
        while True:
            t0, c0 = time.perf_counter(), time.process_time()
            raw = [o.model_dump(mode="json") for _, o in zip(range(BATCH), offers, strict=False)]
            generating += time.perf_counter() - t0
            generating_cpu += time.process_time() - c0
            if not raw:
                return
            yield raw

    t0, c0 = time.perf_counter(), time.process_time()
    count = await index.rebuild({}, provs, batches())
    seconds = time.perf_counter() - t0 - generating
    cpu = time.process_time() - c0 - generating_cpu
    assert count > 0
    return index, seconds, cpu


async def load_store(mongo: Mongo, n: int, seed: int) -> float:
    provs, offers = catalog(n, seed)
    by_id = {p.provider_id: p for p in provs}
    await mongo.ensure_indexes(store_indexes())
    coll = mongo.db[OFFERS]
    t0 = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for o in offers:
        batch.append(offer_document(o, by_id[o.provider_id]))
        if len(batch) == 2_000:
            await coll.insert_many(batch, ordered=False)
            batch.clear()
    if batch:
        await coll.insert_many(batch, ordered=False)
    return time.perf_counter() - t0


async def run_size(args: argparse.Namespace, n: int, url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        path = Path(tmp) / "search.sqlite"
        index, build_s, build_cpu = await build_index(path, n, args.seed)
        size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20  # noqa: ASYNC240
        cur, peak = rss_mb()
        print(
            f"\n## {n:,} offers — index build {build_s:.1f} s, CPU {build_cpu:.1f} s "
            f"({n / build_s:,.0f} offers/s; load average {os.getloadavg()[0]:.1f}), "
            f"file {size_mb:,.0f} MB, RSS after build {cur:,.0f} MB (peak {peak:,.0f} MB)"
        )

        async def via_index(q: OfferQuery) -> SearchPage:
            return await index.search(q, check_query(q))  # CatalogService.search

        store_rows: dict[str, tuple[float, float]] = {}
        if n <= args.store_max:
            database = f"bench_catalog_{n}"
            mongo = Mongo(url, database, timeout_ms=60_000)
            try:
                await mongo.client.drop_database(database)
                load_s = await load_store(mongo, n, args.seed)
                print(f"store: {n:,} offers loaded into {url} {database} in {load_s:.0f} s")
                store = CatalogStore(mongo, "/delego/catalog-bench")
                for label, q in STRUCTURED.items():
                    if await store.offers.count_documents(search_filter(q, None)) == 0:
                        continue
                    p50, p99, _ = await timed(store.search, q, args.store_runs)
                    store_rows[label] = (p50, p99)
            finally:
                await mongo.client.drop_database(database)
                await mongo.close()
        print(
            f"\n{'query':<50} {'matches':>8} {'index p50':>10} {'index p99':>10} "
            f"{'store p50':>10} {'store p99':>10}   (ms; {args.runs} index runs, "
            f"{args.store_runs} store runs; half on page 2)"
        )
        for label, q in [*STRUCTURED.items(), *TEXT.items()]:
            p50, p99, _ = await timed(via_index, q, args.runs)
            s = store_rows.get(label)
            cells = f"{s[0]:>10.1f} {s[1]:>10.1f}" if s else f"{'—':>10} {'—':>10}"
            print(f"{label:<50} {index.count(q):>8} {p50:>10.2f} {p99:>10.2f} {cells}")
            if args.explain:
                print("    " + " | ".join(index.explain(q)))
        cur, peak = rss_mb()
        print(f"RSS after searches {cur:,.0f} MB (peak {peak:,.0f} MB)")
        index.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offers", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--runs", type=int, default=200, help="index searches per query")
    ap.add_argument(
        "--store-max", type=int, default=10_000, help="largest size the store query is timed at"
    )
    ap.add_argument("--store-runs", type=int, default=5, help="store searches per query")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--explain", action="store_true", help="print each query plan")
    args = ap.parse_args()
    url = os.environ.get("DELEGO_MONGODB_URL", "mongodb://127.0.0.1:27017/")
    for n in args.offers:
        await run_size(args, n, url)


if __name__ == "__main__":
    asyncio.run(main())
