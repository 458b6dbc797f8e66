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
from functools import cached_property
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
    """One message as received; parsed only when a field is read.

    Parsing with the modern e-mail policy costs milliseconds per message, which a
    benchmark's sink would take from the platform it measures on the same cores.
    """

    to: list[str]
    raw: bytes = field(repr=False)

    @cached_property
    def _message(self) -> EmailMessage:
        msg = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def subject(self) -> str:
        return str(self._message["subject"])

    @property
    def text(self) -> str:
        part = self._message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self._message.get_body(("html",))
        return part.get_content() if part is not None else ""

    @property
    def delivery_id(self) -> str:
        """`X-Delego-Delivery-Id`: the same delivery sent twice shows up twice here."""
        return str(self._message.get("X-Delego-Delivery-Id", ""))


class _Handler:
    def __init__(self, box: list[Mail]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.append(Mail(to=list(envelope.rcpt_tos), raw=bytes(envelope.content)))
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
