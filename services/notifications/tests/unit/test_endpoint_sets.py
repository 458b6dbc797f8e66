"""Endpoint sets: what each event reads by `_id` instead of scanning the endpoints."""

from __future__ import annotations

import pytest
from delego_shared.types import Identifier
from notifications.domain import (
    SUBSCRIPTIONS,
    WebhookEndpoint,
    endpoints_of,
    set_entries,
    set_key,
)
from pydantic import TypeAdapter, ValidationError


def endpoint(owner: str | None = None, active: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id="whk_1",
        url="https://erp.example.com/hooks",
        secret="whsec_0123456789abcdef",
        event_types=frozenset({"delego.billing.*"}),
        owner_id=owner,
        active=active,
    )


def test_an_endpoint_lives_in_its_owners_set_or_in_the_subscriptions():
    assert set_key(None) == SUBSCRIPTIONS
    assert set_key("cli_1") == "#owner:cli_1"


@pytest.mark.parametrize("owner", [None, "cli_1", "subscriptions", "owner:x"])
def test_a_set_key_never_names_a_person_beside_whom_it_is_stored(owner):
    user_id = TypeAdapter(Identifier)
    with pytest.raises(ValidationError):
        user_id.validate_python(set_key(owner))


def test_an_active_endpoint_is_listed_in_its_own_set_with_its_version():
    entries = set_entries(endpoint("cli_1"), 3, ["#owner:cli_1"])
    assert list(entries) == ["#owner:cli_1"]
    assert entries["#owner:cli_1"]["v"] == 3
    [ep] = endpoints_of({"whk_1": entries["#owner:cli_1"]})
    assert ep == endpoint("cli_1")


def test_moving_to_another_owner_leaves_an_inactive_entry_behind():
    entries = set_entries(endpoint("cli_2"), 4, ["#owner:cli_1"])
    assert entries["#owner:cli_1"] == {"v": 4, "active": False}
    assert entries["#owner:cli_2"]["active"] is True
    assert endpoints_of({"whk_1": entries["#owner:cli_1"]}) == []


def test_a_deactivated_endpoint_is_listed_nowhere():
    entries = set_entries(endpoint(None, active=False), 5, [SUBSCRIPTIONS])
    assert entries == {SUBSCRIPTIONS: {"v": 5, "active": False}}
    assert endpoints_of(entries) == []
