"""Shared helpers of the matching integration tests (real Kafka + Mongo-wire database)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from delego_shared.events import Envelope
from delego_shared.events.catalog import (
    OfferPublished,
    OfferSnapshot,
    OfferStatus,
    ProviderRegistered,
    ProviderSnapshot,
    ProviderStatus,
)
from delego_shared.events.common import (
    DeliveryMode,
    HourlyPricing,
    SkillLevel,
    Weekday,
    WorkingSpan,
)
from delego_shared.events.topics import REQUESTS
from delego_shared.http import mint_token
from delego_shared.messaging import EventPublisher, create_broker
from delego_shared.settings import Settings
from delego_shared.testing.kafka_tools import Record, read_records
from delego_shared.testing.waiting import wait_for
from delego_shared.types import Money
from fastapi import FastAPI
from matching.app import create_app
from matching.settings import MatchingSettings

SKILL = "translation.en-fr"
ALWAYS = [WorkingSpan(day=d, start="00:00", end="24:00") for d in Weekday]
PRIVATE = "Mon code d'accès est 4242 — ne le donnez à personne"


def provider(
    pid: str,
    *,
    version: int = 1,
    capacity: str = "40",
    level: int = 4,
    status: ProviderStatus = ProviderStatus.ACTIVE,
) -> ProviderSnapshot:
    return ProviderSnapshot(
        provider_id=pid,
        version=version,
        display_name=f"Provider {pid}",
        country="IN",
        languages=["en", "fr"],
        time_zone="Asia/Kolkata",
        schedule=ALWAYS,
        weekly_capacity_hours=Decimal(capacity),
        skills=[SkillLevel(code=SKILL, level=level)],
        status=status,
        updated_at=datetime.now(UTC),
    )


def offer(
    oid: str, pid: str, *, version: int = 1, rate: str = "30.00", category: str = "translation"
) -> OfferSnapshot:
    return OfferSnapshot(
        offer_id=oid,
        provider_id=pid,
        version=version,
        status=OfferStatus.PUBLISHED,
        title=f"Translation by {pid}",
        category=category,
        skills=[SkillLevel(code=SKILL, level=4)],
        languages=["en", "fr"],
        delivery_mode=DeliveryMode.REMOTE,
        typical_effort_hours=Decimal("2"),
        currency="EUR",
        pricing=HourlyPricing(rate=Money.of(rate, "EUR")),
        updated_at=datetime.now(UTC),
    )


async def publish(settings: Settings, *envelopes: Envelope) -> None:
    broker = create_broker(settings)
    await broker.start()
    try:
        pub = EventPublisher(broker, settings)
        for env in envelopes:
            await pub.publish(env)
    finally:
        await broker.stop()


def env(event: Any, settings: Settings) -> Envelope:
    return Envelope(data=event, source="/delego/catalog")


async def publish_provider_with_offer(
    settings: Settings, pid: str, oid: str, **provider_kw: Any
) -> None:
    await publish(
        settings,
        env(ProviderRegistered(provider=provider(pid, **provider_kw)), settings),
        env(OfferPublished(offer=offer(oid, pid)), settings),
    )


def matching_settings(settings_for: Callable[..., Settings], **overrides: Any) -> MatchingSettings:
    return MatchingSettings.of(settings_for("matching"), **overrides)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://matching", timeout=30
        ) as client,
    ):
        yield app, client


def auth(settings: Settings, subject: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, subject, role)}"}


async def wait_indexed(app: FastAPI, *offer_ids: str) -> None:
    index = app.state.projection.index

    def indexed(offer_id: str) -> bool:
        o = index.offer(offer_id)
        return o is not None and index.provider(o.provider_id) is not None

    async def ready() -> bool:
        return all(indexed(o) for o in offer_ids)

    await wait_for(ready)


def draft(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "translation",
        "required_skills": [{"code": SKILL, "level": 4}],
        "languages": ["fr"],
        "effort_hours": "2",
        "deadline": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "client_zone": "Europe/Paris",
        "delegation_level": "act_with_review",
        "description": PRIVATE,
    }
    body.update(overrides)
    return body


async def request_events(settings: Settings, expect: int | None = None) -> list[Record]:
    """The request topic's records: `expect` of them, or (None) all, until it is idle."""
    return await read_records(
        settings.kafka_bootstrap, settings.topic(REQUESTS.name), expect=expect
    )


def types_of(records: list[Record], request_id: str | None = None) -> list[str]:
    return [
        r.headers["ce_type"].split(".")[2]
        for r in records
        if request_id is None or r.key == request_id.encode()
    ]


def body(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(record.value)
    return out
