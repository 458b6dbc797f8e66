"""Each service's API answers what its OpenAPI document says, for generated inputs.

A bounded property-based run (schemathesis, the apps in-process over ASGI on the
real Kafka and store): for every operation, schema-valid and schema-invalid
requests as a client, a provider, an operator and without a token. Every answer
must be documented: no server error, no undocumented status or content type,
bodies matching their schema, and no schema-valid input rejected (400/422)
except by a rule the operation documents (`x-delego-rules`: across fields,
relative to now; `documented_rules`). `DELEGO_CONFORMANCE_EXAMPLES` (default 25)
bounds the examples per operation; they are the same on every run unless
`DELEGO_CONFORMANCE_EXPLORE=1`.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from delego_shared.http import mint_token
from delego_shared.http.openapi import RULES_KEY
from delego_shared.messaging.topics_admin import delete_topics_with_prefix
from delego_shared.mongo import Mongo
from delego_shared.settings import Settings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("DELEGO_CONFORMANCE_EXAMPLES", "25"))
# the same examples on every run (a suite that gates a merge must not fail by chance);
# DELEGO_CONFORMANCE_EXPLORE=1 draws new ones, to look for what the fixed set misses
EXPLORE = os.environ.get("DELEGO_CONFORMANCE_EXPLORE", "") not in ("", "0")
SERVICES = {
    "catalog": "catalog.settings:CatalogSettings",
    "matching": "matching.settings:MatchingSettings",
    "billing": "billing.settings:BillingSettings",
    "notifications": "notifications.settings:NotificationsSettings",
}


def _refusals(response: Any) -> list[str]:
    """The reasons a problem body gives: each field error's message, else its detail."""
    try:
        body = response.json()
    except ValueError:
        return [response.text]
    errors = body.get("errors") or []
    return [str(e.get("message", "")) for e in errors] or [str(body.get("detail", ""))]


def schema_valid_input_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' `positive_data_acceptance` (a schema-valid request must not get
    400/422), except when every reason given is one of the operation's documented
    rules (`x-delego-rules`)."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        rules = case.operation.definition.raw.get(RULES_KEY, [])
        if rules and all(any(r in reason for r in rules) for reason in _refusals(response)):
            return None
        raise


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    schema_valid_input_accepted,
]
CALLERS = {"client": "cli_fuzz", "provider": "prv_fuzz", "operator": "op_fuzz"}


def service_settings(service: str, infra: Any, namespace: str) -> Settings:
    module, name = SERVICES[service].split(":")
    cls = getattr(importlib.import_module(module), name)
    settings: Settings = cls(
        environment="test",
        kafka_bootstrap=infra.kafka_bootstrap,
        mongodb_url=infra.mongodb_url,
        mongodb_database=f"{namespace}_{service}",
        topic_prefix=f"{namespace}.",
        log_level="WARNING",
        log_format="console",
    )
    return settings


async def _drop(s: Settings) -> None:
    mongo = Mongo(s.mongodb_url, s.database)
    try:
        await mongo.client.drop_database(s.database)
    finally:
        await mongo.close()
    await delete_topics_with_prefix(s.kafka_bootstrap, s.topic_prefix)


@pytest.fixture
def isolated(infra: Any, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The service's settings in a namespace of its own; afterwards the app (which
    schemathesis starts on its own event loop thread) is stopped and its data dropped."""
    s = service_settings(request.param, infra, f"t{uuid.uuid4().hex[:10]}")
    yield s
    shutdown_lifespans()
    asyncio.run(_drop(s))


@pytest.mark.parametrize("isolated", list(SERVICES), indirect=True)
def test_every_answer_is_documented(isolated: Settings) -> None:
    s = isolated
    service = s.service_name
    app = importlib.import_module(f"{service}.app").create_app(s)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers: dict[str | None, dict[str, str]] = {
        role: {"Authorization": f"Bearer {mint_token(s, sub, role)}"}
        for role, sub in CALLERS.items()
    }
    headers[None] = {}
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @given(case=cases, role=st.sampled_from(list(headers)))
        @settings(
            max_examples=EXAMPLES,
            derandomize=not EXPLORE,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any, role: str | None) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers[role], checks=CHECKS)

        try:
            conforms()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert calls >= EXAMPLES  # the run did call the API
    assert failures == [], "\n\n".join(failures)
