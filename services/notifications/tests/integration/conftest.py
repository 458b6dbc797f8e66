"""Real parts for the notifications integration tests.

Kafka and the Mongo-wire database come from the shared plugin (`settings_for`);
here: a real SMTP server (aiosmtpd, in its own thread) that keeps what it
receives, a real HTTP receiver (`http.server`, in a thread) whose answers are
scripted per path, a clock the tests can move, and event factories.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from delego_shared.events import DELIVERIES, Envelope, Event
from delego_shared.events.billing import InvoiceIssued, InvoiceLine, TaxCreditDecision
from delego_shared.events.common import AgreedTerms, DeliveryMode, HourlyPricing
from delego_shared.events.matching import MatchAccepted, WorkCompleted
from delego_shared.http import mint_token
from delego_shared.messaging import EventPublisher, create_broker
from delego_shared.testing.kafka_tools import read_records
from delego_shared.testing.waiting import wait_for
from delego_shared.types import Money, new_id
from fastapi import FastAPI
from notifications.app import create_app
from notifications.settings import NotificationsSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- SMTP ---------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: keeps every accepted message; refuses `bounce*` recipients (550)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            self.refused.append(address)
            return "550 5.1.1 <" + address + ">: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, mailbox)
    finally:
        controller.stop()


# --- HTTP receiver ---------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """`script[path]` = statuses to answer in turn (the last one repeats)."""

    base_url: str
    script: dict[str, list[int]] = field(default_factory=dict)
    calls: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str) -> int:
        with self.lock:
            statuses = self.script.get(path, [200])
            n = sum(1 for c in self.calls if c.path == path)
            return statuses[min(n, len(statuses) - 1)]

    def on(self, path: str) -> list[Received]:
        return [c for c in self.calls if c.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    rec = Receiver(base_url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = rec.answer(self.path)
            with rec.lock:
                rec.calls.append(Received(self.path, dict(self.headers.items()), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


# --- clock, settings, app ---------------------------------------------------------------


class ShiftedClock:
    """Real time plus an offset the test sets: time flows (retries, leases) and can jump."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)


@pytest.fixture
def notif_settings(settings_for, smtp: SmtpServer) -> Callable[..., NotificationsSettings]:
    base = settings_for("notifications")

    def make(**overrides: object) -> NotificationsSettings:
        values: dict[str, object] = {
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_from": "Delego <no-reply@delego.test>",
            "smtp_timeout_s": 5.0,
            "webhook_timeout_s": 5.0,
            "retry_max_attempts": 4,
            "retry_base_s": 0.05,
            "retry_cap_s": 0.2,
            "dispatch_interval_s": 0.1,
            "release_interval_s": 0.2,
            **overrides,
        }
        return NotificationsSettings.of(base, **values)

    return make


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notifications"
        ) as client,
    ):
        yield client


def bearer(settings: NotificationsSettings, subject: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, subject, role)}"}


@pytest_asyncio.fixture
async def publish(notif_settings) -> AsyncIterator[Callable[[Envelope], Awaitable[None]]]:
    settings = notif_settings()
    broker = create_broker(settings)
    await broker.start()
    publisher = EventPublisher(broker, settings)
    try:
        yield publisher.publish
    finally:
        await broker.stop()


async def delivery_events(
    settings: NotificationsSettings, expect: int, timeout: float = 20.0
) -> list[Envelope]:
    records = await read_records(
        settings.kafka_bootstrap, settings.topic(DELIVERIES.name), expect=expect, timeout=timeout
    )
    for r in records:  # no contact data on the topic, ever
        assert b"@" not in r.value
        assert "@" not in json.dumps(r.headers)
    return [Envelope.from_record(r.headers, r.value) for r in records]


def app_for(settings: NotificationsSettings, clock: ShiftedClock | None = None) -> FastAPI:
    return create_app(settings, clock=clock)


# --- events ---------------------------------------------------------------------------------


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def envelope(event: Event) -> Envelope:
    return Envelope(event, source=f"/delego/{event.topic.service}")  # the topic owner


class Events:
    def terms(self, provider_id: str) -> AgreedTerms:
        return AgreedTerms(
            offer_id="off_1",
            offer_version=1,
            provider_id=provider_id,
            provider_display_name="Asha K.",
            category="translation",
            delivery_mode=DeliveryMode.REMOTE,
            currency="EUR",
            pricing=HourlyPricing(rate=eur("16.25")),
        )

    def invoice_issued(
        self, client_id: str, number: str = "DLG-2026-000123", gross: str = "1234.50"
    ) -> InvoiceIssued:
        decision = TaxCreditDecision(
            code="not_eligible_remote",
            eligible_amount=eur("0"),
            credit=eur("0"),
            reason_fr="Service rendu à distance : non éligible",
            reason_en="Remote service: not eligible",
        )
        line = InvoiceLine(
            line_no=1,
            kind="service",
            label_code="hourly:translation",
            quantity=Decimal("2.5"),
            unit_price=eur("16.25"),
            net=eur("1028.75"),
            vat_rate=Decimal("0.20"),
            vat=eur("205.75"),
            gross=eur(gross),
            commission=eur("102.88"),
            tax_credit=decision,
        )
        return InvoiceIssued(
            client_id=client_id,
            invoice_id=new_id("inv"),
            number=number,
            request_id="req_1",
            provider_id="prv_1",
            issued_at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
            currency="EUR",
            lines=[line],
            total_net=eur("1028.75"),
            total_vat=eur("205.75"),
            total_gross=eur(gross),
            commission=eur("102.88"),
            provider_payout=eur("925.87"),
            tax_credit=eur("0"),
            payable_now=eur(gross),
        )

    def match_accepted(self, client_id: str) -> MatchAccepted:
        return MatchAccepted(
            request_id=new_id("req"),
            client_id=client_id,
            attempt=1,
            provider_id="prv_1",
            terms=self.terms("prv_1"),
            estimated_price=eur("40.63"),
            promised_at=datetime(2026, 3, 11, 7, 0, tzinfo=UTC),
            promised_local="2026-03-11T08:00:00+01:00",
            client_zone="Europe/Paris",
            accepted_at=datetime(2026, 3, 10, 21, 55, tzinfo=UTC),
        )

    def work_completed(self, client_id: str) -> WorkCompleted:
        return WorkCompleted(
            request_id=new_id("req"),
            client_id=client_id,
            provider_id="prv_1",
            terms=self.terms("prv_1"),
            actual_hours=Decimal("2.5"),
            completed_at=datetime(2026, 3, 10, 22, 5, tzinfo=UTC),
        )


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (they cannot import this conftest by name)."""
    return SimpleNamespace(
        ShiftedClock=ShiftedClock,
        app_for=app_for,
        bearer=bearer,
        delivery_events=delivery_events,
        envelope=envelope,
        running=running,
        wait_for=wait_for,
    )
