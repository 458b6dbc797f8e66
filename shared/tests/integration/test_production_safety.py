"""A production service refuses to start with a secret anyone could know (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from delego_shared.http import mint_token
from delego_shared.settings import DEFAULT_JWT_SECRET, UnsafeSettings
from pydantic import SecretStr

pytestmark = pytest.mark.integration

STRONG = "k3V9q-production-grade-random-secret-5wHf2LxZ8pQ"


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "demo secret"),  # the default
        ("compose-demo-secret-change-me-0123456789", "demo secret"),  # the committed .env
        ("short-but-not-demo", "shorter than 32 bytes"),
    ],
)
def test_a_production_service_process_refuses_a_weak_secret_in_one_line(
    settings_for, secret, reason, tmp_path: Path
):
    s = settings_for("catalog")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELEGO_")}
    env.update(
        DELEGO_ENVIRONMENT="production",
        DELEGO_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
        DELEGO_MONGODB_URL=s.mongodb_url,
        DELEGO_MONGODB_DATABASE=s.database,
        DELEGO_TOPIC_PREFIX=s.topic_prefix,
        DELEGO_HTTP_PORT="1",  # never reached: it must stop before serving
    )
    if secret is not None:
        env["DELEGO_JWT_SECRET"] = secret
    done = subprocess.run(
        [sys.executable, "-m", "catalog"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("delego-catalog: ")
    assert reason in lines[0] and "refusing to start" in lines[0]


@pytest.mark.parametrize("service", ["catalog", "matching", "billing", "notifications"])
def test_every_service_app_refuses_the_default_secret_in_production(settings_for, service):
    import importlib

    create_app = importlib.import_module(f"{service}.app").create_app
    with pytest.raises(UnsafeSettings, match="demo secret"):
        create_app(settings_for(service, environment="production"))


async def test_a_production_service_starts_with_a_strong_secret_and_accepts_its_tokens(
    settings_for,
):
    from catalog.app import create_app

    s = settings_for("catalog", environment="production", jwt_secret=STRONG)
    app = create_app(s)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            token = mint_token(s, "op-1", "operator")
            r = await c.get("/taxonomy", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            demo = s.model_copy(update={"jwt_secret": SecretStr(DEFAULT_JWT_SECRET)})
            forged = mint_token(demo, "op-1", "operator")
            r = await c.get("/taxonomy", headers={"Authorization": f"Bearer {forged}"})
            assert r.status_code == 401
