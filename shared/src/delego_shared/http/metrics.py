"""HTTP metrics middleware and the `/metrics` endpoint every service gets.

Requests are labelled by their route template (`/invoices/{invoice_id}`), never
by the raw path, so the label set stays bounded; a path no route matched is
`unmatched`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import CONTENT_TYPE_LATEST, HTTP_DURATION, HTTP_REQUESTS, exposition


def route_template(scope: Scope) -> str:
    """The matched route's path template (set in the scope by the router), or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class HttpMetricsMiddleware:
    """Counts requests by method, route template and status, and times them (in memory)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception escaping the app becomes a 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method, route = scope["method"], route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - start)


def install_metrics(app: FastAPI) -> None:
    """`GET /metrics` (Prometheus text format) and the HTTP middleware."""
    app.add_middleware(HttpMetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Any:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
