"""What the store does: server-side command counters, idle CPU, point-operation latency.

- Commands: FerretDB v1 answers `serverStatus` with `metrics.commands.<name>.total`
  (counted by the server for every client, so the four services are included);
  MongoDB has the same `metrics.commands` (and `opcounters`). Handshakes and
  monitoring (`hello`, `ping`, `serverStatus`, ...) are left out.
- Idle CPU: utime + stime of the FerretDB process from `/proc/<pid>/stat`; CPU per
  flow: the same for each process group of the platform (services, store, broker).
- Point operations: `find_one({_id})` and `update_one({_id, version})` on a
  collection of the given size, documents shaped like a stored request.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

NOT_DATA = frozenset(
    {
        "hello",
        "ismaster",
        "isMaster",
        "ping",
        "serverStatus",
        "buildInfo",
        "buildinfo",
        "endSessions",
        "saslStart",
        "saslContinue",
        "getParameter",
        "getCmdLineOpts",
        "getLog",
        "whatsmyuri",
        "connectionStatus",
        "hostInfo",
        "listDatabases",
    }
)

Client = AsyncMongoClient[dict[str, Any]]


async def command_counts(client: Client) -> Counter[str]:
    """Data commands executed by the server so far, per command name."""
    status = await client.admin.command("serverStatus")
    out: Counter[str] = Counter()
    commands = (status.get("metrics") or {}).get("commands") or {}
    for name, v in commands.items():
        if name in NOT_DATA or not isinstance(v, dict):
            continue
        out[name] = int(v.get("total", 0))
    if not out and "opcounters" in status:  # a server without metrics.commands
        for name, n in status["opcounters"].items():
            if name != "command":
                out[name] = int(n)
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # fields 14 and 15 of stat(5)


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process of a process group (a service, the store or
    the broker and whatever it started), in seconds."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == pgid:  # field 5 of stat(5): the process group
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def idle_cpu(pid: int, seconds: float) -> float:
    """% of one core used by `pid` over `seconds` of wall time."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


class PointOps:
    """A collection grown to a size, then timed single-document reads and updates."""

    def __init__(self, client: Client, template: dict[str, Any], name: str) -> None:
        self.coll = client["bench_store"][name]
        self.template = {k: v for k, v in template.items() if k not in ("_id", "version")}
        self.versions: dict[str, int] = {}

    async def reset(self) -> None:
        await self.coll.drop()
        self.versions.clear()

    async def grow(self, size: int, batch: int = 1000) -> None:
        while len(self.versions) < size:
            start = len(self.versions)
            docs = []
            for i in range(start, min(size, start + batch)):
                _id = f"req_point_{i:08d}"
                docs.append({**self.template, "_id": _id, "version": 1})
                self.versions[_id] = 1
            await self.coll.insert_many(docs, ordered=False)

    async def measure(self, ops: int, max_s: float) -> dict[str, list[float]]:
        """{op: latencies in seconds}; each op kind gets half of `max_s`."""
        ids = list(self.versions)
        out: dict[str, list[float]] = {}
        for kind in ("find_one", "update_one"):
            lat: list[float] = []
            deadline = time.monotonic() + max_s / 2
            while len(lat) < ops and time.monotonic() < deadline:
                _id = random.choice(ids)
                t = time.perf_counter()
                if kind == "find_one":
                    await self.coll.find_one({"_id": _id})
                else:
                    v = self.versions[_id]
                    res = await self.coll.update_one(
                        {"_id": _id, "version": v}, {"$set": {"version": v + 1}}
                    )
                    if res.modified_count:
                        self.versions[_id] = v + 1
                lat.append(time.perf_counter() - t)
            out[kind] = lat
        return out


async def compare_point_ops(
    sets: Sequence[PointOps], ops: int, max_s: float, rounds: int = 3
) -> list[dict[str, tuple[float, int]]]:
    """Each set's {op: (median seconds, ops done)}, measured in alternating rounds so that
    the machine's drift during the measurement weighs on every size alike."""
    lats: list[dict[str, list[float]]] = [{} for _ in sets]
    for _ in range(rounds):
        for i, points in enumerate(sets):
            for kind, lat in (await points.measure(ops // rounds, max_s / rounds)).items():
                lats[i].setdefault(kind, []).extend(lat)
    return [
        {k: (statistics.median(v) if v else float("nan"), len(v)) for k, v in by_kind.items()}
        for by_kind in lats
    ]
