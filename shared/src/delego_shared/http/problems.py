"""RFC 9457 problem details for every error a service answers.

Domain errors subclass `ProblemError` (status + a stable `type` slug); request
validation becomes 422 with one entry per field; anything unexpected becomes a
500 whose body reveals nothing internal (the details go to the log with the
request's correlation id).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..logging import get_logger
from ..messaging.consumer import is_transient

log = get_logger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://delego.example/problems/"


class ProblemError(Exception):
    """An error with an HTTP meaning. Subclass and set `status` and `type`."""

    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        status: int | None = None,
        type_: str | None = None,
        title: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.retry_after = retry_after
        """Seconds after which the same call may succeed (a `Retry-After` header)."""
        if status is not None:
            self.status = status
        if type_ is not None:
            self.type = type_
        if title is not None:
            self.title = title


class NotFound(ProblemError):
    status, type, title = 404, "not-found", "Not found"


class Forbidden(ProblemError):
    status, type, title = 403, "forbidden", "Forbidden"


class Unauthorized(ProblemError):
    status, type, title = 401, "unauthorized", "Authentication required"


class Conflict(ProblemError):
    status, type, title = 409, "conflict", "Conflict"


class Unprocessable(ProblemError):
    status, type, title = 422, "validation-error", "Invalid request"


def problem(
    status: int, type_: str, title: str, detail: str, instance: str, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        response = problem(
            exc.status, exc.type, exc.title, exc.detail, request.url.path, errors=exc.errors
        )
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            errors.append(
                {
                    "field": ".".join(
                        loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
                    ),
                    "in": loc[0] if loc else "body",
                    "message": e.get("msg", "invalid"),
                }
            )
        return problem(
            422,
            "validation-error",
            "Invalid request",
            f"{len(errors)} invalid field(s)",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {
            404: "not-found",
            405: "method-not-allowed",
            401: "unauthorized",
            403: "forbidden",
        }.get(exc.status_code, "http-error")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):  # the store or the broker is away: nothing is wrong with the call
            log.warning(
                "http.dependency_unavailable", path=request.url.path, error_type=type(exc).__name__
            )
            response = problem(
                503,
                "service-unavailable",
                "Service unavailable",
                "A backing service is unreachable; retry later (with the same Idempotency-Key).",
                request.url.path,
            )
            response.headers["Retry-After"] = "5"
            return response
        log.exception("http.unhandled_error", path=request.url.path)
        return problem(
            500,
            "internal-error",
            "Internal error",
            "An unexpected error occurred; it has been logged.",
            request.url.path,
        )
