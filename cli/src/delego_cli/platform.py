"""Run the whole platform on this machine: infrastructure, topics, four services.

Used by `make run` (then the demo story plays and the platform keeps running
until Ctrl-C) and by the end-to-end test (same code path, isolated ports,
topic prefix and databases).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from delego_shared.events import ALL_TOPICS
from delego_shared.messaging import ensure_topics

REPO = Path(__file__).resolve().parents[3]
LOCALINFRA = REPO / "deploy" / "local" / "localinfra.py"
SERVICES: dict[str, int] = {
    "catalog": 8001,
    "matching": 8002,
    "billing": 8003,
    "notifications": 8004,
}


@dataclass
class PlatformConfig:
    kafka_bootstrap: str | None = None  # None: start the local Kafka
    mongodb_url: str | None = None  # None: start the local FerretDB
    state_dir: Path = REPO / ".delego" / "local"
    run_dir: Path = REPO / ".delego" / "run"
    kafka_port: int = 9092
    mongo_port: int = 27017
    base_port: int = 8001
    topic_prefix: str = ""
    database_prefix: str = "delego"
    jwt_secret: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> PlatformConfig:
        env = os.environ
        return cls(
            kafka_bootstrap=env.get("DELEGO_KAFKA_BOOTSTRAP") or None,
            mongodb_url=env.get("DELEGO_MONGODB_URL") or None,
            kafka_port=int(env.get("DELEGO_LOCAL_KAFKA_PORT", "9092")),
            mongo_port=int(env.get("DELEGO_LOCAL_MONGO_PORT", "27017")),
            base_port=int(env.get("DELEGO_BASE_PORT", "8001")),
            jwt_secret=env.get("DELEGO_JWT_SECRET") or None,
        )

    def port(self, service: str) -> int:
        return self.base_port + list(SERVICES).index(service)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"


class PlatformError(RuntimeError):
    pass


def _shown(path: Path) -> str:
    """A path as the operator types it from the repository (absolute when outside)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _infra(action: str, cfg: PlatformConfig, components: list[str]) -> None:
    for c in components:
        cmd = [
            sys.executable,
            str(LOCALINFRA),
            c,
            action,
            "--state-dir",
            str(cfg.state_dir),
            "--kafka-port",
            str(cfg.kafka_port),
            "--mongo-port",
            str(cfg.mongo_port),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise PlatformError(f"{c} {action} failed:\n{result.stdout}{result.stderr}")


class Platform:
    """The running platform: owns what it started and stops exactly that."""

    def __init__(self, cfg: PlatformConfig, log: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.log = log
        self.started_infra: list[str] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kafka = cfg.kafka_bootstrap or f"127.0.0.1:{cfg.kafka_port}"
        self.mongodb = cfg.mongodb_url or f"mongodb://127.0.0.1:{cfg.mongo_port}/"

    # --- start ------------------------------------------------------------------
    def start_infra(self) -> None:
        wanted = [
            c
            for c, given in (
                ("kafka", self.cfg.kafka_bootstrap),
                ("ferretdb", self.cfg.mongodb_url),
            )
            if not given
        ]
        t0 = time.monotonic()
        if wanted:
            _infra("start", self.cfg, wanted)
            self.started_infra = wanted
        self.log(
            f"infrastructure ready in {time.monotonic() - t0:.1f}s: kafka {self.kafka} "
            f"({'local' if 'kafka' in wanted else 'external'}), mongodb {self.mongodb} "
            f"({'local FerretDB' if 'ferretdb' in wanted else 'external'})"
        )

    async def create_topics(self) -> None:
        created = await ensure_topics(self.kafka, ALL_TOPICS, prefix=self.cfg.topic_prefix)
        names = ", ".join(f"{self.cfg.topic_prefix}{t.name}({t.partitions})" for t in ALL_TOPICS)
        self.log(f"topics ready ({len(created)} created now): {names} + .dlq each")

    def env_for(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEGO_")}
        env.update(
            {
                "DELEGO_SERVICE_NAME": service,
                "DELEGO_KAFKA_BOOTSTRAP": self.kafka,
                "DELEGO_MONGODB_URL": self.mongodb,
                "DELEGO_MONGODB_DATABASE": f"{self.cfg.database_prefix}_{service}",
                "DELEGO_TOPIC_PREFIX": self.cfg.topic_prefix,
                "DELEGO_HTTP_HOST": "127.0.0.1",
                "DELEGO_HTTP_PORT": str(self.cfg.port(service)),
                "DELEGO_LOG_FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.cfg.jwt_secret:
            env["DELEGO_JWT_SECRET"] = self.cfg.jwt_secret
        env.update(self.cfg.extra_env)
        return env

    def start_services(self) -> None:
        for service in SERVICES:
            self.start_service(service)

    def start_service(self, service: str) -> None:
        logs = self.cfg.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{service}.log", "ab") as out:
            self.procs[service] = subprocess.Popen(
                [sys.executable, "-m", service],
                env=self.env_for(service),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=REPO,
            )

    def kill_service(self, service: str) -> None:
        """SIGKILL, as a crash would: no shutdown, nothing flushed (fault runs)."""
        proc = self.procs[service]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(SERVICES)
        async with httpx.AsyncClient(timeout=3) as http:
            while pending and time.monotonic() < deadline:
                for service in sorted(pending):
                    proc = self.procs[service]
                    if proc.poll() is not None:
                        raise PlatformError(
                            f"{service} exited with {proc.returncode}; see "
                            f"{self.cfg.run_dir / 'logs' / (service + '.log')}"
                        )
                    try:
                        r = await http.get(f"{self.cfg.url(service)}/health/ready")
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 200:
                        pending.discard(service)
                        self.log(
                            f"  {service:<14} ready  {self.cfg.url(service)}  "
                            f"(docs {self.cfg.url(service)}/docs, "
                            f"metrics {self.cfg.url(service)}/metrics, log "
                            f"{_shown(self.cfg.run_dir / 'logs' / (service + '.log'))}, "
                            f"pid {proc.pid})"
                        )
                await asyncio.sleep(0.5)
        if pending:
            raise PlatformError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")

    # --- stop -------------------------------------------------------------------
    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if self.started_infra:
            _infra("stop", self.cfg, list(reversed(self.started_infra)))
            self.started_infra = []
