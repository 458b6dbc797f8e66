"""The matching read model of the catalog: providers compiled for fast matching."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot, ProviderStatus

from .schedule import WeeklySchedule


def language_key(tag: str) -> str:
    """Languages match on the primary subtag: a client asking `en` accepts `en-GB`."""
    return tag.split("-", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    snapshot: ProviderSnapshot
    schedule: WeeklySchedule
    skills: Mapping[str, int]

    @classmethod
    def of(cls, snapshot: ProviderSnapshot) -> ProviderEntry:
        return cls(
            snapshot,
            WeeklySchedule.of(snapshot.schedule, snapshot.time_zone),
            {s.code: s.level for s in snapshot.skills},
        )

    @property
    def provider_id(self) -> str:
        return self.snapshot.provider_id

    @property
    def active(self) -> bool:
        return self.snapshot.status is ProviderStatus.ACTIVE


def effective_skills(offer: OfferSnapshot, provider: ProviderEntry | None) -> dict[str, int]:
    """Skills that count for an offer: the offer's and its provider's, best level wins.

    The provider performs the work, so a skill declared once on the profile
    counts for every offer; an offer may declare a skill (or a higher level)
    specific to it.
    """
    levels = dict(provider.skills) if provider is not None else {}
    for s in offer.skills:
        if s.level > levels.get(s.code, 0):
            levels[s.code] = s.level
    return levels
