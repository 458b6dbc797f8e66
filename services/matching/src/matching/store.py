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
  Decimal128). A reservation is a single-document conditional update
  (`reserved_e4 <= capacity - need`), which is what keeps N replicas from
  overbooking. The request that holds the hours is their record: the document
  keeps only the holds in the middle of a change (`pending.<hold id>`), so
  it stays small however many requests a provider takes that week. A
  reservation is pending until the request state that refers to it is stored
  (`confirm`); a release is marked before the state that ends the hold and
  finished after it (`begin_release`, `give_back`). Each step is one
  conditional update, idempotent; after a crash the reconciliation settles
  each pending hold by its request's stored state.

- `open_proposals`: one small document per open proposal (`_id` = request
  id, `due` = the earliest instant it may expire). Written BEFORE the request
  state that opens a proposal (`$min`, so a failed write never pushes `due`
  past the real expiry) and deleted after the state that closes it, so it is
  always a superset of the open proposals: the expiry sweep scans it —
  bounded by live proposals, not by history — and drops what is stale.
- `provider_ratings` (`_id` = provider id: `count`, `total`) and
  `client_ratings` (`_id` = client id: the distinct (provider, stars) pairs
  it gave): counters read by `_id` when matching. They are applied right
  after the WorkRated state is stored; the provider `$inc` is conditional on
  a per-request marker (`counting.<request id>`, pruned after a day), so it
  counts each rating once even when the reconciliation repeats it; the
  request is then flagged `rating_counted`.

- `subject_requests`: per client (`_id` = client id) the ids of its requests
  (`request_ids`), added before the request is inserted, so that a person's
  erasure finds their requests by `_id` (`privacy.py`), never by a scan.
  Requests stored before it existed are added once by a start-up backfill
  (`migrations/<name>` marks it done).

- `request_keys`: per request with private details (`_id` = request id) its
  data key, wrapped by the platform key (`wrapped_key`), and `erase_after`
  (None while the request is live). The encrypted text is in the request
  document (`sealed`), never the key: deleting this document is the
  crypto-shredding. `erase_after` is written before the state that ends the
  request (a superset: the retention sweep checks the request itself); the
  sweep reads it with an index, bounded by the requests of the retention period.
- `details_reads`: one document per read of private details (the access audit:
  who, which request, when, why), each with its `PrivateDetailsRead` event
  (outbox), never the text.

Every access on a per-request path is by `_id` (FerretDB v1 only pushes an
`_id` equality down); the queries that remain are crash-recovery sweeps run at
start-up and on a slow timer, and `store_indexes()` gives them an index on
MongoDB.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot
from delego_shared.events.envelope import Envelope
from delego_shared.messaging import Outbox
from delego_shared.mongo import Document, DuplicateKeyError, IndexSpec, Mongo, find_by_ids
from pymongo import ReturnDocument

from .domain import ClientRequest, RatingStats, RequestStatus
from .sealing import SealedText

PROVIDERS = "providers"
OFFERS = "offers"
REQUESTS = "requests"
CAPACITY = "capacity"
OPEN_PROPOSALS = "open_proposals"
PROVIDER_RATINGS = "provider_ratings"
CLIENT_RATINGS = "client_ratings"
SUBJECT_REQUESTS = "subject_requests"
REQUEST_KEYS = "request_keys"
DETAILS_READS = "details_reads"
MIGRATIONS = "migrations"
OUTBOX_COLLECTIONS = (REQUESTS, DETAILS_READS)

E4 = Decimal(10_000)


def to_e4(hours: Decimal) -> int:
    """Hours as an exact integer of 1/10 000 h (reservations are quantized to that)."""
    return int((hours * E4).to_integral_value())


def from_e4(units: int) -> Decimal:
    return (Decimal(units) / E4).quantize(Decimal("0.0001"))


RATING_MARKER_TTL = timedelta(days=1)
"""How long a rating's idempotency marker stays on the provider's counter."""


def store_indexes() -> list[IndexSpec]:
    """Indexes for the queries that are not by `_id` (MongoDB uses them; FerretDB v1 scans)."""
    return [
        # HTTP lists (operator views, sorted by submission)
        IndexSpec(REQUESTS, [("client_id", 1), ("submitted_at", -1)]),
        IndexSpec(REQUESTS, [("provider_id", 1), ("status", 1), ("submitted_at", -1)]),
        # start-up backfill of `open_proposals`
        IndexSpec(REQUESTS, [("status", 1), ("expires_at", 1)]),
        # reconciliation: rated requests whose counters were not applied
        IndexSpec(REQUESTS, [("status", 1), ("rating_counted", 1)]),
        # the expiry sweep and a provider's open proposals (a small collection)
        IndexSpec(OPEN_PROPOSALS, [("due", 1)]),
        IndexSpec(OPEN_PROPOSALS, [("providers", 1)]),
        # reconciliation of holds (recent and future weeks); operator view
        IndexSpec(CAPACITY, [("week", 1)]),
        IndexSpec(CAPACITY, [("provider_id", 1), ("week", 1)]),
        # the retention sweep (slow timer): keys whose details are due for erasure
        IndexSpec(REQUEST_KEYS, [("erase_after", 1)]),
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

    @classmethod
    def parse(cls, hold_id: str) -> Hold:
        request_id, attempt = hold_id.rsplit("__a", 1)
        return cls(request_id, int(attempt))


RESERVE = "reserve"
RELEASE = "release"


@dataclass(frozen=True)
class HoldRecord:
    """A hold pending on one capacity key: being reserved, or being released."""

    key: str
    hold: Hold
    hours: Decimal
    at: datetime
    op: str


@dataclass(frozen=True)
class StoredRequest:
    request: ClientRequest
    correlation_id: str | None


@dataclass(frozen=True)
class RatingToCount:
    """A stored rating whose counters may not be applied yet (crash in between)."""

    request_id: str
    client_id: str
    provider_id: str
    stars: int
    rated_at: datetime


class MatchingStore:
    def __init__(self, mongo: Mongo) -> None:
        self.db = mongo.db
        self.providers = mongo.db[PROVIDERS]
        self.offers = mongo.db[OFFERS]
        self.requests = mongo.db[REQUESTS]
        self.capacity = mongo.db[CAPACITY]
        self.open_proposals = mongo.db[OPEN_PROPOSALS]
        self.provider_ratings = mongo.db[PROVIDER_RATINGS]
        self.client_ratings = mongo.db[CLIENT_RATINGS]
        self.subject_requests = mongo.db[SUBJECT_REQUESTS]
        self.request_keys = mongo.db[REQUEST_KEYS]
        self.details_reads = mongo.db[DETAILS_READS]
        self.migrations = mongo.db[MIGRATIONS]

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

    async def all_providers(self) -> list[ProviderSnapshot]:
        """The whole provider read model (start-up only: one scan)."""
        return [
            ProviderSnapshot.model_validate(d["snapshot"])
            async for d in self.providers.find({}, {"snapshot": 1})
        ]

    async def all_offers(self) -> list[OfferSnapshot]:
        """The whole offer read model (start-up only: one scan)."""
        return [
            OfferSnapshot.model_validate(d["snapshot"])
            async for d in self.offers.find({}, {"snapshot": 1})
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
        rated: Document = (
            # RATED is final: this is written once, with the rating, and set to
            # True once the counters hold it
            {"rating_counted": False, "rated_at": req.rated_at}
            if req.status is RequestStatus.RATED
            else {}
        )
        return {
            **rated,
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
        self,
        req: ClientRequest,
        envelopes: Sequence[Envelope],
        correlation_id: str,
        sealed: SealedText | None = None,
    ) -> None:
        doc = {"_id": req.request_id, "correlation_id": correlation_id, **self._fields(req)}
        if sealed is not None:
            doc["sealed"] = {"nonce": sealed.nonce, "ciphertext": sealed.ciphertext}
        # listed first: the list is a superset of the client's stored requests
        await self.subject_requests.update_one(
            {"_id": req.client_id}, {"$addToSet": {"request_ids": req.request_id}}, upsert=True
        )
        await self.requests.insert_one(Outbox.attach(doc, envelopes))

    async def save_request(
        self, req: ClientRequest, expected_version: int, envelopes: Sequence[Envelope]
    ) -> int | None:
        """Store the new state and its events in one update, if nobody changed it meanwhile.

        Returns the request's pending-event count after the write (for `publish_now`).
        """
        doc = await self.requests.find_one_and_update(
            {"_id": req.request_id, "version": expected_version},
            Outbox.push({"$set": self._fields(req)}, envelopes),
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise StaleRequest(req.request_id)
        return Outbox.count(doc)

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

    async def open_request_dues(self) -> list[tuple[str, datetime, str]]:
        """(request id, expires_at, provider id) of every open proposal in `requests`
        (start-up backfill)."""
        cursor = self.requests.find(
            {"status": RequestStatus.PROPOSED.value},
            {"_id": 1, "expires_at": 1, "provider_id": 1},
        )
        return [
            (str(d["_id"]), d["expires_at"], str(d["provider_id"]))
            async for d in cursor
            if d.get("expires_at") and d.get("provider_id")
        ]

    # -- open proposals (what the expiry sweep looks at) --------------------

    async def proposal_due(self, request_id: str, expires_at: datetime, provider_id: str) -> bool:
        """Before storing a state with an open proposal: make sure the sweep will look.

        `$min` and `$addToSet`: if the state is not stored after all, `due`
        stays no later than the proposal that really is open, and `providers`
        still holds its provider. True when this created the entry: it then
        holds exactly this proposal and needs no `set_proposal_due` after.
        """
        res = await self.open_proposals.update_one(
            {"_id": request_id},
            {"$min": {"due": expires_at}, "$addToSet": {"providers": provider_id}},
            upsert=True,
        )
        return res.upserted_id is not None

    async def set_proposal_due(
        self, request_id: str, expires_at: datetime, provider_id: str
    ) -> None:
        """After storing: the entry becomes exactly the stored proposal (`due` never later
        than any following proposal's, which is opened later with the same window). A
        sweep's lease was for the previous due: it ends."""
        await self.open_proposals.update_one(
            {"_id": request_id},
            {"$set": {"due": expires_at, "providers": [provider_id]}, "$unset": {"lease": ""}},
        )

    async def proposal_closed(self, request_id: str) -> None:
        await self.open_proposals.delete_one({"_id": request_id})

    async def due_proposals(self, now: datetime, limit: int = 100) -> list[tuple[str, datetime]]:
        """(request id, due) of proposals that may have expired (a scan of a small collection)."""
        cursor = self.open_proposals.find({"due": {"$lte": now}}, {"_id": 1, "due": 1}).limit(limit)
        return [(str(d["_id"]), d["due"]) async for d in cursor]

    async def claim_due(self, request_id: str, now: datetime, lease: timedelta) -> bool:
        """Take the right to handle this due proposal for `lease` (one replica at a time)."""
        res = await self.open_proposals.update_one(
            {
                "_id": request_id,
                "due": {"$lte": now},
                "$or": [{"lease": {"$exists": False}}, {"lease": {"$lt": now}}],
            },
            {"$set": {"lease": now + lease}},
        )
        return bool(res.modified_count)

    async def open_proposals_of(self, provider_id: str) -> list[ClientRequest]:
        """Open proposals waiting for this provider, newest first.

        A query on the small `open_proposals` collection, then each request by
        `_id`; the entries are a superset, so the requests themselves decide.
        """
        ids = [
            str(d["_id"])
            async for d in self.open_proposals.find({"providers": provider_id}, {"_id": 1})
        ]
        found = await asyncio.gather(*(self.get_request(i) for i in ids))
        reqs = [
            s.request
            for s in found
            if s is not None
            and s.request.status is RequestStatus.PROPOSED
            and s.request.proposal is not None
            and s.request.proposal.provider_id == provider_id
        ]
        return sorted(reqs, key=lambda r: r.submitted_at, reverse=True)

    async def open_proposal_count(self) -> int:
        return int(await self.open_proposals.count_documents({}))

    # -- ratings (counters read by _id) -------------------------------------

    async def rating_stats(self, provider_ids: Iterable[str]) -> dict[str, RatingStats]:
        """Rating totals per provider: one batch read by `_id`."""
        docs = await find_by_ids(self.provider_ratings, provider_ids, {"count": 1, "total": 1})
        return {
            i: RatingStats(int(d.get("count", 0)), int(d.get("total", 0))) for i, d in docs.items()
        }

    async def client_ratings_of(self, client_id: str) -> list[tuple[str, int]]:
        """(provider id, stars) pairs this client gave (each distinct pair once)."""
        d = await self.client_ratings.find_one({"_id": client_id}, {"given": 1})
        return [(str(g["p"]), int(g["s"])) for g in (d or {}).get("given", [])]

    async def count_rating(self, r: RatingToCount, now: datetime) -> None:
        """Apply one stored rating to the counters, once, then flag the request.

        Safe to repeat (the reconciliation does after a crash): the provider
        `$inc` only happens while the request's marker is absent, the client
        `$addToSet` is idempotent by nature.
        """
        marker = f"counting.{r.request_id}"  # request ids are `req_<hex>`: safe as a field
        doc = await self.provider_ratings.find_one({"_id": r.provider_id}, {"counting": 1})
        old = [
            k
            for k, at in ((doc or {}).get("counting") or {}).items()
            if k != r.request_id and at < now - RATING_MARKER_TTL
        ]
        update: Document = {
            "$inc": {"count": 1, "total": r.stars},
            "$set": {marker: now},
        }
        if old:
            update["$unset"] = {f"counting.{k}": "" for k in old}
        for _ in range(2):
            try:
                await self.provider_ratings.update_one(
                    {"_id": r.provider_id, marker: {"$exists": False}}, update, upsert=True
                )
                break
            except DuplicateKeyError:
                continue  # counted already, or the document was created concurrently: re-check
        await self.client_ratings.update_one(
            {"_id": r.client_id},
            {"$addToSet": {"given": {"p": r.provider_id, "s": r.stars}}},
            upsert=True,
        )
        await self.requests.update_one({"_id": r.request_id}, {"$set": {"rating_counted": True}})

    async def ratings_to_count(
        self, rated_before: datetime, limit: int = 500
    ) -> list[RatingToCount]:
        """Rated requests whose counters are not confirmed (reconciliation, slow timer)."""
        cursor = self.requests.find(
            {"status": RequestStatus.RATED.value, "rating_counted": {"$ne": True}},
            {"client_id": 1, "provider_id": 1, "rating": 1, "rated_at": 1, "state.rated_at": 1},
        ).limit(limit)
        out: list[RatingToCount] = []
        async for d in cursor:
            # requests rated before the counters existed have no top-level `rated_at`
            at = d.get("rated_at") or (d.get("state") or {}).get("rated_at")
            rated_at = datetime.fromisoformat(at) if isinstance(at, str) else at
            if rated_at is None or rated_at >= rated_before or d.get("rating") is None:
                continue
            out.append(
                RatingToCount(
                    str(d["_id"]),
                    str(d["client_id"]),
                    str(d["provider_id"]),
                    int(d["rating"]),
                    rated_at,
                )
            )
        return out

    # -- capacity -----------------------------------------------------------

    async def reserved_hours(self, keys: Iterable[str]) -> dict[str, Decimal]:
        """Hours reserved per capacity key: one batch read by `_id`."""
        docs = await find_by_ids(self.capacity, keys, {"reserved_e4": 1})
        return {k: from_e4(int(d.get("reserved_e4", 0))) for k, d in docs.items()}

    async def reserve(
        self,
        provider_id: str,
        capacity: Mapping[str, Decimal],
        need: Mapping[str, Decimal],
        hold: Hold,
        now: datetime,
    ) -> bool:
        """Reserve every week of `need` or none (compensated), never beyond that week's
        capacity (`capacity` per key, as the domain computed it). The hold stays
        pending until `confirm` (its request state is stored) or `give_back`."""
        done: dict[str, Decimal] = {}
        for key, hours in need.items():
            capacity_e4 = to_e4(capacity.get(key, Decimal(0)))
            if not await self._reserve_one(provider_id, key, capacity_e4, hours, hold, now):
                await self.give_back(done, hold)
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
        field = f"pending.{hold.id}"
        for _ in range(2):
            res = await self.capacity.update_one(
                {"_id": key, "reserved_e4": {"$lte": capacity_e4 - e4}, field: {"$exists": False}},
                {
                    "$inc": {"reserved_e4": e4},
                    "$set": {field: {"op": RESERVE, "e4": e4, "at": now}},
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
                            "pending": {},
                        }
                    )
                continue
            entry = (doc.get("pending") or {}).get(hold.id)
            return entry is not None and entry.get("op") == RESERVE  # already held: idempotent
        return False

    async def confirm(self, reservation: Mapping[str, Decimal], hold: Hold) -> None:
        """The state that refers to `hold` is stored: its request now records it."""
        field = f"pending.{hold.id}"
        for key in reservation:
            await self.capacity.update_one(
                {"_id": key, f"{field}.op": RESERVE}, {"$unset": {field: ""}}
            )

    async def begin_release(
        self, reservation: Mapping[str, Decimal], hold: Hold, now: datetime
    ) -> None:
        """Before storing the state in which `hold` ends: a marker that the reconciliation
        finishes or drops after a crash, by that state (a pending reservation stays)."""
        field = f"pending.{hold.id}"
        for key, hours in reservation.items():
            await self.capacity.update_one(
                {"_id": key, field: {"$exists": False}},
                {"$set": {field: {"op": RELEASE, "e4": to_e4(hours), "at": now}}},
            )

    async def abort_release(self, reservation: Mapping[str, Decimal], hold: Hold) -> None:
        """The state that would have ended `hold` was not stored: the hold stays."""
        field = f"pending.{hold.id}"
        for key in reservation:
            await self.capacity.update_one(
                {"_id": key, f"{field}.op": RELEASE}, {"$unset": {field: ""}}
            )

    async def give_back(self, reservation: Mapping[str, Decimal], hold: Hold) -> None:
        """Give back a pending hold's hours (a reservation not stored, or a release whose
        state was); a hold without a marker is left alone, so a repeat changes nothing."""
        field = f"pending.{hold.id}"
        for key, hours in reservation.items():
            await self.capacity.update_one(
                {"_id": key, field: {"$exists": True}},
                {"$unset": {field: ""}, "$inc": {"reserved_e4": -to_e4(hours)}},
            )

    async def pending_holds(self, from_week: str) -> list[HoldRecord]:
        """Holds in the middle of a reservation or release (the reconciliation's sweep:
        a slow timer over the capacity documents of recent weeks, small ones)."""
        out: list[HoldRecord] = []
        query = {"week": {"$gte": from_week}, "pending": {"$ne": {}}}
        async for d in self.capacity.find(query, {"pending": 1}):
            for hold_id, h in (d.get("pending") or {}).items():
                out.append(
                    HoldRecord(
                        str(d["_id"]),
                        Hold.parse(hold_id),
                        from_e4(int(h["e4"])),
                        h["at"],
                        str(h["op"]),
                    )
                )
        return out

    async def adopt_legacy_holds(self) -> int:
        """Start-up, once per document: the per-hold map of earlier versions (`holds`, one
        entry per reservation ever made that week) becomes pending reservations, which
        the reconciliation then confirms (their request refers to them) or gives back."""
        moved = 0
        async for d in self.capacity.find({"holds": {"$exists": True}}, {"holds": 1}):
            entries = {
                f"pending.{hold_id}": {"op": RESERVE, "e4": int(h["e4"]), "at": h["at"]}
                for hold_id, h in (d.get("holds") or {}).items()
            }
            await self.capacity.update_one(
                {"_id": d["_id"]},
                {"$set": entries, "$unset": {"holds": ""}}
                if entries
                else {"$unset": {"holds": ""}},
            )
            moved += len(entries)
        return moved

    async def capacity_of(self, provider_id: str, weeks: Sequence[str]) -> list[Document]:
        """Reserved hours of one provider for these weeks (by `_id`), in order."""
        keys = [f"{provider_id}:{w}" for w in weeks]
        reserved = await self.reserved_hours(keys)
        return [
            {"week": k.rsplit(":", 1)[1], "reserved_hours": str(reserved[k])}
            for k in keys
            if k in reserved
        ]

    # -- sealed private details ---------------------------------------------

    async def request_key(
        self, request_id: str, client_id: str, wrapped_key: bytes, erase_after: datetime | None
    ) -> bytes:
        """The request's wrapped data key: `wrapped_key` if it has none yet, else the
        stored one (a retried submit must seal with the key its first try stored)."""
        doc = await self.request_keys.find_one_and_update(
            {"_id": request_id},
            {
                "$setOnInsert": {
                    "client_id": client_id,
                    "wrapped_key": wrapped_key,
                    "erase_after": erase_after,
                }
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upserted
        return bytes(doc["wrapped_key"])

    async def wrapped_key(self, request_id: str) -> bytes | None:
        doc = await self.request_keys.find_one({"_id": request_id}, {"wrapped_key": 1})
        return bytes(doc["wrapped_key"]) if doc else None

    async def load_sealed(self, request_id: str) -> tuple[ClientRequest, SealedText | None] | None:
        """The request and its encrypted details (None when there are none)."""
        doc = await self.requests.find_one({"_id": request_id}, {"state": 1, "sealed": 1})
        if doc is None:
            return None
        s = doc.get("sealed")
        sealed = SealedText(bytes(s["nonce"]), bytes(s["ciphertext"])) if s else None
        return ClientRequest.model_validate(doc["state"]), sealed

    async def schedule_details_erasure(self, request_id: str, at: datetime | None) -> None:
        """Set (or, with None, withdraw) when the retention sweep erases the details."""
        await self.request_keys.update_one({"_id": request_id}, {"$set": {"erase_after": at}})

    async def details_due(self, now: datetime, limit: int = 500) -> list[str]:
        """Request ids whose details may be due for erasure (indexed on `erase_after`)."""
        cursor = self.request_keys.find({"erase_after": {"$lte": now}}, {"_id": 1}).limit(limit)
        return [str(d["_id"]) async for d in cursor]

    async def shred_key(self, request_id: str) -> bool:
        """Delete the request's data key: every copy of its ciphertext is now unreadable."""
        res = await self.request_keys.delete_one({"_id": request_id})
        return res.deleted_count == 1

    async def details_state(self, request_id: str) -> tuple[int, bool] | None:
        """(version, whether any private detail is stored), None if there is no such request."""
        doc = await self.requests.find_one(
            {"_id": request_id}, {"version": 1, "sealed": 1, "state.spec.description": 1}
        )
        if doc is None:
            return None
        clear = bool(((doc.get("state") or {}).get("spec") or {}).get("description"))
        return int(doc["version"]), clear or bool(doc.get("sealed"))

    async def clear_details(self, request_id: str, version: int) -> bool:
        """Remove the ciphertext (and any clear text) as a new version of the request."""
        res = await self.requests.update_one(
            {"_id": request_id, "version": version},
            {
                "$set": {
                    "state.spec.description": "",
                    "state.sealed_details": False,
                    "state.details_erased": True,
                },
                "$unset": {"sealed": ""},
                "$inc": {"version": 1, "state.version": 1},
            },
        )
        return res.modified_count == 1

    async def clear_text_requests(self) -> list[str]:
        """Requests whose description is stored in clear (stored before sealing existed;
        a start-up migration: one scan)."""
        cursor = self.requests.find({"state.spec.description": {"$gt": ""}}, {"_id": 1})
        return [str(d["_id"]) async for d in cursor]

    async def seal_in_place(self, request_id: str, version: int, sealed: SealedText) -> bool:
        """Replace the clear description by its sealed form, as a new version."""
        res = await self.requests.update_one(
            {"_id": request_id, "version": version},
            {
                "$set": {
                    "sealed": {"nonce": sealed.nonce, "ciphertext": sealed.ciphertext},
                    "state.spec.description": "",
                    "state.sealed_details": True,
                },
                "$inc": {"version": 1, "state.version": 1},
            },
        )
        return res.modified_count == 1

    async def record_read(self, record: Document, envelopes: Sequence[Envelope]) -> None:
        """Store one read of private details with its audit event (outbox)."""
        await self.details_reads.insert_one(Outbox.attach(record, envelopes))

    # -- one-off start-up migrations ----------------------------------------

    async def migration_done(self, name: str) -> bool:
        return await self.migrations.find_one({"_id": name}, {"_id": 1}) is not None

    async def mark_migration(self, name: str, at: datetime, counts: Mapping[str, int]) -> None:
        await self.migrations.update_one(
            {"_id": name}, {"$set": {"done_at": at, **counts}}, upsert=True
        )

    async def request_clients(self) -> list[tuple[str, str]]:
        """(request id, client id) of every request (a start-up migration: one scan)."""
        cursor = self.requests.find({}, {"_id": 1, "client_id": 1})
        return [(str(d["_id"]), str(d["client_id"])) async for d in cursor if d.get("client_id")]

    async def add_subject_requests(self, client_id: str, request_ids: Sequence[str]) -> None:
        await self.subject_requests.update_one(
            {"_id": client_id},
            {"$addToSet": {"request_ids": {"$each": list(request_ids)}}},
            upsert=True,
        )
