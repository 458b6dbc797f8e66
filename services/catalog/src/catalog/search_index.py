"""The search read model's port: what the catalog needs from a search engine, nothing more.

Search is answered from a read model, not from the document store (FerretDB
scans the whole collection for every filter). The read model is fed with
offer and provider *snapshots* (the payloads of `catalog.offers.v1` and
`catalog.providers.v1`, each with its version) and answers
`catalog.domain.search` queries exactly as `search_offers` does (the
specification; a property test compares them).

The engine behind the port is chosen at wiring time: today a per-replica
SQLite file (`adapters.sqlite_search`); a deployment that outgrows it can put
a shared cluster (OpenSearch) behind the same four methods without touching
the domain or the use cases.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from typing import Any, Protocol

from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot

from .domain import OfferQuery, SearchPage, SortKey

Positions = dict[tuple[str, int], int]
"""Next offset to read per (topic, partition) of the catalog topics."""


class SearchIndex(Protocol):
    async def search(self, query: OfferQuery, after: SortKey | None) -> SearchPage:
        """One page; `query` is already checked (`check_query`), `after` is its cursor."""
        ...

    async def apply(
        self,
        offers: Sequence[OfferSnapshot] = (),
        providers: Sequence[ProviderSnapshot] = (),
        positions: Mapping[tuple[str, int], int] | None = None,
    ) -> int:
        """Keep the newer snapshots (by version; older or equal ones change nothing) and
        record `positions` in the same write. Returns how many snapshots were newer."""
        ...

    async def positions(self) -> Positions:
        """Where the topics were read up to; empty when the index must be (re)built."""
        ...

    async def rebuild(
        self,
        positions: Positions,
        providers: Sequence[ProviderSnapshot],
        offers: AsyncIterable[Sequence[Mapping[str, Any]]],
    ) -> int:
        """Replace everything with these offers, in the JSON form of `OfferSnapshot` (as
        stored and published: 1M of them are not worth validating again), read from the
        store AFTER `positions` were taken from the broker, so the topics are followed
        from there. Returns the number of offers indexed."""
        ...
