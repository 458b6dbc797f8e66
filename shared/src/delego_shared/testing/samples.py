"""Valid sample events for the platform library's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from delego_shared.events.catalog import ProviderRegistered, ProviderSnapshot, ProviderStatus
from delego_shared.events.common import SkillLevel, Weekday, WorkingSpan

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def provider(provider_id: str = "prv_1", version: int = 1) -> ProviderSnapshot:
    return ProviderSnapshot(
        provider_id=provider_id,
        version=version,
        display_name="Asha K.",
        country="IN",
        languages=["en", "fr"],
        time_zone="Asia/Kolkata",
        schedule=[
            WorkingSpan(day=d, start="09:00", end="18:00")
            for d in (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)
        ],
        weekly_capacity_hours=Decimal("30"),
        skills=[SkillLevel(code="translation.en-fr", level=4)],
        status=ProviderStatus.ACTIVE,
        updated_at=NOW,
    )


def registered(provider_id: str = "prv_1") -> ProviderRegistered:
    return ProviderRegistered(provider=provider(provider_id))
