"""`make fault-run`: the real flow under load while billing and matching are killed
(SIGKILL) and the broker is restarted; then count what was lost or duplicated.

Flows are driven through the public HTTP API at a fixed rate (client request,
provider accepts, reports the work). Mid-load, billing and matching are killed
and started again, later the Kafka broker is stopped and started. When the
platform has drained, everything is read back from the topics, the billing
database and the SMTP server:

- lost: a flow whose acceptance the API confirmed but that has no invoice, or
  whose invoice the client was not told about (no e-mail);
- duplicated invoices: more than one invoice for one request, or two invoice
  numbers for one invoice id; numbers must be gapless;
- duplicated notifications: an e-mail delivered twice for one delivery id.

Traffic goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from delego_cli.demo.sinks import SmtpSink
from delego_cli.platform import REPO, _infra
from delego_shared.testing.kafka_tools import read_records, topic_length
from flowbench.flows import BILLED_AT_COMPLETION, FlowDriver
from flowbench.platform_run import BenchPlatform, Ports, seed
from flowbench.stats import say
from pymongo import AsyncMongoClient

FAULTS_DIR = REPO / ".delego" / "faults"
INVOICES_TOPIC = "billing.invoices.v1"
DELIVERIES_TOPIC = "notifications.deliveries.v1"


@dataclass
class Outcome:
    accepted: set[str] = field(default_factory=set)  # request ids the API confirmed
    refused: Counter[str] = field(default_factory=Counter)  # what the clients were told


async def drive(
    driver: FlowDriver, clients: list[str], rate: float, seconds: float, out: Outcome
) -> None:
    """Open loop: start a flow every 1/rate s; a flow counts once its acceptance
    (and work report, when billed at completion) was confirmed by the API."""

    async def one(client: str) -> None:
        try:
            r = await driver.http.post(
                "/requests", json=driver.body(), headers=driver.auth(client, "client")
            )
            if r.status_code != 201 or r.json().get("status") != "proposed":
                out.refused[f"POST /requests {r.status_code}"] += 1
                return
            req = r.json()
            rid, proposal = req["request_id"], req["proposal"]
            pauth = driver.auth(proposal["provider_id"], "provider")
            a = await driver.http.post(f"/requests/{rid}/accept", headers=pauth)
            if a.status_code != 200:
                out.refused[f"accept {a.status_code}"] += 1
                return
            model = proposal.get("terms", {}).get("pricing", {}).get("model")
            if model in BILLED_AT_COMPLETION:
                work = {"units": 1} if model == "per_unit" else {"actual_hours": "0.05"}
                c = await driver.http.post(f"/requests/{rid}/complete", json=work, headers=pauth)
                if c.status_code != 200:
                    out.refused[f"complete {c.status_code}"] += 1
                    return
            out.accepted.add(rid)
        except httpx.HTTPError as exc:
            out.refused[f"HTTP {type(exc).__name__}"] += 1

    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(clients[i % len(clients)])))
    await asyncio.gather(*tasks)


async def read_topic(bootstrap: str, topic: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every record of `topic` (headers, JSON body), as far as it reaches now."""
    records = await read_records(
        bootstrap, topic, expect=await topic_length(bootstrap, topic), timeout=60
    )
    return [(r.headers, json.loads(r.value or b"{}")) for r in records]


async def wait_drained(bp: BenchPlatform, out: Outcome, max_s: float) -> float:
    """Until every accepted flow has its invoice e-mail, or nothing moved for 30 s."""
    t0 = time.monotonic()
    last, last_change = -1, time.monotonic()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(bp.mongodb, tz_aware=True)
    try:
        while time.monotonic() - t0 < max_s:
            invoiced = await mongo[bp.database("billing")]["invoices"].count_documents({})
            mails = len(bp.smtp.mails)
            progress = invoiced + mails
            if progress != last:
                last, last_change = progress, time.monotonic()
            if invoiced >= len(out.accepted) and time.monotonic() - last_change > 10:
                break
            if time.monotonic() - last_change > 30:
                break
            await asyncio.sleep(1)
    finally:
        await mongo.close()
    return time.monotonic() - t0


async def verify(bp: BenchPlatform, out: Outcome, sink: SmtpSink) -> dict[str, Any]:
    prefix = bp.cfg.topic_prefix
    invoices = await read_topic(bp.kafka, prefix + INVOICES_TOPIC)
    issued = [b for h, b in invoices if h.get("ce_type", "").endswith("InvoiceIssued.v1")]
    by_request: dict[str, set[str]] = defaultdict(set)
    numbers_of: dict[str, set[str]] = defaultdict(set)
    for b in issued:
        by_request[b["request_id"]].add(b["invoice_id"])
        numbers_of[b["invoice_id"]].add(b["number"])
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(bp.mongodb, tz_aware=True)
    try:
        stored = [
            d
            async for d in mongo[bp.database("billing")]["invoices"].find(
                {}, {"number": 1, "request_id": 1}
            )
        ]
    finally:
        await mongo.close()
    seqs = sorted(int(str(d["number"]).rsplit("-", 1)[1]) for d in stored)
    gapless = seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
    no_invoice = sorted(r for r in out.accepted if r not in by_request)
    deliveries = await read_topic(bp.kafka, prefix + DELIVERIES_TOPIC)
    invoice_mails = {
        b.get("delivery_id") or h.get("ce_subject", "")
        for h, b in deliveries
        if h.get("ce_type", "").endswith("NotificationDelivered.v1")
        and b.get("kind") == "invoice_issued"
        and b.get("channel") == "email"
    }
    sent = Counter(m.delivery_id for m in sink.mails)
    return {
        "accepted": len(out.accepted),
        "refused": dict(out.refused),
        "invoices": len(stored),
        "lost (accepted, no invoice)": len(no_invoice),
        "lost (invoice, no e-mail delivered)": max(
            0, len(by_request) - len(invoice_mails & set(sent))
        ),
        "duplicated invoices (requests with >1)": sum(
            1 for ids in by_request.values() if len(ids) > 1
        ),
        "invoice ids with >1 number": sum(1 for n in numbers_of.values() if len(n) > 1),
        "invoice numbers gapless": gapless,
        "e-mails": len(sink.mails),
        "duplicated e-mails (same delivery id)": sum(1 for n in sent.values() if n > 1),
        "InvoiceIssued records (incl. at-least-once repeats)": len(issued),
        "examples lost": no_invoice[:5],
    }


async def main_async(args: argparse.Namespace) -> int:
    sink = SmtpSink()
    ports = Ports(kafka=args.kafka_port, mongo=args.mongo_port, http_base=args.http_port)
    bp = BenchPlatform(ports, base_dir=FAULTS_DIR, smtp=sink)
    out = Outcome()
    try:
        await bp.start()
        cast = await seed(bp, 4, 48)
        driver = FlowDriver(bp.url("matching"), bp.settings, cast, None)  # type: ignore[arg-type]
        say(f"driving {args.rate:.0f} flows/s for {args.seconds:.0f}s")
        load = asyncio.create_task(drive(driver, cast.clients, args.rate, args.seconds, out))
        await asyncio.sleep(args.seconds * 0.25)
        for service in ("billing", "matching"):
            say(f"SIGKILL {service}")
            bp.platform.kill_service(service)
        await asyncio.sleep(2)
        for service in ("billing", "matching"):
            bp.platform.start_service(service)
        say("billing and matching started again")
        await asyncio.sleep(args.seconds * 0.25)
        say("restarting the Kafka broker")
        _infra("stop", bp.cfg, ["kafka"])
        await asyncio.sleep(2)
        _infra("start", bp.cfg, ["kafka"])
        say("broker back")
        await load
        await driver.close()
        waited = await wait_drained(bp, out, args.drain)
        say(f"drained in {waited:.0f}s; reading topics, billing store and SMTP server back")
        report = await verify(bp, out, sink)
        width = max(len(k) for k in report)
        for k, v in report.items():
            print(f"{k:<{width}}  {v}")
        bad = (
            report["lost (accepted, no invoice)"]
            + report["lost (invoice, no e-mail delivered)"]
            + report["duplicated invoices (requests with >1)"]
            + report["invoice ids with >1 number"]
            + report["duplicated e-mails (same delivery id)"]
        )
        ok = bad == 0 and report["invoice numbers gapless"] and report["accepted"] > 0
        print("fault run: PASSED (0 lost, 0 duplicated)" if ok else "fault run: FAILED")
        return 0 if ok else 1
    finally:
        bp.stop()
        say("fault-run platform stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=5.0, help="flows started per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long flows start")
    parser.add_argument("--drain", type=float, default=240.0, help="max wait for the rest")
    parser.add_argument("--kafka-port", type=int, default=19592)
    parser.add_argument("--mongo-port", type=int, default=27617)
    parser.add_argument("--http-port", type=int, default=18601)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
