"""History: the documents N completed flows leave behind, bulk-inserted into each service.

The shortcut (documented in the README): instead of playing N flows through
the platform (hours at today's speed), the documents that ONE real completed
flow left in every service's database are taken as templates and cloned N
times with `insert_many`. This keeps the exact shape each `store.py` writes
today (and after it changes), without a second copy of the services' schemas:

1. The `FlowWatcher` knows each flow's ids (request id, correlation id, the
   `ce_id` of every event of the flow, the `*_id` fields of their bodies).
2. Every document of the services' databases is scanned; one that mentions
   ids of the template flow and of no other flow is a per-flow document
   (request, invoice, ledger entry, deliveries, inbox items, `processed_events`
   of each consumer group, ...). Documents that mention several flows or none
   are shared aggregates (catalog read model, capacity weeks, cap consumption,
   tax profiles, recipients, ...) and are not cloned.
3. Each clone gets fresh ids of the same shape everywhere they appear (values
   and field names), a client from the pool, a benchmark provider and its
   offer, every datetime moved back by 14 days + k/N × 200 days, consecutive
   invoice numbers (`seq`/`number`) starting 1,000,000 above the last live
   one (so that no live invoice can collide with them), and an empty outbox.
4. Matching's capacity: one document per (provider, past week) holding the
   holds of the history flows of that week, in the shape of a live one.

Not reproduced: timestamps inside embedded JSON snapshots (e.g. the request's
`state`) and ISO-week strings keep the template's values; shared aggregates
(cap consumption, ledger balances) do not add up the history; Kafka topics
hold no history (consumers start from committed offsets anyway).
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from .stats import say

Client = AsyncMongoClient[dict[str, Any]]
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEXID_RE = re.compile(r"[A-Za-z]*_?[0-9a-f]{16,}")
HEX_TAIL = re.compile(r"^(.*?)([0-9a-f]{8,})$")
OUTBOX_FIELDS = ("_outbox", "_outbox_n", "_outbox_lease")
SPAN = timedelta(days=200)
OFFSET = timedelta(days=14)
SEQ_GAP = 1_000_000

Path = tuple[Any, ...]


@dataclass
class Template:
    database: str
    collection: str
    blob: bytes
    values: list[tuple[Path, str]]  # strings containing tokens
    dates: list[Path]
    keys: list[tuple[Path, str]]  # dict keys containing tokens (path of the dict, key)
    number: str | None  # top-level `seq`/`number` (gapless numbering): the template number
    id_kind: str  # "str": _id rewritten by tokens, "oid": new ObjectId


@dataclass
class LoadReport:
    flows: int = 0
    seconds: float = 0.0
    per_collection: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    template_request: str = ""


def _walk(obj: Any, path: Path, out: list[tuple[Path, Any]]) -> None:
    out.append((path, obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, (*path, k), out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _walk(v, (*path, i), out)


def _ids_in(text: str) -> set[str]:
    return set(UUID_RE.findall(text)) | set(HEXID_RE.findall(text))


def _get(doc: Any, path: Path) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: Path, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _new_like(token: str) -> str:
    if UUID_RE.fullmatch(token):
        return str(uuid.uuid4())
    m = HEX_TAIL.match(token)
    if m:
        return m.group(1) + "".join(random.choices("0123456789abcdef", k=len(m.group(2))))
    return f"{token}-h{uuid.uuid4().hex[:12]}"


class HistoryLoader:
    def __init__(
        self,
        client: Client,
        databases: list[str],
        owners: dict[str, str],
        clients: list[str],
        providers: dict[str, str],  # provider id -> its offer id
    ) -> None:
        self.client = client
        self.databases = databases
        self.owners = owners  # id -> request id of the flow it belongs to
        self.clients = clients
        self.providers = providers

    async def _scan(self, template_rid: str) -> list[tuple[str, str, dict[str, Any]]]:
        """The per-flow documents of `template_rid` in every database."""
        found = []
        for dbname in self.databases:
            db = self.client[dbname]
            for coll in sorted(await db.list_collection_names()):
                async for doc in db[coll].find({}):
                    flows = {self.owners[t] for t in _ids_in(repr(doc)) if t in self.owners}
                    if flows == {template_rid}:
                        found.append((dbname, coll, doc))
        return found

    async def choose_template(
        self, candidates: Iterable[str], matching_db: str
    ) -> tuple[str, dict[str, Any]] | None:
        """A completed flow with a benchmark provider (its request document)."""
        requests = self.client[matching_db]["requests"]
        for rid in candidates:
            doc = await requests.find_one({"_id": rid})
            if doc and doc.get("provider_id") in self.providers:
                return rid, doc
        return None

    def _compile(self, dbname: str, coll: str, doc: dict[str, Any], tokens: set[str]) -> Template:
        doc = copy.deepcopy(doc)
        if doc.get("_outbox_n"):
            doc["_outbox"], doc["_outbox_n"] = [], 0
        doc.pop("_outbox_lease", None)
        pattern = _pattern(tokens)
        nodes: list[tuple[Path, Any]] = []
        _walk(doc, (), nodes)
        values: list[tuple[Path, str]] = []
        dates: list[Path] = []
        keys: list[tuple[Path, str]] = []
        for path, v in nodes:
            if isinstance(v, str) and pattern.search(v):
                values.append((path, v))
            elif isinstance(v, datetime):
                dates.append(path)
            if isinstance(v, dict):
                keys.extend((path, k) for k in v if isinstance(k, str) and pattern.search(k))
        _id = doc.get("_id")
        id_kind = "oid" if isinstance(_id, ObjectId) else "str"
        number = str(doc["number"]) if _numbered(doc) else None
        keys.sort(key=lambda pk: -len(pk[0]))
        return Template(dbname, coll, pickle.dumps(doc), values, dates, keys, number, id_kind)

    async def load(
        self, template_rid: str, template_request: dict[str, Any], n: int, batch: int = 1000
    ) -> LoadReport:
        t0 = time.monotonic()
        report = LoadReport(flows=n, template_request=template_rid)
        docs = await self._scan(template_rid)
        tokens = {t for t, r in self.owners.items() if r == template_rid}
        # ids of per-flow documents that carry no flow id (hashes of other ids)
        for _, _, d in docs:
            if isinstance(d.get("_id"), str) and not any(t in d["_id"] for t in tokens):
                tokens.add(d["_id"])
        client_id = str(template_request.get("client_id"))
        provider_id = str(template_request.get("provider_id"))
        offer_id = self.providers.get(provider_id, "")
        present = {t for t in tokens if any(t in repr(d) for _, _, d in docs)}
        numbers = {str(d["number"]): d for _, _, d in docs if _numbered(d)}
        fixed = {client_id, provider_id, offer_id} | set(numbers)
        all_tokens = (present | fixed) - {""}
        templates = [self._compile(db, c, d, all_tokens) for db, c, d in docs]
        say(
            f"history: {len(templates)} documents per flow from {template_rid}: "
            + ", ".join(
                sorted(f"{t.database.removeprefix('delego_')}.{t.collection}" for t in templates)
            )
        )
        pattern = _pattern(all_tokens)
        bases = {
            str(d["number"]): await self._max_seq(db, c, d) for db, c, d in docs if _numbered(d)
        }
        provs = sorted(self.providers)
        now = max((d for d in _dates(template_request)), default=None)
        buffers: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        pending: set[asyncio.Task[None]] = set()
        holds: list[tuple[str, datetime]] = []  # (provider, instant) of each history flow

        async def flush(key: tuple[str, str]) -> None:
            chunk, buffers[key] = buffers[key], []
            if not chunk:
                return
            try:
                await self.client[key[0]][key[1]].insert_many(chunk, ordered=False)
                report.per_collection[f"{key[0]}.{key[1]}"] += len(chunk)
            except BulkWriteError as exc:
                errs = exc.details.get("writeErrors", [])
                report.duplicates += len(errs)
                report.per_collection[f"{key[0]}.{key[1]}"] += len(chunk) - len(errs)

        for k in range(n):
            mapping = {t: _new_like(t) for t in present}
            mapping[client_id] = self.clients[k % len(self.clients)]
            if provider_id in self.providers:
                p = provs[k % len(provs)]
                mapping[provider_id], mapping[offer_id] = p, self.providers[p]
            else:
                p = provider_id
            for num in numbers:
                mapping[num] = _renumber(num, bases[num] + k + 1)
            shift = OFFSET + SPAN * (k / max(1, n))

            def sub(m: re.Match[str], mapping: dict[str, str] = mapping) -> str:
                return mapping.get(m.group(0), m.group(0))

            if now is not None:
                holds.append((p, now - shift))
            for t in templates:
                d = pickle.loads(t.blob)  # noqa: S301 - our own bytes
                for path, s in t.values:
                    _set(d, path, pattern.sub(sub, s))
                for path in t.dates:
                    _set(d, path, _get(d, path) - shift)
                for path, fname in t.keys:
                    parent = _get(d, path)
                    parent[pattern.sub(sub, fname)] = parent.pop(fname)
                if t.id_kind == "oid":
                    d["_id"] = ObjectId()
                if t.number is not None:
                    d["seq"] = bases[t.number] + k + 1
                key = (t.database, t.collection)
                buffers[key].append(d)
                if len(buffers[key]) >= batch:
                    task = asyncio.create_task(flush(key))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    if len(pending) >= 2:
                        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if k and k % 10_000 == 0:
                say(f"history: {k}/{n} flows generated ({time.monotonic() - t0:.0f}s)")
        if pending:
            await asyncio.wait(pending)
        for key in list(buffers):
            await flush(key)
        await self._capacity(template_rid, holds, report)
        report.seconds = time.monotonic() - t0
        return report

    async def _max_seq(self, dbname: str, coll: str, doc: dict[str, Any]) -> int:
        flt = {k: doc[k] for k in ("entity", "kind", "year") if k in doc}
        top = await (
            self.client[dbname][coll].find(flt, {"seq": 1}).sort("seq", -1).limit(1).to_list()
        )
        # history numbers start 1,000,000 above today's last one: whether billing takes the
        # next number from the highest stored one or from a counter document, a live invoice
        # never collides with a history one (the cost: one gap before the history's numbers)
        return (int(top[0]["seq"]) if top else int(doc["seq"])) + SEQ_GAP

    async def _capacity(
        self, template_rid: str, holds: list[tuple[str, datetime]], report: LoadReport
    ) -> None:
        """Matching's capacity weeks of the history flows (shape of a live document)."""
        dbname = next((d for d in self.databases if d.endswith("matching")), None)
        if dbname is None:
            return
        coll = self.client[dbname]["capacity"]
        field_prefix = f"{template_rid}__"
        live = None
        async for d in coll.find({}):
            if any(str(h).startswith(field_prefix) for h in (d.get("holds") or {})):
                live = d
                break
        if live is None or not isinstance(live.get("holds"), dict):
            say("history: no capacity document of the template flow found; capacity not loaded")
            return
        hold_key = next(h for h in live["holds"] if str(h).startswith(field_prefix))
        hold = live["holds"][hold_key]
        e4 = int(hold.get("e4", 0)) if isinstance(hold, dict) else 0
        weeks: dict[str, dict[str, Any]] = {}
        for provider, at in holds:
            y, w, _ = at.isocalendar()
            week = f"{y}-W{w:02d}"
            key = f"{provider}:{week}"
            doc = weeks.get(key)
            if doc is None:
                doc = {**{k: v for k, v in live.items() if k not in OUTBOX_FIELDS}}
                doc.update({"_id": key, "provider_id": provider, "week": week})
                doc["reserved_e4"], doc["holds"] = 0, {}
                weeks[key] = doc
            rid = f"req_{uuid.uuid4().hex}"
            h = dict(hold) if isinstance(hold, dict) else {}
            h.update({"request_id": rid, "at": at})
            doc["holds"][f"{rid}__a1"] = h
            doc["reserved_e4"] += e4
        docs = list(weeks.values())
        for i in range(0, len(docs), 200):
            try:
                await coll.insert_many(docs[i : i + 200], ordered=False)
                report.per_collection[f"{dbname}.capacity"] += len(docs[i : i + 200])
            except BulkWriteError as exc:
                report.duplicates += len(exc.details.get("writeErrors", []))


def _numbered(d: dict[str, Any]) -> bool:
    return isinstance(d.get("seq"), int) and isinstance(d.get("number"), str)


def _renumber(number: str, seq: int) -> str:
    m = re.search(r"(\d+)$", number)
    if not m:
        return f"{number}-{seq}"
    return number[: m.start()] + f"{seq:0{len(m.group(1))}d}"


def _dates(doc: dict[str, Any]) -> Iterable[datetime]:
    nodes: list[tuple[Path, Any]] = []
    _walk(doc, (), nodes)
    return (v for _, v in nodes if isinstance(v, datetime))


def _pattern(tokens: set[str]) -> re.Pattern[str]:
    alts = sorted((t for t in tokens if t), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in alts) or r"(?!x)x")
