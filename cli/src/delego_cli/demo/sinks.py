"""Local stand-ins for the outside world of the demo: an SMTP server that keeps
what it receives, and an HTTP endpoint that receives signed webhooks and
verifies them the way a downstream system would (see the notifications README).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from delego_shared.types import utcnow
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mail:
    to: list[str]
    subject: str
    text: str
    html: str
    delivery_id: str = ""
    """`X-Delego-Delivery-Id`: the same delivery sent twice shows up twice here."""


class _Handler:
    def __init__(self, box: list[Mail]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        self.box.append(
            Mail(
                to=list(envelope.rcpt_tos),
                subject=str(msg["subject"]),
                text=text.get_content() if text is not None else "",
                html=html.get_content() if html is not None else "",
                delivery_id=str(msg.get("X-Delego-Delivery-Id", "")),
            )
        )
        return "250 OK"


class SmtpSink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) keeping every message in memory."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mails: list[Mail] = []
        self._controller = Controller(_Handler(self.mails), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class WebhookCall:
    event_type: str
    event_id: str
    verified: bool
    body: dict[str, Any]


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    """The receiver's recipe: `Delego-Signature: t=<unix>,v1=<hex hmac-sha256("t.body")>`."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(utcnow().timestamp() - ts) > tolerance_s:  # the platform clock (demo time)
        return False
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    given = [v for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1"]
    return any(hmac.compare_digest(expected, g) for g in given)


@dataclass
class WebhookReceiver:
    """A real HTTP server receiving the platform's webhooks."""

    secret: str
    port: int = field(default_factory=free_port)
    calls: list[WebhookCall] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/delego"

    async def _receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        ok = verify(self.secret, request.headers.get("delego-signature", ""), body)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        self.calls.append(
            WebhookCall(
                request.headers.get("delego-event-type", "?"),
                request.headers.get("delego-event-id", "?"),
                ok,
                payload,
            )
        )
        return JSONResponse({"ok": ok}, status_code=200 if ok else 400)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks/delego", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
