"""All MongoDB code of the matching service.

Collections (database `delego_matching` by default):

- `providers`, `offers`: the read model of the catalog, one document per
  aggregate holding its latest snapshot (JSON form: decimals as strings) and
  `version`. Upserts are conditional on the version, so an older or replayed
  snapshot never overwrites a newer one.
- `requests`: one document per client request: the `ClientRequest` state, a few
  top-level fields for queries, and its pending events (outbox). Every change
  is ONE conditional update on the previous `version` (optimistic concurrency),
  so state and events are stored together or not at all.
- `capacity`: one document per provider and ISO week (key
  `<provider_id>:<YYYY-Www>`, the week taken in the provider's zone) with the
  reserved amount in integer 1/10 000 hours (`reserved_e4`; FerretDB has no
  Decimal128) and the holds that make it up (`holds.<hold id>`). A reservation
  is a single-document conditional update (`reserved_e4 <= capacity - need`),
  which is what keeps N replicas from overbooking; a release removes the hold
  it adds back, so it is idempotent.

Ratings are not a separate counter: they are read from the rated requests
themselves (`$match` + `$group($sum)`), so a rating is counted exactly once,
by the same write that stored the WorkRated event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot
from delego_shared.events.envelope import Envelope
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo
from pymongo import ReturnDocument

from .domain import ClientRequest, RatingStats, RequestStatus

PROVIDERS = "providers"
OFFERS = "offers"
REQUESTS = "requests"
CAPACITY = "capacity"
OUTBOX_COLLECTIONS = (REQUESTS,)

E4 = Decimal(10_000)


def to_e4(hours: Decimal) -> int:
    """Hours as an exact integer of 1/10 000 h (reservations are quantized to that)."""
    return int((hours * E4).to_integral_value())


def from_e4(units: int) -> Decimal:
    return (Decimal(units) / E4).quantize(Decimal("0.0001"))


def store_indexes() -> list[IndexSpec]:
    return [
        IndexSpec(PROVIDERS, [("applied_at", 1)]),
        IndexSpec(OFFERS, [("applied_at", 1)]),
        IndexSpec(REQUESTS, [("client_id", 1), ("submitted_at", -1)]),
        IndexSpec(REQUESTS, [("provider_id", 1), ("status", 1)]),
        IndexSpec(REQUESTS, [("status", 1), ("expires_at", 1)]),
        IndexSpec(CAPACITY, [("provider_id", 1), ("week", 1)]),
    ]


class StaleRequest(Exception):
    """The request changed since it was read (another replica or call won): retry."""


@dataclass(frozen=True)
class Hold:
    """One reservation of one proposal: `request_id` at `attempt`."""

    request_id: str
    attempt: int

    @property
    def id(self) -> str:
        # request ids are generated here (`req_<hex>`): safe as a field name
        return f"{self.request_id}__a{self.attempt}"


@dataclass(frozen=True)
class HoldRecord:
    key: str
    hold: Hold
    hours: Decimal
    at: datetime


@dataclass(frozen=True)
class StoredRequest:
    request: ClientRequest
    correlation_id: str | None


class MatchingStore:
    def __init__(self, mongo: Mongo) -> None:
        self.db = mongo.db
        self.providers = mongo.db[PROVIDERS]
        self.offers = mongo.db[OFFERS]
        self.requests = mongo.db[REQUESTS]
        self.capacity = mongo.db[CAPACITY]

    # -- catalog read model -------------------------------------------------

    async def _upsert_snapshot(
        self, coll: Any, _id: str, version: int, fields: Document, now: datetime
    ) -> bool:
        """Store the snapshot unless one of the same or a newer version is there."""
        try:
            res = await coll.update_one(
                {"_id": _id, "version": {"$lt": version}},
                {"$set": {**fields, "version": version, "applied_at": now}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the document exists with a version >= this one
        return bool(res.modified_count or res.upserted_id is not None)

    async def upsert_provider(self, snapshot: ProviderSnapshot, now: datetime) -> bool:
        return await self._upsert_snapshot(
            self.providers,
            snapshot.provider_id,
            snapshot.version,
            {"status": snapshot.status.value, "snapshot": snapshot.model_dump(mode="json")},
            now,
        )

    async def upsert_offer(self, snapshot: OfferSnapshot, now: datetime) -> bool:
        return await self._upsert_snapshot(
            self.offers,
            snapshot.offer_id,
            snapshot.version,
            {
                "provider_id": snapshot.provider_id,
                "status": snapshot.status.value,
                "category": snapshot.category,
                "snapshot": snapshot.model_dump(mode="json"),
            },
            now,
        )

    async def providers_since(self, since: datetime | None = None) -> list[ProviderSnapshot]:
        query = {} if since is None else {"applied_at": {"$gte": since}}
        return [
            ProviderSnapshot.model_validate(d["snapshot"])
            async for d in self.providers.find(query, {"snapshot": 1})
        ]

    async def offers_since(self, since: datetime | None = None) -> list[OfferSnapshot]:
        query = {} if since is None else {"applied_at": {"$gte": since}}
        return [
            OfferSnapshot.model_validate(d["snapshot"])
            async for d in self.offers.find(query, {"snapshot": 1})
        ]

    async def provider_version(self, provider_id: str) -> int | None:
        d = await self.providers.find_one({"_id": provider_id}, {"version": 1})
        return int(d["version"]) if d else None

    async def offer_version(self, offer_id: str) -> int | None:
        d = await self.offers.find_one({"_id": offer_id}, {"version": 1})
        return int(d["version"]) if d else None

    # -- requests -----------------------------------------------------------

    @staticmethod
    def _fields(req: ClientRequest) -> Document:
        p = req.proposal
        open_ = req.status is RequestStatus.PROPOSED and p is not None
        return {
            "client_id": req.client_id,
            "status": req.status.value,
            "version": req.version,
            "submitted_at": req.submitted_at,
            "provider_id": p.provider_id if p is not None else None,
            "provider_ids": sorted(req.tried_providers),
            "expires_at": p.expires_at if open_ and p is not None else None,
            "rating": req.rating,
            "state": req.model_dump(mode="json"),
        }

    async def insert_request(
        self, req: ClientRequest, envelopes: Sequence[Envelope], correlation_id: str
    ) -> None:
        doc = {"_id": req.request_id, "correlation_id": correlation_id, **self._fields(req)}
        await self.requests.insert_one(Outbox.attach(doc, envelopes))

    async def save_request(
        self, req: ClientRequest, expected_version: int, envelopes: Sequence[Envelope]
    ) -> None:
        """Store the new state and its events in one update, if nobody changed it meanwhile."""
        res = await self.requests.update_one(
            {"_id": req.request_id, "version": expected_version},
            # a new state ends any expiry claim on the previous one
            Outbox.push({"$set": self._fields(req), "$unset": {"sweep_lease": ""}}, envelopes),
        )
        if res.matched_count == 0:
            raise StaleRequest(req.request_id)

    @staticmethod
    def _load(doc: Document) -> StoredRequest:
        return StoredRequest(ClientRequest.model_validate(doc["state"]), doc.get("correlation_id"))

    async def get_request(self, request_id: str) -> StoredRequest | None:
        doc = await self.requests.find_one({"_id": request_id}, {"state": 1, "correlation_id": 1})
        return self._load(doc) if doc else None

    async def list_requests(
        self,
        *,
        client_id: str | None = None,
        provider_id: str | None = None,
        status: Iterable[str] | None = None,
        limit: int = 100,
        skip: int = 0,
    ) -> list[ClientRequest]:
        query: Document = {}
        if client_id is not None:
            query["client_id"] = client_id
        if provider_id is not None:
            query["provider_id"] = provider_id
        if status is not None:
            query["status"] = {"$in": list(status)}
        cursor = (
            self.requests.find(query, {"state": 1}).sort("submitted_at", -1).skip(skip).limit(limit)
        )
        return [ClientRequest.model_validate(d["state"]) async for d in cursor]

    async def expired_request_ids(self, now: datetime, limit: int = 100) -> list[str]:
        cursor = self.requests.find(
            {"status": RequestStatus.PROPOSED.value, "expires_at": {"$lte": now}}, {"_id": 1}
        ).limit(limit)
        return [str(d["_id"]) async for d in cursor]

    async def claim_expiry(self, request_id: str, now: datetime, lease: timedelta) -> bool:
        """Take the right to expire this proposal for `lease` (one replica at a time)."""
        doc = await self.requests.find_one_and_update(
            {
                "_id": request_id,
                "status": RequestStatus.PROPOSED.value,
                "expires_at": {"$lte": now},
                "$or": [{"sweep_lease": {"$exists": False}}, {"sweep_lease": {"$lt": now}}],
            },
            {"$set": {"sweep_lease": now + lease}},
            # no projection: FerretDB v1 does not implement `fields` in findAndModify
            return_document=ReturnDocument.AFTER,
        )
        return doc is not None

    # -- ratings (read from the rated requests) -----------------------------

    async def rating_stats(self, provider_ids: Iterable[str]) -> dict[str, RatingStats]:
        ids = list(provider_ids)
        if not ids:
            return {}
        pipeline: list[Document] = [
            {"$match": {"provider_id": {"$in": ids}, "status": RequestStatus.RATED.value}},
            {"$group": {"_id": "$provider_id", "count": {"$sum": 1}, "total": {"$sum": "$rating"}}},
        ]
        out: dict[str, RatingStats] = {}
        cursor = await self.requests.aggregate(pipeline)
        async for d in cursor:
            out[str(d["_id"])] = RatingStats(int(d["count"]), int(d["total"]))
        return out

    async def client_ratings(self, client_id: str) -> list[tuple[str, int]]:
        """(provider id, stars) of every rating this client gave."""
        cursor = self.requests.find(
            {"client_id": client_id, "status": RequestStatus.RATED.value},
            {"provider_id": 1, "rating": 1},
        )
        return [(str(d["provider_id"]), int(d["rating"])) async for d in cursor]

    # -- capacity -----------------------------------------------------------

    async def reserved_hours(
        self, provider_ids: Iterable[str], from_week: str
    ) -> dict[str, Decimal]:
        """Hours reserved per capacity key, for these providers' weeks from `from_week` on."""
        ids = list(provider_ids)
        if not ids:
            return {}
        cursor = self.capacity.find(
            {"provider_id": {"$in": ids}, "week": {"$gte": from_week}}, {"reserved_e4": 1}
        )
        return {str(d["_id"]): from_e4(int(d.get("reserved_e4", 0))) async for d in cursor}

    async def reserve(
        self,
        provider_id: str,
        weekly_capacity: Decimal,
        need: Mapping[str, Decimal],
        hold: Hold,
        now: datetime,
    ) -> bool:
        """Reserve every week of `need` or none (compensated), never beyond capacity."""
        capacity_e4 = to_e4(weekly_capacity)
        done: dict[str, Decimal] = {}
        for key, hours in need.items():
            if not await self._reserve_one(provider_id, key, capacity_e4, hours, hold, now):
                await self.release(done, hold)
                return False
            done[key] = hours
        return True

    async def _reserve_one(
        self,
        provider_id: str,
        key: str,
        capacity_e4: int,
        hours: Decimal,
        hold: Hold,
        now: datetime,
    ) -> bool:
        e4 = to_e4(hours)
        field = f"holds.{hold.id}"
        for _ in range(2):
            res = await self.capacity.update_one(
                {"_id": key, "reserved_e4": {"$lte": capacity_e4 - e4}, field: {"$exists": False}},
                {
                    "$inc": {"reserved_e4": e4},
                    "$set": {
                        field: {
                            "request_id": hold.request_id,
                            "attempt": hold.attempt,
                            "e4": e4,
                            "at": now,
                        }
                    },
                },
            )
            if res.modified_count:
                return True
            doc = await self.capacity.find_one({"_id": key}, {field: 1})
            if doc is None:
                with contextlib.suppress(DuplicateKeyError):
                    await self.capacity.insert_one(
                        {
                            "_id": key,
                            "provider_id": provider_id,
                            "week": key.rsplit(":", 1)[1],
                            "reserved_e4": 0,
                            "holds": {},
                        }
                    )
                continue
            return hold.id in (doc.get("holds") or {})  # already held: idempotent
        return False

    async def release(self, reservation: Mapping[str, Decimal], hold: Hold) -> None:
        """Give back what `hold` reserved; a second release changes nothing."""
        field = f"holds.{hold.id}"
        for key, hours in reservation.items():
            await self.capacity.update_one(
                {"_id": key, field: {"$exists": True}},
                {"$unset": {field: ""}, "$inc": {"reserved_e4": -to_e4(hours)}},
            )

    async def holds(self, from_week: str) -> list[HoldRecord]:
        out: list[HoldRecord] = []
        async for d in self.capacity.find({"week": {"$gte": from_week}}, {"holds": 1}):
            for h in (d.get("holds") or {}).values():
                out.append(
                    HoldRecord(
                        str(d["_id"]),
                        Hold(str(h["request_id"]), int(h["attempt"])),
                        from_e4(int(h["e4"])),
                        h["at"],
                    )
                )
        return out

    async def capacity_of(self, provider_id: str) -> list[Document]:
        """Reserved hours per week of one provider (operator view)."""
        cursor = self.capacity.find({"provider_id": provider_id}, {"holds": 0}).sort("week", 1)
        return [
            {"week": d["week"], "reserved_hours": str(from_e4(int(d.get("reserved_e4", 0))))}
            async for d in cursor
        ]
