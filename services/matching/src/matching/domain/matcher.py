"""Matching: filter, walk schedules, score, rank — or explain why nobody qualifies.

`find_matches` selects candidates through the index; `find_matches_bruteforce`
evaluates every offer of the read model one by one. Both return the same
outcome (the tests check it); the brute force exists for the benchmark and as
an oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache

from delego_shared.events.catalog import OfferSnapshot, OfferStatus
from delego_shared.events.common import AgreedTerms, pricing_currency
from delego_shared.events.matching import FilterReason, ScoreBreakdown
from delego_shared.types import Money

from .availability import FastPlan, fast_answer_finish, fast_finish, fast_plan, from_us, to_us
from .capacity import (
    capacity_key,
    planning_keys,
    reservation_keys,
    week_capacities,
    week_capacity,
    week_key,
)
from .explain import ReasonKey, explain, skill_detail
from .filters import (
    Filter,
    available,
    budget_verdict,
    capacity_ok,
    finishes_by,
    first_missing_skill,
    in_category,
    live_window_ok,
    not_tried,
    shares_language,
)
from .index import CandidateIndex, OfferRow, PricedWork, ordinals
from .policy import DEFAULT_POLICY, SCORE_COMPONENTS, MatchingPolicy
from .pricing_estimate import estimate_price, work_hours, work_units
from .rating import RatingStats, rating_component
from .readmodel import ProviderEntry
from .response import ResponseWindow, response_window
from .schedule import WeeklySchedule, WorkPlan, hours_to_timedelta, plan_work
from .scoring import (
    awake_component,
    awake_us,
    breakdown,
    load_component,
    price_component,
    slack_component,
    slack_us,
    weighted_total,
)
from .spec import RequestSpec


@dataclass(frozen=True)
class MatchContext:
    """Live state the edge reads before matching (all optional)."""

    reserved_hours: Mapping[str, Decimal] = field(default_factory=dict)
    """Hours already reserved per capacity key (`capacity.capacity_key`)."""
    ratings: Mapping[str, RatingStats] = field(default_factory=dict)
    """Rating totals per provider id."""
    trusted_providers: frozenset[str] = frozenset()
    """Providers this client rated ≥ 4 before (`scoring.trusted_providers`)."""


EMPTY_CONTEXT = MatchContext()

_week_capacity = lru_cache(maxsize=65_536)(week_capacity)
"""`week_capacity` across requests: it depends on the catalog only (declared hours,
schedule, week), and the same providers' weeks come back request after request."""


@lru_cache(maxsize=4_096)
def _most_per_week(effort: int) -> Decimal:
    """An upper bound of any week's share in `reservation_keys` (hours to 4 decimals,
    rounded up) for an effort in µs."""
    hours = Decimal(effort // 1_000_000) / 3600
    return hours.quantize(Decimal("0.0001"), rounding=ROUND_CEILING)


_US = timedelta(microseconds=1)
_ZERO = Decimal(0)


def _clamp01(x: float) -> float:
    return 1.0 if x > 1.0 else 0.0 if x < 0.0 else x


@dataclass(frozen=True, slots=True)
class Rejection:
    filter: Filter
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Qualified:
    offer: OfferSnapshot
    provider: ProviderEntry
    effort_hours: Decimal
    units: int
    price: Money
    plan: WorkPlan
    reservation: dict[str, Decimal]
    capacity: dict[str, Decimal]
    """Bookable hours per capacity key of the reservation (real hours of each week)."""
    response: ResponseWindow

    @property
    def finish(self) -> datetime:
        assert self.plan.finish is not None
        return self.plan.finish


@dataclass(frozen=True, slots=True)
class Candidate:
    """A qualified, scored offer: everything a proposal needs."""

    offer: OfferSnapshot
    provider: ProviderEntry
    effort_hours: Decimal
    units: int
    price: Money
    finish: datetime
    reservation: dict[str, Decimal]
    """Hours to reserve per capacity key."""
    capacity: dict[str, Decimal]
    """Bookable hours per capacity key (the reservation's ceiling, real hours)."""
    score: ScoreBreakdown
    response: ResponseWindow
    """When the provider can answer and by when they must (the proposal's expiry)."""

    def terms(self) -> AgreedTerms:
        p = self.provider.snapshot
        return AgreedTerms(
            offer_id=self.offer.offer_id,
            offer_version=self.offer.version,
            provider_id=p.provider_id,
            provider_display_name=p.display_name,
            provider_sap_number=p.sap_declaration.number if p.sap_declaration else None,
            category=self.offer.category,
            delivery_mode=self.offer.delivery_mode,
            sap_activity=self.offer.sap_activity,
            currency=self.offer.currency,
            pricing=self.offer.pricing,
        )


@dataclass(frozen=True)
class MatchOutcome:
    candidates: tuple[Candidate, ...]
    offers_considered: int
    reasons: tuple[FilterReason, ...]
    summary: str
    summary_fr: str = ""

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def earliest_start(spec: RequestSpec, now: datetime) -> datetime:
    """When work may start at the earliest, whoever does it (`not_before` or now)."""
    return now if spec.not_before is None else max(now, spec.not_before)


def provider_response(
    provider: ProviderEntry, now: datetime, policy: MatchingPolicy = DEFAULT_POLICY
) -> ResponseWindow:
    """The provider's own window (`response_window_minutes`) or the policy's default,
    counted in their working time."""
    return response_window(provider.schedule, now, _window(provider, policy), policy.horizon)


def _window(provider: ProviderEntry, policy: MatchingPolicy) -> timedelta:
    minutes = provider.response_window_minutes
    return timedelta(minutes=minutes) if minutes else policy.acceptance_window


def planning_limit(
    provider: ProviderEntry,
    spec: RequestSpec,
    now: datetime,
    policy: MatchingPolicy = DEFAULT_POLICY,
) -> datetime:
    """The last instant `evaluate` can plan this provider's work up to (the edge reads
    the capacity keys from `now` to here)."""
    start = max(earliest_start(spec, now), provider_response(provider, now, policy).answer_by)
    return min(spec.deadline, start + policy.horizon)


def context_keys(
    provider: ProviderEntry,
    spec: RequestSpec,
    now: datetime,
    policy: MatchingPolicy = DEFAULT_POLICY,
) -> list[str]:
    """Capacity keys the edge reads by `_id` for this provider: the weeks a plan can
    touch (from the earliest start to `planning_limit`) and the current week (load)."""
    zone = provider.time_zone
    keys = planning_keys(
        provider.provider_id,
        zone,
        earliest_start(spec, now),
        planning_limit(provider, spec, now, policy),
    )
    current = week_key(provider.provider_id, now, zone)
    return keys if current in keys else [current, *keys]


def evaluate(
    offer: OfferSnapshot,
    provider: ProviderEntry | None,
    spec: RequestSpec,
    now: datetime,
    *,
    context: MatchContext = EMPTY_CONTEXT,
    policy: MatchingPolicy = DEFAULT_POLICY,
    exclude_providers: frozenset[str] = frozenset(),
) -> Rejection | Qualified:
    """Run the hard filters on one offer, in order; the first failure is the reason."""
    if not available(offer, provider):
        return Rejection(Filter.AVAILABLE)
    assert provider is not None
    if not in_category(offer, spec.category):
        return Rejection(Filter.CATEGORY)
    missing = first_missing_skill(offer, provider, spec.required_skills)
    if missing is not None:
        return Rejection(Filter.SKILL, skill_detail(missing.code, missing.level))
    if not shares_language(offer, spec.languages):
        return Rejection(Filter.LANGUAGE)
    if not not_tried(offer, exclude_providers):
        return Rejection(Filter.ALREADY_TRIED)
    hours = work_hours(spec.effort_hours, spec.units, offer.typical_effort_hours)
    units = work_units(spec.effort_hours, spec.units, offer.typical_effort_hours)
    if pricing_currency(offer.pricing) != offer.currency:
        return Rejection(Filter.PRICING)
    estimate = estimate_price(offer.pricing, hours, units)
    if estimate.price is None:
        return Rejection(Filter.PRICING)
    verdict = budget_verdict(estimate.price, spec.budget)
    if verdict is not None:
        return Rejection(verdict)
    if not live_window_ok(provider, spec.live_window, policy.min_live_overlap):
        return Rejection(Filter.LIVE_WINDOW)
    response = provider_response(provider, now, policy)
    effort = hours_to_timedelta(hours)
    earliest = earliest_start(spec, now)
    plan = plan_work(
        provider.schedule,
        max(earliest, response.answer_by),  # no work before they have answered
        effort,
        not_after=spec.deadline,
        horizon=policy.horizon,
    )
    need = reservation_keys(provider.provider_id, plan)
    ceiling = week_capacities(
        provider.provider_id, provider.weekly_capacity_hours, provider.schedule, need
    )
    if not capacity_ok(ceiling, context.reserved_hours, need):
        return Rejection(Filter.CAPACITY)
    if not finishes_by(plan, spec.deadline):
        awake_plan = plan_work(
            provider.schedule, earliest, effort, not_after=spec.deadline, horizon=policy.horizon
        )
        if response.answer_by > earliest and finishes_by(awake_plan, spec.deadline):
            return Rejection(Filter.RESPONSE)
        return Rejection(Filter.DEADLINE)
    return Qualified(offer, provider, hours, units, estimate.price, plan, need, ceiling, response)


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[ReasonKey, int] = {}
        self.qualified: list[Qualified] = []

    def add(self, r: Rejection | Qualified) -> None:
        if isinstance(r, Qualified):
            self.qualified.append(r)
        else:
            key = (r.filter, r.detail)
            self.counts[key] = self.counts.get(key, 0) + 1


def _rank(
    qualified: list[Qualified],
    spec: RequestSpec,
    now: datetime,
    context: MatchContext,
    policy: MatchingPolicy,
    limit: int,
) -> list[Candidate]:
    """Score every qualified offer, sort, and build full candidates for the top `limit`."""
    cheapest: dict[str, Money] = {}
    for q in qualified:
        c = cheapest.get(q.price.currency)
        if c is None or q.price.amount < c.amount:
            cheapest[q.price.currency] = q.price
    scored: list[tuple[float, datetime, str, Qualified, dict[str, float]]] = []
    for q in qualified:
        p = q.provider
        current_week = week_key(p.provider_id, now, p.time_zone)
        this_week = week_capacity(
            p.weekly_capacity_hours, p.schedule, current_week.rsplit(":", 1)[1]
        )
        earliest = earliest_start(spec, now)
        components = {
            "slack": slack_component(earliest, q.finish, spec.deadline),
            "rating": rating_component(context.ratings.get(p.provider_id), policy.rating_prior),
            "price": price_component(q.price, spec.budget, cheapest.get(q.price.currency)),
            "load": load_component(context.reserved_hours.get(current_week, Decimal(0)), this_week),
            "trust_bonus": 1.0 if p.provider_id in context.trusted_providers else 0.0,
            "awake": awake_component(earliest, q.response.answer_from, spec.deadline),
        }
        total = weighted_total(components, policy.weights)
        scored.append((-total, q.finish, q.offer.offer_id, q, components))
    scored.sort(key=lambda t: t[:3])
    return [
        Candidate(
            q.offer,
            q.provider,
            q.effort_hours,
            q.units,
            q.price,
            q.finish,
            q.reservation,
            q.capacity,
            breakdown(components, policy.weights),
            q.response,
        )
        for _, _, _, q, components in scored[:limit]
    ]


def _outcome(
    tally: _Tally,
    considered: int,
    spec: RequestSpec,
    now: datetime,
    context: MatchContext,
    policy: MatchingPolicy,
    limit: int | None,
) -> MatchOutcome:
    n = policy.candidates_limit if limit is None else limit
    ranked = _rank(tally.qualified, spec, now, context, policy, n)
    reasons, summary, summary_fr = explain(spec, considered, tally.counts, len(tally.qualified))
    return MatchOutcome(tuple(ranked), considered, tuple(reasons), summary, summary_fr)


@dataclass(slots=True)
class _Fit:
    """A qualified offer on the fast path: plain values, no pydantic, no Decimal walk."""

    row: OfferRow
    provider: ProviderEntry
    hours: Decimal
    units: int
    price: Money
    start: int
    """When its work may start (µs): the plan is walked again only if it is proposed."""
    effort: int
    finish: int
    answer_from: int
    answer_by: int


class _Scan:
    """One request's pass over the index's candidates: the filters of `evaluate`, in
    the same order and with the same functions, computed once per distinct input.

    Offers share providers, providers share schedules and pricings, so every
    schedule-dependent result (response window, finish, weekly capacity) is
    memoised per (schedule, start, effort) for the duration of the request,
    and estimates across requests of the same effort by the index. The walks
    run on the precomputed integer week tables (`availability`) and yield
    integers: datetimes, the weekly split of a plan and the response window
    are built only for the offers proposed (or when capacity has to be checked
    week by week). Memo keys use the identity of schedules and pricings: the
    index shares one object per distinct value and keeps it alive.
    """

    def __init__(
        self,
        index: CandidateIndex,
        spec: RequestSpec,
        now: datetime,
        context: MatchContext,
        policy: MatchingPolicy,
        exclude: frozenset[str],
    ) -> None:
        self.index, self.spec, self.now = index, spec, now
        self.context, self.policy, self.exclude = context, policy, exclude
        self.earliest = earliest_start(spec, now)
        self.earliest_us = to_us(self.earliest)
        self.now_us = to_us(now)
        self.deadline_us = to_us(spec.deadline)
        self.horizon_us = policy.horizon // _US
        self.counts: dict[ReasonKey, int] = {}
        self.fits: list[_Fit] = []
        self._prices = index.priced((spec.effort_hours, spec.units))
        self._moneys = index.prices
        self._walks: dict[tuple[int, int | None, int], tuple[int, int, int | None]] = {}
        self._finishes: dict[tuple[int, int, int], int | None] = {}
        self._plans: dict[tuple[int, int, int], FastPlan] = {}
        self._needs: dict[FastPlan, tuple[tuple[str, Decimal], ...]] = {}
        self._live: dict[int, bool] = {}
        self.budget = spec.budget
        self.loaded = frozenset(k.split(":", 1)[0] for k in context.reserved_hours)
        """Providers with reserved hours in the context."""

    def price(self, row: OfferRow) -> PricedWork:
        """The estimate of the row's price class for this request's work (shared by the
        requests of the same effort and units through the index)."""
        got = self._prices.get(row.price_class)
        if got is None:
            s = self.spec
            hours = work_hours(s.effort_hours, s.units, row.typical_hours)
            units = work_units(s.effort_hours, s.units, row.typical_hours)
            price_id = self.index.price_id(row.pricing, hours, units)
            effort = hours_to_timedelta(hours) // _US
            got = self._prices[row.price_class] = (
                hours,
                units,
                price_id,
                effort,
                _most_per_week(effort),
            )
            self.index.note_priced(1)
        return got

    def walk(self, provider: ProviderEntry, effort: int) -> tuple[int, int, int | None]:
        """(answer_from, answer_by, finish) in µs: `provider_response`, then the plan's
        finish from the later of the answer and the earliest start (None: not
        before the deadline), in one walk (`fast_answer_finish`)."""
        key = (id(provider.schedule), provider.response_window_minutes, effort)
        got = self._walks.get(key)
        if got is None:
            got = self._walks[key] = fast_answer_finish(
                provider.schedule,
                self.now_us,
                _window(provider, self.policy) // _US,
                self.horizon_us,
                self.earliest_us,
                effort,
                self.deadline_us,
            )
        return got

    def finish(self, schedule: WeeklySchedule, start: int, effort: int) -> int | None:
        """The plan's finish in µs (`fast_finish`), None when not before the deadline."""
        key = (id(schedule), start, effort)
        try:
            return self._finishes[key]
        except KeyError:
            got = self._finishes[key] = fast_finish(
                schedule, start, effort, self.deadline_us, self.horizon_us
            )
            return got

    def plan(self, schedule: WeeklySchedule, start: int, effort: int) -> FastPlan:
        key = (id(schedule), start, effort)
        got = self._plans.get(key)
        if got is None:
            got = self._plans[key] = fast_plan(
                schedule, start, effort, self.deadline_us, self.horizon_us
            )
        return got

    def need(self, plan: FastPlan) -> tuple[tuple[str, Decimal], ...]:
        """`reservation_keys` per week label (hours add up to the effort exactly)."""
        got = self._needs.get(plan)
        if got is None:
            keys = reservation_keys("", plan.work_plan())
            got = self._needs[plan] = tuple((k[1:], h) for k, h in keys.items())
        return got

    def capacity(self, provider: ProviderEntry, week: str) -> Decimal:
        return _week_capacity(provider.weekly_capacity_hours, provider.schedule, week)

    def fits_capacity(
        self, provider: ProviderEntry, start: int, effort: int, most_per_week: Decimal
    ) -> bool:
        """`capacity_ok` for the plan from `start`. Shortcut: with nothing reserved for the
        provider, a declared capacity of at least the most a week can take of the
        effort (`most_per_week`) fits every week (a week's ceiling is never below
        the declared capacity), so the plan's weekly split is computed for few offers."""
        if (
            provider.provider_id not in self.loaded
            and provider.weekly_capacity_hours >= most_per_week
        ):
            return True
        reserved = self.context.reserved_hours
        prefix = provider.provider_id + ":"
        for week, hours in self.need(self.plan(provider.schedule, start, effort)):
            room = self.capacity(provider, week)
            if reserved:
                room -= reserved.get(prefix + week, _ZERO)
            if max(_ZERO, room) < hours:
                return False
        return True

    def live_ok(self, provider: ProviderEntry) -> bool:
        key = id(provider.schedule)
        got = self._live.get(key)
        if got is None:
            got = self._live[key] = live_window_ok(
                provider, self.spec.live_window, self.policy.min_live_overlap
            )
        return got

    def run(self) -> int:
        """Classify every candidate; returns the number of published offers considered."""
        s = self.spec
        index = self.index
        cat = index.category(s.category)
        rows = cat.rows
        check = self.check
        provider = index.provider
        rejected: dict[Filter, int] = {}
        for i in ordinals(cat.candidates(s.required_skills, s.languages)):
            row = rows[i]
            assert row is not None
            why = check(row, provider(row.provider_id))
            if why is not None:
                rejected[why] = rejected.get(why, 0) + 1
        counts = self.counts
        for f, c in rejected.items():
            counts[(f, "")] = c
        for key, c in index.prefilter_counts(s.category, s.required_skills, s.languages).items():
            if c:
                counts[key] = counts.get(key, 0) + c
        return cat.published.bit_count()

    def check(self, row: OfferRow, provider: ProviderEntry | None) -> Filter | None:
        """`evaluate` from the not-tried filter on (the index applied the ones before):
        the first failing filter, or None once the offer is kept as a fit."""
        assert provider is not None
        if row.provider_id in self.exclude:
            return Filter.ALREADY_TRIED
        if not row.priced_in_currency:
            return Filter.PRICING
        hours, units, price_id, effort, most_per_week = self._prices.get(
            row.price_class
        ) or self.price(row)
        if price_id is None:
            return Filter.PRICING
        price = self._moneys[price_id]
        if self.budget is not None:
            over = budget_verdict(price, self.budget)
            if over is not None:
                return over
        if self.spec.live_window is not None and not self.live_ok(provider):
            return Filter.LIVE_WINDOW
        key = (id(provider.schedule), provider.response_window_minutes, effort)
        walked = self._walks.get(key) or self.walk(provider, effort)
        answer_from, answer_by, finish = walked
        start = answer_by if answer_by > self.earliest_us else self.earliest_us
        if not self.fits_capacity(provider, start, effort, most_per_week):
            return Filter.CAPACITY
        if finish is None or finish > self.deadline_us:
            awake = self.finish(provider.schedule, self.earliest_us, effort)
            in_time = awake is not None and awake <= self.deadline_us
            if answer_by > self.earliest_us and in_time:
                return Filter.RESPONSE
            return Filter.DEADLINE
        self.fits.append(
            _Fit(
                row,
                provider,
                hours,
                units,
                price,
                start,
                effort,
                finish,
                answer_from,
                answer_by,
            )
        )
        return None

    def rank(self, limit: int) -> list[Candidate]:
        """The top `limit` fits by `_rank`'s score, exactly, by branch and bound.

        Every fit gets an upper bound: slack and awake exactly, from the
        integers (`slack_us`, `awake_us`: the floats of the datetime
        functions), rating, trust, and price (the exact component, once per
        distinct price: money stays Decimal), with load at its maximum, 1
        (which it is for a provider with nothing reserved). Fits are taken by
        decreasing bound and scored exactly (the same functions as `_rank`);
        once the next bound is below the `limit`-th exact score with room for
        the rounding to 6 decimals and the order of the float additions, no
        later fit can enter the top and the rest are never scored.
        """
        if not self.fits or limit <= 0:
            return []
        spec, ctx, policy = self.spec, self.context, self.policy
        w = {k: float(policy.weights.get(k, 0.0)) for k in SCORE_COMPONENTS}
        cheapest: dict[str, Money] = {}
        for f in self.fits:
            c = cheapest.get(f.price.currency)
            if c is None or f.price.amount < c.amount:
                cheapest[f.price.currency] = f.price
        # the fixed part of every bound: load at 1; rating without stats
        base = w["load"]
        unrated = _clamp01(rating_component(None, policy.rating_prior)) * w["rating"]
        ratings, trusted = ctx.ratings, ctx.trusted_providers
        e, d = self.earliest_us, self.deadline_us
        w_slack, w_awake, w_price = w["slack"], w["awake"], w["price"]
        w_rating, w_trust = w["rating"], w["trust_bonus"]
        prices: dict[int, float] = {}
        budget = spec.budget
        bounded: list[tuple[float, int]] = []
        for n, f in enumerate(self.fits):
            b = base + slack_us(e, f.finish, d) * w_slack + awake_us(e, f.answer_from, d) * w_awake
            pid = f.provider.provider_id
            stats = ratings.get(pid)
            b += (
                unrated
                if stats is None
                else _clamp01(rating_component(stats, policy.rating_prior)) * w_rating
            )
            if pid in trusted:
                b += w_trust
            pc = prices.get(id(f.price))
            if pc is None:
                pc = prices[id(f.price)] = price_component(
                    f.price, budget, cheapest.get(f.price.currency)
                )
            b += pc * w_price
            bounded.append((b, n))
        bounded.sort(key=lambda t: -t[0])
        weeks: dict[str, str] = {}
        top: list[tuple[float, int, str, _Fit, dict[str, float]]] = []
        for bound, n in bounded:
            if len(top) >= limit and bound + 1e-5 < -top[limit - 1][0]:
                break
            f = self.fits[n]
            p = f.provider
            pid = p.provider_id
            components = {
                "slack": slack_us(e, f.finish, d),
                "rating": rating_component(ratings.get(pid), policy.rating_prior),
                "price": prices[id(f.price)],  # the exact component, from the bound
                "trust_bonus": 1.0 if pid in trusted else 0.0,
                "awake": awake_us(e, f.answer_from, d),
            }
            label = weeks.get(p.time_zone)
            if label is None:
                label = weeks[p.time_zone] = week_key("", self.now, p.time_zone)[1:]
            components["load"] = load_component(
                ctx.reserved_hours.get(f"{pid}:{label}", _ZERO), self.capacity(p, label)
            )
            total = weighted_total(components, policy.weights)
            top.append((-total, f.finish, f.row.offer_id, f, components))
            top.sort(key=lambda t: t[:3])
            del top[limit:]
        return [self.candidate(f, components) for _, _, _, f, components in top]

    def candidate(self, f: _Fit, components: dict[str, float]) -> Candidate:
        p = f.provider
        plan = self.plan(p.schedule, f.start, f.effort)
        assert plan.finish == f.finish
        need = reservation_keys(p.provider_id, plan.work_plan())
        return Candidate(
            f.row.snapshot,
            p,
            f.hours,
            f.units,
            f.price,
            from_us(f.finish),
            need,
            {k: self.capacity(p, k.rsplit(":", 1)[1]) for k in need},
            breakdown(components, self.policy.weights),
            ResponseWindow(self.now, from_us(f.answer_from), from_us(f.answer_by)),
        )


def find_matches(
    index: CandidateIndex,
    spec: RequestSpec,
    now: datetime,
    *,
    context: MatchContext = EMPTY_CONTEXT,
    policy: MatchingPolicy = DEFAULT_POLICY,
    exclude_providers: frozenset[str] = frozenset(),
    limit: int | None = None,
) -> MatchOutcome:
    """Best offers for a request, best first; with reasons when none qualifies.

    Same outcome as `find_matches_bruteforce` (the tests check it), from the
    index's bitsets and the memoised fast walks of `_Scan`.
    """
    scan = _Scan(index, spec, now, context, policy, exclude_providers)
    considered = scan.run()
    n = policy.candidates_limit if limit is None else limit
    ranked = scan.rank(n)
    reasons, summary, summary_fr = explain(spec, considered, scan.counts, len(scan.fits))
    return MatchOutcome(tuple(ranked), considered, tuple(reasons), summary, summary_fr)


LIVE_FILTERS = frozenset({Filter.CAPACITY, Filter.RESPONSE, Filter.DEADLINE})
"""Filters whose verdict can depend on the live context (capacity comes before
response and deadline, so an offer they reject might have failed capacity)."""


def context_providers(
    index: CandidateIndex,
    spec: RequestSpec,
    now: datetime,
    *,
    policy: MatchingPolicy = DEFAULT_POLICY,
    exclude_providers: frozenset[str] = frozenset(),
) -> set[str]:
    """Providers whose outcome can depend on live load and ratings.

    Every filter before capacity reads only the catalog, so an offer rejected
    there is rejected whatever the context says: the edge reads load and
    ratings (by `_id`) only for the providers returned here, and
    `find_matches` with that context gives the same outcome as with the full
    one.
    """
    scan = _Scan(index, spec, now, EMPTY_CONTEXT, policy, exclude_providers)
    cat = index.category(spec.category)
    out: set[str] = set()
    for i in ordinals(cat.candidates(spec.required_skills, spec.languages)):
        row = cat.rows[i]
        assert row is not None
        if row.provider_id in out:
            continue
        rejected = scan.check(row, index.provider(row.provider_id))
        if rejected is None or rejected in LIVE_FILTERS:
            out.add(row.provider_id)
    return out


def find_matches_bruteforce(
    offers: Iterable[tuple[OfferSnapshot, ProviderEntry | None]],
    spec: RequestSpec,
    now: datetime,
    *,
    context: MatchContext = EMPTY_CONTEXT,
    policy: MatchingPolicy = DEFAULT_POLICY,
    exclude_providers: frozenset[str] = frozenset(),
    limit: int | None = None,
) -> MatchOutcome:
    """Same as `find_matches`, scanning every offer (oracle and benchmark baseline).

    Offers considered are the published ones of the category; the others are
    not part of the explanation.
    """
    tally = _Tally()
    considered = 0
    for offer, provider in offers:
        if offer.status is not OfferStatus.PUBLISHED or offer.category != spec.category:
            continue
        considered += 1
        tally.add(
            evaluate(
                offer,
                provider,
                spec,
                now,
                context=context,
                policy=policy,
                exclude_providers=exclude_providers,
            )
        )
    return _outcome(tally, considered, spec, now, context, policy, limit)


__all__ = [
    "EMPTY_CONTEXT",
    "Candidate",
    "MatchContext",
    "MatchOutcome",
    "Qualified",
    "Rejection",
    "capacity_key",
    "context_keys",
    "context_providers",
    "evaluate",
    "find_matches",
    "find_matches_bruteforce",
    "planning_limit",
]
