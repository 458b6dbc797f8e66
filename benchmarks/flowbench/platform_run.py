"""The platform under benchmark: `make run`'s runner on its own state dir and ports.

Local Kafka and FerretDB are started by `deploy/local/localinfra.py` (through
`delego_cli.platform`) in `.delego/bench/infra` on fresh data, the four services
as separate processes (logs in `.delego/bench/logs/`), no story. The demo seed
registers the demo cast; the benchmark adds a few providers with a 24/7
schedule (so that flows do not depend on the time of day) and a pool of clients
with contact data and a tax profile, all through the public HTTP APIs.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from delego_cli.demo.data import PROVIDERS as DEMO_PROVIDERS
from delego_cli.demo.seed import bearer, check, seed_catalog
from delego_cli.demo.sinks import SmtpSink
from delego_cli.platform import REPO, Platform, PlatformConfig, PlatformError, _infra
from delego_shared.settings import Settings
from pydantic import SecretStr

from .stats import say

BENCH_DIR = REPO / ".delego" / "bench"
JWT_SECRET = "bench-only-secret-0123456789abcdef"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CATEGORY = "translation"
SKILL = {"code": "translation.en-fr", "level": 3}


@dataclass
class Ports:
    kafka: int = 19392  # the controller takes the next one; below the ephemeral range
    mongo: int = 27417
    http_base: int = 18401  # catalog, matching, billing, notifications

    def next(self) -> Ports:
        """The ports of a second platform beside this one."""
        return Ports(self.kafka + 2, self.mongo + 1, self.http_base + 4)


@dataclass
class Cast:
    providers: list[str] = field(default_factory=list)
    offers: dict[str, str] = field(default_factory=dict)  # provider -> offer id
    clients: list[str] = field(default_factory=list)


def settings() -> Settings:
    return Settings(jwt_secret=SecretStr(JWT_SECRET))


class BenchPlatform:
    """Starts and stops exactly what it started (infra in its own state dir, services)."""

    def __init__(
        self, ports: Ports, *, base_dir: Path = BENCH_DIR, smtp: SmtpSink | None = None
    ) -> None:
        self.smtp = smtp or SmtpSink()
        self.cfg = PlatformConfig(
            state_dir=base_dir / "infra",
            run_dir=base_dir,
            kafka_port=ports.kafka,
            mongo_port=ports.mongo,
            base_port=ports.http_base,
            jwt_secret=JWT_SECRET,
        )
        self.platform = Platform(self.cfg, log=say)
        self.settings = settings()

    @property
    def kafka(self) -> str:
        return self.platform.kafka

    @property
    def mongodb(self) -> str:
        return self.platform.mongodb

    def url(self, service: str) -> str:
        return self.cfg.url(service)

    def database(self, service: str) -> str:
        return f"{self.cfg.database_prefix}_{service}"

    def ferretdb_pid(self) -> int | None:
        return self._infra_pid("ferretdb")

    def _infra_pid(self, name: str) -> int | None:
        try:
            return int((self.cfg.state_dir / name / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def process_groups(self) -> dict[str, int]:
        """What runs this platform, by name: each service, the store and the broker, with
        the id of its process group (each was started in a session of its own)."""
        out = {service: proc.pid for service, proc in self.platform.procs.items()}
        for name, label in (("ferretdb", "store"), ("kafka", "broker")):
            pid = self._infra_pid(name)
            if pid is not None:
                out[label] = pid
        return out

    async def start(self) -> None:
        # a previous benchmark that was killed may have left its own infra running
        try:
            _infra("stop", self.cfg, ["kafka", "ferretdb"])
        except PlatformError:
            pass
        shutil.rmtree(self.cfg.state_dir, ignore_errors=True)
        shutil.rmtree(self.cfg.run_dir / "logs", ignore_errors=True)
        self.smtp.start()
        self.cfg.extra_env.update(
            {"DELEGO_SMTP_HOST": "127.0.0.1", "DELEGO_SMTP_PORT": str(self.smtp.port)}
        )
        self.platform.start_infra()
        await self.platform.create_topics()
        self.platform.start_services()
        await self.platform.wait_ready(timeout=180)

    def restart_store(self) -> None:
        """Stop and start the local FerretDB on its data (the services reconnect).

        SQLite checkpoints its write-ahead log on close. After a bulk load of a
        million documents in a few minutes the log holds hundreds of MB that a
        store filled over months would have checkpointed along the way; left
        alone, that checkpoint runs in the background for minutes (measured:
        135 % of a core with 0.2 commands/s) and skews every later figure. The
        gigabytes the load wrote are flushed to disk first for the same reason: a
        kernel writing them back in the background slows every fsync of the store.
        """
        _infra("stop", self.cfg, ["ferretdb"])
        flush_to_disk()
        _infra("start", self.cfg, ["ferretdb"])

    def stop(self) -> None:
        try:
            self.platform.stop()
        finally:
            self.smtp.stop()


def flush_to_disk(timeout_s: float = 120.0) -> None:
    """Write the page cache's dirty pages to disk and wait until none are left."""
    os.sync()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _dirty_kb() > 64 * 1024:
        time.sleep(0.5)


def _dirty_kb() -> int:
    try:
        with open("/proc/meminfo") as f:
            rows = dict(line.split(":", 1) for line in f)
    except OSError:
        return 0
    return sum(int(rows.get(k, "0 kB").split()[0]) for k in ("Dirty", "Writeback"))


def bench_provider(i: int) -> dict[str, Any]:
    return {
        "display_name": f"Bench translator {i:02d}",
        "country": "IN",
        "languages": ["en", "fr"],
        "time_zone": "UTC",
        "schedule": [{"day": d, "start": "00:00", "end": "24:00"} for d in WEEK],
        "weekly_capacity_hours": "168",
        "skills": [{"code": "translation.en-fr", "level": 4}],
    }


BENCH_OFFER: dict[str, Any] = {
    "title": "Short translation, one page, package price",
    "category": CATEGORY,
    "skills": [{"code": "translation.en-fr", "level": 4}],
    "languages": ["en", "fr"],
    "delivery_mode": "remote",
    "typical_effort_hours": "1",
    "currency": "EUR",
    # a package is invoiced at MatchAccepted (billing's handlers), as in the flow
    "pricing": {
        "model": "package",
        "price": {"amount": "20.00", "currency": "EUR"},
        "hours_included": "1",
        "label": "one page",
    },
}


async def seed(bp: BenchPlatform, n_providers: int, n_clients: int) -> Cast:
    """Demo seed plus the benchmark's providers and clients, through the HTTP APIs."""
    s = bp.settings
    cast = Cast()
    lines = await seed_catalog(bp.url("catalog"), s)
    say(f"demo seed: {len(lines)} offers of {len(DEMO_PROVIDERS)} demo providers")
    limits = httpx.Limits(max_connections=16)
    async with (
        httpx.AsyncClient(base_url=bp.url("catalog"), timeout=30, limits=limits) as cat,
        httpx.AsyncClient(base_url=bp.url("notifications"), timeout=30, limits=limits) as notif,
        httpx.AsyncClient(base_url=bp.url("billing"), timeout=30, limits=limits) as bill,
    ):
        for i in range(n_providers):
            pid = f"prv-bench-{i:02d}"
            auth = bearer(s, pid, "provider")
            r = await cat.post("/providers", json=bench_provider(i), headers=auth)
            check(r, f"register {pid}", ok=(200, 201))
            created = check(await cat.post("/offers", json=BENCH_OFFER, headers=auth), "offer")
            oid = created["offer"]["offer_id"]
            check(await cat.post(f"/offers/{oid}/publish", headers=auth), f"publish {oid}")
            contact = {
                "email": f"bench{i:02d}@providers.example.org",
                "locale": "en",
                "zone": "UTC",
                "channels": ["email", "inapp"],
            }
            check(await notif.put("/v1/me/contact", json=contact, headers=auth), "contact")
            cast.providers.append(pid)
            cast.offers[pid] = oid
        for i in range(n_clients):
            cid = f"cli-bench-{i:04d}"
            auth = bearer(s, cid, "client")
            contact = {
                "email": f"client{i:04d}@example.fr",
                "locale": "fr",
                "zone": "Europe/Paris",
                "channels": ["email", "inapp"],
            }
            check(await notif.put("/v1/me/contact", json=contact, headers=auth), "contact")
            profile = {"residence_country": "FR", "dependents": 0, "avance_immediate": False}
            check(await bill.put("/tax-profile", json=profile, headers=auth), "tax profile")
            cast.clients.append(cid)
    say(f"bench cast: {n_providers} providers (24/7, 168 h/week), {n_clients} clients")
    return cast
