"""`make fuzz`: hostile records on every consumed topic, then a valid flow.

The platform runs as in `make fault-run` (own Kafka and FerretDB in
`.delego/fuzz/`, the four services as processes) or, with `--external`, on the
servers of `DELEGO_KAFKA_BOOTSTRAP` / `DELEGO_MONGODB_URL` under a fresh topic
and database prefix (nothing else there is touched). After the demo seed and
one valid flow (so every topic holds real records to copy), it sends `--count`
records (default 1,000) to each consumed topic, round robin over:

malformed JSON, a body of the wrong shape, a missing CloudEvents header, an
unknown `ce_type`, a `ce_time` that is not an instant, a forged `ce_source`, an
event of another topic, random bytes, a duplicate of a real record (same
`ce_id`: must be skipped, not parked), and about 1 MiB of invalid JSON
(`--oversized`, default 20 per topic: keeps the broker's disk use bounded).

Then it registers a provider with an offer and plays one flow through the
public HTTP APIs, waits until every group has caught up, and prints per topic:
records sent, parked per consumer group (expected: every record but the
duplicates, once per group consuming the topic), the valid records applied
after the fuzz, crashes (service processes that exited) and the lag at the end.
Exit code 1 unless every bad record is parked, nothing crashed and lag is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from delego_cli.kafka_ops import consumer_lag
from delego_cli.platform import REPO
from delego_shared.events import INVOICES, OFFERS, PROVIDERS, REQUESTS
from delego_shared.messaging.dead_letter import H_GROUP, H_REPLAY_OF
from delego_shared.messaging.topics_admin import delete_topics_with_prefix
from delego_shared.testing.kafka_tools import Record, read_records, topic_length
from flowbench.flows import BILLED_AT_COMPLETION, FlowDriver
from flowbench.platform_run import BENCH_OFFER, BenchPlatform, Ports, bench_provider, seed
from flowbench.stats import say
from pymongo import AsyncMongoClient

FUZZ_DIR = REPO / ".delego" / "fuzz"
CONSUMERS = {  # consumed topic -> services consuming it (their app.py subscriptions)
    PROVIDERS.name: ("matching", "notifications"),
    OFFERS.name: ("matching", "notifications"),
    REQUESTS.name: ("billing", "notifications"),
    INVOICES.name: ("notifications",),
}
Headers = dict[str, str]
Mutation = Callable[[Record, Record], tuple[bytes | None, Headers, bytes]]
"""(template of this topic, a record of another topic) -> key, headers, body."""


def _fresh(h: Headers, **changes: str) -> Headers:
    return {**h, "ce_id": f"fuzz-{uuid.uuid4()}", **changes}


MUTATIONS: dict[str, Mutation] = {
    "malformed_json": lambda t, o: (t.key, _fresh(t.headers), b'{"not": json'),
    "wrong_shape": lambda t, o: (t.key, _fresh(t.headers), b'{"unexpected": [1, 2, 3]}'),
    "missing_header": lambda t, o: (
        t.key,
        {k: v for k, v in _fresh(t.headers).items() if k != "ce_type"},
        t.value,
    ),
    "unknown_type": lambda t, o: (t.key, _fresh(t.headers, ce_type="delego.x.Nope.v1"), t.value),
    "bad_time": lambda t, o: (t.key, _fresh(t.headers, ce_time="yesterday noon"), t.value),
    "forged_source": lambda t, o: (t.key, _fresh(t.headers, ce_source="/delego/mallory"), t.value),
    "other_topic_event": lambda t, o: (
        o.key,
        _fresh(o.headers, ce_source=t.headers["ce_source"]),
        o.value,
    ),
    "random_bytes": lambda t, o: (os.urandom(16), _fresh(t.headers), os.urandom(256)),
    "duplicate": lambda t, o: (t.key, dict(t.headers), t.value),
}
OVERSIZED = "oversized"


@dataclass
class TopicReport:
    sent: Counter[str]
    parked: Counter[str]  # per group
    expected_parked: int
    applied: int = 0
    crashes: int = 0
    lag: int = 0


async def templates(bootstrap: str, prefix: str) -> dict[str, Record]:
    """One real record per consumed topic (the first one) to mutate."""
    out = {}
    for name in CONSUMERS:
        recs = await read_records(bootstrap, prefix + name, expect=1, timeout=30)
        if not recs:
            raise SystemExit(f"no record on {prefix + name} to start from")
        out[name] = recs[0]
    return out


async def send_fuzz(
    bootstrap: str, prefix: str, count: int, oversized: int, tpl: dict[str, Record]
) -> dict[str, Counter[str]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=1_040_000, linger_ms=5
    )
    await producer.start()
    sent: dict[str, Counter[str]] = {}
    kinds = list(MUTATIONS)
    try:
        for name in CONSUMERS:
            other = tpl[random.choice([n for n in CONSUMERS if n != name])]
            sent[name] = Counter()
            pending = []
            for i in range(count):
                if i < oversized:
                    kind = OVERSIZED
                    t = tpl[name]
                    key, headers, body = t.key, _fresh(t.headers), b"{" + b"x" * 1_030_000
                else:
                    kind = kinds[i % len(kinds)]
                    key, headers, body = MUTATIONS[kind](tpl[name], other)
                hdrs = [(k, v.encode()) for k, v in headers.items()]
                pending.append(await producer.send(prefix + name, body, key=key, headers=hdrs))
                sent[name][kind] += 1
            await asyncio.gather(*pending)
            say(f"{prefix + name}: sent {sum(sent[name].values())} records")
    finally:
        await producer.stop()
    return sent


async def parked_counts(bootstrap: str, dlq: str) -> Counter[str]:
    n = await topic_length(bootstrap, dlq)
    recs = await read_records(bootstrap, dlq, expect=n, timeout=120) if n else []
    return Counter(r.headers.get(H_GROUP, "?") for r in recs if H_REPLAY_OF not in r.headers)


async def valid_phase(bp: BenchPlatform, driver: FlowDriver, client: str) -> str:
    """A provider with an offer (catalog topics) and one flow (requests, invoices)."""
    async with httpx.AsyncClient(base_url=bp.url("catalog"), timeout=30) as cat:
        pid = f"prv-fuzz-{uuid.uuid4().hex[:6]}"
        auth = driver.auth(pid, "provider")
        r = await cat.post("/providers", json=bench_provider(99), headers=auth)
        r.raise_for_status()
        oid = (await cat.post("/offers", json=BENCH_OFFER, headers=auth)).json()["offer"][
            "offer_id"
        ]
        (await cat.post(f"/offers/{oid}/publish", headers=auth)).raise_for_status()
    return await one_flow(driver, client)


async def one_flow(driver: FlowDriver, client: str) -> str:
    r = await driver.http.post(
        "/requests", json=driver.body(), headers=driver.auth(client, "client")
    )
    r.raise_for_status()
    req = r.json()
    rid, proposal = req["request_id"], req["proposal"]
    pauth = driver.auth(proposal["provider_id"], "provider")
    (await driver.http.post(f"/requests/{rid}/accept", headers=pauth)).raise_for_status()
    if proposal.get("terms", {}).get("pricing", {}).get("model") in BILLED_AT_COMPLETION:
        model = proposal["terms"]["pricing"]["model"]
        work = {"units": 1} if model == "per_unit" else {"actual_hours": "0.05"}
        c = await driver.http.post(f"/requests/{rid}/complete", json=work, headers=pauth)
        c.raise_for_status()
    return str(rid)


async def groups_lag(bp: BenchPlatform, name: str, prefix: str) -> int:
    suffix = f".{prefix.rstrip('.')}" if prefix else ""
    return sum(
        [
            await consumer_lag(bp.kafka, f"{service}{suffix}", [prefix + name])
            for service in CONSUMERS[name]
        ]
    )


async def main_async(args: argparse.Namespace) -> int:
    ports = Ports(kafka=args.kafka_port, mongo=args.mongo_port, http_base=args.http_port)
    bp = BenchPlatform(ports, base_dir=FUZZ_DIR)
    prefix = ""
    if args.external:
        prefix = f"fuzz{uuid.uuid4().hex[:6]}."
        bp.cfg.kafka_bootstrap = os.environ["DELEGO_KAFKA_BOOTSTRAP"]
        bp.cfg.mongodb_url = os.environ["DELEGO_MONGODB_URL"]
        bp.cfg.topic_prefix = prefix
        bp.cfg.database_prefix = prefix.rstrip(".")
        bp.platform.kafka, bp.platform.mongodb = bp.cfg.kafka_bootstrap, bp.cfg.mongodb_url
    try:
        await bp.start()
        cast = await seed(bp, 2, 2)
        driver = FlowDriver(bp.url("matching"), bp.settings, cast, None)  # type: ignore[arg-type]
        await one_flow(driver, cast.clients[0])
        tpl = await templates(bp.kafka, prefix)
        sent = await send_fuzz(bp.kafka, prefix, args.count, args.oversized, tpl)
        ends = {n: await topic_length(bp.kafka, prefix + n) for n in CONSUMERS}
        await valid_phase(bp, driver, cast.clients[1])
        await driver.close()
        say("waiting for every group to catch up")
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.drain:
            lags = [await groups_lag(bp, n, prefix) for n in CONSUMERS]
            grown = [await topic_length(bp.kafka, prefix + n) > ends[n] for n in CONSUMERS]
            if not any(lags) and all(grown):  # the valid flow's invoice is out, and read
                break
            await asyncio.sleep(2)
        report: dict[str, TopicReport] = {}
        for name in CONSUMERS:
            bad = sum(v for k, v in sent[name].items() if k != "duplicate")
            valid = await topic_length(bp.kafka, prefix + name) - ends[name]
            report[name] = TopicReport(
                sent=sent[name],
                parked=await parked_counts(bp.kafka, prefix + name + ".dlq"),
                expected_parked=bad,
                applied=valid,
                crashes=sum(1 for s in CONSUMERS[name] if bp.platform.procs[s].poll() is not None),
                lag=await groups_lag(bp, name, prefix),
            )
        print(
            f"{'topic':<24} {'sent':>6} {'parked (per group)':>32} {'valid applied':>14} "
            f"{'crashes':>8} {'lag':>5}"
        )
        ok = True
        for name, r in report.items():
            per_group = ", ".join(f"{g.split('.')[0]} {n}" for g, n in sorted(r.parked.items()))
            print(
                f"{name:<24} {sum(r.sent.values()):>6} {per_group:>32} {r.applied:>14} "
                f"{r.crashes:>8} {r.lag:>5}"
            )
            for g in CONSUMERS[name]:
                got = sum(n for grp, n in r.parked.items() if grp.split(".")[0] == g)
                if got != r.expected_parked:
                    print(f"  {g}: parked {got}, expected {r.expected_parked}")
                    ok = False
            ok = ok and r.crashes == 0 and r.lag == 0
        print("fuzz: PASSED" if ok else "fuzz: FAILED")
        return 0 if ok else 1
    finally:
        bp.stop()
        say("fuzz platform stopped")
        if prefix:  # leave the shared servers as they were
            await delete_topics_with_prefix(bp.kafka, prefix)
            mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(bp.mongodb)
            try:
                for service in ("catalog", "matching", "billing", "notifications"):
                    await mongo.drop_database(bp.database(service))
            finally:
                await mongo.close()
            say(f"removed the {prefix}* topics and databases")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="records per consumed topic")
    parser.add_argument("--oversized", type=int, default=20, help="of which ~1 MiB each")
    parser.add_argument("--drain", type=float, default=300.0, help="max wait to catch up (s)")
    parser.add_argument("--external", action="store_true", help="use DELEGO_* servers")
    parser.add_argument("--kafka-port", type=int, default=19692)
    parser.add_argument("--mongo-port", type=int, default=27717)
    parser.add_argument("--http-port", type=int, default=18701)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
