"""Catalog fixtures on real infrastructure: the app started in-process, valid request bodies."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from catalog.app import create_app
from catalog.handlers import CatalogService
from catalog.settings import CatalogSettings
from catalog.store import CatalogStore
from delego_shared.events.topics import ALL_TOPICS
from delego_shared.http import mint_token
from delego_shared.messaging.topics_admin import ensure_topics
from delego_shared.settings import Settings
from fastapi import FastAPI


def profile_body(**overrides: Any) -> dict[str, Any]:
    """A valid provider registration (Asha, a translator and tutor in Bangalore)."""
    data: dict[str, Any] = {
        "display_name": "Asha K.",
        "country": "IN",
        "languages": ["en", "fr", "hi"],
        "time_zone": "Asia/Kolkata",
        "schedule": [
            {"day": d, "start": "09:00", "end": "17:00"}
            for d in ("mon", "tue", "wed", "thu", "fri")
        ],
        "weekly_capacity_hours": "30",
        "skills": [
            {"code": "translation.en-fr", "level": 4},
            {"code": "dating_assistance.profile_writing", "level": 3},
            {"code": "tutoring.maths", "level": 5},
            {"code": "admin_paperwork.tax_return", "level": 3},
        ],
    }
    data.update(overrides)
    return data


def offer_body(**overrides: Any) -> dict[str, Any]:
    """A valid offer for `profile_body()`: the 40 h / 650 EUR dating package."""
    data: dict[str, Any] = {
        "title": "Six guaranteed dates",
        "description": "Profile writing, first messages and date planning.",
        "category": "dating_assistance",
        "skills": [{"code": "dating_assistance.profile_writing", "level": 3}],
        "languages": ["en"],
        "delivery_mode": "remote",
        "typical_effort_hours": "40",
        "currency": "EUR",
        "pricing": {
            "model": "package",
            "price": {"amount": "650", "currency": "EUR"},
            "hours_included": "40",
            "label": "6 guaranteed dates (40 h)",
        },
    }
    data.update(overrides)
    return data


def hourly(rate: str, currency: str = "EUR") -> dict[str, Any]:
    return {
        "model": "hourly",
        "rate": {"amount": rate, "currency": currency},
        "minimum_minutes": 60,
        "increment_minutes": 15,
    }


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@dataclass
class Catalog:
    """The catalog app running in-process on real Kafka + FerretDB, and an HTTP client."""

    app: FastAPI
    settings: Settings
    http: httpx.AsyncClient

    profile_body = staticmethod(profile_body)
    offer_body = staticmethod(offer_body)
    hourly = staticmethod(hourly)
    unique = staticmethod(unique)

    def auth(self, subject: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, subject, role)}"}

    @property
    def store(self) -> CatalogStore:
        store: CatalogStore = self.app.state.store
        return store

    @property
    def service(self) -> CatalogService:
        service: CatalogService = self.app.state.service
        return service

    async def register(self, provider_id: str, **overrides: Any) -> dict[str, Any]:
        r = await self.http.post(
            "/providers", json=profile_body(**overrides), headers=self.auth(provider_id, "provider")
        )
        assert r.status_code == 201, r.text
        return dict(r.json()["provider"])

    async def draft(self, provider_id: str, **overrides: Any) -> dict[str, Any]:
        r = await self.http.post(
            "/offers", json=offer_body(**overrides), headers=self.auth(provider_id, "provider")
        )
        assert r.status_code == 201, r.text
        return dict(r.json()["offer"])

    async def publish(self, provider_id: str, offer_id: str) -> dict[str, Any]:
        r = await self.http.post(
            f"/offers/{offer_id}/publish", headers=self.auth(provider_id, "provider")
        )
        assert r.status_code == 200, r.text
        return dict(r.json()["offer"])

    async def published(self, provider_id: str, **overrides: Any) -> dict[str, Any]:
        offer = await self.draft(provider_id, **overrides)
        return await self.publish(provider_id, offer["offer_id"])


async def running_catalog(settings: Settings) -> AsyncIterator[Catalog]:
    """Start the app's lifespan (indexes, topics, broker, relay, search index); drop its
    database and its search index after."""
    with tempfile.TemporaryDirectory(prefix="catalog-search-") as index_dir:
        async for c in _running(CatalogSettings.of(settings, search_index_dir=index_dir)):
            yield c


async def _running(settings: Settings) -> AsyncIterator[Catalog]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as http:
            try:
                yield Catalog(app, settings, http)
            finally:
                await app.state.runtime.mongo.client.drop_database(settings.database)


@pytest_asyncio.fixture
async def catalog(settings_for: Callable[..., Settings]) -> AsyncIterator[Catalog]:
    """A fresh catalog per test: own topics (prefix) and own database."""
    async for c in running_catalog(settings_for("catalog")):
        yield c


@pytest_asyncio.fixture(scope="module")
async def shared_catalog(infra: Any) -> AsyncIterator[Catalog]:
    """One catalog for a whole module (tests isolate themselves with unique ids)."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    await ensure_topics(infra.kafka_bootstrap, ALL_TOPICS, prefix=f"{namespace}.")
    settings = Settings(
        service_name="catalog",
        environment="test",
        kafka_bootstrap=infra.kafka_bootstrap,
        mongodb_url=infra.mongodb_url,
        mongodb_database=f"{namespace}_catalog",
        topic_prefix=f"{namespace}.",
        outbox_sweep_interval_s=1.0,
        log_format="console",
    )
    async for c in running_catalog(settings):
        yield c
