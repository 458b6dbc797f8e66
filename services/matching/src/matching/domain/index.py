"""In-memory candidate index over the catalog read model.

Candidate selection intersects pre-built sets instead of scanning offers:
`(category)`, `(category, skill code, level)` for every level up to the
offer's effective level, and `(category, language)`. Only matchable offers
(published, provider known and active) are in those sets; published offers
whose provider is not active are kept aside so the explanation can count them.

Updates are incremental and version-aware: a snapshot whose version is not
newer than the last one seen for that id (including a removal) is ignored, so
replayed or reordered catalog events cannot roll the model back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from delego_shared.events.catalog import OfferSnapshot, OfferStatus, ProviderSnapshot
from delego_shared.events.common import SkillLevel

from .explain import ReasonKey, skill_detail
from .filters import Filter, available
from .readmodel import ProviderEntry, effective_skills, language_key

_EMPTY: frozenset[str] = frozenset()


class CandidateIndex:
    def __init__(self) -> None:
        self._offers: dict[str, OfferSnapshot] = {}
        self._offer_versions: dict[str, int] = {}
        self._providers: dict[str, ProviderEntry] = {}
        self._provider_versions: dict[str, int] = {}
        self._offers_by_provider: dict[str, set[str]] = {}
        self._published: dict[str, set[str]] = {}  # category -> published offers
        self._active: dict[str, set[str]] = {}  # category -> matchable offers
        self._by_skill: dict[tuple[str, str, int], set[str]] = {}
        self._by_lang: dict[tuple[str, str], set[str]] = {}
        self._indexed: dict[str, tuple[tuple[str, str, int], ...]] = {}
        self._indexed_langs: dict[str, tuple[tuple[str, str], ...]] = {}
        self._indexed_cat: dict[str, str] = {}

    @classmethod
    def build(
        cls, providers: Iterable[ProviderSnapshot], offers: Iterable[OfferSnapshot]
    ) -> CandidateIndex:
        """Rebuild from the whole read model (start-up)."""
        idx = cls()
        for p in providers:
            idx.upsert_provider(p)
        for o in offers:
            idx.upsert_offer(o)
        return idx

    # -- reads -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._offers)

    def offer(self, offer_id: str) -> OfferSnapshot | None:
        return self._offers.get(offer_id)

    def provider(self, provider_id: str) -> ProviderEntry | None:
        return self._providers.get(provider_id)

    def items(self) -> Iterator[tuple[OfferSnapshot, ProviderEntry | None]]:
        """Every offer with its provider entry (for brute force and diagnostics)."""
        for o in self._offers.values():
            yield o, self._providers.get(o.provider_id)

    def published_in(self, category: str) -> frozenset[str] | set[str]:
        return self._published.get(category, _EMPTY)

    def candidate_ids(
        self, category: str, skills: Sequence[SkillLevel], languages: Sequence[str]
    ) -> set[str]:
        """Matchable offers of the category holding every skill and one language."""
        base = self._active.get(category)
        if not base:
            return set()
        sets = [self._by_skill.get((category, s.code, s.level), _EMPTY) for s in skills]
        sets.sort(key=len)
        result = set(sets[0]) if sets else set(base)
        for s in sets[1:]:
            result &= s
            if not result:
                return result
        langs: set[str] = set()
        for k in {language_key(t) for t in languages}:
            langs |= self._by_lang.get((category, k), _EMPTY)
        result &= langs
        return result

    def prefilter_counts(
        self, category: str, skills: Sequence[SkillLevel], languages: Sequence[str]
    ) -> dict[ReasonKey, int]:
        """Why published offers of the category were not candidates (first failing filter).

        Same attribution as evaluating the filters one offer at a time, done
        with set operations.
        """
        published = self._published.get(category, _EMPTY)
        rem = set(self._active.get(category, _EMPTY))
        counts: dict[ReasonKey, int] = {(Filter.AVAILABLE, ""): len(published) - len(rem)}
        for s in skills:
            bucket = self._by_skill.get((category, s.code, s.level), _EMPTY)
            missing = len(rem) - len(rem & bucket)
            if missing:
                key = (Filter.SKILL, skill_detail(s.code, s.level))
                counts[key] = counts.get(key, 0) + missing
            rem &= bucket
        langs: set[str] = set()
        for k in {language_key(t) for t in languages}:
            langs |= self._by_lang.get((category, k), _EMPTY)
        counts[(Filter.LANGUAGE, "")] = len(rem - langs)
        return counts

    # -- writes ------------------------------------------------------------

    def upsert_provider(self, snapshot: ProviderSnapshot) -> bool:
        """Apply a provider snapshot; False when it is not newer than what we hold."""
        pid = snapshot.provider_id
        if snapshot.version <= self._provider_versions.get(pid, 0):
            return False
        self._provider_versions[pid] = snapshot.version
        self._providers[pid] = ProviderEntry.of(snapshot)
        for oid in self._offers_by_provider.get(pid, ()):
            self._reindex(oid)
        return True

    def remove_provider(self, provider_id: str, version: int | None = None) -> bool:
        """Forget a provider (its offers become unmatchable); tombstoned by version."""
        current = self._provider_versions.get(provider_id, 0)
        if version is not None and version < current:
            return False
        self._provider_versions[provider_id] = max(current, version or current)
        if self._providers.pop(provider_id, None) is None:
            return False
        for oid in self._offers_by_provider.get(provider_id, ()):
            self._reindex(oid)
        return True

    def upsert_offer(self, snapshot: OfferSnapshot) -> bool:
        """Apply an offer snapshot (published, updated or withdrawn); False when stale."""
        oid = snapshot.offer_id
        if snapshot.version <= self._offer_versions.get(oid, 0):
            return False
        self._offer_versions[oid] = snapshot.version
        old = self._offers.get(oid)
        if old is not None and old.provider_id != snapshot.provider_id:
            self._offers_by_provider.get(old.provider_id, set()).discard(oid)
        self._offers[oid] = snapshot
        self._offers_by_provider.setdefault(snapshot.provider_id, set()).add(oid)
        self._reindex(oid)
        return True

    def remove_offer(self, offer_id: str, version: int | None = None) -> bool:
        """Drop an offer; an older snapshot arriving later will not resurrect it."""
        current = self._offer_versions.get(offer_id, 0)
        if version is not None and version < current:
            return False
        self._offer_versions[offer_id] = max(current, version or current)
        self._unindex(offer_id)
        old = self._offers.pop(offer_id, None)
        if old is None:
            return False
        self._offers_by_provider.get(old.provider_id, set()).discard(offer_id)
        return True

    def _unindex(self, oid: str) -> None:
        cat = self._indexed_cat.pop(oid, None)
        if cat is not None:
            self._published[cat].discard(oid)
            self._active.get(cat, set()).discard(oid)
        for key in self._indexed.pop(oid, ()):
            self._by_skill[key].discard(oid)
        for lkey in self._indexed_langs.pop(oid, ()):
            self._by_lang[lkey].discard(oid)

    def _reindex(self, oid: str) -> None:
        """Remove the offer from every set it was in, then add it per its current state."""
        self._unindex(oid)
        offer = self._offers.get(oid)
        if offer is None or offer.status is not OfferStatus.PUBLISHED:
            return
        cat = offer.category
        self._indexed_cat[oid] = cat
        self._published.setdefault(cat, set()).add(oid)
        provider = self._providers.get(offer.provider_id)
        if not available(offer, provider):
            return
        self._active.setdefault(cat, set()).add(oid)
        keys = tuple(
            (cat, code, lvl)
            for code, top in effective_skills(offer, provider).items()
            for lvl in range(1, top + 1)
        )
        for key in keys:
            self._by_skill.setdefault(key, set()).add(oid)
        self._indexed[oid] = keys
        lkeys = tuple({(cat, language_key(t)) for t in offer.languages})
        for lkey in lkeys:
            self._by_lang.setdefault(lkey, set()).add(oid)
        self._indexed_langs[oid] = lkeys
