"""Prometheus scrape config, alert rules and the Grafana dashboard, checked statically:
every metric they query is in the services' own `/metrics` output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from billing.app import create_app as billing_app
from catalog.app import create_app as catalog_app
from fastapi import FastAPI
from matching.app import create_app as matching_app
from notifications.app import create_app as notifications_app
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
ALERTS = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
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
