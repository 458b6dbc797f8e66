"""The matching read model of the catalog: providers compiled for fast matching.

A `ProviderEntry` keeps only what matching reads on every request (status,
zone, schedule, capacity, skills) and what a proposal's agreed terms copy
(name, SAP number), plus the snapshot as compact JSON; the full pydantic
snapshot is parsed back only when read (`snapshot`).
At a million offers (a quarter million providers) the pydantic objects alone
would take about 1.4 GB; the compact entries about a fifth of that.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot, ProviderStatus
from delego_shared.events.common import WorkingSpan

from .schedule import WeeklySchedule


def language_key(tag: str) -> str:
    """Languages match on the primary subtag: a client asking `en` accepts `en-GB`."""
    return tag.split("-", 1)[0].lower()


@lru_cache(maxsize=65_536)
def _schedule(spans: tuple[WorkingSpan, ...], zone: str) -> WeeklySchedule:
    """One shared compiled schedule per distinct (spans, zone): providers with the same
    hours share it, and so do the per-schedule caches of the matcher."""
    return WeeklySchedule.of(spans, zone)


@lru_cache(maxsize=4_096)
def _provider_snapshot(raw: bytes) -> ProviderSnapshot:
    return ProviderSnapshot.model_validate_json(zlib.decompress(raw))


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    provider_id: str
    active: bool
    time_zone: str
    weekly_capacity_hours: Decimal
    response_window_minutes: int | None
    schedule: WeeklySchedule
    skills: Mapping[str, int]
    display_name: str
    sap_number: str | None
    """Its SAP declaration's number: with the name, what agreed terms copy (no parse)."""
    raw: bytes
    """The snapshot as zlib-compressed JSON (parsed back on demand by `snapshot`)."""

    @classmethod
    def of(cls, snapshot: ProviderSnapshot) -> ProviderEntry:
        return cls(
            sys.intern(snapshot.provider_id),
            snapshot.status is ProviderStatus.ACTIVE,
            snapshot.time_zone,
            snapshot.weekly_capacity_hours,
            snapshot.response_window_minutes,
            _schedule(tuple(snapshot.schedule), snapshot.time_zone),
            {s.code: s.level for s in snapshot.skills},
            snapshot.display_name,
            snapshot.sap_declaration.number if snapshot.sap_declaration else None,
            zlib.compress(snapshot.model_dump_json().encode(), 1),
        )

    @property
    def snapshot(self) -> ProviderSnapshot:
        """The full catalog snapshot (for proposals and agreed terms; cached)."""
        return _provider_snapshot(self.raw)


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
