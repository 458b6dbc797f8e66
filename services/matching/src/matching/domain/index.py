"""In-memory candidate index over the catalog read model, as bitsets.

Every request names one category, so each category numbers its published
offers with small integer ordinals of its own (freed ordinals are reused),
and every posting list is a Python int used as a bitset over those ordinals:
`published`, `active` (published, provider known and active), one per
`(skill code, level)` for every level up to the offer's effective level, one
per language. Candidate selection is a few big-int ANDs over a category's
offers, whatever the catalog's size; the explanation's prefilter counts are
popcounts. Bitsets per category also keep memory small: a bitset is as long
as its category, not as the catalog (1 600 skill keys over 1M offers would
be 200 MB with global ordinals, about 5 MB with per-category ones).

Each offer is kept as a compact row (what matching reads on every request:
provider, pricing shared between identical offers, typical effort) plus its
snapshot as JSON, parsed back only for the few offers a request proposes
(`offer`); pydantic snapshots of 1M offers would take about 4 GB.

Updates are incremental and version-aware: a snapshot whose version is not
newer than the last one seen for that id (including a removal) is ignored, so
replayed or reordered catalog events cannot roll the model back. `build` loads
every row first, then computes each category's bitsets in one pass.
"""

from __future__ import annotations

import gc
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from delego_shared.events.catalog import OfferSnapshot, OfferStatus, ProviderSnapshot
from delego_shared.events.common import DeliveryMode, SkillLevel, pricing_currency
from delego_shared.types import Money

from .availability import to_us, week_label, week_monday
from .capacity import nominal_weekly_hours
from .explain import ReasonKey, skill_detail
from .filters import Filter
from .price_columns import ClassParams, PriceColumns, grown
from .pricing_estimate import AnyPricing, estimate_price
from .readmodel import ProviderEntry, language_key
from .schedule import WeeklySchedule
from .timeline import Timeline

SkillKey = tuple[str, int]


PricedWork = tuple[Decimal, int, int | None, int, Decimal]
"""What an offer's pricing gives for one shape of work (filled by the matcher): hours,
units, the estimate's position in the index's pool of prices (`CandidateIndex.prices`;
None when the pricing cannot price that work), the hours as whole seconds rounded up
in µs (what the schedule walks take), and an upper bound of any week's share of those
hours in a reservation. A plain tuple of atoms: the garbage collector stops tracking
it (a tuple subclass would stay tracked), and tens of thousands stay cached, which
would otherwise lengthen every full collection, each landing on a request."""
WorkShape = tuple[Decimal | None, int | None]
"""What an offer's price depends on in a request: effort hours and units."""
I64 = npt.NDArray[np.int64]
_NO_ROWS = np.zeros(0, dtype=np.int64)


def ordinal_array(bits: int) -> I64:
    """Positions of the set bits, ascending, as an array."""
    if not bits:
        return _NO_ROWS
    raw = np.frombuffer(bits.to_bytes((bits.bit_length() + 7) // 8, "little"), dtype=np.uint8)
    # nonzero of a boolean view: several times faster than of the uint8 bits
    found = np.unpackbits(raw, bitorder="little").view(np.bool_).nonzero()[0]
    return found.astype(np.int64, copy=False)


def ceil_e4(hours: Decimal) -> int:
    """Hours in 1/10 000 h, rounded up: `declared >= m` for a 4-decimal `m` is
    `ceil_e4(declared) >= m * 10 000`, exactly."""
    return int((hours * 10_000).to_integral_value(rounding=ROUND_CEILING))


@lru_cache(maxsize=4_096)
def _offer_snapshot(raw: bytes) -> OfferSnapshot:
    return OfferSnapshot.model_validate_json(zlib.decompress(raw))


class SaleTerms(NamedTuple):
    """The offer's fields a proposal's agreed terms copy besides those matching reads:
    a handful of distinct values, one shared object each."""

    delivery_mode: DeliveryMode
    sap_activity: str | None
    currency: str


@dataclass(slots=True)
class OfferRow:
    """What matching reads of one offer per request (no pydantic), and what a proposal's
    agreed terms copy of it (`Candidate.terms`: the same names as `OfferSnapshot`'s)."""

    offer_id: str
    provider_id: str
    version: int
    published: bool
    category: str
    own_skills: tuple[SkillKey, ...]
    lang_keys: tuple[str, ...]
    pricing: AnyPricing
    """Shared by every offer with the same pricing (the matcher memoises per object)."""
    priced_in_currency: bool
    """The pricing's currency is the offer's (else the PRICING filter rejects it)."""
    typical_hours: Decimal
    price_class: int
    """Equal for offers with equal pricing and typical effort: their estimates are equal."""
    raw: bytes
    """The snapshot as zlib-compressed JSON (parsed back only when `snapshot` is read)."""
    sale: SaleTerms
    provider_ordinal: int = -1
    """The provider's position in the index's provider columns."""
    ordinal: int = -1
    """Position in its category's bitsets (-1: not published, not in any)."""
    indexed_skills: tuple[SkillKey, ...] = ()

    @property
    def snapshot(self) -> OfferSnapshot:
        return _offer_snapshot(self.raw)

    @property
    def delivery_mode(self) -> DeliveryMode:
        return self.sale.delivery_mode

    @property
    def sap_activity(self) -> str | None:
        return self.sale.sap_activity

    @property
    def currency(self) -> str:
        return self.sale.currency


@dataclass(slots=True)
class CategoryBits:
    """One category's ordinals and bitsets."""

    rows: list[OfferRow | None] = field(default_factory=list)
    free: list[int] = field(default_factory=list)
    published: int = 0
    active: int = 0
    by_skill: dict[SkillKey, int] = field(default_factory=dict)
    by_lang: dict[str, int] = field(default_factory=dict)
    provider: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Columns per ordinal: the provider's ordinal, the price class, and whether the
    pricing's currency is the offer's (what the vectorised filters read)."""
    price_class: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    in_currency: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def set_columns(self, row: OfferRow) -> None:
        i = row.ordinal
        if i >= len(self.provider):
            self.provider = grown(self.provider, i + 1)  # type: ignore[assignment]
            self.price_class = grown(self.price_class, i + 1)  # type: ignore[assignment]
            self.in_currency = grown(self.in_currency, i + 1)  # type: ignore[assignment]
        self.provider[i] = row.provider_ordinal
        self.price_class[i] = row.price_class
        self.in_currency[i] = row.priced_in_currency

    def candidates(self, skills: Sequence[SkillLevel], languages: Sequence[str]) -> int:
        """Active offers holding every skill and sharing one language."""
        bits = self.active
        for s in skills:
            bits &= self.by_skill.get((s.code, s.level), 0)
            if not bits:
                return 0
        langs = 0
        for k in {language_key(t) for t in languages}:
            langs |= self.by_lang.get(k, 0)
        return bits & langs

    def ids(self, bits: int) -> set[str]:
        out: set[str] = set()
        for i in ordinals(bits):
            row = self.rows[i]
            assert row is not None
            out.add(row.offer_id)
        return out


def ordinals(bits: int) -> Iterator[int]:
    """Positions of the set bits, ascending (a string scan: fast for sparse and dense)."""
    s = format(bits, "b")[::-1]
    i = s.find("1")
    while i >= 0:
        yield i
        i = s.find("1", i + 1)


def _bitset(positions: list[int]) -> int:
    if not positions:
        return 0
    buf = bytearray(max(positions) // 8 + 1)
    for i in positions:
        buf[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


_EMPTY_CAT = CategoryBits()
_EPOCH_ORDINAL = 719_163
"""`date(1970, 1, 1).toordinal()`."""


def _monday_us(us: int) -> int:
    """Date ordinal of the Monday of the UTC day of an instant in µs."""
    day = us // 86_400_000_000 + _EPOCH_ORDINAL
    return day - (day - 1) % 7


def _monday(instant: datetime) -> int:
    return _monday_us(to_us(instant))


_PREFILL_SCHEDULES = 60_000
"""Schedules whose wall-clock hours `prepare` computes ahead (below the cache's size)."""
_MOST_SHAPES = 16
"""Request shapes whose price columns are kept (each is 33 bytes per price class: about
3 MB at a million offers)."""
_AHEAD_DAYS = 28
_MOST_DAYS = 7 * 26
_SOON_US = 14 * 86_400_000_000


class CandidateIndex:
    def __init__(self) -> None:
        self._rows: dict[str, OfferRow] = {}
        self._removed: dict[str, int] = {}
        """Tombstones: version of the removal of offers no longer held."""
        self._providers: dict[str, ProviderEntry] = {}
        self._provider_versions: dict[str, int] = {}
        self._offers_by_provider: dict[str, set[str]] = {}
        self._cats: dict[str, CategoryBits] = {}
        self._pricings: dict[bytes, AnyPricing] = {}
        self._decimals: dict[Decimal, Decimal] = {}
        self._skill_keys: dict[SkillKey, SkillKey] = {}
        self._skill_tuples: dict[tuple[SkillKey, ...], tuple[SkillKey, ...]] = {}
        self._langs: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._sales: dict[SaleTerms, SaleTerms] = {}
        self._prices: list[Money] = []
        self._price_ids: dict[tuple[str, str], int] = {}
        self._priced: dict[WorkShape, dict[int, PricedWork]] = {}
        self._price_classes: dict[tuple[int, Decimal], int] = {}
        self._priced_held = 0
        self._priced_columns: dict[WorkShape, PriceColumns] = {}
        self._currencies: dict[str, int] = {}
        self._currency_names: list[str] = []
        self.class_params = ClassParams()
        """The integer parameters of every price class (`price_columns`)."""
        self._provider_ordinals: dict[str, int] = {}
        self._schedule_ordinals: dict[WeeklySchedule, int] = {}
        self._schedules: list[WeeklySchedule] = []
        # provider columns, by provider ordinal (what the vectorised filters read)
        self.provider_schedule = np.zeros(0, dtype=np.int64)
        self.provider_window_minutes = np.zeros(0, dtype=np.int64)
        """0: the policy's window."""
        self.provider_capacity_e4 = np.zeros(0, dtype=np.int64)
        self._timeline: Timeline | None = None
        self._bulk = False

    @classmethod
    def build(
        cls, providers: Iterable[ProviderSnapshot], offers: Iterable[OfferSnapshot]
    ) -> CandidateIndex:
        """A new index over the whole read model (`load`)."""
        idx = cls()
        idx.load(providers, offers)
        return idx

    def load(self, providers: Iterable[ProviderSnapshot], offers: Iterable[OfferSnapshot]) -> int:
        """Apply many snapshots at once (start-up): rows first, then each category's
        bitsets in one pass (setting bits one offer at a time copies a category's
        bitsets per offer). Then the loaded objects are moved out of the cyclic
        garbage collector's reach (`gc.freeze`): they live as long as the process,
        and rescanning a million rows at each full collection would be the p99 of
        matching. Returns the number of offers held."""
        self._bulk = True
        try:
            for p in providers:
                self.upsert_provider(p)
            for o in offers:
                self.upsert_offer(o)
        finally:
            self._bulk = False
            for cat in self._cats.values():
                self._rebuild(cat)
        gc.collect()
        gc.freeze()
        return len(self._rows)

    # -- reads -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def offer(self, offer_id: str) -> OfferSnapshot | None:
        row = self._rows.get(offer_id)
        return None if row is None else row.snapshot

    def provider(self, provider_id: str) -> ProviderEntry | None:
        return self._providers.get(provider_id)

    def category(self, category: str) -> CategoryBits:
        return self._cats.get(category, _EMPTY_CAT)

    def price_id(self, pricing: AnyPricing, hours: Decimal, units: int) -> int | None:
        """`estimate_price` as a position in the pool of prices (`prices`), each distinct
        price held once (a few thousand, where cached estimates are tens of
        thousands); None when the pricing cannot price that work. Estimates are
        rounded to the currency's minor unit, so equal values have equal digits."""
        price = estimate_price(pricing, hours, units).price
        if price is None:
            return None
        key = (str(price.amount), price.currency)
        got = self._price_ids.get(key)
        if got is None:
            got = self._price_ids[key] = len(self._prices)
            self._prices.append(price)
        return got

    @property
    def prices(self) -> list[Money]:
        """The pool of estimated prices (`price_id`)."""
        return self._prices

    def priced(self, shape: WorkShape) -> dict[int, PricedWork]:
        """The estimates of requests of this shape per price class (`OfferRow.price_class`),
        for the matcher to fill and reuse: requests repeat a few efforts, so most
        candidates' price is one look-up of an int. Bounded (`note_priced`): past
        200,000 entries or prices, every dict and the pool start afresh."""
        if self._priced_held >= 200_000 or len(self._prices) >= 200_000:
            # only here, before a request reads any: the entries' price ids stay valid
            self._priced.clear()
            self._priced_held = 0
            self._prices = []
            self._price_ids.clear()
            self._priced_columns.clear()
        got = self._priced.get(shape)
        if got is None:
            got = self._priced[shape] = {}
        return got

    def price_columns(self, shape: WorkShape) -> PriceColumns:
        """The `priced` estimates of this shape as columns per price class (the matcher
        fills both; they start afresh together)."""
        self.priced(shape)
        got = self._priced_columns.get(shape)
        if got is None:
            if len(self._priced_columns) >= _MOST_SHAPES:
                self._priced_columns.clear()  # recomputed on need
            got = self._priced_columns[shape] = PriceColumns()
        got.room(len(self._price_classes))
        return got

    def currency_code(self, currency: str) -> int:
        got = self._currencies.get(currency)
        if got is None:
            got = self._currencies[currency] = len(self._currencies)
            self._currency_names.append(currency)
        return got

    def currency_name(self, code: int) -> str:
        return self._currency_names[code]

    def provider_ordinal(self, provider_id: str) -> int:
        """The provider's position in the provider columns (assigned on first sight)."""
        got = self._provider_ordinals.get(provider_id)
        if got is None:
            got = self._provider_ordinals[provider_id] = len(self._provider_ordinals)
            n = got + 1
            self.provider_schedule = grown(self.provider_schedule, n)  # type: ignore[assignment]
            self.provider_window_minutes = grown(self.provider_window_minutes, n)  # type: ignore[assignment]
            self.provider_capacity_e4 = grown(self.provider_capacity_e4, n)  # type: ignore[assignment]
        return got

    def known_provider_ordinals(self, provider_ids: Iterable[str]) -> I64:
        got = self._provider_ordinals
        return np.array([got[p] for p in provider_ids if p in got], dtype=np.int64)

    def schedule(self, ordinal: int) -> WeeklySchedule:
        return self._schedules[ordinal]

    def _schedule_ordinal(self, schedule: WeeklySchedule) -> int:
        got = self._schedule_ordinals.get(schedule)
        if got is None:
            got = self._schedule_ordinals[schedule] = len(self._schedules)
            self._schedules.append(schedule)
        return got

    def prepare(self, start: datetime, end: datetime) -> Timeline:
        """Build the working-time tables (`timeline.Timeline`) for requests made from
        `start` to `end` now, rather than on the first request that needs them.

        Then, as after `load`, everything alive is moved out of the cyclic garbage
        collector's reach (`gc.freeze`): the caches the requests filled since (week
        tables, estimates, parsed snapshots) live on, and a full collection
        rescanning them costs a request several ms (1.7-4.9 ms measured after 200
        requests at 100k offers; nothing once frozen). Evicted entries are still
        freed by reference counting."""
        first, last = _monday(start) - 7, _monday(end) + _AHEAD_DAYS
        self._timeline = self._new_timeline(first, last)
        # what the first request per schedule or week would otherwise compute: each
        # schedule's wall-clock hours (a week's ceiling compares with them; a few µs
        # each, 44,000 schedules at a million offers) and the weeks' labels
        if len(self._schedules) <= _PREFILL_SCHEDULES:
            for schedule in self._schedules:
                nominal_weekly_hours(schedule)
        for monday in range(first, last + 1, 7):
            week_monday(week_label(monday))
        gc.collect()
        gc.freeze()
        return self._timeline

    def timeline(self, now_us: int) -> Timeline | None:
        """The working-time tables for a request at `now_us`, (re)built when they do not
        hold its next two weeks or lack too many schedules added since: from the week
        before `now_us` to `_AHEAD_DAYS` after it (and the weeks held before, up to
        `_MOST_DAYS` in all). A walk that needs later weeks is left to the Python
        walk, candidate by candidate (`Timeline` says which); None (all Python) when
        the schedules times the weeks would not fit its 64-bit keys."""
        tl = self._timeline
        if tl is not None and not self.timeline_due(now_us):
            return tl
        first = _monday_us(now_us) - 7
        last = _monday_us(now_us) + _AHEAD_DAYS
        if tl is not None and max(last, tl.last_monday) - min(first, tl.first_monday) <= _MOST_DAYS:
            first, last = min(first, tl.first_monday), max(last, tl.last_monday)
        try:
            self._timeline = tl = self._new_timeline(first, last)
        except ValueError:  # more schedules × weeks than 64-bit keys hold: Python walks
            return None
        return tl

    def timeline_due(self, now_us: int) -> bool:
        """Would a request at `now_us` rebuild the working-time tables? (A background
        task asks ahead of time and calls `prepare`, so that no request pays the build:
        about 3 s at a million offers.)"""
        tl = self._timeline
        return not (
            tl is not None
            and tl.covers(now_us)
            and now_us + _SOON_US < tl.hi
            and len(self._schedules) - tl.n <= max(256, tl.n // 16)
        )

    def _new_timeline(self, first_monday: int, last_monday: int) -> Timeline:
        return Timeline(list(self._schedules), first_monday, last_monday)

    def note_priced(self, added: int) -> None:
        """Count the entries the matcher added to the `priced` dicts."""
        self._priced_held += added

    def rows_of(self, provider_id: str) -> Iterator[OfferRow]:
        for oid in self._offers_by_provider.get(provider_id, ()):
            yield self._rows[oid]

    def items(self) -> Iterator[tuple[OfferSnapshot, ProviderEntry | None]]:
        """Every offer with its provider entry (for brute force and diagnostics; parses)."""
        for row in self._rows.values():
            yield row.snapshot, self._providers.get(row.provider_id)

    def published_in(self, category: str) -> set[str]:
        cat = self.category(category)
        return cat.ids(cat.published)

    def candidate_ids(
        self, category: str, skills: Sequence[SkillLevel], languages: Sequence[str]
    ) -> set[str]:
        """Matchable offers of the category holding every skill and one language."""
        cat = self.category(category)
        return cat.ids(cat.candidates(skills, languages))

    def prefilter_counts(
        self, category: str, skills: Sequence[SkillLevel], languages: Sequence[str]
    ) -> dict[ReasonKey, int]:
        """Why published offers of the category were not candidates (first failing filter).

        Same attribution as evaluating the filters one offer at a time, done
        with bitset operations and popcounts.
        """
        cat = self.category(category)
        rem = cat.active
        counts: dict[ReasonKey, int] = {
            (Filter.AVAILABLE, ""): cat.published.bit_count() - rem.bit_count()
        }
        for s in skills:
            kept = rem & cat.by_skill.get((s.code, s.level), 0)
            missing = rem.bit_count() - kept.bit_count()
            if missing:
                key = (Filter.SKILL, skill_detail(s.code, s.level))
                counts[key] = counts.get(key, 0) + missing
            rem = kept
        langs = 0
        for k in {language_key(t) for t in languages}:
            langs |= cat.by_lang.get(k, 0)
        counts[(Filter.LANGUAGE, "")] = (rem & ~langs).bit_count()
        return counts

    # -- writes ------------------------------------------------------------

    def upsert_provider(self, snapshot: ProviderSnapshot) -> bool:
        """Apply a provider snapshot; False when it is not newer than what we hold."""
        pid = snapshot.provider_id
        if snapshot.version <= self._provider_versions.get(pid, 0):
            return False
        self._provider_versions[pid] = snapshot.version
        entry = self._providers[pid] = ProviderEntry.of(snapshot)
        k = self.provider_ordinal(pid)
        self.provider_schedule[k] = self._schedule_ordinal(entry.schedule)
        self.provider_window_minutes[k] = entry.response_window_minutes or 0
        self.provider_capacity_e4[k] = ceil_e4(entry.weekly_capacity_hours)
        for row in list(self.rows_of(pid)):
            self._reindex(row)
        return True

    def remove_provider(self, provider_id: str, version: int | None = None) -> bool:
        """Forget a provider (its offers become unmatchable); tombstoned by version."""
        current = self._provider_versions.get(provider_id, 0)
        if version is not None and version < current:
            return False
        self._provider_versions[provider_id] = max(current, version or current)
        if self._providers.pop(provider_id, None) is None:
            return False
        for row in list(self.rows_of(provider_id)):
            self._reindex(row)
        return True

    def upsert_offer(self, snapshot: OfferSnapshot) -> bool:
        """Apply an offer snapshot (published, updated or withdrawn); False when stale."""
        oid = snapshot.offer_id
        old = self._rows.get(oid)
        seen = old.version if old is not None else self._removed.get(oid, 0)
        if snapshot.version <= seen:
            return False
        self._removed.pop(oid, None)
        if old is not None:
            self._unplace(old)
            if old.provider_id != snapshot.provider_id:
                self._offers_by_provider.get(old.provider_id, set()).discard(oid)
        row = self._row(snapshot)
        self._rows[oid] = row
        self._offers_by_provider.setdefault(snapshot.provider_id, set()).add(oid)
        self._place(row)
        return True

    def remove_offer(self, offer_id: str, version: int | None = None) -> bool:
        """Drop an offer; an older snapshot arriving later will not resurrect it."""
        old = self._rows.get(offer_id)
        current = old.version if old is not None else self._removed.get(offer_id, 0)
        if version is not None and version < current:
            return False
        self._removed[offer_id] = max(current, version or current)
        if old is None:
            return False
        self._unplace(old)
        del self._rows[offer_id]
        self._offers_by_provider.get(old.provider_id, set()).discard(offer_id)
        return True

    # -- internals ---------------------------------------------------------

    def _row(self, s: OfferSnapshot) -> OfferRow:
        pkey = s.pricing.model_dump_json().encode()
        pricing = self._pricings.setdefault(pkey, s.pricing)
        typical = self._decimals.setdefault(s.typical_effort_hours, s.typical_effort_hours)
        # the pool keeps every pricing object alive, so its id names it for good
        price_class = self._price_classes.setdefault(
            (id(pricing), typical), len(self._price_classes)
        )
        if price_class == self.class_params.n:
            self.class_params.add(
                price_class, pricing, typical, self.currency_code(pricing_currency(pricing))
            )
        own = self._skills(tuple(self._skill_key(x.code, x.level) for x in s.skills))
        langs = tuple(sorted({language_key(t) for t in s.languages}))
        return OfferRow(
            s.offer_id,
            sys.intern(s.provider_id),
            s.version,
            s.status is OfferStatus.PUBLISHED,
            sys.intern(s.category),
            own,
            self._langs.setdefault(langs, langs),
            pricing,
            pricing_currency(s.pricing) == s.currency,
            typical,
            price_class,
            zlib.compress(s.model_dump_json().encode(), 1),
            self._sale(SaleTerms(s.delivery_mode, s.sap_activity, s.currency)),
            self.provider_ordinal(s.provider_id),
        )

    def _sale(self, t: SaleTerms) -> SaleTerms:
        return self._sales.setdefault(t, t)

    def _skills(self, t: tuple[SkillKey, ...]) -> tuple[SkillKey, ...]:
        """One object per distinct tuple: a million offers repeat a few thousand."""
        return self._skill_tuples.setdefault(t, t)

    def _skill_key(self, code: str, level: int) -> SkillKey:
        k = (code, level)
        return self._skill_keys.setdefault(k, k)

    def _effective(self, row: OfferRow, provider: ProviderEntry) -> tuple[SkillKey, ...]:
        """(code, level) for every level up to the effective one (offer's or provider's)."""
        levels = dict(provider.skills)
        for code, lvl in row.own_skills:
            if lvl > levels.get(code, 0):
                levels[code] = lvl
        return self._skills(
            tuple(
                self._skill_key(code, lvl)
                for code, top in levels.items()
                for lvl in range(1, top + 1)
            )
        )

    def _matchable(self, row: OfferRow) -> ProviderEntry | None:
        p = self._providers.get(row.provider_id)
        return p if p is not None and p.active else None

    def _place(self, row: OfferRow) -> None:
        """Give a published offer an ordinal in its category and set its bits."""
        if not row.published:
            return
        cat = self._cats.setdefault(row.category, CategoryBits())
        if cat.free:
            row.ordinal = cat.free.pop()
            cat.rows[row.ordinal] = row
        else:
            row.ordinal = len(cat.rows)
            cat.rows.append(row)
        cat.set_columns(row)
        if not self._bulk:
            self._set_bits(cat, row)

    def _unplace(self, row: OfferRow) -> None:
        if row.ordinal < 0:
            return
        cat = self._cats[row.category]
        if not self._bulk:
            self._clear_bits(cat, row)
        cat.rows[row.ordinal] = None
        cat.free.append(row.ordinal)
        row.ordinal = -1

    def _reindex(self, row: OfferRow) -> None:
        """The provider changed: recompute the offer's bits (its ordinal stays)."""
        if row.ordinal < 0 or self._bulk:
            return
        cat = self._cats[row.category]
        self._clear_bits(cat, row)
        self._set_bits(cat, row)

    def _set_bits(self, cat: CategoryBits, row: OfferRow) -> None:
        bit = 1 << row.ordinal
        cat.published |= bit
        provider = self._matchable(row)
        if provider is None:
            return
        cat.active |= bit
        row.indexed_skills = self._effective(row, provider)
        for k in row.indexed_skills:
            cat.by_skill[k] = cat.by_skill.get(k, 0) | bit
        for lang in row.lang_keys:
            cat.by_lang[lang] = cat.by_lang.get(lang, 0) | bit

    def _clear_bits(self, cat: CategoryBits, row: OfferRow) -> None:
        mask = ~(1 << row.ordinal)
        cat.published &= mask
        cat.active &= mask
        for k in row.indexed_skills:
            cat.by_skill[k] &= mask
        for lang in row.lang_keys:
            if lang in cat.by_lang:
                cat.by_lang[lang] &= mask
        row.indexed_skills = ()

    def _rebuild(self, cat: CategoryBits) -> None:
        """All bitsets of a category from its rows in one pass (after a bulk load)."""
        published: list[int] = []
        active: list[int] = []
        skills: dict[SkillKey, list[int]] = {}
        langs: dict[str, list[int]] = {}
        for row in cat.rows:
            if row is None:
                continue
            i = row.ordinal
            published.append(i)
            provider = self._matchable(row)
            if provider is None:
                continue
            active.append(i)
            row.indexed_skills = self._effective(row, provider)
            for k in row.indexed_skills:
                skills.setdefault(k, []).append(i)
            for lang in row.lang_keys:
                langs.setdefault(lang, []).append(i)
        cat.published = _bitset(published)
        cat.active = _bitset(active)
        cat.by_skill = {k: _bitset(v) for k, v in skills.items()}
        cat.by_lang = {k: _bitset(v) for k, v in langs.items()}
