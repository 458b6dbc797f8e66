"""Value types that several services' events share: skills, schedules, pricing, terms.

Pricing lives here because the catalog publishes it on offers, matching copies
it into the agreed terms of a match, and billing prices from that copy: one
definition keeps the three in step.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..types import (
    NON_NEGATIVE_DECIMAL_PATTERN,
    POSITIVE_DECIMAL_PATTERN,
    Currency,
    Identifier,
    Money,
    decimal_string_pattern,
)

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday = 0, as `datetime.weekday()`."""
        return list(Weekday).index(self)


class WorkingSpan(Contract):
    """A span of working time in the provider's local time, `start` on `day`.

    `end` <= `start` means the span crosses midnight into the next day
    (e.g. fri 22:00–02:00). `24:00` is allowed as an end.
    """

    day: Weekday
    start: str = Field(examples=["09:00"], json_schema_extra={"pattern": _HHMM.pattern})
    end: str = Field(examples=["17:30"], json_schema_extra={"pattern": _HHMM.pattern})

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"'{v}' is not a time of day HH:MM (00:00–24:00)")
        return v

    @staticmethod
    def minutes(hhmm: str) -> int:
        h, m = hhmm.split(":")
        return int(h) * 60 + int(m)

    @property
    def start_minute(self) -> int:
        """Minutes since Monday 00:00 local."""
        return self.day.number * 1440 + self.minutes(self.start)

    @property
    def length_minutes(self) -> int:
        s, e = self.minutes(self.start), self.minutes(self.end)
        return e - s if e > s else e + 1440 - s


class SkillLevel(Contract):
    code: str = Field(min_length=1, max_length=64, examples=["translation.en-fr"])
    level: int = Field(ge=1, le=5)


class DeliveryMode(StrEnum):
    REMOTE = "remote"
    AT_HOME = "at_home"
    MIXED = "mixed"


class SapDeclaration(Contract):
    """French "services à la personne" registration (makes tax credit possible)."""

    number: str = Field(
        min_length=3,
        max_length=32,
        examples=["SAP123456789"],
        # what the catalog accepts: 'SAP' and the 9-digit SIREN
        json_schema_extra={"pattern": r"^SAP\d{9}$"},
    )
    declared_on: date


class HourlyPricing(Contract):
    model: Literal["hourly"] = "hourly"
    rate: Money
    minimum_minutes: int = Field(default=60, ge=0, le=24 * 60)
    increment_minutes: int = Field(default=15, ge=1, le=24 * 60)


class PackagePricing(Contract):
    model: Literal["package"] = "package"
    price: Money
    hours_included: Decimal | None = Field(
        default=None, gt=0, json_schema_extra=decimal_string_pattern(POSITIVE_DECIMAL_PATTERN)
    )
    label: str = Field(default="", max_length=200, examples=["6 guaranteed dates (40 h)"])


class SubscriptionPricing(Contract):
    model: Literal["subscription"] = "subscription"
    price_per_period: Money
    period: Literal["month"] = "month"
    included_hours: Decimal = Field(
        ge=0, json_schema_extra=decimal_string_pattern(NON_NEGATIVE_DECIMAL_PATTERN)
    )
    overage_rate: Money | None = None


class PerUnitPricing(Contract):
    model: Literal["per_unit"] = "per_unit"
    unit_name: str = Field(min_length=1, max_length=40, examples=["module"])
    unit_price: Money


Pricing = Annotated[
    HourlyPricing | PackagePricing | SubscriptionPricing | PerUnitPricing,
    Field(discriminator="model"),
]
PricingModel = Literal["hourly", "package", "subscription", "per_unit"]


def pricing_currency(
    p: HourlyPricing | PackagePricing | SubscriptionPricing | PerUnitPricing,
) -> str:
    match p:
        case HourlyPricing():
            return p.rate.currency
        case PackagePricing():
            return p.price.currency
        case SubscriptionPricing():
            return p.price_per_period.currency
        case PerUnitPricing():
            return p.unit_price.currency


class AgreedTerms(Contract):
    """What client and provider agreed on, frozen at proposal time.

    Travels on MatchProposed, MatchAccepted and WorkCompleted so that billing
    never reads the catalog's current state.
    """

    offer_id: Identifier
    offer_version: int = Field(ge=1)
    provider_id: Identifier
    provider_display_name: str = Field(max_length=120)
    provider_sap_number: str | None = None
    category: str
    delivery_mode: DeliveryMode
    sap_activity: str | None = None
    currency: Currency
    pricing: Pricing

    @model_validator(mode="after")
    def _one_currency(self) -> AgreedTerms:
        if pricing_currency(self.pricing) != self.currency:
            raise ValueError("pricing currency differs from the terms' currency")
        return self
