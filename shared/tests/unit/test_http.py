import time
from datetime import timedelta

import httpx
import jwt
import pytest
from delego_shared.http import (
    Caller,
    Conflict,
    Principal,
    Role,
    install_problem_handlers,
    mint_token,
    require_role,
)
from delego_shared.settings import Settings
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

SETTINGS = Settings(jwt_secret="unit-test-secret-0123456789abcdef0123")  # type: ignore[arg-type]


class Body(BaseModel):
    name: str = Field(min_length=2)
    hours: int = Field(gt=0)


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.settings = SETTINGS
    install_problem_handlers(app)

    @app.get("/me")
    async def me(who: Caller) -> dict[str, str]:
        return {"sub": who.subject, "role": who.role.value}

    operator = Depends(require_role(Role.OPERATOR))

    @app.post("/ops")
    async def ops(body: Body, who: Principal = operator) -> dict:
        return {"ok": True}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("offer is withdrawn; it cannot be published")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def auth(role: str, sub: str = "u1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SETTINGS, sub, role)}"}


async def test_valid_token_gives_subject_and_role(client):
    r = await client.get("/me", headers=auth("provider", "prv_7"))
    assert r.json() == {"sub": "prv_7", "role": "provider"}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Basic abc"}, "missing bearer token"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid token"),
    ],
)
async def test_missing_or_bad_token_is_401_problem(client, headers, detail):
    r = await client.get("/me", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


async def test_expired_and_foreign_tokens_are_refused(client):
    expired = mint_token(SETTINGS, "u", "client", ttl=timedelta(seconds=-5))
    r = await client.get("/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    forged = jwt.encode(
        {"sub": "u", "role": "operator", "iss": "delego", "exp": 9999999999},
        "another-secret-0123456789abcdef0123",
        algorithm="HS256",
    )
    r = await client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    no_role = jwt.encode(
        {"sub": "u", "role": "admin", "iss": "delego", "exp": int(time.time()) + 3600},
        SETTINGS.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )
    r = await client.get("/me", headers={"Authorization": f"Bearer {no_role}"})
    assert r.status_code == 401 and "role" in r.json()["detail"]


async def test_wrong_role_is_403_problem(client):
    r = await client.post("/ops", json={"name": "ok", "hours": 1}, headers=auth("client"))
    assert r.status_code == 403
    assert r.json()["type"].endswith("/forbidden")
    assert "operator" in r.json()["detail"]


async def test_invalid_body_is_422_with_field_details(client):
    r = await client.post("/ops", json={"name": "x", "hours": 0}, headers=auth("operator"))
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == 422
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "hours"}


async def test_domain_conflict_is_409_problem(client):
    r = await client.get("/conflict")
    assert r.status_code == 409
    assert r.json() == {
        "type": "https://delego.example/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "offer is withdrawn; it cannot be published",
        "instance": "/conflict",
    }


async def test_unexpected_error_is_a_500_problem_without_internals(client):
    r = await client.get("/boom")
    assert r.status_code == 500
    assert "secret internals" not in r.text
    assert r.json()["type"].endswith("/internal-error")


async def test_unknown_route_is_404_problem(client):
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


class _Runtime:
    """Just what the health routes read (the real one needs Kafka and the store)."""

    def __init__(self, *, reachable: bool, waiting: list[dict[str, object]]) -> None:
        self.settings = Settings(service_name="svc")
        self.started = True
        self._reachable = reachable
        self.consumer = type("C", (), {"health": lambda _: {"waiting": waiting}})()

    async def readiness(self) -> dict[str, bool]:
        return {"database": self._reachable, "broker": True}


@pytest.mark.parametrize(
    ("reachable", "waiting", "code", "status"),
    [
        (True, [], 200, "ready"),
        (True, [{"topic": "t", "partition": 0, "waiting_s": 3.0}], 200, "degraded"),
        (False, [{"topic": "t", "partition": 0, "waiting_s": 3.0}], 503, "not_ready"),
    ],
)
async def test_readiness_shows_consumers_waiting_for_the_store_as_degraded(
    reachable, waiting, code, status
):
    from delego_shared.http.app import create_http_app

    app = create_http_app(_Runtime(reachable=reachable, waiting=waiting), title="t")  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/health/ready")
    assert r.status_code == code
    assert r.json()["status"] == status
    assert r.json()["consumer"]["waiting"] == waiting


async def test_an_unreachable_store_is_a_503_problem_to_retry():
    from pymongo.errors import ServerSelectionTimeoutError

    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise ServerSelectionTimeoutError("no servers")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/boom")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "5"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Service unavailable"
