"""Test data builders: small, explicit snapshots of the catalog read model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from delego_shared.events.catalog import (
    OfferSnapshot,
    OfferStatus,
    ProviderSnapshot,
    ProviderStatus,
)
from delego_shared.events.common import (
    DeliveryMode,
    HourlyPricing,
    PackagePricing,
    PerUnitPricing,
    SapDeclaration,
    SkillLevel,
    SubscriptionPricing,
    Weekday,
    WorkingSpan,
    pricing_currency,
)
from delego_shared.types import Money
from matching.domain.spec import RequestSpec

STAMP = datetime(2026, 1, 1, tzinfo=UTC)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def at(zone: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """An unambiguous local wall time in `zone`, as a UTC instant."""
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def spans(days: tuple[str, ...] | list[str], start: str, end: str) -> list[WorkingSpan]:
    return [WorkingSpan(day=Weekday(d), start=start, end=end) for d in days]


def skills(*pairs: tuple[str, int]) -> list[SkillLevel]:
    return [SkillLevel(code=c, level=lvl) for c, lvl in pairs]


def hourly(rate: str = "30.00", currency: str = "EUR", minimum: int = 60, inc: int = 15):
    return HourlyPricing(
        rate=Money.of(rate, currency), minimum_minutes=minimum, increment_minutes=inc
    )


MIXED_PRICINGS = [
    hourly("25"),
    hourly("60"),
    hourly("30", "USD"),
    PackagePricing(price=Money.of("45", "EUR"), hours_included=Decimal(3)),
    SubscriptionPricing(price_per_period=Money.of("15", "EUR"), included_hours=Decimal(1)),
    PerUnitPricing(unit_name="page", unit_price=Money.of("12", "EUR")),
]
"""Every pricing model, two currencies: for random catalogs."""


def provider(
    pid: str = "prv_1",
    *,
    zone: str = "Europe/Paris",
    schedule: list[WorkingSpan] | None = None,
    capacity: str = "40",
    skill_levels: list[SkillLevel] | None = None,
    languages: list[str] | None = None,
    status: ProviderStatus = ProviderStatus.ACTIVE,
    version: int = 1,
    name: str | None = None,
    sap: str | None = None,
) -> ProviderSnapshot:
    return ProviderSnapshot(
        provider_id=pid,
        version=version,
        display_name=name or f"Provider {pid}",
        country="FR",
        languages=languages or ["fr", "en"],
        time_zone=zone,
        schedule=schedule if schedule is not None else spans(WEEKDAYS, "09:00", "18:00"),
        weekly_capacity_hours=Decimal(capacity),
        skills=skill_levels or [],
        sap_declaration=(
            SapDeclaration(number=sap, declared_on=datetime(2020, 1, 1).date()) if sap else None
        ),
        status=status,
        updated_at=STAMP,
    )


def offer(
    oid: str = "off_1",
    pid: str = "prv_1",
    *,
    category: str = "translation",
    skill_levels: list[SkillLevel] | None = None,
    languages: list[str] | None = None,
    pricing=None,
    status: OfferStatus = OfferStatus.PUBLISHED,
    version: int = 1,
    typical: str = "1",
    currency: str | None = None,
) -> OfferSnapshot:
    p = pricing or hourly()
    cur = currency or pricing_currency(p)
    return OfferSnapshot(
        offer_id=oid,
        provider_id=pid,
        version=version,
        status=status,
        title=f"Offer {oid}",
        category=category,
        skills=skill_levels if skill_levels is not None else skills(("translation.en-fr", 4)),
        languages=languages or ["fr", "en"],
        delivery_mode=DeliveryMode.REMOTE,
        typical_effort_hours=Decimal(typical),
        currency=cur,
        pricing=p,
        updated_at=STAMP,
    )


def spec(
    *,
    deadline: datetime,
    category: str = "translation",
    required: list[SkillLevel] | None = None,
    languages: list[str] | None = None,
    effort: str | None = "2",
    units: int | None = None,
    zone: str = "Europe/Paris",
    budget: Money | None = None,
    live_window=None,
    description: str = "",
) -> RequestSpec:
    return RequestSpec(
        category=category,
        required_skills=required if required is not None else skills(("translation.en-fr", 4)),
        languages=languages or ["fr"],
        effort_hours=Decimal(effort) if effort is not None else None,
        units=units,
        client_zone=zone,
        budget=budget,
        live_window=live_window,
        deadline=deadline,
        description=description,
    )
