"""Every hard filter, one offer at a time, through `evaluate` (the first failure wins)."""

from datetime import timedelta
from decimal import Decimal

from delego_shared.events.catalog import OfferStatus, ProviderStatus
from delego_shared.events.common import PackagePricing
from delego_shared.events.matching import LiveWindow
from delego_shared.types import Money
from matching.domain.filters import Filter
from matching.domain.matcher import MatchContext, Qualified, Rejection, evaluate
from matching.domain.policy import MatchingPolicy
from matching.domain.readmodel import ProviderEntry

from .builders import WEEKDAYS, at, hourly, offer, provider, skills, spans, spec

NOW = at("Europe/Paris", 2026, 2, 10, 10)  # Tuesday 10:00 Paris
DEADLINE = at("Europe/Paris", 2026, 2, 11, 18)


def run(o=None, p=None, s=None, **kw):
    entry = ProviderEntry.of(p or provider())
    return evaluate(o or offer(), entry, s or spec(deadline=DEADLINE), NOW, **kw)


def rejected_by(result) -> Filter:
    assert isinstance(result, Rejection), result
    return result.filter


def test_a_fitting_offer_qualifies_with_price_plan_and_reservation():
    r = run()
    assert isinstance(r, Qualified)
    assert r.price == Money.of("60.00", "EUR")
    # at work: answers within 15 min (10:15), then 2 h of work
    assert r.finish == at("Europe/Paris", 2026, 2, 10, 12, 15)
    assert r.response.awake and r.response.answer_by == at("Europe/Paris", 2026, 2, 10, 10, 15)
    assert r.reservation == {"prv_1:2026-W07": Decimal("2.0000")}


def test_available_requires_published_offer_and_active_provider():
    assert rejected_by(run(o=offer(status=OfferStatus.WITHDRAWN))) is Filter.AVAILABLE
    assert rejected_by(run(p=provider(status=ProviderStatus.SUSPENDED))) is Filter.AVAILABLE
    r = evaluate(offer(), None, spec(deadline=DEADLINE), NOW)
    assert rejected_by(r) is Filter.AVAILABLE


def test_category():
    assert rejected_by(run(o=offer(category="tutoring"))) is Filter.CATEGORY


def test_skill_level_from_offer_or_provider_whichever_is_higher():
    low = offer(skill_levels=skills(("translation.en-fr", 3)))
    r = run(o=low)
    assert rejected_by(r) is Filter.SKILL
    assert isinstance(r, Rejection)
    assert r.detail == "translation.en-fr ≥ 4"
    # the provider's profile declares the skill at 5: it counts for the offer
    strong = provider(skill_levels=skills(("translation.en-fr", 5)))
    assert isinstance(run(o=low, p=strong), Qualified)
    # every required skill is needed
    two = spec(deadline=DEADLINE, required=skills(("translation.en-fr", 4), ("proofreading.fr", 2)))
    r2 = run(s=two)
    assert isinstance(r2, Rejection)
    assert r2.detail == "proofreading.fr ≥ 2"


def test_language_matches_on_primary_subtag():
    assert rejected_by(run(o=offer(languages=["de"]))) is Filter.LANGUAGE
    assert isinstance(run(o=offer(languages=["fr-CA"])), Qualified)
    assert isinstance(run(s=spec(deadline=DEADLINE, languages=["de", "en-GB"])), Qualified)


def test_providers_already_tried_are_excluded():
    r = run(exclude_providers=frozenset({"prv_1"}))
    assert rejected_by(r) is Filter.ALREADY_TRIED


def test_pricing_that_cannot_cover_the_work():
    small = PackagePricing(price=Money.of("20", "EUR"), hours_included=Decimal(1))
    assert rejected_by(run(o=offer(pricing=small))) is Filter.PRICING


def test_currency_mismatch_with_budget_is_excluded():
    usd = offer(pricing=hourly("30", "USD"))
    s = spec(deadline=DEADLINE, budget=Money.of("500", "EUR"))
    assert rejected_by(run(o=usd, s=s)) is Filter.CURRENCY
    assert isinstance(run(o=usd), Qualified)  # no budget: no currency constraint


def test_budget_per_pricing_model():
    s = spec(deadline=DEADLINE, budget=Money.of("59.99", "EUR"))
    assert rejected_by(run(s=s)) is Filter.BUDGET  # 2 h x 30 = 60.00
    ok = spec(deadline=DEADLINE, budget=Money.of("60", "EUR"))
    assert isinstance(run(s=ok), Qualified)
    pkg = offer(pricing=PackagePricing(price=Money.of("650", "EUR"), hours_included=Decimal(40)))
    assert rejected_by(run(o=pkg, s=ok)) is Filter.BUDGET


def test_live_window_must_overlap_working_spans():
    outside = LiveWindow(
        start=at("Europe/Paris", 2026, 2, 10, 19), end=at("Europe/Paris", 2026, 2, 10, 21)
    )
    s = spec(deadline=DEADLINE, live_window=outside)
    assert rejected_by(run(s=s)) is Filter.LIVE_WINDOW
    inside = LiveWindow(
        start=at("Europe/Paris", 2026, 2, 10, 17), end=at("Europe/Paris", 2026, 2, 10, 19)
    )
    assert isinstance(run(s=spec(deadline=DEADLINE, live_window=inside)), Qualified)
    # 15 minutes of overlap is below the default 30-minute minimum
    short = LiveWindow(
        start=at("Europe/Paris", 2026, 2, 10, 17, 45), end=at("Europe/Paris", 2026, 2, 10, 20)
    )
    assert rejected_by(run(s=spec(deadline=DEADLINE, live_window=short))) is Filter.LIVE_WINDOW
    lenient = MatchingPolicy(min_live_overlap=timedelta(minutes=10))
    assert isinstance(run(s=spec(deadline=DEADLINE, live_window=short), policy=lenient), Qualified)


def test_remaining_weekly_capacity_must_hold_the_effort():
    busy = MatchContext(reserved_hours={"prv_1:2026-W07": Decimal("38.5")})
    assert rejected_by(run(context=busy)) is Filter.CAPACITY
    ok = MatchContext(reserved_hours={"prv_1:2026-W07": Decimal(38)})
    assert isinstance(run(context=ok), Qualified)
    assert rejected_by(run(p=provider(capacity="1"))) is Filter.CAPACITY


def test_capacity_is_checked_in_each_week_the_work_falls_in():
    friday = at("Europe/Paris", 2026, 2, 13, 17)
    entry = ProviderEntry.of(provider())
    s = spec(deadline=at("Europe/Paris", 2026, 2, 17, 9))
    full_next_week = MatchContext(reserved_hours={"prv_1:2026-W08": Decimal(40)})
    r = evaluate(offer(), entry, s, friday, context=full_next_week)
    assert rejected_by(r) is Filter.CAPACITY


def test_deadline_must_be_met():
    tight = spec(deadline=at("Europe/Paris", 2026, 2, 10, 11))
    assert rejected_by(run(s=tight)) is Filter.DEADLINE
    night_owl = provider(schedule=spans(WEEKDAYS, "20:00", "23:00"))
    assert rejected_by(run(p=night_owl, s=spec(deadline=at("Europe/Paris", 2026, 2, 10, 19)))) is (
        Filter.DEADLINE
    )


def test_filters_apply_in_order_first_failure_is_the_reason():
    o = offer(skill_levels=skills(("translation.en-fr", 1)), languages=["de"])
    assert rejected_by(run(o=o, s=spec(deadline=at("Europe/Paris", 2026, 2, 10, 11)))) is (
        Filter.SKILL
    )
