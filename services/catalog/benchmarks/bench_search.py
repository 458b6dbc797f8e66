"""Search latency with 100k offers: p50/p99 of three typical filters through `CatalogStore.search`.

Not a test: it prints a table. Offers are bulk-inserted in the store's own document
format (`offer_document`), with the store's indexes, into a throw-away database.

    DELEGO_MONGODB_URL=mongodb://127.0.0.1:27117/ \
        uv run python services/catalog/benchmarks/bench_search.py [--offers 100000] [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from catalog.domain import OfferQuery
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
CATEGORIES = list(SKILLS)
N_PROVIDERS = 2_000


def providers(rng: random.Random) -> list[ProviderSnapshot]:
    out = []
    for i in range(N_PROVIDERS):
        suspended = i % 50 == 0
        out.append(
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
                status=ProviderStatus.SUSPENDED if suspended else ProviderStatus.ACTIVE,
                updated_at=NOW,
            )
        )
    return out


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
    category = rng.choice(CATEGORIES)
    skills = rng.sample(SKILLS[category], k=1)
    status = rng.choices(
        [OfferStatus.PUBLISHED, OfferStatus.DRAFT, OfferStatus.WITHDRAWN], weights=[85, 10, 5]
    )[0]
    return OfferSnapshot(
        offer_id=f"off_b{i:07d}",
        provider_id=provider.provider_id,
        version=2,
        status=status,
        title=f"Offer {i}",
        description="Benchmark offer",
        category=category,
        skills=[SkillLevel(code=s, level=rng.randint(1, 5)) for s in skills],
        languages=rng.sample(LANGS, k=rng.randint(1, 2)),
        delivery_mode=rng.choices(list(DeliveryMode), weights=[80, 10, 10])[0],
        typical_effort_hours=Decimal(4),
        currency="EUR",
        pricing=pricing(rng),
        updated_at=NOW,
    )


async def load(mongo: Mongo, n: int, seed: int) -> None:
    rng = random.Random(seed)
    provs = providers(rng)
    await mongo.ensure_indexes(store_indexes())
    coll = mongo.db[OFFERS]
    batch: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i in range(n):
        batch.append(offer_document(offer(i, rng, p := rng.choice(provs)), p))
        if len(batch) == 2_000 or i == n - 1:
            await coll.insert_many(batch, ordered=False)
            batch.clear()
            done = i + 1
            if done % 20_000 == 0 or done == n:
                rate = done / (time.perf_counter() - started)
                print(f"  loaded {done:>7} offers ({rate:,.0f}/s)", flush=True)


QUERIES: dict[str, OfferQuery] = {
    "category + max price (tutoring, <= 30 EUR)": OfferQuery(
        category="tutoring", max_price=Money(amount=Decimal(30), currency="EUR")
    ),
    "skill >= 3 + language (translation.en-fr, fr)": OfferQuery(
        skill="translation.en-fr", min_level=3, language="fr"
    ),
    "time zone + delivery + model (Kolkata, remote, hourly)": OfferQuery(
        time_zones=["Asia/Kolkata"], delivery_mode=DeliveryMode.REMOTE, pricing_model="hourly"
    ),
}


async def measure(store: CatalogStore, runs: int) -> list[tuple[str, int, float, float, float]]:
    rows = []
    for label, query in QUERIES.items():
        first = await store.search(query)  # warm-up; also the page-2 cursor
        total = await store.offers.count_documents(_filter_for(query))
        samples = []
        for r in range(runs):
            q = query if r % 2 == 0 else query.model_copy(update={"cursor": first.next_cursor})
            t0 = time.perf_counter()
            page = await store.search(q)
            samples.append((time.perf_counter() - t0) * 1000)
            assert page.items, "a benchmark query found nothing"
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[min(len(samples) - 1, round(0.99 * len(samples)) - 1)]
        rows.append((label, total, p50, p99, samples[-1]))
    return rows


def _filter_for(query: OfferQuery) -> dict[str, Any]:
    return search_filter(query, None)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offers", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50, help="searches per filter")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()
    url = os.environ.get("DELEGO_MONGODB_URL", "mongodb://127.0.0.1:27117/")
    database = f"bench_catalog_{args.offers}"
    mongo = Mongo(url, database, timeout_ms=10_000)
    try:
        await mongo.client.drop_database(database)
        print(f"loading {args.offers:,} offers into {url} database {database}")
        await load(mongo, args.offers, args.seed)
        store = CatalogStore(mongo, "/delego/catalog-bench")
        rows = await measure(store, args.runs)
        print(f"\nsearch latency, page of 20, {args.runs} runs per filter (half of them page 2)")
        print(f"{'filter':<56} {'matches':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, total, p50, p99, worst in rows:
            print(f"{label:<56} {total:>8} {p50:>8.1f} {p99:>8.1f} {worst:>8.1f}")
    finally:
        if not args.keep:
            await mongo.client.drop_database(database)
        await mongo.close()


if __name__ == "__main__":
    asyncio.run(main())
