"""docker-compose.yml, checked statically (no Docker engine on the development machines):
against the Compose specification, and by Compose's own `config` command (built by
`make go-tools`), which resolves it as `docker compose up` would."""

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from delego_shared import tracing
from delego_shared.events import ALL_TOPICS
from delego_shared.messaging.acls import SERVICES
from delego_shared.testing.go_tools import go_tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ("catalog", "matching", "billing", "notifications")
JOBS = ("topics", "acls")  # one-shot operator jobs (the CLI image)


def test_compose_file_is_valid_against_the_compose_specification():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(COMPOSE, schema)


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_service_has_an_image_or_build_and_configuration(name):
    svc = COMPOSE["services"][name]
    assert "image" in svc or "build" in svc
    if name in (*APP_SERVICES, *JOBS):
        assert svc.get("env_file") == ".env" and (ROOT / ".env").exists()
        assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (ROOT / svc["build"]["dockerfile"]).exists()


NO_HEALTH_CHECK = {
    "topics": "one-shot job",
    "acls": "one-shot job",
    # the official collector images are built FROM scratch: no shell, curl or wget to
    # probe with (open-telemetry/opentelemetry-collector-releases#1145); nothing waits on
    # it (a service whose exporter cannot reach it drops spans, it does not fail)
    "otel-collector": "distroless image",
}


@pytest.mark.parametrize("name", sorted(n for n in COMPOSE["services"] if n not in NO_HEALTH_CHECK))
def test_every_long_running_service_has_a_health_check(name):
    assert COMPOSE["services"][name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_can_scale_no_fixed_host_port_and_wait_for_dependencies(name):
    svc = COMPOSE["services"][name]
    for port in svc.get("ports", []):
        assert ":" not in str(port), f"{name} publishes a fixed host port: {port}"
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert svc["depends_on"]["acls"]["condition"] == "service_completed_successfully"
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


def env_file() -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in (ROOT / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )


def test_env_file_points_services_at_the_compose_infrastructure():
    env = env_file()
    assert env["DELEGO_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["DELEGO_MONGODB_URL"] == "mongodb://mongo:27017/"

    assert env["DELEGO_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"


def _broker_properties() -> dict[str, str]:
    script = (ROOT / "deploy" / "docker" / "kafka-sasl.sh").read_text()
    body = script.split("<<PROPS\n", 1)[1].split("\nPROPS\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines())


def test_compose_kafka_authenticates_every_client_and_applies_acls():
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["entrypoint"] == ["/bin/bash", "/opt/delego/kafka-sasl.sh"]
    assert "./deploy/docker/kafka-sasl.sh:/opt/delego/kafka-sasl.sh:ro" in kafka["volumes"]
    props = _broker_properties()
    # no PLAINTEXT listener a client could reach: the controller's is on the loopback
    assert props["listeners"] == "SASL_PLAINTEXT://:9092,CONTROLLER://localhost:9093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://kafka:9092"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"].endswith(".StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert "--command-config" in kafka["healthcheck"]["test"][1]


def test_compose_kafka_config_matches_the_local_sasl_broker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("localinfra", ROOT / "deploy/local/localinfra.py")
    assert spec is not None and spec.loader is not None
    localinfra = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = localinfra  # dataclasses look their module up
    spec.loader.exec_module(localinfra)
    kafka = localinfra.Kafka(localinfra.Layout.from_env(kafka_port=9092, mongo_port=27017))
    local = dict(line.split("=", 1) for line in kafka._listener_config({"admin": "pw"}))
    props = _broker_properties()
    for key in (
        "sasl.enabled.mechanisms",
        "sasl.mechanism.inter.broker.protocol",
        "inter.broker.listener.name",
        "listener.security.protocol.map",
        "authorizer.class.name",
        "super.users",
        "allow.everyone.if.no.acl.found",
    ):
        assert props[key] == local[key], key


def test_every_kafka_user_has_a_secret_and_each_service_reads_only_its_own():
    script = (ROOT / "deploy" / "docker" / "kafka-sasl.sh").read_text()
    assert "USERS=(admin " + " ".join(SERVICES) + ")" in script
    users = ("admin", *SERVICES)
    assert set(COMPOSE["secrets"]) == {f"kafka_{u}" for u in users}
    for user in users:
        assert (ROOT / COMPOSE["secrets"][f"kafka_{user}"]["file"]).read_text().strip()
    assert COMPOSE["services"]["kafka"]["secrets"] == [f"kafka_{u}" for u in users]
    for name in APP_SERVICES:
        svc = COMPOSE["services"][name]
        assert svc["secrets"] == [f"kafka_{name}"]
        assert svc["environment"]["DELEGO_SERVICE_NAME"] == name  # the Kafka user name
        assert svc["environment"]["DELEGO_KAFKA_SASL_PASSWORD_FILE"] == f"/run/secrets/kafka_{name}"
    for job in JOBS:
        svc = COMPOSE["services"][job]
        assert svc["secrets"] == ["kafka_admin"]
        assert svc["environment"]["DELEGO_KAFKA_SASL_USERNAME"] == "admin"
    assert COMPOSE["services"]["acls"]["command"] == ["acls", "apply"]


def test_services_export_traces_to_the_collector_which_forwards_them_to_jaeger():
    env = env_file()
    assert tracing.wanted(env)  # the services' own rule: tracing on with this .env
    collector = COMPOSE["services"]["otel-collector"]
    [mount] = collector["volumes"]
    source, target = mount.removesuffix(":ro").split(":")
    assert collector["command"] == [f"--config={target}"]
    config = yaml.safe_load((ROOT / source).read_text())

    # services -> collector: OTLP/HTTP on the port its receiver listens on
    url = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert url.scheme == "http" and url.hostname == "otel-collector"
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.rsplit(":", 1)[1] == str(url.port)

    # every component a pipeline names is configured; the limiter comes first
    traces = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(traces[kind]) <= set(config[kind]), kind
    assert traces["processors"][0] == "memory_limiter"

    # collector -> Jaeger over OTLP/gRPC; Jaeger accepts it and serves its UI
    [exporter] = traces["exporters"]
    assert exporter.split("/")[0] == "otlp_grpc"
    host, port = config["exporters"][exporter]["endpoint"].rsplit(":", 1)
    jaeger = COMPOSE["services"][host]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert (port, jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]) == ("4317", "true")
    assert collector["depends_on"][host]["condition"] == "service_healthy"
    assert "16686:16686" in jaeger["ports"]
    for name in APP_SERVICES:  # none overrides the exporter settings of .env
        assert not {k for k in COMPOSE["services"][name].get("environment", {}) if "OTEL" in k}


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
