"""`make bench`: the platform's real flow side by side with its limit, fresh and with history.

Not a test. Starts two platforms side by side the way `make run` does, each
with its own local Kafka, FerretDB and four services without the story: the
"fresh" one (Kafka :19392, FerretDB :27417, HTTP :18401-18404, state in
`.delego/bench/fresh/`) and the "history" one (the next ports: :19394,
:27418, :18405-18408, in `.delego/bench/history/`). Both are seeded with the
demo cast plus benchmark providers and clients and warmed up; N flows of
history are written straight into the history platform's databases. Then,
alternating between the two platforms so that the machine's drift weighs on
both columns alike, it measures (a, b on one, a, b on the other, ...):

  (a) a raw aiokafka 3-hop chain on that platform's broker and store;
  (b) the platform's flow through the public HTTP API at saturation;

then e2e latency at fixed offered rates (open loop), store commands per flow,
the store's idle CPU, and point-operation latency on a small and a large
collection of the same store, in alternating rounds.
Prints one table on stdout (progress on stderr).

    uv run --frozen python benchmarks/flow_bench.py [--quick] [--history N] ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from delego_cli.kafka_ops import consumer_lag
from flowbench.flows import FlowDriver, FlowWatcher, RunResult, open_loop, saturation, settle
from flowbench.history import HistoryLoader
from flowbench.platform_run import BENCH_DIR, BenchPlatform, Cast, Ports, seed
from flowbench.raw_chain import run_chain
from flowbench.stats import fmt_mmm, fmt_ms, fmt_rate, percentile, say
from flowbench.store_probe import (
    PointOps,
    command_counts,
    compare_point_ops,
    cpu_seconds,
    group_cpu_seconds,
    idle_cpu,
)
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect


@dataclass
class Profile:
    reps: int
    chain_messages: int
    chain_timeout: float
    sat_clients: int
    sat_seconds: float
    open_seconds: float
    drain_seconds: float
    history: int
    point_small: int
    point_ops: int
    point_max_s: float
    idle_seconds: float
    clients: int
    providers: int
    warm_seconds: float


FULL = Profile(
    reps=3,
    chain_messages=1000,
    chain_timeout=180,
    sat_clients=32,
    sat_seconds=45,
    open_seconds=30,
    drain_seconds=120,
    history=100_000,
    point_small=1_000,
    point_ops=3000,
    point_max_s=60,
    idle_seconds=10,
    clients=200,
    providers=8,
    warm_seconds=30,
)
QUICK = Profile(
    reps=3,
    chain_messages=200,
    chain_timeout=60,
    sat_clients=16,
    sat_seconds=10,
    open_seconds=5,
    drain_seconds=25,
    history=2_000,
    point_small=1_000,
    point_ops=1000,
    point_max_s=12,
    idle_seconds=10,
    clients=48,
    providers=4,
    warm_seconds=20,
)


@dataclass
class Phase:
    name: str
    tag: str  # [a-z0-9] only: part of topic names
    chain: list[float] = field(default_factory=list)
    chain_incomplete: int = 0
    sat: list[RunResult] = field(default_factory=list)
    commands: list[float] = field(default_factory=list)
    command_mix: Counter[str] = field(default_factory=Counter)
    cpu: list[dict[str, float]] = field(default_factory=list)
    """Per repetition of (b): ms of CPU per completed flow, per process (group)."""
    rates: dict[float, RunResult] = field(default_factory=dict)
    idle_cpu: float | None = None
    idle_settled: bool = True
    idle_commands: float | None = None
    point_size: int = 0
    point: dict[str, tuple[float, int]] = field(default_factory=dict)
    history_note: str = ""


async def wait_catalog_read(bootstrap: str, timeout: float = 180) -> None:
    topics = ["catalog.providers.v1", "catalog.offers.v1"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await consumer_lag(bootstrap, "matching", topics) == 0:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("matching did not read the catalog topics in time")


@dataclass
class Stack:
    """One platform with its own broker, store and services, and what drives it."""

    bp: BenchPlatform
    watcher: FlowWatcher
    mongo: AsyncMongoClient[dict[str, Any]]
    cast: Cast
    driver: FlowDriver


async def start_stack(p: Profile, ports: Ports, base_dir: Path, name: str) -> Stack:
    """Start a platform, seed it and warm it up (a flow end to end, then load, discarded).
    What it started is stopped again if it fails on the way."""
    bp = BenchPlatform(ports, base_dir=base_dir)
    st: Stack | None = None
    try:
        await bp.start()
        cast = await seed(bp, p.providers, p.clients)
        await wait_catalog_read(bp.kafka)
        say(f"[{name}] matching has read the catalog")
        watcher = FlowWatcher(bp.kafka)
        await watcher.start()
        st = Stack(
            bp,
            watcher,
            AsyncMongoClient(bp.mongodb, tz_aware=True),
            cast,
            FlowDriver(bp.url("matching"), bp.settings, cast, watcher),
        )
        await warm_up(p, st, name)
    except BaseException:
        if st is not None:
            await stop_stack(st)
        else:
            bp.stop()
        raise
    return st


async def warm_up(p: Profile, st: Stack, name: str) -> None:
    warm_until = time.monotonic() + 120
    while not (warm := await st.driver.run_flow(st.cast.clients[0], warm_until)).ok:
        if time.monotonic() > warm_until:
            raise RuntimeError(f"[{name}] warm-up flow did not complete: {warm.error}")
        say(f"[{name}] warm-up flow failed ({warm.error}); trying again")
        await asyncio.sleep(2)
    say(f"[{name}] warm-up flow completed in {fmt_ms(warm.latency)}")
    # warm-up at load, discarded: the broker's JIT compiles its hot paths during the
    # first minute at load, which would otherwise count against the first (a) and (b)
    await run_chain(
        st.bp.kafka, st.bp.mongodb, p.chain_messages, timeout=p.chain_timeout, tag="warm"
    )
    await saturation(st.driver, st.cast.clients[: p.sat_clients], p.warm_seconds, p.drain_seconds)
    await settle(st.watcher, 3.0, p.drain_seconds)
    st.driver.errors.clear()
    say(f"[{name}] warm-up at load done ({p.warm_seconds:.0f}s of (b) and one (a), discarded)")


async def stop_stack(st: Stack) -> None:
    try:
        await st.driver.close()
        await st.watcher.stop()
        await st.mongo.close()
    finally:
        st.bp.stop()


async def measure_rep(ph: Phase, p: Profile, st: Stack, rep: int) -> None:
    """One repetition: (a) then (b), each on this phase's platform."""
    quiet, settle_max = 3.0, p.drain_seconds
    chain = await run_chain(
        st.bp.kafka, st.bp.mongodb, p.chain_messages, timeout=p.chain_timeout, tag=f"{ph.tag}{rep}"
    )
    rate = chain.rate
    ph.chain_incomplete += chain.sent - chain.arrived
    if rate is not None:
        ph.chain.append(rate)
    say(
        f"[{ph.name} {rep}/{p.reps}] (a) raw chain: {chain.arrived}/{chain.sent} msgs "
        f"in {chain.seconds:.1f}s = {fmt_rate(rate)}/s"
    )
    await settle(st.watcher, quiet, settle_max)
    before = await command_counts(st.mongo)
    cpu_before = cpu_now(st)
    sat = await saturation(
        st.driver, st.cast.clients[: p.sat_clients], p.sat_seconds, p.drain_seconds
    )
    cpu_after = cpu_now(st)
    after = await command_counts(st.mongo)
    delta = after - before
    ph.sat.append(sat)
    if sat.completed:
        ph.commands.append(sum(delta.values()) / sat.completed)
        ph.command_mix.update(delta)
        ph.cpu.append({k: 1000 * (cpu_after[k] - v) / sat.completed for k, v in cpu_before.items()})
    say(
        f"[{ph.name} {rep}/{p.reps}] (b) platform: {sat.completed}/{sat.started} flows in "
        f"{sat.seconds:.1f}s = {fmt_rate(sat.rate)}/s; e2e p50 "
        f"{fmt_ms(percentile(sat.latencies, 50))}; errors {dict(sat.errors) or 0}"
    )
    await settle(st.watcher, quiet, settle_max)


LOAD = "benchmark (load, watcher, SMTP sink)"


def cpu_now(st: Stack) -> dict[str, float]:
    """CPU seconds so far of each of the platform's processes and of this one (the load
    generator): what one flow costs the 2 shared cores, and where."""
    out = {name: group_cpu_seconds(g) for name, g in st.bp.process_groups().items()}
    out[LOAD] = cpu_seconds(os.getpid())
    return out


def cpu_per_flow(ph: Phase) -> dict[str, float]:
    """Median over the repetitions of each process's CPU per flow, largest first."""
    names = {k for rep in ph.cpu for k in rep}
    med = {k: statistics.median(rep.get(k, 0.0) for rep in ph.cpu) for k in names}
    return dict(sorted(med.items(), key=lambda kv: -kv[1]))


async def measure_rates(ph: Phase, p: Profile, st: Stack, rate: float) -> None:
    """e2e latency at a fixed offered rate (open loop)."""
    res = await open_loop(st.driver, st.cast.clients, rate, p.open_seconds, p.drain_seconds)
    ph.rates[rate] = res
    say(
        f"[{ph.name}] open loop {rate:.0f}/s: {res.completed}/{res.started} completed, "
        f"e2e p50 {fmt_ms(percentile(res.latencies, 50))} p99 "
        f"{fmt_ms(percentile(res.latencies, 99))}; errors {dict(res.errors) or 0}"
    )
    await settle(st.watcher, 3.0, p.drain_seconds)


async def measure_idle(ph: Phase, p: Profile, st: Stack) -> None:
    """The store's CPU once nothing has happened for a while."""
    ph.idle_settled = await settle(st.watcher, 5.0, 4 * p.drain_seconds)
    pid = st.bp.ferretdb_pid()
    if pid is not None:
        c0 = await command_counts(st.mongo)
        t0 = time.monotonic()
        ph.idle_cpu = await idle_cpu(pid, p.idle_seconds)
        c1 = await command_counts(st.mongo)
        ph.idle_commands = (sum((c1 - c0).values()) - 2) / (time.monotonic() - t0)
        say(
            f"[{ph.name}] store idle: {ph.idle_cpu:.0f}% of one core, "
            f"{ph.idle_commands:.1f} commands/s"
        )


def _p(res: RunResult | None, q: float) -> str:
    if res is None:
        return "-"
    v = percentile(res.latencies, q)
    if res.started and res.incomplete / res.started > (100 - q) / 100:
        return f"> {res.seconds:.0f} s"  # the percentile lies among the flows that never ended
    return fmt_ms(v)


def render(phases: list[Phase], p: Profile, mode: str, extra: list[str]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, f: Any) -> None:
        rows.append((label, [f(ph) for ph in phases]))

    def ratio(ph: Phase) -> str:
        per_rep = [s.rate / a for s, a in zip(ph.sat, ph.chain, strict=False) if s.rate and a]
        return fmt_mmm([100 * r for r in per_rep]).replace(" [", " % [") if per_rep else "-"

    row("(a) raw 3-hop chain, flows/s  med [min–max]", lambda ph: fmt_mmm(ph.chain))
    row(
        f"(b) platform at saturation ({p.sat_clients} clients), flows/s",
        lambda ph: (
            fmt_mmm([s.rate for s in ph.sat if s.rate])
            if any(s.rate for s in ph.sat)
            else ("0 (no flow completed)" if ph.sat else "-")
        ),
    )
    row("ratio b/a (per repetition)", ratio)
    row(
        "(b) incomplete flows at saturation",
        lambda ph: f"{sum(s.incomplete for s in ph.sat)} of {sum(s.started for s in ph.sat)}",
    )
    for rate in (5.0, 20.0):
        row(
            f"e2e p50 / p99 at {rate:.0f} flows/s offered",
            lambda ph, r=rate: f"{_p(ph.rates.get(r), 50)} / {_p(ph.rates.get(r), 99)}",
        )
        row(
            f"  completed of offered at {rate:.0f} flows/s",
            lambda ph, r=rate: (
                f"{ph.rates[r].completed} of {ph.rates[r].started}" if r in ph.rates else "-"
            ),
        )
    row(
        "POST /requests p50 (at 5 flows/s)",
        lambda ph: fmt_ms(percentile(ph.rates[5.0].post_latencies, 50)) if 5.0 in ph.rates else "-",
    )
    row(
        "POST /requests p50 (at saturation)",
        lambda ph: fmt_ms(percentile([x for s in ph.sat for x in s.post_latencies], 50)),
    )
    row(
        "CPU per flow at (b), ms, all processes",
        lambda ph: fmt_mmm([sum(rep.values()) for rep in ph.cpu]) if ph.cpu else "-",
    )
    row(
        "store commands per flow (b)  med [min–max]",
        lambda ph: fmt_mmm(ph.commands).replace(".00", ".0") if ph.commands else "-",
    )
    row(
        "store idle CPU, % of one core",
        lambda ph: (
            f"{ph.idle_cpu:.0f} %{'' if ph.idle_settled else ' (backlog still draining)'}"
            if ph.idle_cpu is not None
            else "-"
        ),
    )
    row(
        "store idle commands/s",
        lambda ph: f"{ph.idle_commands:.1f}" if ph.idle_commands is not None else "-",
    )
    row("point-op collection size", lambda ph: f"{ph.point_size:,} docs")
    for op, label in (
        ("find_one", "find_one({_id}) median"),
        ("update_one", "update_one({_id, version}) median"),
    ):
        row(
            label,
            lambda ph, o=op: (
                f"{fmt_ms(ph.point[o][0])} (n={ph.point[o][1]})" if o in ph.point else "-"
            ),
        )
    width = max(len(r[0]) for r in rows) + 2
    cols = [max(len(ph.name), *(len(r[1][i]) for r in rows)) + 2 for i, ph in enumerate(phases)]
    lines = [
        f"Delego flow benchmark ({mode}): (a) raw aiokafka 3-hop chain vs (b) the platform's "
        "flow (POST /requests → accept → InvoiceIssued → NotificationDelivered)",
        "",
        "metric".ljust(width)
        + "".join(ph.name.ljust(c) for ph, c in zip(phases, cols, strict=True)),
        "-" * (width + sum(cols)),
    ]
    for label, vals in rows:
        lines.append(
            label.ljust(width) + "".join(v.ljust(c) for v, c in zip(vals, cols, strict=True))
        )
    lines.append("")
    lines.extend(extra)
    return "\n".join(lines)


async def load_history(p: Profile, st: Stack, extra: list[str]) -> bool:
    """Write `p.history` flows into the platform's databases, cloned from one of its own
    completed flows, then restart its store (see `BenchPlatform.restart_store`)."""
    owners = {t: rid for rid in st.watcher.flows for t in st.watcher.flow_tokens(rid)}
    loader = HistoryLoader(
        st.mongo,
        [st.bp.database(s) for s in ("matching", "billing", "notifications")],
        owners,
        st.cast.clients,
        st.cast.offers,
    )
    repeated = [rid for rid in st.driver.completed_ok if _client_of(st.driver, rid)]
    chosen = await loader.choose_template(repeated, st.bp.database("matching"))
    if chosen is None:
        say("no completed flow to use as the history template: history phase skipped")
        return False
    rid, req = chosen
    say(f"loading {p.history:,} flows of history (template {rid}) ...")
    rep = await loader.load(rid, req, p.history)
    loaded = ", ".join(
        f"{k.removeprefix('delego_')} {v:,}" for k, v in sorted(rep.per_collection.items())
    )
    say(
        f"history loaded in {rep.seconds:.0f}s: {loaded}"
        + (f"; {rep.duplicates} duplicates skipped" if rep.duplicates else "")
    )
    extra.append(
        f"history: {sum(rep.per_collection.values()):,} documents for {p.history:,} flows "
        f"inserted in {rep.seconds:.0f}s (cloned from {rid}): {loaded}"
    )
    say("restarting the store so that SQLite checkpoints the bulk load's log")
    st.bp.restart_store()
    for _ in range(10):  # our own pool holds connections to the old process
        try:
            await st.mongo.admin.command("ping")
            break
        except AutoReconnect:
            await asyncio.sleep(0.5)
    extra.append(
        "after the bulk load the store was restarted (SQLite checkpoints its "
        "write-ahead log on close; see BenchPlatform.restart_store)"
    )
    await settle(st.watcher, 3.0, p.drain_seconds)
    return True


def side_by_side(fresh: Phase, hist: Phase) -> list[str]:
    """The history column over the fresh one: throughput per repetition (the two runs of
    a repetition follow each other) and the point operations."""
    out: list[str] = []
    per_rep = [
        h.rate / f.rate for f, h in zip(fresh.sat, hist.sat, strict=False) if f.rate and h.rate
    ]
    if per_rep:
        out.append(
            "(b) with history ÷ fresh, per repetition: "
            + ", ".join(f"{r:.2f}" for r in per_rep)
            + f" (median {statistics.median(per_rep):.2f})"
        )
    ops = [o for o in ("find_one", "update_one") if o in fresh.point and o in hist.point]
    if ops:
        out.append(
            f"point operations at {hist.point_size:,} ÷ at {fresh.point_size:,} docs: "
            + ", ".join(f"{o} {hist.point[o][0] / fresh.point[o][0]:.2f}" for o in ops)
        )
    return out


async def main_async(p: Profile, mode: str, ports: Ports) -> int:
    t_start = time.monotonic()
    stacks: list[Stack] = []
    try:
        fresh_st = await start_stack(p, ports, BENCH_DIR / "fresh", "fresh")
        stacks.append(fresh_st)
        hist_st = await start_stack(p, ports.next(), BENCH_DIR / "history", "history")
        stacks.append(hist_st)
        extra: list[str] = []
        fresh = Phase("fresh platform", "fresh")
        hist = Phase(f"+{p.history:,} flows of history", "history")
        pairs = [(fresh, fresh_st)]
        if await load_history(p, hist_st, extra):
            pairs.append((hist, hist_st))
        # side by side: the repetitions alternate between the platforms (fresh first in
        # odd ones, history first in even ones), so that the machine's drift over the run
        # (2 shared cores) weighs on both columns alike
        for rep in range(1, p.reps + 1):
            for ph, st in pairs if rep % 2 else pairs[::-1]:
                await measure_rep(ph, p, st, rep)
        for rate in (5.0, 20.0):
            for ph, st in pairs:
                await measure_rates(ph, p, st, rate)
        for ph, st in pairs:
            await measure_idle(ph, p, st)
        fresh.name = f"fresh (~{len(fresh_st.driver.completed_ok):,} flows)"
        # point operations: a small and a large collection in the same store (the one
        # with the history), measured in alternating rounds
        template_doc = await hist_st.mongo[hist_st.bp.database("matching")]["requests"].find_one({})
        small = PointOps(hist_st.mongo, template_doc or {}, "requests_like_small")
        large = PointOps(hist_st.mongo, template_doc or {}, "requests_like_large")
        for points, size, ph in ((small, p.point_small, fresh), (large, p.history, hist)):
            await points.reset()
            await points.grow(size)
            ph.point_size = size
        fresh.point, hist.point = await compare_point_ops(
            [small, large], p.point_ops, p.point_max_s
        )
        phases = [ph for ph, _ in pairs]
        extra.extend(side_by_side(fresh, hist) if len(phases) == 2 else [])
        for ph in phases:
            flows = sum(s.completed for s in ph.sat) or 1
            extra.append(
                f"store commands per flow during (b), {ph.name}: "
                + ", ".join(f"{k} {v / flows:.1f}" for k, v in ph.command_mix.most_common(8))
            )
        for ph in phases:
            if ph.cpu:
                extra.append(
                    f"CPU per flow during (b), ms (median of repetitions), {ph.name}: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in cpu_per_flow(ph).items())
                )
        for ph, st in pairs:
            if st.driver.errors:
                extra.append(f"flow errors, {ph.name}: {dict(st.driver.errors)}")
        extra.append(
            f"clients: pool of {p.clients}; flows/s (b) = completed / (last delivery − "
            f"start), e2e = POST /requests → NotificationDelivered(invoice_issued) read from "
            f"notifications.deliveries.v1; drain limit {p.drain_seconds:.0f}s. "
            f"Run took {(time.monotonic() - t_start) / 60:.1f} min."
        )
        print(render(phases, p, mode, extra), flush=True)
        return 0
    finally:
        for st in stacks:
            await stop_stack(st)
        say("platforms and infrastructure of the benchmark stopped")


def _client_of(driver: FlowDriver, rid: str) -> bool:
    flow = driver.watcher.flows.get(rid)
    return flow is not None and driver.flows_of[flow.client] >= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="a few minutes: fewer flows, 2k flows of history (also BENCH_QUICK=1)",
    )
    parser.add_argument("--history", type=int, help="flows of history to load (default 100000)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions of (a) and (b) (>= 3)")
    parser.add_argument(
        "--kafka-port", type=int, default=19392, help="the fresh platform's; the other takes +2"
    )
    parser.add_argument("--mongo-port", type=int, default=27417, help="the other takes +1")
    parser.add_argument("--http-port", type=int, default=18401, help="first of four; the other +4")
    args = parser.parse_args()
    # aiokafka's retries on fresh topics and on shutdown are expected here: keep them quiet
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    p = QUICK if args.quick else FULL
    if args.history is not None:
        p.history = args.history
    if args.reps is not None:
        p.reps = max(3, args.reps)
    ports = Ports(args.kafka_port, args.mongo_port, args.http_port)
    # the load generator, the raw chain (a) and the SMTP sink share the 2 cores with the
    # platform: the same event loop as the services (uvicorn picks uvloop) costs them less
    sys.exit(uvloop.run(main_async(p, "quick" if args.quick else "full", ports)))


if __name__ == "__main__":
    main()
