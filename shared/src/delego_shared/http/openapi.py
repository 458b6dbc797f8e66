"""The OpenAPI document says what the API really answers, errors included.

Every error body is an RFC 9457 problem (`application/problem+json`, schema
`Problem`). The statuses every route can answer follow from its signature and
are declared here, once: 401 when it needs a token, 403 when it needs a role,
404 when a path parameter names a resource, 422 when it takes any input, and
409 + 422 when it takes an `Idempotency-Key`. A route declares the others it
answers (`responses=problem_responses(409)`); any error response a route
declares is documented with the problem body, whatever model it named.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from .auth import current_principal
from .idempotency import KEY_REUSED, idempotent_call
from .problems import PROBLEM_JSON

ROLE_CHECK = "__delego_roles__"
"""Attribute `require_role` sets on its dependency: the route answers 403."""

DESCRIPTIONS = {
    400: "the body cannot be decoded (not JSON, not UTF-8)",
    401: "missing, invalid or expired bearer token",
    403: "the caller's role may not do this",
    404: "no such resource (or not the caller's)",
    409: "conflict with the resource's current state (or an Idempotency-Key in use: "
    "retry after `Retry-After` seconds with the same key)",
    422: "invalid input, one entry per field in `errors`",
    503: "not ready",
}


class ProblemField(BaseModel):
    """One invalid input."""

    model_config = ConfigDict(populate_by_name=True)

    field: str
    in_: str | None = Field(default=None, alias="in", description="body, query, path, header")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["https://delego.example/problems/not-found"])
    title: str
    status: int
    detail: str
    instance: str
    errors: list[ProblemField] | None = Field(default=None, description="on 422")


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers these error statuses (problem bodies)."""
    return {c: {"model": Problem, "description": DESCRIPTIONS.get(c, "error")} for c in codes}


RULES_KEY = "x-delego-rules"


def documented_rules(*rules: str) -> dict[str, Any]:
    """`openapi_extra=` for a route whose input rules a JSON schema cannot say (across
    fields, relative to now, opaque tokens): each rule is listed in the operation
    (`x-delego-rules`), in the words of the 422 it answers, so a client (and the
    conformance check) can tell them from an undocumented refusal."""
    return {RULES_KEY: list(rules)}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _dependencies(dep)


def implied_statuses(route: Any) -> set[int]:
    """The error statuses a route (an `APIRoute` as included) answers by its signature."""
    codes: set[int] = set()
    calls = [d.call for d in _dependencies(route.dependant)]
    if any(c is current_principal for c in calls):
        codes.add(401)
    if any(hasattr(c, ROLE_CHECK) for c in calls):
        codes.add(403)
    if any(c is idempotent_call for c in calls):
        codes |= {409, 422}
    flat = route.dependant
    if route.dependant.path_params or any(d.path_params for d in _dependencies(route.dependant)):
        codes.add(404)
    if any(
        d.path_params or d.query_params or d.header_params or d.body_params or d.cookie_params
        for d in [flat, *_dependencies(flat)]
    ):
        codes.add(422)
    if flat.body_params:
        codes.add(400)  # a body that is not even decodable
    return codes


def install_problem_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` declare every route's problem responses."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
        ref = {"$ref": "#/components/schemas/Problem"}
        # included routers stay routers (FastAPI ≥ 0.16x): walk their effective routes
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            path = schema["paths"].get(route.path_format, {})
            for method in route.methods or ():
                operation = path.get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for code in implied_statuses(route):
                    responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
                if any(d.call is idempotent_call for d in _dependencies(route.dependant)):
                    rules = operation.get(RULES_KEY, [])
                    if KEY_REUSED not in rules:
                        operation[RULES_KEY] = [*rules, KEY_REUSED]
                for code, response in responses.items():
                    if code.isdigit() and int(code) >= 400 and int(code) != 503:
                        if response.get("description") in (None, "", "Validation Error"):
                            response["description"] = DESCRIPTIONS.get(int(code), "error")
                        response["content"] = {PROBLEM_JSON: {"schema": ref}}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
