"""Prometheus scrape config, alert rules and the Grafana dashboard, checked statically:
every metric they query is in the services' own `/metrics` output, and Prometheus's
own checker (`promtool`, built by `make go-tools`) accepts the rules and the config."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from billing.app import create_app as billing_app
from catalog.app import create_app as catalog_app
from delego_shared.testing.go_tools import go_tool, go_tool_version
from fastapi import FastAPI
from matching.app import create_app as matching_app
from notifications.app import create_app as notifications_app
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS_FILE = ROOT / "deploy/prometheus/prometheus.yml"
ALERTS_FILE = ROOT / "deploy/prometheus/alerts.yml"
PROMETHEUS = yaml.safe_load(PROMETHEUS_FILE.read_text())
ALERTS = yaml.safe_load(ALERTS_FILE.read_text())
DASHBOARD = json.loads((ROOT / "deploy/grafana/dashboards/delego.json").read_text())
APPS = {
    "catalog": catalog_app,
    "matching": matching_app,
    "billing": billing_app,
    "notifications": notifications_app,
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
PROMETHEUS_OWN = {"up"}  # added by Prometheus to every scrape target


async def exposed(app: FastAPI) -> set[str]:
    """Sample names `/metrics` of this app exposes (no lifespan: nothing connects)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        resp = await http.get("/metrics")
    assert resp.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(resp.text):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


@pytest.fixture(scope="module")
def service_metrics() -> dict[str, set[str]]:
    import asyncio

    out = {}
    for name, create in APPS.items():
        app = create()  # the service's own settings (defaults); nothing connects
        out[name] = asyncio.run(exposed(app))
    return out


def queried(expr: str) -> set[str]:
    names = set(re.findall(r"\b(delego_[a-z0-9_]+|up)\b", expr))
    assert names, f"no metric in {expr!r}"
    return names


def test_every_service_exposes_the_platform_metrics(service_metrics):
    for name, metrics in service_metrics.items():
        assert "delego_http_requests_total" in metrics, name
        assert "delego_consumer_events_handled_total" in metrics, name
        assert "delego_outbox_pending_events" in metrics, name


def test_prometheus_scrapes_every_replica_of_every_service():
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    assert set(jobs) == set(APPS)
    for name, job in jobs.items():
        [sd] = job["dns_sd_configs"]  # a compose service name resolves to every replica
        assert sd["names"] == [name] and sd["type"] == "A" and sd["port"] == 8000
        assert COMPOSE["services"][name]["ports"] == ["8000"]
    mounts = COMPOSE["services"]["prometheus"]["volumes"]
    for rule_file in PROMETHEUS["rule_files"]:
        [mount] = [m for m in mounts if m.endswith(f":{rule_file}:ro")]
        assert (ROOT / mount.split(":")[0]).is_file()
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_alert_rules_cover_lag_dlq_outbox_and_readiness_on_exposed_metrics(service_metrics):
    rules = [r for group in ALERTS["groups"] for r in group["rules"]]
    by_name = {r["alert"]: r for r in rules}
    assert set(by_name) == {
        "DelegoConsumerLagGrowing",
        "DelegoDeadLetters",
        "DelegoOutboxStuck",
        "DelegoServiceNotReady",
    }
    assert by_name["DelegoConsumerLagGrowing"]["for"] == "5m"
    assert "delego_consumer_lag_records" in by_name["DelegoConsumerLagGrowing"]["expr"]
    assert "> 60" in by_name["DelegoOutboxStuck"]["expr"]
    everything = set().union(*service_metrics.values()) | PROMETHEUS_OWN
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        missing = queried(rule["expr"]) - everything
        assert not missing, f"{rule['alert']} queries metrics no service exposes: {missing}"


def test_dashboard_queries_only_metrics_the_services_expose(service_metrics):
    everything = set().union(*service_metrics.values()) | PROMETHEUS_OWN
    targets = [t for panel in DASHBOARD["panels"] for t in panel["targets"]]
    assert len(DASHBOARD["panels"]) >= 6
    for t in targets:
        missing = queried(t["expr"]) - everything
        assert not missing, f"dashboard queries metrics no service exposes: {missing}"
    titles = " ".join(p["title"].lower() for p in DASHBOARD["panels"])
    for topic in ("flows", "accepted → invoiced", "lag", "outbox", "dlq", "error"):
        assert topic in titles


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard():
    ds_file = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
    [ds] = yaml.safe_load(ds_file.read_text())["datasources"]
    assert ds["url"] == "http://prometheus:9090" and ds["type"] == "prometheus"
    uids = {t["datasource"]["uid"] for p in DASHBOARD["panels"] for t in p["targets"]}
    assert uids == {ds["uid"]}
    provider_file = ROOT / "deploy/grafana/provisioning/dashboards/delego.yml"
    [provider] = yaml.safe_load(provider_file.read_text())["providers"]
    mounts = COMPOSE["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [go_tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=60
    )


def mounted_rule_files() -> list[str]:
    """The rule files as prometheus.yml names them (container paths), mapped to the repo."""
    mounts = dict(
        tuple(reversed(m.removesuffix(":ro").split(":")))
        for m in COMPOSE["services"]["prometheus"]["volumes"]
    )
    return [str((ROOT / mounts[rule_file]).resolve()) for rule_file in PROMETHEUS["rule_files"]]


def test_promtool_is_the_version_of_the_compose_prometheus():
    """Prometheus v3.M.P is the Go module version v0.3MM.P (their tagging since 3.0)."""
    image = COMPOSE["services"]["prometheus"]["image"]
    major, minor, patch = map(int, image.removeprefix("prom/prometheus:v").split("."))
    assert major == 3
    assert go_tool_version("promtool") == f"v0.{major}{minor:02d}.{patch}"


@pytest.mark.tools
def test_the_built_promtool_reports_the_compose_prometheus_version():
    version = COMPOSE["services"]["prometheus"]["image"].removeprefix("prom/prometheus:v")
    result = promtool("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"promtool, version {version} ")


@pytest.mark.tools
def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", ALERTS_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


@pytest.mark.tools
def test_promtool_accepts_the_scrape_config_and_the_rule_files_compose_mounts(tmp_path):
    config = copy.deepcopy(PROMETHEUS)
    config["rule_files"] = mounted_rule_files()  # where compose mounts them, here
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {path} is valid prometheus config file syntax" in result.stdout
    assert "SUCCESS: 4 rules found" in result.stdout


@pytest.mark.tools
def test_promtool_rejects_a_rule_whose_query_does_not_parse(tmp_path):
    """The checks above can fail: one parenthesis missing is an error."""
    alerts = copy.deepcopy(ALERTS)
    rule = alerts["groups"][0]["rules"][2]
    assert rule["alert"] == "DelegoOutboxStuck"
    rule["expr"] = rule["expr"].replace(")", "", 1)
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(alerts))
    result = promtool("check", "rules", path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr
