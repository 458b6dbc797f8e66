"""Token rules (subject, bounded lifetime) and the production secret check."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from delego_shared.http import Unauthorized, mint_token, verify_token
from delego_shared.settings import DEFAULT_JWT_SECRET, Settings, UnsafeSettings
from pydantic import SecretStr

SECRET = "unit-test-secret-0123456789abcdef0123"
SETTINGS = Settings(jwt_secret=SecretStr(SECRET))
DAY = 24 * 3600


def signed(**claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "u1",
        "role": "client",
        "iss": "delego",
        "iat": now,
        "exp": now + 3600,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


def refused(token: str, settings: Settings = SETTINGS) -> str:
    with pytest.raises(Unauthorized) as caught:
        verify_token(settings, token)
    return caught.value.detail


def test_the_default_lifetime_bound_is_24_hours():
    assert Settings().jwt_max_ttl_s == DAY


def test_a_token_within_the_bound_is_accepted():
    now = int(time.time())
    who = verify_token(SETTINGS, signed(iat=now, exp=now + DAY))
    assert (who.subject, who.role.value) == ("u1", "client")


@pytest.mark.parametrize("sub", ["", "   "])
def test_an_empty_subject_is_refused(sub):
    assert "empty subject" in refused(signed(sub=sub))


def test_a_missing_subject_is_refused():
    assert "sub" in refused(signed(sub=None))


def test_a_missing_expiry_is_refused():
    assert "exp" in refused(signed(exp=None))


def test_a_ten_year_token_is_refused():
    now = int(time.time())
    assert "lifetime" in refused(signed(iat=now, exp=now + 10 * 365 * DAY))


def test_a_long_token_without_iat_is_refused_on_its_remaining_lifetime():
    assert "lifetime" in refused(signed(iat=None, exp=int(time.time()) + 2 * DAY))


def test_a_token_issued_long_ago_for_long_is_refused_even_near_its_end():
    now = int(time.time())
    assert "lifetime" in refused(signed(iat=now - 30 * DAY, exp=now + 3600))


def test_the_bound_is_configurable():
    short = Settings(jwt_secret=SecretStr(SECRET), jwt_max_ttl_s=600)
    now = int(time.time())
    assert "lifetime" in refused(signed(iat=now, exp=now + 3600), short)
    assert verify_token(short, signed(iat=now, exp=now + 600)).subject == "u1"


def test_mint_token_refuses_what_the_services_would_refuse():
    with pytest.raises(ValueError, match="exceeds"):
        mint_token(SETTINGS, "u1", "client", ttl=timedelta(hours=25))
    with pytest.raises(ValueError, match="subject"):
        mint_token(SETTINGS, " ", "client")
    assert verify_token(SETTINGS, mint_token(SETTINGS, "u1", "client", ttl=timedelta(hours=24)))


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (DEFAULT_JWT_SECRET, "demo secret"),
        ("compose-demo-secret-change-me-0123456789", "demo secret"),
        ("bench-only-secret-0123456789abcdef", "demo secret"),
        ("x" * 31, "shorter than 32 bytes"),
    ],
)
def test_production_refuses_default_demo_and_short_secrets(secret, reason):
    s = Settings(environment="production", jwt_secret=SecretStr(secret))
    with pytest.raises(UnsafeSettings) as caught:
        s.check_safe_to_run()
    message = str(caught.value)
    assert reason in message and "refusing to start" in message
    assert "\n" not in message
    assert secret not in message  # the secret itself is never printed


def test_production_accepts_a_long_private_secret():
    Settings(environment="production", jwt_secret=SecretStr("y" * 32)).check_safe_to_run()


@pytest.mark.parametrize("environment", ["development", "test"])
def test_other_environments_accept_the_demo_secret(environment):
    Settings(environment=environment).check_safe_to_run()


def test_the_environment_is_read_from_delego_environment(monkeypatch):
    monkeypatch.setenv("DELEGO_ENVIRONMENT", "production")
    with pytest.raises(UnsafeSettings):
        Settings().check_safe_to_run()


def test_an_idempotency_fingerprint_compares_json_by_value_not_spelling():
    from delego_shared.http.idempotency import fingerprint

    a = fingerprint("POST", "/offers", [], b'{"a": 1, "b": [1, 2]}')
    assert a == fingerprint("POST", "/offers", [], b'{"b":[1,2],"a":1}')
    assert a != fingerprint("POST", "/offers", [], b'{"a": 2, "b": [1, 2]}')
    assert a != fingerprint("POST", "/offers", [("provider_id", "p")], b'{"a": 1, "b": [1, 2]}')
    assert a != fingerprint("POST", "/other", [], b'{"a": 1, "b": [1, 2]}')
