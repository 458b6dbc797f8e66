"""docker-compose.yml, checked statically (no Docker engine on the development machines):
against the Compose specification, and by Compose's own `config` command (built by
`make go-tools`), which resolves it as `docker compose up` would."""

import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from delego_shared.events import ALL_TOPICS
from delego_shared.testing.go_tools import go_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ("catalog", "matching", "billing", "notifications")


def test_compose_file_is_valid_against_the_compose_specification():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(COMPOSE, schema)


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_service_has_an_image_or_build_and_configuration(name):
    svc = COMPOSE["services"][name]
    assert "image" in svc or "build" in svc
    if name in APP_SERVICES or name == "topics":
        assert svc.get("env_file") == ".env" and (ROOT / ".env").exists()
        assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (ROOT / svc["build"]["dockerfile"]).exists()


@pytest.mark.parametrize("name", sorted(n for n in COMPOSE["services"] if n != "topics"))
def test_every_long_running_service_has_a_health_check(name):
    assert COMPOSE["services"][name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_can_scale_no_fixed_host_port_and_wait_for_dependencies(name):
    svc = COMPOSE["services"][name]
    for port in svc.get("ports", []):
        assert ":" not in str(port), f"{name} publishes a fixed host port: {port}"
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert svc["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert svc["build"]["args"]["PACKAGE"] == f"delego-{name}"
    assert (ROOT / "services" / name / "pyproject.toml").exists()


def test_topic_list_is_the_codes():
    assert COMPOSE["x-delego-topics"] == {t.name: t.partitions for t in ALL_TOPICS}
    assert COMPOSE["services"]["topics"]["command"] == ["topics", "create"]


def test_kafka_image_is_the_version_of_the_local_broker():
    pom = (ROOT / "deploy" / "local" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{version}"
    infra = (ROOT / "shared" / "src" / "delego_shared" / "testing" / "infra.py").read_text()
    assert f'KAFKA_IMAGE = "apache/kafka:{version}"' in infra


def test_env_file_points_services_at_the_compose_infrastructure():
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["DELEGO_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["DELEGO_MONGODB_URL"] == "mongodb://mongo:27017/"


def compose(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`docker compose <args>` on this checkout; no Docker engine is involved in `config`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [go_tool("compose"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.tools
def test_compose_config_accepts_the_file():
    result = compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


@pytest.mark.tools
def test_compose_resolves_the_app_services_as_the_file_means_them():
    """Anchors, merge keys and `.env` as Compose itself reads them."""
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == set(COMPOSE["services"])
    for name in APP_SERVICES:
        svc = resolved["services"][name]
        assert svc["environment"]["DELEGO_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert svc["environment"]["DELEGO_MONGODB_URL"] == "mongodb://mongo:27017/", name
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert [p["target"] for p in svc["ports"]] == [8000], name
        assert all(not p.get("published") for p in svc["ports"]), name  # ephemeral host port
        assert svc["healthcheck"]["test"], name
        assert svc["build"]["args"]["PACKAGE"] == f"delego-{name}"


@pytest.mark.tools
def test_compose_config_rejects_an_unknown_service_key(tmp_path):
    """The check above can fail: Compose refuses what the specification does not know."""
    broken = {"services": {"catalog": {"image": "busybox", "replica": 2}}}
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    result = compose("config", "--quiet", cwd=tmp_path)
    assert result.returncode != 0
    assert "replica" in result.stderr
