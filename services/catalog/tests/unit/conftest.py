"""Builders for catalog domain tests: valid inputs that each test bends in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from catalog.domain import Offer, OfferDraft, Provider, ProviderProfile, parse

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _provider_data(**overrides: Any) -> dict[str, Any]:
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


def _offer_data(**overrides: Any) -> dict[str, Any]:
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


@pytest.fixture
def provider_data() -> Callable[..., dict[str, Any]]:
    """Valid registration data; keyword overrides replace top-level fields."""
    return _provider_data


@pytest.fixture
def offer_data() -> Callable[..., dict[str, Any]]:
    """Valid offer data for the default provider; keyword overrides replace top-level fields."""
    return _offer_data


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_provider() -> Callable[..., Provider]:
    def make(provider_id: str = "prv_asha", **overrides: Any) -> Provider:
        provider, _ = Provider.register(
            provider_id, parse(ProviderProfile, _provider_data(**overrides)), NOW
        )
        return provider

    return make


@pytest.fixture
def make_offer(make_provider: Callable[..., Provider]) -> Callable[..., Offer]:
    def make(offer_id: str = "off_1", provider: Provider | None = None, **overrides: Any) -> Offer:
        return Offer.create(
            offer_id, provider or make_provider(), parse(OfferDraft, _offer_data(**overrides)), NOW
        )

    return make
