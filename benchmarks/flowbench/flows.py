"""(b) the platform's flow through the public HTTP API, observed on the final topic.

One flow: the client `POST /requests` (matching proposes at once), the proposed
provider accepts (and reports the work done when the agreed pricing is billed
at completion: hourly or per unit), billing issues the invoice, notifications
delivers it: the flow ends when `NotificationDelivered` of kind
`invoice_issued` for that flow is read from `notifications.deliveries.v1`.

The `FlowWatcher` reads `matching.requests.v1` (ce_subject = request id,
ce_correlationid = the flow's correlation id) and `notifications.deliveries.v1`
(same correlation id, carried by every event caused by the request); a delivery
whose correlation id is unknown falls back to its ce_subject (the client) when
exactly one flow of that client is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from delego_cli.demo.seed import bearer
from delego_shared.events import ALL_TOPICS
from delego_shared.settings import Settings
from delego_shared.types import utcnow

from .platform_run import CATEGORY, SKILL, Cast
from .stats import say

MATCHING_TOPIC = "matching.requests.v1"
FINAL_TOPIC = "notifications.deliveries.v1"
FINAL_TYPE = "delego.notifications.NotificationDelivered.v1"
FINAL_KIND = "invoice_issued"
BILLED_AT_COMPLETION = ("hourly", "per_unit")
ID_FIELDS_SKIPPED = ("client_id", "provider_id", "offer_id", "recipient_id")


@dataclass
class Flow:
    request_id: str
    client: str
    started: float  # monotonic, before POST /requests
    done: asyncio.Future[float]


@dataclass
class FlowResult:
    ok: bool
    latency: float | None = None  # request -> final delivery observed (s)
    post_latency: float | None = None  # POST /requests (s)
    error: str | None = None
    ended: float | None = None  # monotonic time of the final delivery


class FlowWatcher:
    """Tails the platform's topics; resolves flows when their final delivery appears."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.corr_to_request: dict[str, str] = {}
        self.request_corr: dict[str, str] = {}
        self.flows: dict[str, Flow] = {}
        self.by_client: dict[str, set[str]] = defaultdict(set)
        self.early: dict[str, float] = {}  # request id -> final delivery seen before registration
        self.pending: dict[str, float] = {}  # correlation id -> delivery time, request unknown yet
        self.tokens: dict[str, set[str]] = defaultdict(set)  # correlation id -> ids seen
        self.types: Counter[str] = Counter()
        self.last_record = time.monotonic()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            request_timeout_ms=30_000,
        )
        await c.start()
        tps = [
            TopicPartition(t.name, p)
            for t in ALL_TOPICS
            if not t.name.startswith("catalog.")
            for p in range(t.partitions)
        ]
        c.assign(tps)
        await c.seek_to_end(*tps)
        for tp in tps:  # resolve the lazy seek now: records from here on
            await c.position(tp)
        self._consumer = c
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            now = time.monotonic()
            for records in batches.values():
                for r in records:
                    self.last_record = now
                    self._record(r.topic, dict(r.headers or ()), r.value or b"", now)

    def _record(self, topic: str, raw: dict[str, bytes], body: bytes, now: float) -> None:
        h = {k: v.decode(errors="replace") for k, v in raw.items()}
        ce_type, corr, subject = (
            h.get("ce_type", ""),
            h.get("ce_correlationid"),
            h.get("ce_subject"),
        )
        self.types[ce_type.rsplit(".", 2)[-2] if "." in ce_type else ce_type] += 1
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = {}
        if corr:
            toks = self.tokens[corr]
            if h.get("ce_id"):
                toks.add(h["ce_id"])
            if isinstance(data, dict):
                for k, v in data.items():
                    if (
                        k.endswith("_id")
                        and k not in ID_FIELDS_SKIPPED
                        and isinstance(v, str)
                        and len(v) >= 12
                    ):
                        toks.add(v)
        if topic == MATCHING_TOPIC and corr and subject and corr not in self.corr_to_request:
            self.corr_to_request[corr] = subject
            self.request_corr[subject] = corr
            if corr in self.pending:
                self._finish(subject, self.pending.pop(corr))
            return
        if topic != FINAL_TOPIC or ce_type != FINAL_TYPE:
            return
        if not isinstance(data, dict) or data.get("kind") != FINAL_KIND:
            return
        if data.get("recipient_id") != subject:
            pass  # keyed by recipient; a subscription webhook would have an endpoint id
        rid = self.corr_to_request.get(corr or "")
        if rid is None and subject is not None:
            open_ = [r for r in self.by_client.get(subject, ()) if not self.flows[r].done.done()]
            if len(open_) == 1:
                rid = open_[0]
        if rid is None:
            if corr:
                self.pending[corr] = now
            return
        self._finish(rid, now)

    def _finish(self, request_id: str, at: float) -> None:
        flow = self.flows.get(request_id)
        if flow is None:
            self.early[request_id] = at
            return
        if not flow.done.done():
            flow.done.set_result(at)

    def register(self, request_id: str, client: str, started: float) -> Flow:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        flow = Flow(request_id, client, started, fut)
        self.flows[request_id] = flow
        self.by_client[client].add(request_id)
        if request_id in self.early:
            fut.set_result(self.early.pop(request_id))
        return flow

    def forget(self, flow: Flow) -> None:
        self.by_client[flow.client].discard(flow.request_id)

    def flow_tokens(self, request_id: str) -> set[str]:
        corr = self.request_corr.get(request_id)
        if corr is None:
            return {request_id}
        return {request_id, corr, *self.tokens.get(corr, set())}


class FlowDriver:
    """Plays flows through the HTTP APIs (one shared connection pool)."""

    def __init__(
        self, matching_url: str, settings: Settings, cast: Cast, watcher: FlowWatcher
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=matching_url,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        )
        self.settings = settings
        self.cast = cast
        self.watcher = watcher
        self._auth: dict[tuple[str, str], dict[str, str]] = {}
        self.completed_ok: list[str] = []  # request ids of flows that completed (templates)
        self.flows_of: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def auth(self, subject: str, role: str) -> dict[str, str]:
        key = (subject, role)
        if key not in self._auth:
            self._auth[key] = bearer(self.settings, subject, role)
        return self._auth[key]

    async def close(self) -> None:
        await self.http.aclose()

    @staticmethod
    def body() -> dict[str, Any]:
        deadline = (utcnow() + timedelta(days=7)).isoformat().replace("+00:00", "Z")
        return {
            "category": CATEGORY,
            "required_skills": [SKILL],
            "languages": ["fr"],
            "effort_hours": "0.05",
            "client_zone": "Europe/Paris",
            "deadline": deadline,
            "budget": {"amount": "60.00", "currency": "EUR"},
            "delegation_level": "autonomous",
            "description": "benchmark flow",
        }

    async def run_flow(self, client: str, wait_until: float) -> FlowResult:
        """One flow; gives up waiting for its delivery at `wait_until` (monotonic)."""
        t0 = time.monotonic()
        try:
            r = await self.http.post(
                "/requests", json=self.body(), headers=self.auth(client, "client")
            )
            post = time.monotonic() - t0
            if r.status_code != 201:
                return self._fail(f"POST /requests {r.status_code}", post)
            req = r.json()
            rid = req["request_id"]
            flow = self.watcher.register(rid, client, t0)
            try:
                if req.get("status") != "proposed" or not req.get("proposal"):
                    return self._fail(f"request {req.get('status')}", post)
                proposal = req["proposal"]
                provider = proposal["provider_id"]
                pauth = self.auth(provider, "provider")
                a = await self.http.post(f"/requests/{rid}/accept", headers=pauth)
                if a.status_code != 200:
                    return self._fail(f"accept {a.status_code}", post)
                model = proposal.get("terms", {}).get("pricing", {}).get("model")
                if model in BILLED_AT_COMPLETION:
                    work = {"units": 1} if model == "per_unit" else {"actual_hours": "0.05"}
                    c = await self.http.post(f"/requests/{rid}/complete", json=work, headers=pauth)
                    if c.status_code != 200:
                        return self._fail(f"complete {c.status_code}", post)
                left = wait_until - time.monotonic()
                try:
                    at = await asyncio.wait_for(asyncio.shield(flow.done), max(0.01, left))
                except TimeoutError:
                    return self._fail("no final delivery in time", post)
                self.completed_ok.append(rid)
                self.flows_of[client] += 1
                return FlowResult(True, at - t0, post, ended=at)
            finally:
                self.watcher.forget(flow)
        except httpx.HTTPError as exc:
            return self._fail(f"HTTP {type(exc).__name__}", None)

    def _fail(self, why: str, post: float | None) -> FlowResult:
        self.errors[why] += 1
        return FlowResult(False, None, post, why)


@dataclass
class RunResult:
    started: int = 0
    completed: int = 0
    rate: float | None = None  # flows/s
    latencies: list[float] = field(default_factory=list)
    post_latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def incomplete(self) -> int:
        return self.started - self.completed


def _collect(results: list[FlowResult], started: int) -> RunResult:
    out = RunResult(started=started)
    for r in results:
        if r.post_latency is not None:
            out.post_latencies.append(r.post_latency)
        if r.ok and r.latency is not None:
            out.completed += 1
            out.latencies.append(r.latency)
        elif r.error:
            out.errors[r.error] += 1
    return out


async def saturation(
    driver: FlowDriver, clients: list[str], duration: float, drain: float
) -> RunResult:
    """Closed loop: each client runs flows back to back for `duration` seconds."""
    t0 = time.monotonic()
    stop_starting = t0 + duration
    wait_until = stop_starting + drain
    results: list[FlowResult] = []
    started = 0

    async def client_loop(client: str) -> None:
        nonlocal started
        while time.monotonic() < stop_starting:
            started += 1
            res = await driver.run_flow(client, wait_until)
            results.append(res)
            if not res.ok:
                await asyncio.sleep(0.5)  # do not spin on a failing platform

    await asyncio.gather(*(client_loop(c) for c in clients))
    out = _collect(results, started)
    ends = [r.ended for r in results if r.ok and r.ended is not None]
    out.seconds = (max(ends) if ends else time.monotonic()) - t0
    out.rate = out.completed / out.seconds if out.seconds > 0 else None
    return out


async def open_loop(
    driver: FlowDriver, clients: list[str], rate: float, duration: float, drain: float
) -> RunResult:
    """Open loop: a new flow every 1/rate s for `duration` s, whatever the platform does."""
    n = max(1, round(rate * duration))
    t0 = time.monotonic()
    wait_until = t0 + duration + drain
    tasks: list[asyncio.Task[FlowResult]] = []
    pool = list(clients)
    random.shuffle(pool)
    for i in range(n):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        client = pool[i % len(pool)]
        tasks.append(asyncio.create_task(driver.run_flow(client, wait_until)))
    results = list(await asyncio.gather(*tasks))
    out = _collect(results, n)
    out.seconds = time.monotonic() - t0
    out.rate = rate
    return out


async def settle(watcher: FlowWatcher, quiet_s: float, max_s: float) -> bool:
    """Wait until no record appeared on the platform's topics for `quiet_s` (at most `max_s`)."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        if time.monotonic() - watcher.last_record >= quiet_s:
            return True
        await asyncio.sleep(0.25)
    say(f"platform still busy after {max_s:.0f}s; going on")
    return False
