"""Hard filters: each is named, applied in a fixed order, and the first one an
offer fails is the reason it is excluded (so the counts of an explanation add
up to the offers considered).

Order: cheap look-ups first, the schedule walk last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from delego_shared.events.catalog import OfferSnapshot, OfferStatus
from delego_shared.events.common import SkillLevel
from delego_shared.events.matching import LiveWindow
from delego_shared.types import Money

from .capacity import fits
from .pricing_estimate import BudgetCheck, check_budget
from .readmodel import ProviderEntry, effective_skills, language_key
from .schedule import WeeklySchedule, WorkPlan, working_overlap


class Filter(StrEnum):
    AVAILABLE = "available"
    CATEGORY = "category"
    SKILL = "skill"
    LANGUAGE = "language"
    ALREADY_TRIED = "already_tried"
    PRICING = "pricing"
    CURRENCY = "currency"
    BUDGET = "budget"
    LIVE_WINDOW = "live_window"
    CAPACITY = "capacity"
    RESPONSE = "response"
    """Could finish in time if asked while at work, but sleeps too long before answering."""
    DEADLINE = "deadline"


FILTER_ORDER: tuple[Filter, ...] = tuple(Filter)


def available(offer: OfferSnapshot, provider: ProviderEntry | None) -> bool:
    """Offer published and its provider known and active."""
    return (
        offer.status is OfferStatus.PUBLISHED
        and provider is not None
        and provider.active
        and provider.provider_id == offer.provider_id
    )


def in_category(offer: OfferSnapshot, category: str) -> bool:
    return offer.category == category


def first_missing_skill(
    offer: OfferSnapshot, provider: ProviderEntry | None, required: Sequence[SkillLevel]
) -> SkillLevel | None:
    """The first required skill (request order) not held at or above its level."""
    if not required:
        return None
    levels = effective_skills(offer, provider)
    for need in required:
        if levels.get(need.code, 0) < need.level:
            return need
    return None


def shares_language(offer: OfferSnapshot, languages: Sequence[str]) -> bool:
    wanted = {language_key(t) for t in languages}
    return any(language_key(t) in wanted for t in offer.languages)


def not_tried(offer: OfferSnapshot, exclude_providers: frozenset[str]) -> bool:
    return offer.provider_id not in exclude_providers


def budget_verdict(price: Money, budget: Money | None) -> Filter | None:
    """CURRENCY when priced in another currency than the budget, BUDGET when over."""
    match check_budget(price, budget):
        case BudgetCheck.OK:
            return None
        case BudgetCheck.CURRENCY_MISMATCH:
            return Filter.CURRENCY
        case BudgetCheck.OVER:
            return Filter.BUDGET


def live_window_ok(provider: ProviderEntry, window: LiveWindow | None, minimum: timedelta) -> bool:
    """The client's live-session window must share `minimum` with the working spans."""
    return schedule_live_ok(provider.schedule, window, minimum)


def schedule_live_ok(
    schedule: WeeklySchedule, window: LiveWindow | None, minimum: timedelta
) -> bool:
    """`live_window_ok` of a schedule (the matcher decides once per distinct schedule)."""
    if window is None:
        return True
    need = min(minimum, window.end - window.start)
    return working_overlap(schedule, window.start, window.end) >= need


def capacity_ok(
    capacity: Mapping[str, Decimal], reserved: Mapping[str, Decimal], need: Mapping[str, Decimal]
) -> bool:
    """Every ISO week the work falls in keeps enough unreserved capacity (real hours)."""
    return fits(capacity, reserved, need)


def finishes_by(plan: WorkPlan, deadline: datetime) -> bool:
    return plan.finish is not None and plan.finish <= deadline
