"""`make chaos`: N flows through the public API while every service is SIGKILLed once,
the broker restarts and the store is down for 30 s; then the books are checked.

Not a test. Starts its own local Kafka and FerretDB in `.delego/chaos/` (ports
below, nobody else's) and the four services, seeds the bench cast, drives
`--flows` flows at `--rate` per second with an `Idempotency-Key` on every POST
and client retries on timeouts, connection errors and 5xx, and meanwhile, at
fixed fractions of the load window: SIGKILLs catalog, matching, billing and
notifications one after the other (each started again as the runner starts
it), restarts the broker, stops the store for `--store-outage` seconds. Then it
waits for catch-up and prints one table (see `flowbench/chaos.py`): lost and
duplicated invoices, gapless numbers, ledger at 0, duplicated notifications,
outboxes empty, nothing parked, lag 0, and the seconds from the end of the last
fault to full catch-up. Exit status 1 if a check fails.

    uv run --frozen python benchmarks/chaos.py [--flows 1000] [--rate 5] ...
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from delego_cli.platform import REPO
from flowbench.chaos import Fault, Options, add_port_args, ports, run


def plan(store_outage: float) -> list[Fault]:
    return [
        Fault(0.08, "kill", ("catalog",)),
        Fault(0.16, "kill", ("matching",)),
        Fault(0.24, "kill", ("billing",)),
        Fault(0.32, "kill", ("notifications",)),
        Fault(0.42, "broker"),
        Fault(0.55, "store", seconds=store_outage),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=1000, help="flows to start")
    parser.add_argument("--rate", type=float, default=5.0, help="flows started per second")
    parser.add_argument("--store-outage", type=float, default=30.0, help="seconds")
    parser.add_argument("--catch-up", type=float, default=300.0, help="max wait (s)")
    parser.add_argument(
        "--catch-up-limit", type=float, default=60.0, help="fail if catch-up takes longer (s)"
    )
    add_port_args(parser, kafka=19692, mongo=27717, http=18701)
    args = parser.parse_args()
    opts = Options(
        name="chaos",
        flows=args.flows,
        rate=args.rate,
        plan=plan(args.store_outage),
        catch_up_s=args.catch_up,
        catch_up_limit_s=args.catch_up_limit,
        ports=ports(args),
        base_dir=REPO / ".delego" / "chaos",
    )
    sys.exit(asyncio.run(run(opts)))


if __name__ == "__main__":
    main()
