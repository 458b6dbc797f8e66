"""The platform sealing key: production refuses the published demo key; none accepts junk."""

from __future__ import annotations

import pytest
from delego_shared.settings import UnsafeSettings
from matching.sealing import new_platform_key
from matching.settings import DEMO_SEALING_KEY, MatchingSettings
from pydantic import SecretStr

STRONG_JWT = SecretStr("j" * 40)


def test_production_refuses_the_demo_sealing_key():
    s = MatchingSettings(environment="production", jwt_secret=STRONG_JWT)
    assert s.sealing_key.get_secret_value() == DEMO_SEALING_KEY
    with pytest.raises(UnsafeSettings, match="DELEGO_SEALING_KEY is the demo key"):
        s.check_safe_to_run()


def test_production_starts_with_a_random_sealing_key():
    s = MatchingSettings(
        environment="production", jwt_secret=STRONG_JWT, sealing_key=SecretStr(new_platform_key())
    )
    s.check_safe_to_run()
    sealer = s.sealer()
    key = sealer.new_key()
    assert sealer.open("req_1", key, sealer.seal("req_1", key, "x")) == "x"


@pytest.mark.parametrize("key", ["not base64 !", "c2hvcnQ"])  # junk; 5 bytes
def test_a_malformed_sealing_key_is_refused_in_any_environment(key: str):
    with pytest.raises(UnsafeSettings, match="DELEGO_SEALING_KEY"):
        MatchingSettings(environment="development", sealing_key=SecretStr(key)).check_safe_to_run()


def test_development_accepts_the_demo_key():
    MatchingSettings(environment="development").check_safe_to_run()


def test_the_production_app_is_not_built_with_the_demo_sealing_key():
    from matching.app import create_app

    with pytest.raises(UnsafeSettings, match="DELEGO_SEALING_KEY"):
        create_app(MatchingSettings(environment="production", jwt_secret=STRONG_JWT))
