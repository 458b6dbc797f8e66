"""Small statistics and formatting helpers."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(xs)))
    return xs[min(rank, len(xs)) - 1]


def mmm(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(min, median, max) or None."""
    if not values:
        return None
    return min(values), statistics.median(values), max(values)


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def fmt_mmm(values: Sequence[float], fmt: str = "rate") -> str:
    t = mmm(values)
    if t is None:
        return "-"
    f = fmt_rate if fmt == "rate" else fmt_ms
    return f"{f(t[1])} [{f(t[0])}–{f(t[2])}]"


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{seconds:.1f} s"
