"""`make soak`: play `make run`'s story N times on fresh data and count what failed.

Each run is exactly what `make run` does (fresh local Kafka and FerretDB, four
service processes, the story through the public APIs), without waiting for
Ctrl-C. A failure is reported with its first error line; the exit code is 1
when any run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
import time

from .platform import PlatformConfig
from .run import main_async


def first_error(output: str) -> str:
    for line in output.splitlines():
        if "error" in line.lower() or "traceback" in line.lower():
            return line.strip()
    lines = [ln for ln in output.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no output)"


def play_once() -> tuple[bool, str, float]:
    out = io.StringIO()
    t0 = time.monotonic()
    try:
        with contextlib.redirect_stdout(out):
            code = asyncio.run(main_async(PlatformConfig.from_env(), story=True, wait=False))
    except Exception as exc:  # a crash of the runner itself counts as a failure
        return False, f"{type(exc).__name__}: {exc}", time.monotonic() - t0
    text = out.getvalue()
    return code == 0, ("" if code == 0 else first_error(text)), time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="?", type=int, default=20, help="how many runs (20)")
    args = parser.parse_args(argv)
    failures: list[tuple[int, str]] = []
    for n in range(1, args.runs + 1):
        ok, error, seconds = play_once()
        print(
            f"[soak] run {n}/{args.runs}: {'ok' if ok else 'FAILED'} ({seconds:.0f}s)", flush=True
        )
        if not ok:
            failures.append((n, error))
            print(f"[soak]   first error: {error}", flush=True)
    passed = args.runs - len(failures)
    print(f"[soak] {passed} of {args.runs} runs succeeded, {len(failures)} failed")
    for n, error in failures:
        print(f"[soak]   run {n}: {error}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
