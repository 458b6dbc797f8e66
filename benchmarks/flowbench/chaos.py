"""Faults under load, then the platform's books checked: shared by `make chaos` and
`make fault-run` (each is a fault plan and defaults over `run`).

Flows go through the public HTTP API (client request, provider accepts, reports
the work when billed at completion). Every POST carries an `Idempotency-Key`
and is retried with the same key on a timeout, a connection error or a 5xx, so
a command the server applied while the client saw an error is not applied
twice (once the APIs honour the key; until then a retried `POST /requests`
may leave an extra, never-accepted request behind, and a retried accept or
work report that gets 409 is resolved by reading the request back).

While flows run, the plan's faults fire at fractions of the load window:
SIGKILL of services (started again as the runner starts them), a broker
restart, a store outage. From the end of the last fault the platform is polled
every second, while the load still runs, until the backlog the faults left is
gone (`backlog_gone`: every flow accepted more than 5 s ago invoiced, no send and
no outbox entry older than that waiting); after the load, until it has caught
up entirely (every consumer group at lag 0, no outbox entry left, one invoice
per accepted flow, nothing left to send); then everything is read back from
the topics, the billing and notifications stores and the SMTP sink.

Traffic goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from delego_cli.demo.seed import bearer
from delego_cli.demo.sinks import SmtpSink
from delego_cli.kafka_ops import list_topics
from delego_cli.platform import SERVICES, _infra
from delego_shared.messaging.topics_admin import end_offsets
from delego_shared.testing.kafka_tools import read_records, topic_length
from pymongo import AsyncMongoClient

from .flows import BILLED_AT_COMPLETION, FlowDriver
from .platform_run import BenchPlatform, Cast, Ports, seed
from .stats import say

INVOICES_TOPIC = "billing.invoices.v1"
DELIVERIES_TOPIC = "notifications.deliveries.v1"
ISSUED = "InvoiceIssued.v1"
DELIVERED = "NotificationDelivered.v1"
RETRY_BUDGET_S = 180.0  # a command is retried this long (covers a 30-60 s store outage)
ATTEMPT_TIMEOUT_S = 15.0
SERVICE_PAUSE_S = 2.0  # between a SIGKILL and the new process
BROKER_PAUSE_S = 2.0
IN_FLIGHT = 64  # flows in progress at once: past the platform's pace, starts queue here

Mongo = AsyncMongoClient[dict[str, Any]]


# --- faults ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One fault at `at` (fraction of the load window): `kill` the named services,
    restart the `broker`, or stop the `store` for `seconds`."""

    at: float
    kind: str  # "kill" | "broker" | "store"
    services: tuple[str, ...] = ()
    seconds: float = 0.0

    def label(self) -> str:
        if self.kind == "kill":
            return "SIGKILL " + " + ".join(self.services)
        if self.kind == "store":
            return f"store (FerretDB) stopped for {self.seconds:.0f}s"
        return "broker restarted"


async def wait_service_ready(bp: BenchPlatform, service: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3) as http:
        while time.monotonic() < deadline:
            try:
                r = await http.get(f"{bp.url(service)}/health/ready")
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    say(f"{service} not ready {timeout:.0f}s after its restart; going on")


async def apply_fault(bp: BenchPlatform, fault: Fault) -> None:
    say(fault.label())
    if fault.kind == "kill":
        for service in fault.services:
            bp.platform.kill_service(service)
        await asyncio.sleep(SERVICE_PAUSE_S)
        for service in fault.services:
            bp.platform.start_service(service)
        for service in fault.services:
            await wait_service_ready(bp, service)
        say(f"{' + '.join(fault.services)} started again and ready")
    elif fault.kind == "broker":
        await asyncio.to_thread(_infra, "stop", bp.cfg, ["kafka"])
        await asyncio.sleep(BROKER_PAUSE_S)
        await asyncio.to_thread(_infra, "start", bp.cfg, ["kafka"])
        say("broker back")
    elif fault.kind == "store":
        await asyncio.to_thread(_infra, "stop", bp.cfg, ["ferretdb"])
        await asyncio.sleep(fault.seconds)
        await asyncio.to_thread(_infra, "start", bp.cfg, ["ferretdb"])
        say("store back")
    else:
        raise ValueError(f"unknown fault {fault.kind!r}")


async def inject(bp: BenchPlatform, plan: list[Fault], t0: float, window: float) -> float:
    """Fire the plan's faults in order; returns the monotonic time the last one ended."""
    ended = time.monotonic()
    for fault in sorted(plan, key=lambda f: f.at):
        await asyncio.sleep(max(0.0, t0 + fault.at * window - time.monotonic()))
        await apply_fault(bp, fault)
        ended = time.monotonic()
    return ended


# --- load -----------------------------------------------------------------------------


@dataclass
class Outcome:
    accepted: set[str] = field(default_factory=set)  # request ids the API confirmed
    accepted_at: dict[str, float] = field(default_factory=dict)  # when (monotonic)
    refused: Counter[str] = field(default_factory=Counter)  # what the clients were told
    retries: Counter[str] = field(default_factory=Counter)  # retried attempts, by reason
    resolved_by_read: int = 0  # a retried command answered 409, the request showed it applied


class Retried(Exception):
    """A command still failing transiently when its retry budget ran out."""


class ResilientClient:
    """The public API as a careful client uses it: one `Idempotency-Key` per command,
    retries with that key on timeouts, connection errors, 5xx and a 409 with
    `Retry-After` (the key's earlier attempt still running), capped backoff."""

    def __init__(self, bp: BenchPlatform, cast: Cast, out: Outcome) -> None:
        self.http = httpx.AsyncClient(
            base_url=bp.url("matching"),
            # waiting for a pooled connection is the client's own queue, not a fault
            timeout=httpx.Timeout(ATTEMPT_TIMEOUT_S, pool=None),
            limits=httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT),
        )
        self.settings = bp.settings
        self.cast = cast
        self.out = out
        self._auth: dict[tuple[str, str], dict[str, str]] = {}

    def auth(self, subject: str, role: str) -> dict[str, str]:
        if (subject, role) not in self._auth:
            self._auth[(subject, role)] = bearer(self.settings, subject, role)
        return self._auth[(subject, role)]

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> tuple[httpx.Response, int]:
        """The first non-transient answer and how many attempts it took."""
        if method == "POST":
            headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        deadline = time.monotonic() + RETRY_BUDGET_S
        delay, attempt = 0.25, 0
        while True:
            attempt += 1
            why: str
            pause = delay * random.uniform(0.5, 1.0)
            try:
                r = await self.http.request(method, path, headers=headers, json=body)
                in_use = r.status_code == 409 and "Retry-After" in r.headers
                if r.status_code < 500 and not in_use:
                    return r, attempt
                why = f"{r.status_code}"
                if in_use:  # an earlier attempt of this command is still running
                    pause = max(pause, float(r.headers["Retry-After"]))
            except httpx.TransportError as exc:
                why = type(exc).__name__
            self.out.retries[why] += 1
            if time.monotonic() + pause > deadline:
                raise Retried(f"{method} {path.split('/')[1]}: {why}")
            await asyncio.sleep(pause)
            delay = min(delay * 2, 5.0)

    async def applied(self, rid: str, auth: dict[str, str], statuses: tuple[str, ...]) -> bool:
        """After a retried command got 409: did an earlier attempt apply it?"""
        r, _ = await self.call("GET", f"/requests/{rid}", auth)
        ok = r.status_code == 200 and r.json().get("status") in statuses
        self.out.resolved_by_read += ok
        return ok

    async def flow(self, client: str) -> None:
        """One flow; counted as accepted once the API confirmed the acceptance (and the
        work report when billed at completion)."""
        out = self.out
        try:
            r, _ = await self.call(
                "POST", "/requests", self.auth(client, "client"), FlowDriver.body()
            )
            if r.status_code != 201 or r.json().get("status") != "proposed":
                out.refused[f"POST /requests {r.status_code}"] += 1
                return
            req = r.json()
            rid, proposal = req["request_id"], req["proposal"]
            pauth = self.auth(proposal["provider_id"], "provider")
            a, tries = await self.call("POST", f"/requests/{rid}/accept", pauth)
            if a.status_code != 200 and not (
                a.status_code == 409
                and tries > 1
                and await self.applied(rid, pauth, ("accepted", "completed", "rated"))
            ):
                out.refused[f"accept {a.status_code}"] += 1
                return
            model = proposal.get("terms", {}).get("pricing", {}).get("model")
            if model in BILLED_AT_COMPLETION:
                work = {"units": 1} if model == "per_unit" else {"actual_hours": "0.05"}
                c, tries = await self.call("POST", f"/requests/{rid}/complete", pauth, work)
                if c.status_code != 200 and not (
                    c.status_code == 409
                    and tries > 1
                    and await self.applied(rid, pauth, ("completed", "rated"))
                ):
                    out.refused[f"complete {c.status_code}"] += 1
                    return
            out.accepted.add(rid)
            out.accepted_at[rid] = time.monotonic()
        except Retried as exc:
            out.refused[f"gave up retrying {exc}"] += 1
        except httpx.HTTPError as exc:
            out.refused[f"HTTP {type(exc).__name__}"] += 1


async def drive(client: ResilientClient, flows: int, rate: float) -> None:
    """A flow every 1/rate s, at most IN_FLIGHT at once (a slower platform makes the
    load last longer rather than the clients give up in their own queue)."""
    tasks: list[asyncio.Task[None]] = []
    slots = asyncio.Semaphore(IN_FLIGHT)
    t0 = time.monotonic()
    clients = client.cast.clients

    async def one(who: str) -> None:
        try:
            await client.flow(who)
        finally:
            slots.release()

    for i in range(flows):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        await slots.acquire()
        tasks.append(asyncio.create_task(one(clients[i % len(clients)])))
    await asyncio.gather(*tasks)


# --- state of the platform ------------------------------------------------------------


async def total_lag(bootstrap: str) -> int:
    """Records not yet committed by the services' consumer groups, on every partition
    a group has committed on (a group that never committed has read nothing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        committed = {}
        for group in SERVICES:
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                committed[(group, tp)] = meta.offset
    finally:
        await admin.close()
    topics = sorted({tp.topic for _, tp in committed})
    if not topics:
        return 0
    end = await end_offsets(bootstrap, topics)
    return sum(max(0, end.get(tp, 0) - max(off, 0)) for (_, tp), off in committed.items())


async def outbox_left(mongo: Mongo, bp: BenchPlatform) -> dict[str, int]:
    """Documents with an unpublished outbox entry (`_outbox_n` > 0), per db.collection."""
    left: dict[str, int] = {}
    for service in SERVICES:
        db = mongo[bp.database(service)]
        for name in await db.list_collection_names():
            n = await db[name].count_documents({"_outbox_n": {"$gt": 0}})
            if n:
                left[f"{service}.{name}"] = n
    return left


async def parked(bootstrap: str) -> dict[str, int]:
    return {t.name: t.messages for t in await list_topics(bootstrap) if t.name.endswith(".dlq")}


async def caught_up(mongo: Mongo, bp: BenchPlatform, out: Outcome) -> bool:
    """Cheap checks first: invoices for every accepted flow, nothing left to send,
    every group at lag 0, then no outbox entry anywhere."""
    invoices = await mongo[bp.database("billing")]["invoices"].count_documents({})
    if invoices < len(out.accepted):
        return False
    if await mongo[bp.database("notifications")]["schedule"].count_documents({}):
        return False
    if await total_lag(bp.kafka):
        return False
    return not await outbox_left(mongo, bp)


BACKLOG_SLACK_S = 5.0
"""Under load, caught up means nothing older than this waits (a flow takes ~0.2 s)."""


async def backlog_gone(mongo: Mongo, bp: BenchPlatform, out: Outcome) -> bool:
    """While the load runs: every flow accepted more than `BACKLOG_SLACK_S` ago is
    invoiced, and no send nor outbox entry older than that waits (the backlog the
    faults left is gone and the platform is back to its normal latency)."""
    cutoff = time.monotonic() - BACKLOG_SLACK_S
    due = {rid for rid, at in list(out.accepted_at.items()) if at <= cutoff}
    invoiced = {
        str(d["request_id"])
        async for d in mongo[bp.database("billing")]["invoices"].find({}, {"request_id": 1})
    }
    if not due <= invoiced:
        return False
    old = datetime.now(UTC) - timedelta(seconds=BACKLOG_SLACK_S)
    schedule = mongo[bp.database("notifications")]["schedule"]
    if await schedule.count_documents({"created_at": {"$lt": old}}):
        return False
    for service in SERVICES:
        db = mongo[bp.database(service)]
        for name in await db.list_collection_names():
            async for d in db[name].find({"_outbox_n": {"$gt": 0}}, {"_outbox": 1}):
                if any(e.get("stored_at", old) < old for e in (d.get("_outbox") or {}).values()):
                    return False
    return True


Check = Callable[[Mongo, BenchPlatform, Outcome], Awaitable[bool]]


async def wait_caught_up(
    bp: BenchPlatform, out: Outcome, max_s: float, check: Check = caught_up
) -> float | None:
    """Seconds until `check` held twice in a row 1 s apart (None: not within max_s)."""
    t0 = time.monotonic()
    mongo: Mongo = AsyncMongoClient(bp.mongodb, tz_aware=True, serverSelectionTimeoutMS=5000)
    streak = 0
    try:
        while time.monotonic() - t0 < max_s:
            try:
                ok = await check(mongo, bp, out)
            except Exception as exc:  # a store or broker still coming back
                say(f"catch-up probe: {type(exc).__name__}: {exc}")
                ok = False
            streak = streak + 1 if ok else 0
            if streak == 2:
                return time.monotonic() - t0 - 1.0
            await asyncio.sleep(1)
    finally:
        await mongo.close()
    return None


# --- checks ---------------------------------------------------------------------------


async def read_topic(bootstrap: str, topic: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every record of `topic` (headers, JSON body), as far as it reaches now."""
    records = await read_records(
        bootstrap, topic, expect=await topic_length(bootstrap, topic), timeout=60
    )
    return [(r.headers, json.loads(r.value or b"{}")) for r in records]


@dataclass
class Row:
    check: str
    value: Any
    ok: bool | None = None  # None: a figure, not a check


async def verify(bp: BenchPlatform, out: Outcome, sink: SmtpSink) -> list[Row]:
    prefix = bp.cfg.topic_prefix
    invoices = await read_topic(bp.kafka, prefix + INVOICES_TOPIC)
    issued = [(h, b) for h, b in invoices if h.get("ce_type", "").endswith(ISSUED)]
    topic_ids_of: dict[str, set[str]] = defaultdict(set)  # request -> invoice ids
    numbers_of: dict[str, set[str]] = defaultdict(set)  # invoice id -> numbers
    event_ids_of: dict[str, set[str]] = defaultdict(set)  # invoice id -> event ids
    for h, b in issued:
        topic_ids_of[b["request_id"]].add(b["invoice_id"])
        numbers_of[b["invoice_id"]].add(b["number"])
        event_ids_of[b["invoice_id"]].add(h.get("ce_id", ""))
    mongo: Mongo = AsyncMongoClient(bp.mongodb, tz_aware=True)
    try:
        billing = mongo[bp.database("billing")]
        stored = (
            await billing["invoices"]
            .find({}, {"number": 1, "request_id": 1, "ledger_posted": 1})
            .to_list()
        )
        entries = (
            await billing["ledger_entries"].find({}, {"document_id": 1, "postings": 1}).to_list()
        )
        outbox = await outbox_left(mongo, bp)
    finally:
        await mongo.close()
    stored_of: Counter[str] = Counter(str(d["request_id"]) for d in stored)
    seqs = sorted(int(str(d["number"]).rsplit("-", 1)[1]) for d in stored)
    gapless = seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
    no_invoice = sorted(r for r in out.accepted if not stored_of[r] and r not in topic_ids_of)
    twice = sorted(r for r in out.accepted if stored_of[r] > 1 or len(topic_ids_of.get(r, ())) > 1)
    # ledger: every journal entry balances, so all postings sum to zero per currency
    sums: Counter[str] = Counter()
    posted_docs: Counter[str] = Counter()
    for e in entries:
        posted_docs[str(e["document_id"])] += 1
        for p in e["postings"]:
            sums[str(p["currency"])] += int(p["minor"])
    unposted = sum(1 for d in stored if not d.get("ledger_posted") or not posted_docs[d["_id"]])

    deliveries = await read_topic(bp.kafka, prefix + DELIVERIES_TOPIC)
    delivered = [b for h, b in deliveries if h.get("ce_type", "").endswith(DELIVERED)]
    ids_per_key: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for b in delivered:
        key = (b["source_event_id"], b["recipient_id"], b["channel"])
        ids_per_key[key].add(b["delivery_id"])
    sent = Counter(m.delivery_id for m in sink.mails)
    mailed_events = {
        b["source_event_id"]
        for b in delivered
        if b.get("kind") == "invoice_issued" and b["channel"] == "email" and sent[b["delivery_id"]]
    }
    no_mail = sum(1 for ev in event_ids_of.values() if not ev & mailed_events)
    dlq = await parked(bp.kafka)
    lag = await total_lag(bp.kafka)
    return [
        Row("flows accepted by the API", len(out.accepted)),
        Row("flows refused / given up", dict(out.refused) or 0),
        Row("retried attempts (by reason)", dict(out.retries) or 0),
        Row("retried 409s resolved by reading back", out.resolved_by_read),
        Row("invoices stored", len(stored)),
        Row("lost: accepted, no invoice", len(no_invoice), not no_invoice),
        Row("duplicated: accepted, >1 invoice", len(twice), not twice),
        Row(
            "invoice ids with >1 number",
            sum(1 for n in numbers_of.values() if len(n) > 1),
            all(len(n) == 1 for n in numbers_of.values()),
        ),
        Row("invoice numbers gapless", f"{len(seqs)} numbers", gapless),
        Row(
            "ledger: postings sum per currency",
            {c: s for c, s in sums.items()} or 0,
            all(s == 0 for s in sums.values()),
        ),
        Row("invoices not posted to the ledger", unposted, unposted == 0),
        Row("invoices whose e-mail was not delivered", no_mail, no_mail == 0),
        Row(
            "duplicated notifications (event, recipient, channel)",
            sum(1 for ids in ids_per_key.values() if len(ids) > 1),
            all(len(ids) == 1 for ids in ids_per_key.values()),
        ),
        Row(
            "e-mails sent twice (same delivery id)",
            sum(1 for n in sent.values() if n > 1),
            all(n == 1 for n in sent.values()),
        ),
        Row("events left in an outbox", outbox or 0, not outbox),
        Row(
            "records parked (DLQ)", {t: n for t, n in dlq.items() if n} or 0, not any(dlq.values())
        ),
        Row("consumer lag at the end", lag, lag == 0),
        Row("examples lost", no_invoice[:3] or "-"),
        Row("examples duplicated", twice[:3] or "-"),
        Row("examples of e-mails sent twice", [d for d, n in sent.items() if n > 1][:3] or "-"),
    ]


def print_table(rows: list[Row]) -> bool:
    width = max(len(r.check) for r in rows)
    for r in rows:
        mark = "" if r.ok is None else ("ok    " if r.ok else "FAIL  ")
        print(f"{mark:<6}{r.check:<{width}}  {r.value}")
    return all(r.ok is not False for r in rows)


# --- the run --------------------------------------------------------------------------


@dataclass
class Options:
    name: str
    flows: int
    rate: float
    plan: list[Fault]
    catch_up_s: float
    catch_up_limit_s: float | None  # a check: caught up within this after the last fault
    ports: Ports
    base_dir: Path
    providers: int = 4
    clients: int = 48


async def run(opts: Options) -> int:
    sink = SmtpSink()
    bp = BenchPlatform(opts.ports, base_dir=opts.base_dir, smtp=sink)
    out = Outcome()
    try:
        await bp.start()
        cast = await seed(bp, opts.providers, opts.clients)
        client = ResilientClient(bp, cast, out)
        window = opts.flows / opts.rate
        say(f"{opts.name}: {opts.flows} flows at {opts.rate:g}/s ({window:.0f}s of load)")
        for f in opts.plan:
            say(f"  at {f.at * window:5.0f}s: {f.label()}")
        t0 = time.monotonic()
        faults = asyncio.create_task(inject(bp, opts.plan, t0, window))
        load = asyncio.create_task(drive(client, opts.flows, opts.rate))
        last_fault = await faults
        # caught up after the last fault: the first moment the backlog it left is gone,
        # even while the load still runs (after the load: nothing pending at all)
        probe = asyncio.create_task(wait_caught_up(bp, out, opts.catch_up_s, check=backlog_gone))
        await load
        load_end = time.monotonic()
        await client.close()
        say(f"load done at {load_end - t0:.0f}s, last fault over at {last_fault - t0:.0f}s")
        waited = await probe
        caught = waited
        if waited is not None and last_fault + waited < load_end:
            say(f"caught up at {last_fault + waited - t0:.0f}s, while the load still ran")
            waited = await wait_caught_up(bp, out, opts.catch_up_s)  # and after the load
            after_load = waited
        else:
            after_load = None if waited is None else last_fault + waited - load_end
        say("reading topics, stores and the SMTP sink back")
        rows = await verify(bp, out, sink)
        rows[4:4] = [
            Row("faults", "; ".join(f.label() for f in opts.plan) or "-"),
            Row("load window (s)", f"{load_end - t0:.0f}"),
            Row("last fault over at (s)", f"{last_fault - t0:.0f}"),
            Row(
                "caught up after the load ended (s)",
                "-" if after_load is None else f"{after_load:.1f}",
            ),
        ]
        limit = opts.catch_up_limit_s
        rows.append(
            Row(
                "catch-up after the last fault (s)"
                + (f", limit {limit:.0f}" if limit is not None else ""),
                "not within the wait" if caught is None else f"{caught:.1f}",
                caught is not None and (limit is None or caught <= limit),
            )
        )
        ok = print_table(rows) and len(out.accepted) > 0
        print(f"{opts.name}: {'PASSED' if ok else 'FAILED'}")
        return 0 if ok else 1
    finally:
        bp.stop()
        say(f"{opts.name} platform stopped")


def add_port_args(parser: argparse.ArgumentParser, kafka: int, mongo: int, http: int) -> None:
    parser.add_argument("--kafka-port", type=int, default=kafka)
    parser.add_argument("--mongo-port", type=int, default=mongo)
    parser.add_argument("--http-port", type=int, default=http, help="first of four")


def ports(args: argparse.Namespace) -> Ports:
    return Ports(kafka=args.kafka_port, mongo=args.mongo_port, http_base=args.http_port)
