"""The search read model on stdlib SQLite: one file per replica, FTS5 for text.

Why SQLite (see the README for the figures): it is in the standard library (no
new dependency, no server), answers structured filters from B-tree indexes in
well under a millisecond at 1M offers, pages by keyset (`(price_key,
offer_id) > cursor` on an index in that order) so a page costs the same on
page 1 and page 500, and keeps its topic positions in the same transaction as
the snapshots they produced, so a restart resumes exactly where it stopped.

Tables:

- `offers`: one row per offer ever seen (`version` guards every upsert; a
  withdrawn offer stays as a tombstone without its snapshot). `live` = the
  offer is published and its provider is known and active; every search
  index is partial on `live = 1`. The provider's zone is copied on the row.
- `offer_skill` (`code@1`..`code@level`, so "at least level L" is one
  equality) and `offer_lang` (`x:<tag>` exact, `p:<primary>`): side tables
  for the multi-valued filters.
- `offer_text`: FTS5 over the title and description *already folded* by
  `domain.text.search_terms` (so the index and the specification cut words
  alike), tokenizer `unicode61 remove_diacritics 2`, prefix indexes for 2-
  and 3-letter prefixes.
- `providers` (id, version, active, zone), `positions`, `meta`.

Searches run in a small thread pool on their own read connections (WAL: a
reader never waits for the writer); writes go through one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from delego_shared.events.catalog import (
    OfferSnapshot,
    OfferStatus,
    ProviderSnapshot,
    ProviderStatus,
)

from ..domain import (
    REFERENCE_FIELD,
    OfferQuery,
    SearchPage,
    SortKey,
    amount_key,
    encode_cursor,
    search_terms,
    sort_key,
    text_words,
)
from ..domain.taxonomy import MIN_LEVEL
from ..domain.text import primary_language
from ..search_index import Positions

SCHEMA_VERSION = "4"
_CACHE_KIB = 65536  # page cache per connection (RSS stays bounded; the file may be larger)

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL, part INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, part));
CREATE TABLE IF NOT EXISTS providers (
    provider_id TEXT PRIMARY KEY, version INTEGER NOT NULL,
    active INTEGER NOT NULL, tz TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offers (
    id INTEGER PRIMARY KEY,
    offer_id TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    provider_id TEXT NOT NULL,
    published INTEGER NOT NULL,
    category TEXT, pricing_model TEXT, delivery_mode TEXT, currency TEXT, price_key TEXT,
    skills TEXT, langs TEXT, posting_keys TEXT,
    snapshot TEXT);
CREATE TABLE IF NOT EXISTS postings (
    key TEXT NOT NULL, price_key TEXT NOT NULL, offer_id TEXT NOT NULL, id INTEGER NOT NULL,
    live INTEGER NOT NULL, category TEXT NOT NULL, pricing_model TEXT NOT NULL,
    delivery_mode TEXT NOT NULL, currency TEXT NOT NULL, tz TEXT,
    skills TEXT NOT NULL, langs TEXT NOT NULL,
    PRIMARY KEY (key, price_key, offer_id)) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS offer_text USING fts5(
    words, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3', columnsize = 0);
"""

_INDEXES = """
CREATE INDEX IF NOT EXISTS offers_by_provider ON offers (provider_id);
"""

_POSTING_COLUMNS = (
    "key, price_key, offer_id, id, live, category, pricing_model, delivery_mode, currency, "
    "tz, skills, langs"
)
_OFFER_COLUMNS = (
    "version, provider_id, published, category, pricing_model, delivery_mode, currency, "
    "price_key, skills, langs, posting_keys, snapshot"
)
_INSERT_OFFER = (
    f"INSERT INTO offers (id, offer_id, {_OFFER_COLUMNS}) "  # noqa: S608
    f"VALUES ({', '.join(['?'] * (2 + _OFFER_COLUMNS.count(',') + 1))})"
)
_POSTINGS_OF_OFFERS = f"""
INSERT INTO postings ({_POSTING_COLUMNS})
SELECT k.value, o.price_key, o.offer_id, o.id, coalesce(pr.active, 0), o.category,
       o.pricing_model, o.delivery_mode, o.currency, pr.tz, o.skills, o.langs
FROM offers o JOIN json_each(o.posting_keys) k
LEFT JOIN providers pr ON pr.provider_id = o.provider_id
WHERE o.published = 1
ORDER BY 1, 2, 3
"""  # noqa: S608
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
ALL = "*"


@dataclass(frozen=True)
class OfferRow:
    """What the index keeps of a published offer (mapped from its published JSON form)."""

    offer_id: str
    version: int
    provider_id: str
    category: str
    pricing_model: str
    delivery_mode: str
    currency: str
    price_key: str
    skills: str
    """` code@1 code@2 ... ` (padded with spaces: `instr` finds ` code@L `)"""
    langs: str
    """` x:fr-be p:fr ... `"""
    words: str
    snapshot: str

    def posting_keys(self) -> list[str]:
        """The postings this offer is listed under (each an ordered path for search)."""
        return [
            ALL,
            f"c:{self.category}",
            *(f"s:{k}" for k in self.skills.split()),
            *(f"l:{k}" for k in self.langs.split() if k.startswith("p:")),
        ]


def offer_row(data: Mapping[str, Any]) -> OfferRow:
    """A published offer's row from its JSON form (`OfferSnapshot.model_dump(mode="json")`,
    as stored and as published), without building the model: a rebuild reads 1M of them."""
    pricing = data["pricing"]
    ref = pricing[REFERENCE_FIELD[pricing["model"]]]
    skills = sorted(
        {f"{s['code']}@{lv}" for s in data["skills"] for lv in range(MIN_LEVEL, s["level"] + 1)}
    )
    tags = {t.lower() for t in data["languages"]}
    langs = sorted({f"x:{t}" for t in tags} | {f"p:{primary_language(t)}" for t in tags})
    return OfferRow(
        offer_id=data["offer_id"],
        version=data["version"],
        provider_id=data["provider_id"],
        category=data["category"],
        pricing_model=pricing["model"],
        delivery_mode=data["delivery_mode"],
        currency=ref["currency"],
        price_key=amount_key(Decimal(ref["amount"])),
        skills=f" {' '.join(skills)} ",
        langs=f" {' '.join(langs)} ",
        words=" ".join(text_words(data["title"], data.get("description", ""))),
        snapshot=_JSON.encode(data),
    )


Tombstone = tuple[Any, ...]
"""The `offers` values of a withdrawn (or draft) offer: only its version matters."""


def tombstone(data: Mapping[str, Any]) -> Tombstone:
    return (data["offer_id"], data["version"], data["provider_id"], 0, *([None] * 9))


def prepare(offers: Iterable[Mapping[str, Any]]) -> list[OfferRow | Tombstone]:
    """Rows of offers in their JSON form (published ones in full, others as tombstones)."""
    return [
        offer_row(o) if o["status"] == OfferStatus.PUBLISHED.value else tombstone(o) for o in offers
    ]


def wanted_lang_keys(wanted: str) -> list[str]:
    """The keys of the offers `domain.text.language_matches(wanted, ·)` accepts."""
    w = wanted.lower()
    if "-" not in w:
        return [f"p:{w}"]  # any region
    return [f"x:{w}", f"x:{primary_language(w)}"]  # the variant, or the plain language


class SqliteSearchIndex:
    """`SearchIndex` on a SQLite file (readers open their own connections to it)."""

    def __init__(self, path: str | Path, *, readers: int = 2) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="search")
        self._readers: list[sqlite3.Connection] = []
        self._counts: Counter[str] = Counter()
        """Postings per key: the search starts from the rarest key of a query."""
        with self._write_lock:
            self._ensure_schema()
            self._count_postings()

    # -- connections ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        return con

    def _reader(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._connect()
            con.execute("PRAGMA query_only = 1")
            con.execute("PRAGMA temp_store = MEMORY")  # small sorts and FTS result sets
            self._local.con = con
            self._readers.append(con)
        return con

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for con in [*self._readers, self._writer]:
            con.close()

    def _ensure_schema(self) -> None:
        con = self._writer
        row = None
        with contextlib.suppress(sqlite3.OperationalError):  # a new file has no meta yet
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            for table in ("positions", "providers", "offers", "postings", "offer_text"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
        con.executescript(_TABLES)
        con.executescript(_INDEXES)
        con.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
        )

    def _count_postings(self) -> None:
        rows = self._writer.execute("SELECT key, count(*) FROM postings GROUP BY key")
        self._counts = Counter({k: n for k, n in rows})

    # -- the port -------------------------------------------------------------------------

    async def search(self, query: OfferQuery, after: SortKey | None) -> SearchPage:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.search_now, query, after)

    async def apply(
        self,
        offers: Sequence[OfferSnapshot] = (),
        providers: Sequence[ProviderSnapshot] = (),
        positions: Mapping[tuple[str, int], int] | None = None,
    ) -> int:
        return await asyncio.to_thread(self.apply_now, offers, providers, positions)

    async def positions(self) -> Positions:
        return await asyncio.to_thread(self.positions_now)

    async def rebuild(
        self,
        positions: Positions,
        providers: Sequence[ProviderSnapshot],
        offers: AsyncIterable[Sequence[Mapping[str, Any]]],
    ) -> int:
        await asyncio.to_thread(self.begin_rebuild, providers)
        count = 0
        writing: asyncio.Future[int] | None = None
        async for batch in offers:
            rows = prepare(batch)  # mapped here while the previous batch is written
            if writing is not None:
                count += await writing
            writing = asyncio.ensure_future(asyncio.to_thread(self.load_rows, rows))
        if writing is not None:
            count += await writing
        await asyncio.to_thread(self.end_rebuild, positions)
        return count

    # -- synchronous implementation (also used by the benchmark) --------------------------

    def positions_now(self) -> Positions:
        rows = self._reader().execute("SELECT topic, part, next_offset FROM positions")
        return {(t, p): o for t, p, o in rows}

    def apply_now(
        self,
        offers: Iterable[OfferSnapshot] = (),
        providers: Iterable[ProviderSnapshot] = (),
        positions: Mapping[tuple[str, int], int] | None = None,
    ) -> int:
        with self._write_lock, self._transaction() as con:
            newer = sum(self._upsert_provider(con, p) for p in providers)
            newer += sum(self._upsert_offer(con, o) for o in offers)
            if positions:
                self._save_positions(con, positions)
        return newer

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        con = self._writer
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def begin_rebuild(self, providers: Iterable[ProviderSnapshot]) -> None:
        """Forget everything but the providers given. Postings are written once at the end,
        in key order, from the offers (random inserts into a 6M-row B-tree would cost a
        page write each)."""
        with self._write_lock, self._transaction() as con:
            for table in ("positions", "providers", "offers", "postings", "offer_text"):
                con.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
            self._counts.clear()
        self.apply_now(providers=list(providers))

    def load_now(self, offers: Sequence[Mapping[str, Any]]) -> int:
        """Insert a batch of offers (JSON form) during a rebuild."""
        return self.load_rows(prepare(offers))

    def load_rows(self, rows: Sequence[OfferRow | Tombstone]) -> int:
        """Insert prepared offers during a rebuild: they are new, so no version check, and
        every statement runs once for the whole batch."""
        with self._write_lock, self._transaction() as con:
            first = self._next_id(con)
            con.executemany(
                _INSERT_OFFER,
                [
                    (first + i, *(self._offer_values(r) if isinstance(r, OfferRow) else r))
                    for i, r in enumerate(rows)
                ],
            )
            texts = [(first + i, r.words) for i, r in enumerate(rows) if isinstance(r, OfferRow)]
            con.executemany("INSERT INTO offer_text (rowid, words) VALUES (?, ?)", texts)
        return len(rows)

    def end_rebuild(self, positions: Positions) -> None:
        with self._write_lock:
            with self._transaction() as con:
                con.execute(_POSTINGS_OF_OFFERS)
                self._save_positions(con, positions)
            self._count_postings()
            self._writer.execute("ANALYZE")
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @staticmethod
    def _next_id(con: sqlite3.Connection) -> int:
        return int(con.execute("SELECT coalesce(max(id), 0) + 1 FROM offers").fetchone()[0])

    @staticmethod
    def _save_positions(con: sqlite3.Connection, positions: Mapping[tuple[str, int], int]) -> None:
        con.executemany(
            "INSERT INTO positions (topic, part, next_offset) VALUES (?, ?, ?) "
            "ON CONFLICT (topic, part) DO UPDATE SET next_offset = "
            "max(next_offset, excluded.next_offset)",
            [(t, p, o) for (t, p), o in positions.items()],
        )

    @staticmethod
    def _offer_values(row: OfferRow) -> tuple[Any, ...]:
        return (
            row.offer_id,
            row.version,
            row.provider_id,
            1,
            row.category,
            row.pricing_model,
            row.delivery_mode,
            row.currency,
            row.price_key,
            row.skills,
            row.langs,
            _JSON.encode(row.posting_keys()),
            row.snapshot,
        )

    @staticmethod
    def _postings(row: OfferRow, oid: int, live: bool, tz: str | None) -> list[tuple[Any, ...]]:
        rest = (
            int(live),
            row.category,
            row.pricing_model,
            row.delivery_mode,
            row.currency,
            tz,
            row.skills,
            row.langs,
        )
        return [(k, row.price_key, row.offer_id, oid, *rest) for k in row.posting_keys()]

    def _insert_postings(self, con: sqlite3.Connection, postings: list[tuple[Any, ...]]) -> None:
        con.executemany(
            f"INSERT INTO postings ({_POSTING_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            postings,
        )
        self._counts.update(p[0] for p in postings)

    def _delete_postings(self, con: sqlite3.Connection, row: OfferRow) -> None:
        keys = row.posting_keys()
        con.executemany(
            "DELETE FROM postings WHERE key = ? AND price_key = ? AND offer_id = ?",
            [(k, row.price_key, row.offer_id) for k in keys],
        )
        self._counts.subtract(keys)

    def _stored_row(self, con: sqlite3.Connection, oid: int) -> OfferRow | None:
        found = con.execute(
            "SELECT snapshot FROM offers WHERE id = ? AND published = 1", (oid,)
        ).fetchone()
        return offer_row(json.loads(found[0])) if found is not None else None

    def _upsert_provider(self, con: sqlite3.Connection, provider: ProviderSnapshot) -> bool:
        row = con.execute(
            "SELECT version FROM providers WHERE provider_id = ?", (provider.provider_id,)
        ).fetchone()
        if row is not None and row[0] >= provider.version:
            return False
        active = provider.status is ProviderStatus.ACTIVE
        con.execute(
            "INSERT INTO providers (provider_id, version, active, tz) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (provider_id) DO UPDATE SET version = excluded.version, "
            "active = excluded.active, tz = excluded.tz",
            (provider.provider_id, provider.version, int(active), provider.time_zone),
        )
        published = con.execute(
            "SELECT snapshot FROM offers WHERE provider_id = ? AND published = 1",
            (provider.provider_id,),
        ).fetchall()
        for (snapshot,) in published:
            offer = offer_row(json.loads(snapshot))
            con.executemany(
                "UPDATE postings SET live = ?, tz = ? "
                "WHERE key = ? AND price_key = ? AND offer_id = ?",
                [
                    (int(active), provider.time_zone, k, offer.price_key, offer.offer_id)
                    for k in offer.posting_keys()
                ],
            )
        return True

    def _upsert_offer(self, con: sqlite3.Connection, offer: OfferSnapshot) -> bool:
        old = con.execute(
            "SELECT id, version FROM offers WHERE offer_id = ?", (offer.offer_id,)
        ).fetchone()
        if old is not None and old[1] >= offer.version:
            return False
        data = offer.model_dump(mode="json")
        row = offer_row(data) if offer.status is OfferStatus.PUBLISHED else None
        values = self._offer_values(row) if row is not None else tombstone(data)
        if old is None:
            oid = self._next_id(con)
            con.execute(_INSERT_OFFER, (oid, *values))
        else:
            oid = old[0]
            before = self._stored_row(con, oid)
            if before is not None:
                self._delete_postings(con, before)
                con.execute("DELETE FROM offer_text WHERE rowid = ?", (oid,))
            assignments = ", ".join(f"{c.strip()} = ?" for c in _OFFER_COLUMNS.split(","))
            con.execute(
                f"UPDATE offers SET {assignments} WHERE id = ?",  # noqa: S608
                (*values[1:], oid),
            )
        if row is not None:
            provider = con.execute(
                "SELECT active, tz FROM providers WHERE provider_id = ?", (offer.provider_id,)
            ).fetchone()
            active, tz = provider if provider is not None else (0, None)
            self._insert_postings(con, self._postings(row, oid, bool(active), tz))
            con.execute("INSERT INTO offer_text (rowid, words) VALUES (?, ?)", (oid, row.words))
        return True

    # -- search ---------------------------------------------------------------------------

    def search_now(self, query: OfferQuery, after: SortKey | None) -> SearchPage:
        sql, params = search_sql(query, after, self._counts)
        if sql is None:
            return SearchPage(items=[])
        rows = self._reader().execute(sql, params).fetchall()
        page = [OfferSnapshot.model_validate_json(r[0]) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return SearchPage(
            items=page, next_cursor=encode_cursor(sort_key(page[-1])) if more else None
        )

    def explain(self, query: OfferQuery, after: SortKey | None = None) -> list[str]:
        """The query plan (for the benchmark and for tuning)."""
        sql, params = search_sql(query, after, self._counts)
        if sql is None:
            return ["empty"]
        rows = self._reader().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [str(r[-1]) for r in rows]

    def count(self, query: OfferQuery) -> int:
        """How many offers match (the benchmark's "matches" column)."""
        sql, params = search_sql(query, None, self._counts, select="count(*)")
        assert sql is not None
        unordered = sql.split(" ORDER BY")[0]
        return int(self._reader().execute(unordered, params[:-1]).fetchone()[0])


def search_sql(
    query: OfferQuery,
    after: SortKey | None,
    counts: Mapping[str, int] | None = None,
    select: str = "o.snapshot",
) -> tuple[str | None, list[Any]]:
    """The SQL of a checked query; None when nothing can match (a cursor past every price).

    It walks the postings of ONE key in `(price_key, offer_id)` order, the rarest key of
    the query by `counts` (all offers when it has none), checks every other filter on
    the posting itself (it carries them all) and stops at the page's end: a page costs
    at most the number of postings of that key, usually far less.
    """
    counts = counts or {}
    candidates = [ALL]
    if query.category is not None:
        candidates.append(f"c:{query.category}")
    if query.skill is not None:
        candidates.append(f"s:{query.skill}@{query.min_level or MIN_LEVEL}")
    if query.language is not None:
        candidates.append(f"l:p:{primary_language(query.language)}")
    key = min(candidates, key=lambda k: counts.get(k, 0) if k != ALL else sum(counts.values()))
    where = ["p.key = ?", "p.live = 1"]
    params: list[Any] = [key]

    def add(condition: str, *values: Any) -> None:
        where.append(condition)
        params.extend(values)

    if query.category is not None:
        add("p.category = ?", query.category)
    if query.skill is not None:
        add("instr(p.skills, ?) > 0", f" {query.skill}@{query.min_level or MIN_LEVEL} ")
    if query.language is not None:
        keys = wanted_lang_keys(query.language)
        add(
            "(" + " OR ".join(["instr(p.langs, ?) > 0"] * len(keys)) + ")",
            *[f" {k} " for k in keys],
        )
    if query.max_price is not None:
        add("p.currency = ?", query.max_price.currency)
        try:
            add("p.price_key <= ?", amount_key(query.max_price.amount, ROUND_FLOOR))
        except ValueError:
            pass  # at or above every indexable price: no bound
    if query.pricing_model is not None:
        add("p.pricing_model = ?", query.pricing_model)
    if query.delivery_mode is not None:
        add("p.delivery_mode = ?", query.delivery_mode.value)
    if query.time_zones is not None:
        marks = ", ".join("?" * len(query.time_zones))
        add(f"p.tz IN ({marks})", *query.time_zones)
    if query.text is not None:
        match = " ".join(f'"{w}"*' for w in search_terms(query.text))
        add("p.id IN (SELECT rowid FROM offer_text WHERE offer_text MATCH ?)", match)
    if after is not None:
        amount, offer_id = after
        if amount >= 0:
            try:
                bound = amount_key(amount, ROUND_FLOOR)
            except ValueError:
                return None, []  # past the highest indexable price
            if Decimal(bound) == amount:
                add("(p.price_key, p.offer_id) > (?, ?)", bound, offer_id)
            else:  # between two keys: every offer at the lower key sorts before it
                add("p.price_key > ?", bound)
    sql = (
        f"SELECT {select} FROM postings p JOIN offers o ON o.id = p.id WHERE "  # noqa: S608
        + " AND ".join(where)
        + " ORDER BY p.price_key, p.offer_id LIMIT ?"
    )
    params.append(query.limit + 1)
    return sql, params


__all__ = ["OfferRow", "SqliteSearchIndex", "offer_row", "search_sql", "wanted_lang_keys"]
