"""Events published by the catalog service (`catalog.providers.v1`, `catalog.offers.v1`).

Every event carries the aggregate's full snapshot and its version, so a read
model can apply them idempotently and ignore an older snapshot.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from ..types import CountryCode, Currency, IanaZone, Identifier, LanguageTag, UtcInstant
from .base import Event, event
from .common import Contract, DeliveryMode, Pricing, SapDeclaration, SkillLevel, WorkingSpan
from .topics import OFFERS, PROVIDERS


class ProviderStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ProviderSnapshot(Contract):
    """A provider's public profile (no contact data: that lives in notifications)."""

    provider_id: Identifier
    version: int = Field(ge=1)
    display_name: str = Field(min_length=1, max_length=120)
    country: CountryCode
    languages: list[LanguageTag] = Field(min_length=1)
    time_zone: IanaZone
    schedule: list[WorkingSpan]
    weekly_capacity_hours: Decimal = Field(gt=0, le=168)
    skills: list[SkillLevel]
    sap_declaration: SapDeclaration | None = None
    status: ProviderStatus
    updated_at: UtcInstant
    response_window_minutes: int | None = Field(
        default=None,
        ge=5,
        le=24 * 60,
        description="working minutes the provider takes to answer a proposal "
        "(none: the platform's default)",
    )


class OfferStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class OfferSnapshot(Contract):
    offer_id: Identifier
    provider_id: Identifier
    version: int = Field(ge=1)
    status: OfferStatus
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    category: str
    skills: list[SkillLevel]
    languages: list[LanguageTag] = Field(min_length=1)
    delivery_mode: DeliveryMode
    sap_activity: str | None = None
    sap_remote_flag: bool = Field(
        default=False,
        description="true when a SAP activity is set on a remote-only offer "
        "(allowed, but billing will most likely find it not eligible)",
    )
    typical_effort_hours: Decimal = Field(gt=0)
    currency: Currency
    pricing: Pricing
    updated_at: UtcInstant


class _ProviderEvent(Event):
    provider: ProviderSnapshot

    def key(self) -> str:
        return self.provider.provider_id


@event("delego.catalog.ProviderRegistered.v1", PROVIDERS)
class ProviderRegistered(_ProviderEvent):
    """A provider joined the platform (version 1 of the profile)."""


@event("delego.catalog.ProviderUpdated.v1", PROVIDERS)
class ProviderUpdated(_ProviderEvent):
    """The provider's profile changed; full snapshot with the new version."""


@event("delego.catalog.ProviderSuspended.v1", PROVIDERS)
class ProviderSuspended(_ProviderEvent):
    """An operator suspended the provider: their offers must not be matched."""

    reason_code: str = Field(default="operator_decision", max_length=64)


@event("delego.catalog.ProviderReinstated.v1", PROVIDERS)
class ProviderReinstated(_ProviderEvent):
    """An operator lifted the suspension."""


class _OfferEvent(Event):
    offer: OfferSnapshot

    def key(self) -> str:
        return self.offer.offer_id


@event("delego.catalog.OfferPublished.v1", OFFERS)
class OfferPublished(_OfferEvent):
    """An offer became visible and matchable (full snapshot)."""


@event("delego.catalog.OfferUpdated.v1", OFFERS)
class OfferUpdated(_OfferEvent):
    """A published offer changed (full snapshot, version + 1)."""


@event("delego.catalog.OfferWithdrawn.v1", OFFERS)
class OfferWithdrawn(_OfferEvent):
    """The offer is no longer sold (full snapshot with status withdrawn)."""
