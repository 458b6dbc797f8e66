"""Matching: filter, walk schedules, score, rank — or explain why nobody qualifies.

`find_matches` selects candidates through the index; `find_matches_bruteforce`
evaluates every offer of the read model one by one. Both return the same
outcome (the tests check it); the brute force exists for the benchmark and as
an oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache, partial
from typing import Generic, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from delego_shared.events.catalog import OfferSnapshot, OfferStatus
from delego_shared.events.common import AgreedTerms, pricing_currency
from delego_shared.events.matching import FilterReason, ScoreBreakdown
from delego_shared.types import Money

from .availability import (
    FastPlan,
    fast_answer_finish,
    fast_finish,
    fast_plan,
    from_us,
    hours_of_us,
    local_week_label,
    real_week_hours_fast,
    to_us,
    week_monday,
)
from .capacity import (
    bookable_hours,
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
    schedule_live_ok,
    shares_language,
)
from .index import (
    CandidateIndex,
    CategoryBits,
    OfferRow,
    PricedWork,
    ordinal_array,
)
from .policy import DEFAULT_POLICY, MatchingPolicy
from .price_columns import KIND_PYTHON, PRICE_SCALE, estimate, most_per_week
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
    weight_pairs,
    weighted_sum,
    weighted_total,
)
from .spec import RequestSpec
from .timeline import Timeline

_PPM = 1_000_000
"""Price components in the score bounds are compared in millionths."""
_SMALL_AMOUNT = (2**63 - 1) // _PPM
"""Amounts (in 10⁻⁶) up to this times `_PPM` fit in int64."""

I64 = npt.NDArray[np.int64]


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


@lru_cache(maxsize=65_536)
def _week_capacity(declared: Decimal, schedule: WeeklySchedule, week: str) -> Decimal:
    """`week_capacity` across requests (it depends on the catalog only: declared hours,
    schedule, week, and the same providers' weeks come back request after request),
    with the real hours from the week table (`real_week_hours_fast`: the same value)."""
    return bookable_hours(declared, schedule, partial(real_week_hours_fast, schedule, week))


def _capacity_of_us(declared: Decimal, schedule: WeeklySchedule, week_us: int) -> Decimal:
    """`_week_capacity` from the week's µs (`Timeline.week_us`): no week table."""
    return bookable_hours(declared, schedule, partial(hours_of_us, week_us))


_most_per_week = lru_cache(maxsize=4_096)(most_per_week)


@lru_cache(maxsize=16_384)
def _week_needs(seconds_by_week: tuple[tuple[str, int], ...]) -> tuple[tuple[str, Decimal], ...]:
    """`reservation_keys` per week label: it depends on the plan's weekly split only, and
    the same splits come back across requests (whole hours from the same starts)."""
    keys = reservation_keys("", WorkPlan(None, seconds_by_week))
    return tuple((k[1:], h) for k, h in keys.items())


@lru_cache(maxsize=65_536)
def _minor_money(amount: int, minor: int, currency: str) -> Money:
    """`Money` of `amount` minor units across requests (building one validates it: a few
    µs, for each fit scored; few distinct amounts recur)."""
    return Money(amount=Decimal(amount).scaleb(-minor), currency=currency)


_US = timedelta(microseconds=1)
_ZERO = Decimal(0)


def _clamp01(x: float) -> float:
    return 1.0 if x > 1.0 else 0.0 if x < 0.0 else x


def _unit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """`np.clip(x, 0, 1)` for finite `x`, in two cheap calls (clip costs several µs)."""
    return np.minimum(np.maximum(x, 0.0), 1.0)


def _member(values: I64, members: I64) -> npt.NDArray[np.bool_]:
    """`np.isin(values, members)` by a sorted search (`np.isin` costs about 20 µs
    whatever the sizes; the context names a few providers)."""
    if not len(members):
        return np.zeros(len(values), dtype=bool)
    m = np.sort(members)
    found: npt.NDArray[np.bool_] = m[np.minimum(np.searchsorted(m, values), len(m) - 1)] == values
    return found


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


T = TypeVar("T")


class Lazy(Generic[T]):
    """A part of an outcome made on first read (`value`) and kept: the service reads
    the proposed candidate's score and booking, and the explanation only when nobody
    qualifies, and making them for every candidate was most of a request's cost.
    What makes it holds only what the match left behind (unchanged afterwards,
    the timeline it was decided on included), so a later read gives what making it
    at once would have."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None

    def value(self) -> T:
        if self._value is None:
            self._value = self._make()
        return self._value


class Booking(NamedTuple):
    """When a candidate finishes, what it reserves, and when its provider answers."""

    finish: datetime
    reservation: dict[str, Decimal]
    capacity: dict[str, Decimal]
    response: ResponseWindow


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """A qualified, scored offer: everything a proposal needs.

    The offer's snapshot is parsed from the index row, and the score breakdown
    and the booking (reservation per week, capacity, response window) are
    made, only when first read (`offer`, `score`, `reservation`...): a request
    ranks five candidates and proposes one, and these are most of the cost of
    making a candidate. Equal when the snapshots and every other field are
    equal, however each was made."""

    source: OfferSnapshot | OfferRow
    """The offer's snapshot, or the index row it is parsed from (`offer`)."""
    provider: ProviderEntry
    effort_hours: Decimal
    units: int
    price: Money
    booked: Booking | Lazy[Booking]
    """Finish, reservation, capacity and response window, or what makes them on first
    read (`finish`, `reservation`, `capacity`, `response`)."""
    scored: ScoreBreakdown | Lazy[ScoreBreakdown]
    """The score breakdown, or what it is built from on first read (`score`)."""

    @property
    def booking(self) -> Booking:
        b = self.booked
        return b if isinstance(b, Booking) else b.value()

    @property
    def finish(self) -> datetime:
        return self.booking.finish

    @property
    def reservation(self) -> dict[str, Decimal]:
        """Hours to reserve per capacity key."""
        return self.booking.reservation

    @property
    def capacity(self) -> dict[str, Decimal]:
        """Bookable hours per capacity key (the reservation's ceiling, real hours)."""
        return self.booking.capacity

    @property
    def response(self) -> ResponseWindow:
        """When the provider can answer and by when they must (the proposal's expiry)."""
        return self.booking.response

    @property
    def offer(self) -> OfferSnapshot:
        s = self.source
        return s if isinstance(s, OfferSnapshot) else s.snapshot

    @property
    def offer_id(self) -> str:
        return self.source.offer_id

    @property
    def score(self) -> ScoreBreakdown:
        s = self.scored
        return s if isinstance(s, ScoreBreakdown) else s.value()

    def _fields(self) -> tuple[object, ...]:
        return (
            self.provider,
            self.effort_hours,
            self.units,
            self.price,
            self.booking,
            self.score,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candidate):
            return NotImplemented
        return self._fields() == other._fields() and self.offer == other.offer

    def terms(self) -> AgreedTerms:
        """From the index's row and provider entry as they are (the row's fields have the
        snapshot's names): a proposal parses no snapshot."""
        p, o = self.provider, self.source
        return AgreedTerms(
            offer_id=o.offer_id,
            offer_version=o.version,
            provider_id=p.provider_id,
            provider_display_name=p.display_name,
            provider_sap_number=p.sap_number,
            category=o.category,
            delivery_mode=o.delivery_mode,
            sap_activity=o.sap_activity,
            currency=o.currency,
            pricing=o.pricing,
        )


Explained = tuple[tuple[FilterReason, ...], str, str]
"""(reasons, summary, summary in French)."""


def _explained(
    spec: RequestSpec, considered: int, counts: Mapping[ReasonKey, int], qualified: int
) -> Explained:
    reasons, summary, summary_fr = explain(spec, considered, counts, qualified)
    return tuple(reasons), summary, summary_fr


@dataclass(frozen=True, eq=False)
class MatchOutcome:
    """The ranked candidates and why the other offers were excluded. Equal when the
    candidates, the count and the explanation are equal."""

    candidates: tuple[Candidate, ...]
    offers_considered: int
    explanation: Lazy[Explained]
    """Why the other offers were excluded, in words, made on first read."""

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def reasons(self) -> tuple[FilterReason, ...]:
        return self.explanation.value()[0]

    @property
    def summary(self) -> str:
        return self.explanation.value()[1]

    @property
    def summary_fr(self) -> str:
        return self.explanation.value()[2]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MatchOutcome):
            return NotImplemented
        return (
            self.candidates == other.candidates
            and self.offers_considered == other.offers_considered
            and self.explanation.value() == other.explanation.value()
        )


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
            Booking(q.finish, q.reservation, q.capacity, q.response),
            breakdown(components, policy.weights),
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
    why = Lazy(partial(_explained, spec, considered, tally.counts, len(tally.qualified)))
    return MatchOutcome(tuple(ranked), considered, why)


_KEEP, _TRIED, _PRICING, _CURRENCY, _BUDGET, _LIVE, _RESPONSE, _DEADLINE, _PYTHON = range(9)
_CODES: tuple[Filter | None, ...] = (
    None,
    Filter.ALREADY_TRIED,
    Filter.PRICING,
    Filter.CURRENCY,
    Filter.BUDGET,
    Filter.LIVE_WINDOW,
    Filter.RESPONSE,
    Filter.DEADLINE,
    None,
)
"""Verdict codes of `_Scan.classify` (the last one: left to the Python path)."""
VECTOR_FROM = 32
"""Fewer candidates take the Python verdicts (`_Scan.check`) directly: each array
operation costs a few µs whatever its length, about what a few verdicts cost."""


@dataclass(frozen=True, slots=True)
class _VectorFits:
    """The fits of `_Scan.classify`, as columns (a `_Fit` is made only for those scored)."""

    cat: CategoryBits
    ordinal: I64
    provider: I64
    price_class: I64
    finish: I64
    answer_from: I64
    answer_by: I64
    effort: I64

    def __len__(self) -> int:
        return len(self.ordinal)


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
    schedule_ordinal: int = -1
    """For a fit of `classify`: its schedule in the timeline (the plan's weekly split
    comes from there); -1 for one of `check`."""


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
        """Fits found on the Python path (`check`)."""
        self.vector: _VectorFits | None = None
        """Fits found by the vectorised filters (`classify`)."""
        shape = (spec.effort_hours, spec.units)
        self._columns = index.price_columns(shape)
        self._prices = index.priced(shape)
        self._moneys = index.prices
        self._walks: dict[tuple[int, int | None, int], tuple[int, int, int | None]] = {}
        self._finishes: dict[tuple[int, int, int], int | None] = {}
        self._plans: dict[tuple[int, int, int], FastPlan] = {}
        self._live: dict[int, bool] = {}
        self.budget = spec.budget
        self.loaded = frozenset(k.split(":", 1)[0] for k in context.reserved_hours)
        """Providers with reserved hours in the context."""
        self.window_us = policy.acceptance_window // _US
        self._money: dict[int, Money] = {}
        self._currency_codes: dict[int, str] | None = None
        """The vector fits' currencies (`currencies`)."""
        self._work: dict[Decimal, tuple[Decimal, int]] = {}
        self._timeline: Timeline | None = None
        self.codes: npt.NDArray[np.int8] = np.zeros(0, dtype=np.int8)
        """`classify`'s verdict per candidate (`_CODES`; `response` ones may still read
        `deadline` until `settle_late`)."""
        self._late: tuple[Timeline, I64, I64, I64 | None, I64] | None = None
        """The late candidates counted as `deadline` whose `response` verdicts are
        settled when the explanation is made: timeline, schedules, efforts, F(now)
        (None unless work may start now) and answers."""

    @property
    def n_fits(self) -> int:
        return len(self.fits) + (0 if self.vector is None else len(self.vector))

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
        self._fill_columns(row.price_class, got)
        return got

    def _fill_columns(self, price_class: int, got: PricedWork) -> None:
        """The entry as columns (`PriceColumns`): exact integers, or state 3 (Python only)."""
        cols = self._columns
        _, _, price_id, effort, most = got
        cols.effort[price_class] = effort
        cols.most_e4[price_class] = int(most * 10_000)
        if price_id is None:
            cols.state[price_class] = 1
            return
        money = self._moneys[price_id]
        scaled = money.amount * PRICE_SCALE
        if scaled != scaled.to_integral_value() or abs(scaled) >= 2**62:
            cols.state[price_class] = 3
            return
        cols.amount[price_class] = int(scaled)
        cols.currency[price_class] = self.index.currency_code(money.currency)
        cols.state[price_class] = 2

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

    def capacity(self, provider: ProviderEntry, week: str, schedule_ordinal: int = -1) -> Decimal:
        """The week's ceiling (`week_capacity`): from the timeline's week hours when it
        holds the schedule (`schedule_ordinal`) and the week, else cached per week."""
        tl = self._timeline
        if schedule_ordinal >= 0 and tl is not None:
            us = tl.week_us(schedule_ordinal, week_monday(week))
            if us is not None:
                return _capacity_of_us(provider.weekly_capacity_hours, provider.schedule, us)
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
        plan = self.plan(provider.schedule, start, effort)
        for week, hours in _week_needs(plan.seconds_by_week):
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
        """Classify every candidate; returns the number of published offers considered.

        The candidates' filters run on columns (`classify`); the few the columns cannot
        decide (capacity to check week by week, walks outside the timeline's weeks)
        take `check`, one by one."""
        s = self.spec
        index = self.index
        cat = index.category(s.category)
        cands = ordinal_array(cat.candidates(s.required_skills, s.languages))
        rejected: dict[Filter, int] = {}
        if len(cands):
            left = self.classify(cat, cands, rejected) if len(cands) >= VECTOR_FROM else cands
            rows = cat.rows
            provider = index.provider
            for i in left.tolist():
                row = rows[i]
                assert row is not None
                why = self.check(row, provider(row.provider_id))
                if why is not None:
                    rejected[why] = rejected.get(why, 0) + 1
        counts = self.counts
        for f, c in rejected.items():
            counts[(f, "")] = c
        for key, c in index.prefilter_counts(s.category, s.required_skills, s.languages).items():
            if c:
                counts[key] = counts.get(key, 0) + c
        return cat.published.bit_count()

    def classify(self, cat: CategoryBits, cands: I64, rejected: dict[Filter, int]) -> I64:
        """`check` for all candidates at once, on the index's columns: each filter, in
        `evaluate`'s order, is an array comparison over the candidates still in
        (money as integers of `PRICE_SCALE`, capacity in 1/10 000 h, the walks by
        `Timeline`). Counts the rejections into `rejected`, keeps the fits in
        `vector`, and returns the ordinals left to `check`."""
        index, cols = self.index, self._columns
        prov = cat.provider[cands]
        pclass = cat.price_class[cands]
        in_currency = cat.in_currency[cands]
        tried = _member(prov, index.known_provider_ordinals(self.exclude)) if self.exclude else None
        state = cols.state[pclass]
        missing = (state == 0) & in_currency
        if tried is not None:
            missing &= ~tried
        if missing.any():
            self.estimate(cat, cands, np.flatnonzero(missing), pclass)
            state = cols.state[pclass]
        # each filter's verdict is written over the later ones' (evaluate's order from
        # the last to the first), so the first failing filter's code stays: one mask and
        # one write per filter
        code = np.zeros(len(cands), dtype=np.int8)
        sched = index.provider_schedule[prov]
        fits_week = index.provider_capacity_e4[prov] >= cols.most_e4[pclass]
        if self.loaded:
            fits_week &= ~_member(prov, index.known_provider_ordinals(self.loaded))
        code[~fits_week] = _PYTHON
        if self.spec.live_window is not None:
            bad = [so for so in set(sched.tolist()) if not self.live_schedule_ok(so)]
            if bad:
                code[_member(sched, np.array(bad, dtype=np.int64))] = _LIVE
        budget = self.budget
        if budget is not None:
            cap = (budget.amount * PRICE_SCALE).to_integral_value(rounding=ROUND_FLOOR)
            code[cols.amount[pclass] > min(int(cap), 2**62)] = _BUDGET
            code[cols.currency[pclass] != index.currency_code(budget.currency)] = _CURRENCY
        code[state == 3] = _PYTHON
        code[state == 1] = _PRICING
        code[~in_currency] = _PRICING
        if tried is not None:
            code[tried] = _TRIED
        on = np.flatnonzero(code == 0)
        tl = self._timeline = index.timeline(self.now_us) if len(on) else None
        if tl is None:
            code[on] = _PYTHON
        else:
            if int(sched.max()) >= tl.n:  # schedules added since the timeline was built
                code[on[sched[on] >= tl.n]] = _PYTHON
                on = on[sched[on] < tl.n]
            self.walk_columns(tl, cat, cands, on, prov, pclass, sched, code)
        counted = np.bincount(code, minlength=_PYTHON + 1)
        for c, f in enumerate(_CODES):
            if f is not None and counted[c]:
                rejected[f] = int(counted[c])
        self.codes = code
        left: I64 = cands[code == _PYTHON]
        return left

    def estimate(self, cat: CategoryBits, cands: I64, at: I64, pclass: I64) -> None:
        """Fill the price columns of the classes of candidates `at`: by `price`, one by
        one, for the few classes `price_columns.estimate` does not take; by it, in
        integers, for every class of the index not estimated for this shape yet (gathers
        from the shape's tables: one pass per shape and new classes costs less than a
        few array calls on every request)."""
        classes, first = np.unique(pclass[at], return_index=True)
        params = self.index.class_params
        python = params.kind[classes] == KIND_PYTHON
        rows = cat.rows
        for i in cands[at[first[python]]].tolist():
            row = rows[i]
            assert row is not None
            self.price(row)
        n = params.n
        todo = np.flatnonzero((self._columns.state[:n] == 0) & (params.kind[:n] != KIND_PYTHON))
        if len(todo):
            s = self.spec
            estimate(params, self._columns, todo, s.effort_hours, s.units)

    def walk_columns(
        self,
        tl: Timeline,
        cat: CategoryBits,
        cands: I64,
        on: I64,
        prov: I64,
        pclass: I64,
        sched: I64,
        code: npt.NDArray[np.int8],
    ) -> None:
        """The response and deadline filters of the candidates `on`, by `Timeline`."""
        e, d, h = self.earliest_us, self.deadline_us, self.horizon_us
        on = on[np.argsort(sched[on], kind="stable")]  # the searches then go in order
        s = sched[on]
        minutes = self.index.provider_window_minutes[prov[on]]
        if minutes.any():
            window = np.where(minutes > 0, minutes * 60_000_000, self.window_us)
        else:  # nobody set a window of their own: the policy's
            window = np.full(len(on), self.window_us, dtype=np.int64)
        effort = self._columns.effort[pclass[on]]
        answer_from, answer_by, finish, state, worked = tl.answer_finish(
            s, self.now_us, window, h, e, effort, d
        )
        fit = (state == 1) & (finish <= d)
        code[on[state == -1]] = _PYTHON
        late = np.flatnonzero((state != -1) & ~fit)
        if len(late):
            f_now = worked[late] if e == self.now_us else None
            if min(e + h, d) <= tl.hi:
                # every late walk is decided here: whether the answer window made it late
                # (`response`) or not (`deadline`) only tells the explanation apart, read
                # when nobody qualifies, so it is settled then (`settle_late`)
                code[on[late]] = _DEADLINE
                self._late = (tl, s[late], effort[late], f_now, answer_by[late])
            else:
                awake, awake_state = tl.finish(s[late], e, effort[late], min(e + h, d), f_now)
                in_time = (awake_state == 1) & (awake <= d)
                response = np.where((answer_by[late] > e) & in_time, _RESPONSE, _DEADLINE)
                code[on[late]] = np.where(awake_state == -1, _PYTHON, response).astype(np.int8)
        k = np.flatnonzero(fit)
        at = on[k]
        self.vector = _VectorFits(
            cat,
            cands[at],
            prov[at],
            pclass[at],
            finish[k],
            answer_from[k],
            answer_by[k],
            effort[k],
        )

    def settle_late(self) -> None:
        """Move the late candidates that an immediate answer would have brought in time
        from `deadline` to `response` in `counts` (as `evaluate`: the answer window made
        them late), by the walks from the earliest start."""
        if self._late is None:
            return
        tl, s, effort, f_now, answer_by = self._late
        self._late = None
        e, d = self.earliest_us, self.deadline_us
        awake, awake_state = tl.finish(s, e, effort, min(e + self.horizon_us, d), f_now)
        assert not (awake_state == -1).any()  # its limit is inside the timeline
        in_time = (awake_state == 1) & (awake <= d)
        moved = int(np.count_nonzero((answer_by > e) & in_time))
        if moved:
            counts = self.counts
            counts[(Filter.DEADLINE, "")] -= moved
            counts[(Filter.RESPONSE, "")] = counts.get((Filter.RESPONSE, ""), 0) + moved

    def explained(self, considered: int) -> Explained:
        """The outcome's explanation (made on first read)."""
        self.settle_late()
        return _explained(self.spec, considered, self.counts, self.n_fits)

    def live_schedule_ok(self, schedule_ordinal: int) -> bool:
        """`live_window_ok` of a schedule (it reads only the provider's schedule)."""
        schedule = self.index.schedule(schedule_ordinal)
        got = self._live.get(id(schedule))
        if got is None:
            got = self._live[id(schedule)] = schedule_live_ok(
                schedule, self.spec.live_window, self.policy.min_live_overlap
            )
        return got

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

        Every fit gets an upper bound: slack and awake from the integers (the
        floats of `slack_us` / `awake_us`), rating, trust, and price (from the
        integer amounts, plus a margin for the rounding of the exact component),
        with load at its maximum, 1 (which it is for a provider with nothing
        reserved) — as arrays for the fits of `classify`, one by one for those of
        `check`. Fits are taken by decreasing bound and scored exactly (the same
        functions as `_rank`, money in Decimal); once the next bound is below the
        `limit`-th exact score with room for the rounding to 6 decimals and the
        order of the float additions, no later fit can enter the top and the rest
        are never scored (nor turned into `_Fit`s).
        """
        if not self.n_fits or limit <= 0:
            return []
        spec, ctx, policy = self.spec, self.context, self.policy
        weighted = weight_pairs(policy.weights)
        w = dict(weighted)
        budget = spec.budget
        # with a budget every fit is in its currency (the currency filter came first), so
        # the price component compares with the budget, never with the cheapest fit
        cheapest = {} if budget is not None and budget.amount > 0 else self.cheapest()
        base = w["load"]
        # the rating component of every provider without ratings (most): computed once
        unrated_raw = rating_component(None, policy.rating_prior)
        unrated = _clamp01(unrated_raw) * w["rating"]
        ratings, trusted = ctx.ratings, ctx.trusted_providers
        reserved = ctx.reserved_hours
        e, d = self.earliest_us, self.deadline_us
        prices: dict[int, float] = {}

        def price_part(price: Money) -> float:
            got = prices.get(id(price))
            if got is None:
                got = prices[id(price)] = price_component(
                    price, budget, cheapest.get(price.currency)
                )
            return got

        bounds: list[float] = []
        for f in self.fits:
            b = (
                base
                + slack_us(e, f.finish, d) * w["slack"]
                + awake_us(e, f.answer_from, d) * w["awake"]
            )
            pid = f.provider.provider_id
            stats = ratings.get(pid)
            b += (
                unrated
                if stats is None
                else _clamp01(rating_component(stats, policy.rating_prior)) * w["rating"]
            )
            if pid in trusted:
                b += w["trust_bonus"]
            bounds.append(b + price_part(f.price) * w["price"])
        every = np.asarray(bounds, dtype=np.float64)
        v = self.vector
        if v is not None and len(v):
            every = np.concatenate((every, self.vector_bounds(v, w, cheapest, unrated)))
        order = np.argsort(-every, kind="stable")
        n_python = len(self.fits)
        weeks: dict[str, str] = {}
        bound_of = every.tolist()
        top: list[tuple[float, int, str, _Fit, dict[str, float]]] = []
        for n in order.tolist():
            if len(top) >= limit and bound_of[n] + 1e-5 < -top[limit - 1][0]:
                break
            f = self.fits[n] if n < n_python else self.vector_fit(n - n_python)
            p = f.provider
            pid = p.provider_id
            stats = ratings.get(pid) if ratings else None
            components = {
                "slack": slack_us(e, f.finish, d),
                "rating": unrated_raw
                if stats is None
                else rating_component(stats, policy.rating_prior),
                "price": price_part(f.price),
                "trust_bonus": 1.0 if pid in trusted else 0.0,
                "awake": awake_us(e, f.answer_from, d),
            }
            components["load"] = self.load(p, reserved, weeks, f.schedule_ordinal)
            total = weighted_sum(components, weighted)
            top.append((-total, f.finish, f.row.offer_id, f, components))
            top.sort(key=lambda t: t[:3])
            del top[limit:]
        return [self.candidate(f, components) for _, _, _, f, components in top]

    def load(
        self,
        p: ProviderEntry,
        reserved: Mapping[str, Decimal],
        weeks: dict[str, str],
        schedule_ordinal: int,
    ) -> float:
        """`load_component` of the provider's current week. With nothing reserved and a
        positive declared capacity it is 1 (a week's ceiling is never below the declared
        capacity), without the week's label or ceiling: most fits, on every request."""
        if not reserved and p.weekly_capacity_hours > 0:
            return 1.0
        label = weeks.get(p.time_zone)
        if label is None:
            label = weeks[p.time_zone] = local_week_label(p.schedule.zone, self.now_us)
        held = reserved.get(f"{p.provider_id}:{label}", _ZERO)
        if held == 0 and p.weekly_capacity_hours > 0:
            return 1.0
        return load_component(held, self.capacity(p, label, schedule_ordinal))

    def cheapest(self) -> dict[str, Money]:
        """The cheapest price of the fits per currency (the price component without a
        budget compares with it)."""
        out: dict[str, Money] = {}
        for f in self.fits:
            c = out.get(f.price.currency)
            if c is None or f.price.amount < c.amount:
                out[f.price.currency] = f.price
        v = self.vector
        if v is not None and len(v):
            cols = self._columns
            amounts = cols.amount[v.price_class]
            codes = cols.currency[v.price_class]
            found = self.currencies(codes)
            for code in found:
                if len(found) == 1:
                    at = int(np.argmin(amounts))
                else:
                    k = np.flatnonzero(codes == code)
                    at = int(k[np.argmin(amounts[k])])
                price = self.money(self.vector_row(v, at))
                c = out.get(price.currency)
                if c is None or price.amount < c.amount:
                    out[price.currency] = price
        return out

    def currencies(self, codes: I64) -> dict[int, str]:
        """The distinct currency codes of the fits (one, nearly always: no `np.unique`)."""
        if self._currency_codes is None:
            first = int(codes[0])
            found = [first] if (codes == first).all() else np.unique(codes).tolist()
            self._currency_codes = {c: self.index.currency_name(c) for c in found}
        return self._currency_codes

    def money(self, row: OfferRow) -> Money:
        """The estimate of the row's class: from its integer column when `price_columns`
        computed it (the same digits: `Money.rounded` quantizes to the minor unit),
        else the specification's Decimal (`price`)."""
        c = row.price_class
        got = self._money.get(c)
        if got is None:
            params = self.index.class_params
            if params.kind[c] == KIND_PYTHON or self._columns.state[c] != 2:
                price_id = (self._prices.get(c) or self.price(row))[2]
                assert price_id is not None
                got = self._moneys[price_id]
            else:
                minor = int(params.minor[c])
                got = _minor_money(
                    int(self._columns.amount[c]) // 10 ** (6 - minor),
                    minor,
                    self.index.currency_name(int(self._columns.currency[c])),
                )
            self._money[c] = got
        return got

    def vector_row(self, v: _VectorFits, k: int) -> OfferRow:
        row = v.cat.rows[int(v.ordinal[k])]
        assert row is not None
        return row

    def vector_bounds(
        self, v: _VectorFits, w: dict[str, float], cheapest: dict[str, Money], unrated: float
    ) -> npt.NDArray[np.float64]:
        """The upper bounds of `rank` for the fits of `classify`, as arrays."""
        e, d = self.earliest_us, self.deadline_us
        window = (d - e) / 1_000_000
        if window <= 0:
            slack = np.zeros(len(v))
            awake = np.where(v.answer_from - e <= 0, 1.0, 0.0)
            bound = (w["load"] + unrated) + slack * w["slack"] + awake * w["awake"]
        else:
            # a fit finishes between the earliest start and the deadline, so its slack
            # is in [0, 1] without clamping; awake is 1 for a wait <= 0 by the upper
            # clamp. Scale factors taken once: the floats may differ from `slack_us` /
            # `awake_us` in the last bit, far inside the bounds' 1e-5 margin
            per_us = 1 / (window * 1_000_000)
            awake = _unit((1 - (v.answer_from - e) * per_us).astype(np.float64, copy=False))
            bound = (d - v.finish) * (per_us * w["slack"]) + awake * w["awake"]
            bound += w["load"] + unrated
        ctx, policy, index = self.context, self.policy, self.index
        if ctx.ratings:
            rated = {index.provider_ordinal(p): st for p, st in ctx.ratings.items()}
            members = np.fromiter(rated, dtype=np.int64, count=len(rated))
            for k in np.flatnonzero(_member(v.provider, members)).tolist():
                st = rated[int(v.provider[k])]
                rating = _clamp01(rating_component(st, policy.rating_prior)) * w["rating"]
                bound[k] += rating - unrated
        if ctx.trusted_providers:
            trusted = index.known_provider_ordinals(ctx.trusted_providers)
            bound += _member(v.provider, trusted) * w["trust_bonus"]
        cols = self._columns
        # money stays integer (10^-6 units); the ratio is taken in millionths, rounded
        # up, so each bound is at least the exact component. In int64 when every
        # product fits (everyday amounts, below 9.2 million units), else as Python ints
        amount = cols.amount[v.price_class]
        small = int(amount.max()) <= _SMALL_AMOUNT
        budget = self.spec.budget
        if budget is not None and budget.amount > 0:
            # every fit is in the budget's currency (the currency filter came first)
            units = int((budget.amount * PRICE_SCALE).to_integral_value(ROUND_CEILING))
            if not (small and units <= _SMALL_AMOUNT):
                amount = amount.astype(object)
            ppm = _PPM - amount * _PPM // units
        else:
            codes = cols.currency[v.price_class]
            lows = {
                code: int((cheapest[cur].amount * PRICE_SCALE).to_integral_value(ROUND_CEILING))
                for code, cur in self.currencies(codes).items()
            }
            # the cheapest amount of a currency is at most each of its amounts
            kind = np.int64 if small else object
            if len(lows) == 1:
                low = np.full(len(v), next(iter(lows.values())), dtype=kind)
            else:
                low = np.zeros(len(v), dtype=kind)
                for code, value in lows.items():
                    low[codes == code] = value
            amount = amount.astype(kind)
            paid = amount > 0
            ppm = np.full(len(v), _PPM, dtype=kind)
            ppm[paid] = -(-low[paid] * _PPM // amount[paid])
        price = _unit(ppm.astype(np.float64) / _PPM)
        # the exact component is the ratio in Decimal, rounded to 6 decimals
        return bound + (price + 1e-6) * w["price"]

    def vector_fit(self, k: int) -> _Fit:
        """The `_Fit` of the `k`-th fit of `classify` (for the few scored exactly)."""
        v = self.vector
        assert v is not None
        row = self.vector_row(v, k)
        provider = self.index.provider(row.provider_id)
        assert provider is not None
        work = self._work.get(row.typical_hours)
        if work is None:
            s = self.spec
            work = self._work[row.typical_hours] = (
                work_hours(s.effort_hours, s.units, row.typical_hours),
                work_units(s.effort_hours, s.units, row.typical_hours),
            )
        answer_by = int(v.answer_by[k])
        return _Fit(
            row,
            provider,
            *work,
            self.money(row),
            answer_by if answer_by > self.earliest_us else self.earliest_us,
            int(v.effort[k]),
            int(v.finish[k]),
            int(v.answer_from[k]),
            answer_by,
            int(self.index.provider_schedule[v.provider[k]]),
        )

    def candidate(self, f: _Fit, components: dict[str, float]) -> Candidate:
        return Candidate(
            f.row,
            f.provider,
            f.hours,
            f.units,
            f.price,
            Lazy(partial(self.booking, f, self._timeline)),
            Lazy(partial(breakdown, components, self.policy.weights)),
        )

    def booking(self, f: _Fit, tl: Timeline | None) -> Booking:
        """The fit's `Booking`: the plan's weekly split from the timeline `tl` it was
        decided on (or the integer walk), the reservation and each week's capacity."""
        p = f.provider
        if f.schedule_ordinal >= 0 and tl is not None and f.effort > 0:
            plan = FastPlan(f.finish, tl.split(f.schedule_ordinal, f.start, f.finish))
        else:
            plan = self.plan(p.schedule, f.start, f.effort)
        assert plan.finish == f.finish
        pid = p.provider_id
        weeks = _week_needs(plan.seconds_by_week)
        return Booking(
            from_us(f.finish),
            {capacity_key(pid, w): h for w, h in weeks},
            {capacity_key(pid, w): self.capacity(p, w, f.schedule_ordinal) for w, _ in weeks},
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
    why = Lazy(partial(scan.explained, considered))
    return MatchOutcome(tuple(ranked), considered, why)


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
    cands = ordinal_array(cat.candidates(spec.required_skills, spec.languages))
    out: set[str] = set()
    if not len(cands):
        return out
    rows = cat.rows
    left = cands
    if len(cands) >= VECTOR_FROM:
        left = scan.classify(cat, cands, {})
        codes = scan.codes
        live = (codes == _KEEP) | (codes == _RESPONSE) | (codes == _DEADLINE)
        for i in cands[live].tolist():
            row = rows[i]
            assert row is not None
            out.add(row.provider_id)
    for i in left.tolist():
        row = rows[i]
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
    "Booking",
    "Candidate",
    "Lazy",
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
