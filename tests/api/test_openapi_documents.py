"""The OpenAPI documents declare problem bodies, idempotency keys and input constraints."""

from __future__ import annotations

import importlib
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from billing.domain.numbering import document_year
from delego_shared.settings import Settings

SERVICES = ["catalog", "matching", "billing", "notifications"]
SETTINGS = {
    "catalog": "catalog.settings:CatalogSettings",
    "matching": "matching.settings:MatchingSettings",
    "billing": "billing.settings:BillingSettings",
    "notifications": "notifications.settings:NotificationsSettings",
}
IDEMPOTENT = {
    ("matching", "post", "/requests"),
    ("matching", "post", "/requests/{request_id}/accept"),
    ("billing", "post", "/invoices/{invoice_id}/credit-notes"),
    ("catalog", "post", "/offers"),
}


def document(service: str) -> dict[str, Any]:
    module, name = SETTINGS[service].split(":")
    settings: Settings = getattr(importlib.import_module(module), name)()
    app = importlib.import_module(f"{service}.app").create_app(settings)
    return app.openapi()  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_response_is_a_problem_body(service):
    doc = document(service)
    assert "Problem" in doc["components"]["schemas"]
    for path, _method, op in operations(doc):
        for code, response in op["responses"].items():
            if int(code) >= 400 and not path.startswith("/health"):
                assert list(response["content"]) == ["application/problem+json"], (path, code)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


@pytest.mark.parametrize("service", SERVICES)
def test_authenticated_routes_declare_401_and_inputs_declare_422(service):
    for path, method, op in operations(document(service)):
        if path.startswith("/health"):
            continue
        assert "401" in op["responses"], (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "422" in op["responses"], (method, path)
        if "{" in path:
            assert "404" in op["responses"], (method, path)


@pytest.mark.parametrize("service", SERVICES)
def test_commands_that_create_take_an_idempotency_key(service):
    for path, method, op in operations(document(service)):
        headers = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        if (service, method, path) in IDEMPOTENT:
            assert headers == ["Idempotency-Key"], (method, path)
            assert {"409", "422"} <= set(op["responses"])
        else:
            assert "Idempotency-Key" not in headers


def test_an_empty_residence_country_is_outside_the_schema():
    doc = document("billing")
    body = doc["paths"]["/tax-profile"]["put"]["requestBody"]["content"]["application/json"]
    ref = body["schema"]["$ref"].rsplit("/", 1)[1]
    country = doc["components"]["schemas"][ref]["properties"]["residence_country"]
    assert re.fullmatch(country["pattern"], "FR")
    assert not re.fullmatch(country["pattern"], "")


def test_certificates_are_only_for_completed_years_in_the_schema():
    doc = document("billing")
    [year] = doc["paths"]["/tax-certificates/{year}"]["post"]["parameters"]
    assert year["schema"]["maximum"] == document_year(datetime.now(UTC)) - 1
    assert year["schema"]["minimum"] == 2000


@pytest.mark.parametrize("service", SERVICES)
def test_a_reused_idempotency_key_is_a_documented_rule_of_every_idempotent_command(service):
    from delego_shared.http.idempotency import KEY_REUSED
    from delego_shared.http.openapi import RULES_KEY

    for path, method, op in operations(document(service)):
        if (service, method, path) in IDEMPOTENT:
            assert KEY_REUSED in op[RULES_KEY], (method, path)


def _schema(doc: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


def test_zones_are_the_iana_names_and_catalog_inputs_say_their_formats():
    from zoneinfo import available_timezones

    doc = document("catalog")
    body = doc["paths"]["/providers"]["post"]["requestBody"]["content"]["application/json"]
    profile = _schema(doc, body["schema"])["properties"]
    assert set(profile["time_zone"]["enum"]) == available_timezones()
    assert profile["country"]["pattern"] == "^[A-Z]{2}$"
    assert profile["weekly_capacity_hours"] == {
        "exclusiveMinimum": 0,
        "maximum": 168.0,
        "title": "Weekly Capacity Hours",
        "type": "number",
    }
    assert profile["schedule"]["minItems"] == 1
    search = {p["name"]: p["schema"] for p in doc["paths"]["/offers"]["get"]["parameters"]}
    assert "translation.en-fr" in search["skill"]["enum"]
    assert search["limit"]["maximum"] == 100


def test_rules_a_schema_cannot_say_are_listed_in_the_words_of_the_422():
    from matching.domain.spec import RULE_DEADLINE_PAST, RULE_EFFORT

    op = document("matching")["paths"]["/requests"]["post"]
    assert {RULE_EFFORT, RULE_DEADLINE_PAST} <= set(op["x-delego-rules"])
