"""`make fault-run`: the real flow under load while billing and matching are killed
(SIGKILL) and the broker is restarted; then count what was lost or duplicated.

A preset of `make chaos` (same driver, faults and checks, `flowbench/chaos.py`):
`--rate` flows/s for `--seconds`; a quarter into the load billing and matching
are killed together and started again, half-way the broker is stopped and
started. When the platform has caught up, the topics, the billing store and the
SMTP sink are read back and the same table as `make chaos` is printed (no store
outage, no catch-up limit). Own state in `.delego/faults/`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from delego_cli.platform import REPO
from flowbench.chaos import Fault, Options, add_port_args, ports, run

PLAN = [Fault(0.25, "kill", ("billing", "matching")), Fault(0.5, "broker")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5.0, help="flows started per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long flows start")
    parser.add_argument("--drain", type=float, default=240.0, help="max wait for the rest")
    add_port_args(parser, kafka=19592, mongo=27617, http=18601)
    args = parser.parse_args()
    opts = Options(
        name="fault run",
        flows=max(1, round(args.rate * args.seconds)),
        rate=args.rate,
        plan=PLAN,
        catch_up_s=args.drain,
        catch_up_limit_s=None,
        ports=ports(args),
        base_dir=REPO / ".delego" / "faults",
    )
    sys.exit(asyncio.run(run(opts)))


if __name__ == "__main__":
    main()
