"""A/B of the matching domain: an earlier commit's `find_matches` against the working
tree's, in one process, on the same catalog and the same requests.

Not a test. On a shared machine two runs minutes apart differ by more than most
changes do; here both versions answer each request back to back (alternating
which goes first), so the load hits both alike. Each gets its own index (built
from the same snapshots) and its own caches. Both outcomes must agree on every
request (candidates with offer, score, price, finish and reservation; reasons;
summary), else the run stops. Reported: CPU time per request
(`time.process_time`), p50 / p99 per version and the median of the per-request
ratios, on a first pass (caches empty, as in `bench_match.py`) and on a second
pass over the same requests (caches warm).

Versions whose index can build its working-time tables ahead (`prepare`) build them
for the requests' weeks before the first pass, as `bench_match.py` does.

Run: `.venv/bin/python services/matching/benchmarks/ab_match.py --rev HEAD~1`
(`--offers 100000`, `--queries 200`). The earlier domain is read with `git
archive` into a temporary directory and imported as another package (it has
only relative imports).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_match as b
from matching.domain.index import CandidateIndex
from matching.domain.matcher import find_matches

DOMAIN = "services/matching/src/matching/domain"


def earlier_domain(rev: str, into: Path) -> Any:
    """The domain package at `rev`, imported as `ab_earlier_domain`."""
    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tar = subprocess.run(  # noqa: S603
        ["git", "-C", root, "archive", rev, DOMAIN],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    (into / DOMAIN).rename(into / "ab_earlier_domain")
    sys.path.insert(0, str(into))
    return importlib.import_module("ab_earlier_domain")


def summary(o: Any) -> tuple[object, ...]:
    return (
        [
            (c.offer.offer_id, c.score.total, c.finish, c.price, sorted(c.reservation.items()))
            for c in o.candidates
        ],
        [r.model_dump() for r in o.reasons],
        o.summary,
        o.offers_considered,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rev", default="HEAD~1")
    ap.add_argument("--offers", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = earlier_domain(args.rev, Path(tmp))
        old_index = importlib.import_module("ab_earlier_domain.index").CandidateIndex
        old_find = importlib.import_module("ab_earlier_domain.matcher").find_matches
        n = args.offers
        indexes = {
            "new": CandidateIndex.build(b.providers(n), b.offers(n)),
            "old": old_index.build(b.providers(n), b.offers(n)),
        }
        finders = {"new": find_matches, "old": old_find}
        qs = b.requests(args.queries)
        for idx in indexes.values():
            # the working-time tables of the requests' weeks, built ahead as in
            # `bench_match.py` (by versions that have them)
            if hasattr(idx, "prepare"):
                idx.prepare(min(now for _, now in qs), max(now for _, now in qs))
        gc.collect()
        gc.freeze()
        for spec, now in b.requests(5):  # imports, lazy zone data
            for k in finders:
                finders[k](indexes[k], spec, now)
        print(f"{n} offers, {len(qs)} requests, earlier = {args.rev} ({old.__name__})")
        for label in ("first pass", "second pass"):
            cpu: dict[str, list[float]] = {"old": [], "new": []}
            for i, (spec, now) in enumerate(qs):
                order = ["old", "new"] if i % 2 == 0 else ["new", "old"]
                got = {}
                for k in order:
                    t = time.process_time()
                    # with what the service reads of the outcome (built on first read
                    # in newer versions)
                    got[k] = b.matched(indexes[k], spec, now, finders[k])
                    cpu[k].append((time.process_time() - t) * 1000)
                if summary(got["old"]) != summary(got["new"]):
                    raise SystemExit(f"the two versions disagree on request {i}")
            ratio = statistics.median(a / c for a, c in zip(cpu["old"], cpu["new"], strict=True))
            print(
                f"{label}: CPU ms per request, earlier p50 {b.pct(cpu['old'], 50):.3f} "
                f"p99 {b.pct(cpu['old'], 99):.3f}; now p50 {b.pct(cpu['new'], 50):.3f} "
                f"p99 {b.pct(cpu['new'], 99):.3f}; median per-request speed-up {ratio:.2f}x"
            )


if __name__ == "__main__":
    main()
