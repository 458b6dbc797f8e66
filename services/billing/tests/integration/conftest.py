"""Fixtures for billing on real Kafka + FerretDB: settings, a movable clock, apps, events."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from billing.app import create_app
from billing.domain.rules import BillingRules
from billing.service import BillingService
from billing.settings import BillingSettings
from billing.store import BillingStore, store_indexes
from delego_shared.events import Envelope
from delego_shared.events.common import AgreedTerms, DeliveryMode
from delego_shared.events.matching import RequestCancelled
from delego_shared.events.topics import INVOICES
from delego_shared.http.auth import mint_token
from delego_shared.messaging import EventPublisher, create_broker
from delego_shared.mongo import Mongo
from delego_shared.testing.kafka_tools import read_records
from delego_shared.testing.waiting import wait_for
from fastapi import FastAPI

MATCHING_SOURCE = "/delego/matching"


class Clock:
    """UTC now, moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))


@pytest.fixture
def billing_settings(settings_for: Callable[..., Any]) -> Callable[..., BillingSettings]:
    def make(**overrides: Any) -> BillingSettings:
        base = settings_for("billing").model_dump()
        base.update({"scheduler_interval_s": 0.1, **overrides})
        return BillingSettings(**base)

    return make


async def consumer_live(app: FastAPI) -> None:
    """Wait until the app's consumer has joined its group and handles events: a probe
    (a cancellation of an unknown request, which changes nothing) must reach its inbox.
    Stopping a consumer in the middle of a group join makes its LeaveGroup time out."""
    settings = app.state.settings
    probe = Envelope(
        RequestCancelled(
            request_id=f"probe_{uuid.uuid4().hex[:8]}",
            client_id="probe",
            cancelled_at=datetime.now(UTC),
        ),
        source=MATCHING_SOURCE,
    )
    broker = create_broker(settings)
    await broker.start()
    try:
        await EventPublisher(broker, settings).publish(probe)
    finally:
        await broker.stop()
    inbox = app.state.store.db["processed_events"]
    await wait_for(lambda: inbox.find_one({"_id": f"billing:{probe.id}"}))


@pytest.fixture
def running() -> Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        async with app.router.lifespan_context(app):
            await consumer_live(app)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://billing") as http:
                yield http

    return run


@pytest.fixture
def app_factory(clock: Clock) -> Callable[[BillingSettings], FastAPI]:
    def make(settings: BillingSettings) -> FastAPI:
        return create_app(settings, clock=clock)

    return make


@pytest.fixture
def auth() -> Callable[[BillingSettings, str, str], dict[str, str]]:
    def headers(settings: BillingSettings, subject: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings, subject, role)}"}

    return headers


@pytest.fixture
def make_terms() -> Callable[..., AgreedTerms]:
    def make(**over: Any) -> AgreedTerms:
        base: dict[str, Any] = {
            "offer_id": "off_1",
            "offer_version": 1,
            "provider_id": "prv_1",
            "provider_display_name": "Camille T.",
            "provider_sap_number": "SAP123456789",
            "category": "tutoring",
            "delivery_mode": DeliveryMode.AT_HOME,
            "sap_activity": "soutien_scolaire_domicile",
            "currency": "EUR",
            "pricing": {"model": "hourly", "rate": {"amount": "40.00", "currency": "EUR"}},
        }
        base.update(over)
        return AgreedTerms.model_validate(base)

    return make


@pytest.fixture
def publish() -> Callable[[BillingSettings, list[Envelope]], Awaitable[None]]:
    async def send(settings: BillingSettings, envelopes: list[Envelope]) -> None:
        broker = create_broker(settings)
        await broker.start()
        try:
            publisher = EventPublisher(broker, settings)
            for env in envelopes:
                await publisher.publish(env)
        finally:
            await broker.stop()

    return send


@pytest.fixture
def billing_events() -> Callable[..., Awaitable[list[tuple[str, dict[str, Any]]]]]:
    async def read(
        settings: BillingSettings, expect: int | None = None, timeout: float = 30.0
    ) -> list[tuple[str, dict[str, Any]]]:
        records = await read_records(
            settings.kafka_bootstrap,
            settings.topic(INVOICES.name),
            expect=expect,
            timeout=timeout,
            idle=2.0,
        )
        return [(r.headers["ce_type"], json.loads(r.value)) for r in records]

    return read


@pytest_asyncio.fixture
async def dbs() -> AsyncIterator[Callable[[BillingSettings], Any]]:
    """A database handle of its own (an app's client closes with the app)."""
    clients: list[Mongo] = []

    def open_db(settings: BillingSettings) -> Any:
        mongo = Mongo(settings.mongodb_url, settings.database)
        clients.append(mongo)
        return mongo.db

    yield open_db
    for m in clients:
        await m.close()


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    return wait_for


@pytest_asyncio.fixture
async def stores(settings_for: Callable[..., Any]) -> AsyncIterator[list[BillingService]]:
    """Two billing instances on separate store connections, as two replicas would be."""
    settings = settings_for("billing")
    mongos = [Mongo(settings.mongodb_url, settings.database) for _ in range(2)]
    for spec in store_indexes():
        await mongos[0].ensure_indexes([spec])
    rules = BillingRules.load()
    yield [
        BillingService(
            BillingStore(m, entity="DLG"),
            rules=rules,
            default_country="FR",
            source="/delego/billing",
            instance=f"replica{i}",
        )
        for i, m in enumerate(mongos)
    ]
    for m in mongos:
        await m.close()
