"""Every HTTP error path of the catalog (401, 403, 404, 409, 422), on the real app and infra.

Each answer is an RFC 9457 problem body; a bad request never yields 500.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def assert_problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("https://delego.example/problems/")
    return dict(body)


def fields(r) -> dict[str, str]:
    body = assert_problem(r, 422)
    assert body["errors"], body
    return {e["field"]: e["message"] for e in body["errors"]}


@pytest.fixture
def c(shared_catalog):
    return shared_catalog


async def provider_with_offer(c, status: str = "draft") -> tuple[str, str]:
    pid = c.unique("prv")
    await c.register(pid)
    offer = await c.draft(pid)
    if status in ("published", "withdrawn"):
        await c.publish(pid, offer["offer_id"])
    if status == "withdrawn":
        r = await c.http.post(
            f"/offers/{offer['offer_id']}/withdraw", headers=c.auth(pid, "provider")
        )
        assert r.status_code == 200
    return pid, offer["offer_id"]


# -- 401 ---------------------------------------------------------------------------------------


def forged(c, **claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    base = {
        "sub": "prv_x",
        "role": "provider",
        "iss": c.settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    secret = claims.pop("secret", c.settings.jwt_secret.get_secret_value())
    token = jwt.encode({**base, **claims}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/offers"),
        ("GET", "/offers/off_1"),
        ("POST", "/providers"),
        ("GET", "/providers/prv_1"),
        ("POST", "/providers/prv_1/suspend"),
        ("GET", "/taxonomy"),
    ],
)
async def test_no_token_is_401(c, method, path):
    r = await c.http.request(method, path)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


async def test_bad_tokens_are_401(c):
    now = datetime.now(UTC)
    cases = [
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        forged(c, secret="another-secret-another-secret-1234"),
        forged(c, exp=now - timedelta(minutes=1)),
        forged(c, iss="someone-else"),
        forged(c, role="superuser"),
    ]
    for headers in cases:
        assert_problem(await c.http.get("/offers", headers=headers), 401)


# -- 403: wrong role ---------------------------------------------------------------------------


async def test_wrong_roles_are_403(c):
    pid, oid = await provider_with_offer(c)
    client = c.auth("cli_1", "client")
    provider = c.auth(pid, "provider")
    operator = c.auth("op_1", "operator")
    cases = [
        ("POST", "/providers", client, c.profile_body()),
        ("POST", "/providers", operator, c.profile_body()),
        ("PATCH", f"/providers/{pid}", client, {"display_name": "X"}),
        ("POST", f"/providers/{pid}/suspend", provider, None),
        ("POST", f"/providers/{pid}/suspend", client, None),
        ("POST", f"/providers/{pid}/reinstate", provider, None),
        ("POST", "/offers", client, c.offer_body()),
        ("PATCH", f"/offers/{oid}", client, {"title": "X"}),
        ("POST", f"/offers/{oid}/publish", client, None),
        ("POST", f"/offers/{oid}/withdraw", client, None),
        ("DELETE", f"/offers/{oid}", client, None),
    ]
    for method, path, headers, body in cases:
        r = await c.http.request(method, path, headers=headers, json=body)
        assert_problem(r, 403)
    # the role is checked before the body: an invalid body from a client is still 403
    r = await c.http.post("/offers", headers=client, json={"nonsense": True})
    assert_problem(r, 403)


# -- 404: unknown, or someone else's -----------------------------------------------------------


async def test_unknown_resources_are_404(c):
    anyone = c.auth("cli_1", "client")
    operator = c.auth("op_1", "operator")
    assert_problem(await c.http.get("/providers/prv_nobody", headers=anyone), 404)
    assert_problem(await c.http.get("/offers/off_nothing", headers=anyone), 404)
    assert_problem(await c.http.post("/providers/prv_nobody/suspend", headers=operator), 404)
    assert_problem(await c.http.post("/providers/prv_nobody/reinstate", headers=operator), 404)
    r = await c.http.patch("/providers/prv_nobody", headers=operator, json={"display_name": "X"})
    assert_problem(r, 404)
    assert_problem(await c.http.post("/offers/off_nothing/publish", headers=operator), 404)
    r = await c.http.post(
        "/offers", params={"provider_id": "prv_nobody"}, headers=operator, json=c.offer_body()
    )
    assert_problem(r, 404)
    assert_problem(await c.http.get("/no/such/route", headers=anyone), 404)


async def test_someone_elses_resources_are_404(c):
    owner, draft_id = await provider_with_offer(c, "draft")
    _, published_id = await provider_with_offer(c, "published")
    other = c.unique("prv")
    await c.register(other)
    them = c.auth(other, "provider")
    cases = [
        ("PATCH", f"/providers/{owner}", {"display_name": "Hijacked"}),
        ("GET", f"/offers/{draft_id}", None),  # drafts are private
        ("PATCH", f"/offers/{draft_id}", {"title": "Mine now"}),
        ("POST", f"/offers/{draft_id}/publish", None),
        ("DELETE", f"/offers/{draft_id}", None),
        ("PATCH", f"/offers/{published_id}", {"title": "Mine now"}),
        ("POST", f"/offers/{published_id}/withdraw", None),
    ]
    for method, path, body in cases:
        r = await c.http.request(method, path, headers=them, json=body)
        assert_problem(r, 404)
    r = await c.http.post(
        "/offers", params={"provider_id": owner}, headers=them, json=c.offer_body()
    )
    assert_problem(r, 404)
    # a client cannot see a draft either, but sees the published offer
    client = c.auth("cli_1", "client")
    assert_problem(await c.http.get(f"/offers/{draft_id}", headers=client), 404)
    assert (await c.http.get(f"/offers/{published_id}", headers=client)).status_code == 200
    # and nothing was changed by the attempts
    r = await c.http.get(f"/offers/{draft_id}", headers=c.auth(owner, "provider"))
    assert r.json()["offer"]["version"] == 1


# -- 409: illegal lifecycle transitions and conflicts ------------------------------------------


async def test_illegal_offer_transitions_are_409(c):
    _, draft_id = await provider_with_offer(c, "draft")
    _, pub_id = await provider_with_offer(c, "published")
    _, wd_id = await provider_with_offer(c, "withdrawn")
    operator = c.auth("op_1", "operator")
    cases = [
        ("POST", f"/offers/{draft_id}/withdraw", None),  # a draft is deleted, not withdrawn
        ("POST", f"/offers/{pub_id}/publish", None),
        ("DELETE", f"/offers/{pub_id}", None),
        ("POST", f"/offers/{wd_id}/publish", None),
        ("POST", f"/offers/{wd_id}/withdraw", None),
        ("PATCH", f"/offers/{wd_id}", {"title": "Back again"}),
    ]
    for method, path, body in cases:
        r = await c.http.request(method, path, headers=operator, json=body)
        problem = assert_problem(r, 409)
        assert "cannot" in problem["detail"] or "only drafts" in problem["detail"]


async def test_illegal_provider_transitions_and_duplicates_are_409(c):
    pid = c.unique("prv")
    await c.register(pid)
    me = c.auth(pid, "provider")
    operator = c.auth("op_1", "operator")
    r = await c.http.post("/providers", headers=me, json=c.profile_body())
    assert "already registered" in assert_problem(r, 409)["detail"]
    assert_problem(await c.http.post(f"/providers/{pid}/reinstate", headers=operator), 409)
    assert (await c.http.post(f"/providers/{pid}/suspend", headers=operator)).status_code == 200
    assert_problem(await c.http.post(f"/providers/{pid}/suspend", headers=operator), 409)


async def test_a_suspended_provider_cannot_create_or_publish_offers(c):
    pid, draft_id = await provider_with_offer(c, "draft")
    operator = c.auth("op_1", "operator")
    assert (await c.http.post(f"/providers/{pid}/suspend", headers=operator)).status_code == 200
    me = c.auth(pid, "provider")
    assert_problem(await c.http.post("/offers", headers=me, json=c.offer_body()), 409)
    assert_problem(await c.http.post(f"/offers/{draft_id}/publish", headers=me), 409)


async def test_offers_before_registration_are_409(c):
    me = c.auth(c.unique("prv"), "provider")
    r = await c.http.post("/offers", headers=me, json=c.offer_body())
    assert "register" in assert_problem(r, 409)["detail"]


# -- 422: invalid bodies and queries, with field details ---------------------------------------


async def test_structurally_invalid_bodies_are_422_with_fields(c):
    me = c.auth(c.unique("prv"), "provider")
    r = await c.http.post("/providers", headers=me, content=b"{not json")
    assert_problem(r, 422)
    r = await c.http.post("/providers", headers=me, json=["a", "list"])
    assert_problem(r, 422)
    r = await c.http.post("/providers", headers=me, json={})
    assert {"display_name", "country", "time_zone", "schedule"} <= set(fields(r))
    bad = c.profile_body(
        schedule=[{"day": "mon", "start": "25:00", "end": "17:00"}],
        weekly_capacity_hours="lots",
        favourite_colour="blue",
    )
    got = fields(await c.http.post("/providers", headers=me, json=bad))
    assert "HH:MM" in got["schedule.0.start"]
    assert "weekly_capacity_hours" in got
    assert "favourite_colour" in got  # unknown fields are refused, not ignored


async def test_provider_rule_violations_are_422_with_precise_messages(c):
    me = c.auth(c.unique("prv"), "provider")
    bad = c.profile_body(
        time_zone="Asia/Bangalore",
        weekly_capacity_hours="200",
        schedule=[
            {"day": "mon", "start": "09:00", "end": "17:00"},
            {"day": "mon", "start": "16:00", "end": "18:00"},
        ],
        skills=[{"code": "translation.en-xx", "level": 6}],
        languages=["english"],
        country="France",
    )
    got = fields(await c.http.post("/providers", headers=me, json=bad))
    assert "IANA" in got["time_zone"]
    assert "skills.0.code" in got and "skills.0.level" in got
    assert "languages.0" in got and "country" in got
    assert any(f.startswith("schedule") for f in got)
    assert "weekly_capacity_hours" in got


async def test_offer_rule_violations_are_422_with_precise_messages(c):
    pid = c.unique("prv")
    await c.register(pid)
    me = c.auth(pid, "provider")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"category": "astrology"}, "category"),
        ({"currency": "EUROS"}, "currency"),
        (
            {"pricing": {"model": "package", "price": {"amount": "0", "currency": "EUR"}}},
            "pricing.price",
        ),
        (
            {"pricing": {"model": "package", "price": {"amount": 650.0, "currency": "EUR"}}},
            "pricing.package.price.amount",
        ),
        (
            {"pricing": {"model": "hourly", "rate": {"amount": "1E+30", "currency": "EUR"}}},
            "pricing.rate",
        ),
        ({"pricing": {"model": "barter"}}, "pricing"),
        ({"skills": [{"code": "gaming.coaching", "level": 2}]}, "skills.0.code"),
        ({"title": "Call me on +33 6 12 34 56 78"}, "title"),
        ({"languages": ["de"]}, "languages.0"),
        ({"delivery_mode": "teleport"}, "delivery_mode"),
    ]
    for override, field in cases:
        r = await c.http.post("/offers", headers=me, json=c.offer_body(**override))
        got = fields(r)
        assert any(f == field or f.startswith(field) for f in got), (override, got)
    # an update is validated as a whole too, and a null for a required field is refused
    offer = await c.draft(pid)
    r = await c.http.patch(
        f"/offers/{offer['offer_id']}", headers=me, json={"title": None, "category": "nope"}
    )
    assert {"title", "category"} <= set(fields(r))


async def test_other_invalid_inputs_are_422(c):
    pid, _ = await provider_with_offer(c)
    operator = c.auth("op_1", "operator")
    r = await c.http.post(
        f"/providers/{pid}/suspend", headers=operator, json={"reason_code": "Not A Code!"}
    )
    assert "reason_code" in fields(r)
    r = await c.http.post("/offers", headers=operator, json=c.offer_body())
    assert "provider_id" in fields(r)  # an operator must say for whom


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "astrology"}, "category"),
        ({"skill": "tutoring.alchemy"}, "skill"),
        ({"min_level": 3}, "min_level"),
        ({"skill": "tutoring.maths", "min_level": 9}, "min_level"),
        ({"skill": "tutoring.maths", "min_level": "high"}, "min_level"),
        ({"language": "klingon!"}, "language"),
        ({"max_price": "20"}, "currency"),
        ({"currency": "EUR"}, "currency"),
        ({"max_price": "20", "currency": "EUROS"}, "currency"),
        ({"max_price": "-5", "currency": "EUR"}, "max_price"),
        ({"max_price": "cheap", "currency": "EUR"}, "max_price"),
        ({"max_price": "NaN", "currency": "EUR"}, "max_price"),
        ({"pricing_model": "barter"}, "pricing_model"),
        ({"delivery_mode": "teleport"}, "delivery_mode"),
        ({"time_zone": "Mars/Olympus"}, "time_zones.0"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "WyItMSIsIngiXQ"}, "cursor"),  # a well-formed cursor with a negative amount
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
    ],
)
async def test_invalid_search_parameters_are_422(c, params, field):
    r = await c.http.get("/offers", params=params, headers=c.auth("cli_1", "client"))
    assert field in fields(r)


async def test_absurd_but_valid_search_amounts_do_not_fail(c):
    r = await c.http.get(
        "/offers",
        params={"max_price": "1E+40", "currency": "EUR"},
        headers=c.auth("cli_1", "client"),
    )
    assert r.status_code == 200, r.text


# -- never 500 ---------------------------------------------------------------------------------


GARBAGE: list[Any] = [
    None,
    0,
    "x",
    [],
    {},
    {"title": 5},
    [{"a": 1}],
    {"pricing": "free"},
    {"schedule": "always"},
    {"weekly_capacity_hours": "1E+999999"},
    {"skills": [{"code": None, "level": "x"}]},
    "\u0000" * 10,
]


async def test_a_bad_request_never_yields_500(c):
    pid, oid = await provider_with_offer(c)
    routes = [
        ("POST", "/providers", c.auth(c.unique("prv"), "provider")),
        ("PATCH", f"/providers/{pid}", c.auth(pid, "provider")),
        ("POST", f"/providers/{pid}/suspend", c.auth("op_1", "operator")),
        ("POST", "/offers", c.auth(pid, "provider")),
        ("PATCH", f"/offers/{oid}", c.auth(pid, "provider")),
        ("POST", f"/offers/{oid}/publish", c.auth(pid, "provider")),
    ]
    for method, path, headers in routes:
        for body in GARBAGE:
            r = await c.http.request(method, path, headers=headers, json=body)
            assert r.status_code < 500, (method, path, body, r.text)
            assert r.headers["content-type"].startswith(PROBLEM) or r.status_code < 300
    weird_ids = ["%00", "a" * 2000, "../../etc", "{$gt: ''}"]
    for wid in weird_ids:
        r = await c.http.get(f"/offers/{wid}", headers=c.auth("cli_1", "client"))
        assert r.status_code in (404, 422), r.text


async def test_the_openapi_document_lists_the_endpoints(c):
    r = await c.http.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in (
        "/providers",
        "/providers/{provider_id}",
        "/providers/{provider_id}/suspend",
        "/offers",
        "/offers/{offer_id}",
        "/offers/{offer_id}/publish",
        "/offers/{offer_id}/withdraw",
    ):
        assert p in paths
