"""Where the real broker and database for tests come from.

1. `DELEGO_KAFKA_BOOTSTRAP` / `DELEGO_MONGODB_URL` set: use those servers.
2. a Docker engine answers: testcontainers (`apache/kafka`, `mongo`).
3. otherwise: the local Kafka (Maven Central jars on the JDK) and FerretDB
   (built from the Go module proxy) of `deploy/local/localinfra.py`, on test
   ports and a test state directory, so a running `make run` is not disturbed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
LOCALINFRA = REPO / "deploy" / "local" / "localinfra.py"
KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"
TEST_KAFKA_PORT = int(os.environ.get("DELEGO_TEST_KAFKA_PORT", "19092"))
TEST_MONGO_PORT = int(os.environ.get("DELEGO_TEST_MONGO_PORT", "27117"))
TEST_STATE = REPO / ".delego" / "test"


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    mongodb_url: str
    origin: str  # "env", "testcontainers" or "local"


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _local(component: str, action: str) -> None:
    cmd = [
        sys.executable,
        str(LOCALINFRA),
        component,
        action,
        "--state-dir",
        str(TEST_STATE),
        "--kafka-port",
        str(TEST_KAFKA_PORT),
        "--mongo-port",
        str(TEST_MONGO_PORT),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{result.stdout}\n{result.stderr}")


def provide(stack: ExitStack) -> Infra:
    """Start (or find) the infrastructure; `stack` stops what was started here."""
    kafka = os.environ.get("DELEGO_KAFKA_BOOTSTRAP")
    mongo = os.environ.get("DELEGO_MONGODB_URL")
    if kafka and mongo:
        return Infra(kafka, mongo, "env")
    if docker_available():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.mongodb import MongoDbContainer

        if not kafka:
            kc = stack.enter_context(KafkaContainer(KAFKA_IMAGE).with_kraft())
            kafka = kc.get_bootstrap_server()
        if not mongo:
            mc = stack.enter_context(MongoDbContainer(MONGO_IMAGE))
            mongo = mc.get_connection_url()
        return Infra(kafka, mongo, "testcontainers")
    components = [c for c, given in (("kafka", kafka), ("ferretdb", mongo)) if not given]
    for c in components:
        _local(c, "start")
        stack.callback(_local, c, "stop")
    return Infra(
        kafka or f"127.0.0.1:{TEST_KAFKA_PORT}",
        mongo or f"mongodb://127.0.0.1:{TEST_MONGO_PORT}/",
        "local",
    )
