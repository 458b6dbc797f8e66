"""Events published by the matching service on `matching.requests.v1` (key: request id).

The client's private description never appears here: only ids, categories,
amounts and instants.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from ..types import IanaZone, Identifier, LanguageTag, Money, UtcInstant
from .base import Event, event
from .common import AgreedTerms, Contract, SkillLevel
from .topics import REQUESTS


class DelegationLevel(StrEnum):
    ADVICE_ONLY = "advice_only"
    ACT_WITH_REVIEW = "act_with_review"
    AUTONOMOUS = "autonomous"


class LiveWindow(Contract):
    """When the client can attend live sessions (instants; rendered in their zone)."""

    start: UtcInstant
    end: UtcInstant


class ScoreBreakdown(Contract):
    """Each component in [0, 1] before weighting; `total` is the weighted sum."""

    total: float
    slack: float
    rating: float
    price: float
    load: float
    trust_bonus: float
    weights: dict[str, float]
    awake: float | None = Field(
        default=None,
        description="1 when the provider can answer at once; lower the longer they sleep "
        "before answering, relative to the time until the deadline (added in v1.1)",
    )


class FilterReason(Contract):
    """Why offers were excluded: `count` offers failed `filter`."""

    filter: str = Field(examples=["skill"])
    count: int = Field(ge=0)
    message: str = Field(examples=["5 lack skill translation.en-fr ≥ 4"])
    message_fr: str | None = Field(
        default=None, examples=["5 n'ont pas la compétence translation.en-fr ≥ 4"]
    )


class _RequestEvent(Event):
    request_id: Identifier
    client_id: Identifier

    def key(self) -> str:
        return self.request_id


@event("delego.matching.RequestSubmitted.v1", REQUESTS)
class RequestSubmitted(_RequestEvent):
    category: str
    required_skills: list[SkillLevel]
    languages: list[LanguageTag]
    effort_hours: Decimal | None = None
    units: int | None = None
    deadline: UtcInstant
    client_zone: IanaZone
    budget: Money | None = None
    live_window: LiveWindow | None = None
    delegation_level: DelegationLevel
    submitted_at: UtcInstant
    not_before: UtcInstant | None = Field(
        default=None, description="the work starts no earlier than this instant"
    )


@event("delego.matching.MatchProposed.v1", REQUESTS)
class MatchProposed(_RequestEvent):
    """A provider is asked to accept the request before `expires_at`."""

    attempt: int = Field(ge=1)
    provider_id: Identifier
    terms: AgreedTerms
    estimated_price: Money
    reserved_hours: Decimal
    promised_at: UtcInstant
    promised_local: str = Field(
        description="promised instant in the client's zone, ISO-8601 with offset"
    )
    client_zone: IanaZone
    score: ScoreBreakdown
    expires_at: UtcInstant


@event("delego.matching.MatchAccepted.v1", REQUESTS)
class MatchAccepted(_RequestEvent):
    attempt: int = Field(ge=1)
    provider_id: Identifier
    terms: AgreedTerms
    estimated_price: Money
    promised_at: UtcInstant
    promised_local: str
    client_zone: IanaZone
    accepted_at: UtcInstant


@event("delego.matching.MatchDeclined.v1", REQUESTS)
class MatchDeclined(_RequestEvent):
    attempt: int = Field(ge=1)
    provider_id: Identifier
    offer_id: Identifier
    declined_at: UtcInstant


@event("delego.matching.ProposalExpired.v1", REQUESTS)
class ProposalExpired(_RequestEvent):
    attempt: int = Field(ge=1)
    provider_id: Identifier
    offer_id: Identifier
    expired_at: UtcInstant


@event("delego.matching.RequestUnmatched.v1", REQUESTS)
class RequestUnmatched(_RequestEvent):
    offers_considered: int = Field(ge=0)
    attempts: int = Field(ge=0)
    reasons: list[FilterReason]
    summary: str
    summary_fr: str | None = None


@event("delego.matching.RequestCancelled.v1", REQUESTS)
class RequestCancelled(_RequestEvent):
    provider_id: Identifier | None = None
    cancelled_at: UtcInstant


@event("delego.matching.WorkCompleted.v1", REQUESTS)
class WorkCompleted(_RequestEvent):
    provider_id: Identifier
    terms: AgreedTerms
    actual_hours: Decimal | None = Field(default=None, ge=0)
    units: int | None = Field(default=None, ge=0)
    completed_at: UtcInstant
    actual_minutes: int | None = Field(
        default=None,
        ge=0,
        description="the work reported in whole minutes (exact); when present, "
        "`actual_hours` is the same duration rounded to 1/10 000 h",
    )


@event("delego.matching.WorkRated.v1", REQUESTS)
class WorkRated(_RequestEvent):
    provider_id: Identifier
    rating: int = Field(ge=1, le=5)
    rated_at: UtcInstant
