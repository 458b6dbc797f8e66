"""`delego status` on a real broker with a real billing service answering over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from billing.app import create_app
from billing.settings import BillingSettings
from delego_cli.main import app
from delego_shared.events import PROVIDERS, Envelope
from delego_shared.testing.samples import registered
from typer.testing import CliRunner

from .test_cli_on_broker import publish_and_park

pytestmark = pytest.mark.integration
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_thread(settings: BillingSettings) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return server, thread, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("billing did not become ready")


def test_status_shows_health_lag_dlq_and_last_minute(settings_for):
    """Synchronous: the CLI runs its own event loop, as from a shell."""
    catalog = settings_for("catalog")
    env = Envelope(registered("prv_status"), source=catalog.source)
    asyncio.run(publish_and_park(catalog, env))  # one record, parked once
    billing = BillingSettings(
        **{**settings_for("billing").model_dump(), "metrics_lag_interval_s": 0.2}
    )
    server, thread, url = serve_in_thread(billing)
    try:
        time.sleep(1.0)  # a lag reading or two
        args = ["status", "-b", catalog.kafka_bootstrap, "--prefix", catalog.topic_prefix]
        args += ["-s", f"billing={url}"]
        for other in ("catalog", "matching", "notifications"):
            args += ["-s", f"{other}=http://127.0.0.1:{free_port()}"]  # nothing listens
        result = runner.invoke(app, args, env={"COLUMNS": "220"})
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    out = result.output
    assert result.exit_code == 0, out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 2}
    assert "ready" in rows["billing"] and "down" in rows["catalog"]
    assert rows[billing.consumer_group].split("│")[2].strip() == "0"  # its lag, read by billing
    providers = rows[catalog.topic(PROVIDERS.name)].split("│")
    assert [c.strip() for c in providers[2:4]] == ["1", "1"]  # last minute, DLQ waiting
