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
- `offers.words`: the title and description *already folded* by
  `domain.text.search_terms` (so the index and the specification cut words
  alike), as ` w1 w2 ... `: `instr(words, ' tradu')` is the specification's
  prefix match, checked on the offers a price-ordered walk meets.
- `offer_text`: FTS5 over the same words (contentless, `detail=none`: only
  which offers hold a word), tokenizer `unicode61 remove_diacritics 2`, prefix
  indexes for 1- to 3-letter prefixes; it narrows text queries whose words
  are too rare for the walk (by their first 3 letters; `words` decides).
- `snapshots`: the published JSON of each offer, read only for a page's items
  (kept apart so that the rows a search walks stay small).
- `providers` (id, version, active, zone), `positions`, `meta`.

Searches run in a small thread pool on their own read connections (WAL: a
reader never waits for the writer); writes go through one connection. A
rebuild writes a NEW file without journal and swaps it in at the end (see
`begin_rebuild`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import orjson
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

SCHEMA_VERSION = "5"
_CACHE_KIB = 65536  # page cache per connection (RSS stays bounded; the file may be larger)
_BUILD_CACHE_KIB = 131072  # the rebuild's connection: the postings sort and FTS merges
_BUILD_THREADS = 0
PREFIX_INDEXED = 3
"""Longest prefix FTS5 keeps an index for (`prefix = '1 2 3'`)."""
TEXT_WALK = 2048
"""Postings a text search walks in price order (testing the words of each) before it
asks FTS5 for the whole match set instead (see `SqliteSearchIndex.search_now`)."""

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
    offer_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    provider_id TEXT NOT NULL,
    published INTEGER NOT NULL,
    category TEXT, pricing_model TEXT, delivery_mode TEXT, currency TEXT, price_key TEXT,
    skills TEXT, langs TEXT, posting_keys TEXT, words TEXT);
CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, snapshot BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS postings (
    key TEXT NOT NULL, price_key TEXT NOT NULL, offer_id TEXT NOT NULL, id INTEGER NOT NULL,
    live INTEGER NOT NULL, category TEXT NOT NULL, pricing_model TEXT NOT NULL,
    delivery_mode TEXT NOT NULL, currency TEXT NOT NULL, tz TEXT,
    skills TEXT NOT NULL, langs TEXT NOT NULL,
    PRIMARY KEY (key, price_key, offer_id)) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS offer_text USING fts5(
    words, content = '', detail = none, columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3');
"""
_DROPPED = ("positions", "providers", "offers", "snapshots", "postings", "offer_text")

_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS offers_by_offer_id ON offers (offer_id);
CREATE INDEX IF NOT EXISTS offers_by_provider ON offers (provider_id);
"""
"""Secondary indexes: a rebuild creates them once its rows are in (one sort each)."""

_POSTING_COLUMNS = (
    "key, price_key, offer_id, id, live, category, pricing_model, delivery_mode, currency, "
    "tz, skills, langs"
)
_OFFER_COLUMNS = (
    "version, provider_id, published, category, pricing_model, delivery_mode, currency, "
    "price_key, skills, langs, posting_keys, words"
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
    """` w1 w2 ... ` (folded; padded so that `instr(words, ' ' || prefix)` is a prefix match)"""
    snapshot: bytes

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
        words=f" {' '.join(text_words(data['title'], data.get('description', '')))} ",
        snapshot=orjson.dumps(data, default=str),
    )


Tombstone = tuple[Any, ...]
"""The `offers` values of a withdrawn (or draft) offer: only its version matters."""


def tombstone(data: Mapping[str, Any]) -> Tombstone:
    return (data["offer_id"], data["version"], data["provider_id"], 0, *([None] * 9))


_ROW_OF_POSTINGS = "posting_keys, price_key, offer_id, words"
"""What `_unlist` needs of an offer's row to take it out of postings and FTS."""


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


class _Gate:
    """Searches share it; swapping a rebuilt file in takes it alone (no search may run on
    a connection that is being closed)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sharing = 0
        self._alone = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._alone)
            self._sharing += 1
        try:
            yield
        finally:
            with self._cond:
                self._sharing -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._alone)
            self._alone = True
            self._cond.wait_for(lambda: self._sharing == 0)
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()


class SqliteSearchIndex:
    """`SearchIndex` on a SQLite file (readers open their own connections to it).

    `text_walk`: postings a text search walks before it turns to FTS5 (0: FTS5 only);
    a parameter so that the property test covers both paths and their seam.
    """

    def __init__(self, path: str | Path, *, readers: int = 2, text_walk: int = TEXT_WALK) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.text_walk = text_walk
        self._write_lock = threading.Lock()
        self._gate = _Gate()
        self._generation = 0
        """Bumped when a rebuilt file is swapped in: reader connections reopen."""
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="search")
        self._readers: list[sqlite3.Connection] = []
        self._counts: Counter[str] = Counter()
        """Postings per key: the search starts from the rarest key of a query."""
        self._build: sqlite3.Connection | None = None
        self._build_next = 1
        self._writer = self._connect(self.path)
        with self._write_lock:
            self._ensure_schema()
            self._count_postings()

    # -- connections ----------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        return con

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (call under `self._gate.shared()`)."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None or self._local.generation != self._generation:
            con = self._connect(self.path)
            con.execute("PRAGMA query_only = 1")
            con.execute("PRAGMA temp_store = MEMORY")  # small sorts and FTS result sets
            self._local.con, self._local.generation = con, self._generation
            self._readers.append(con)
        return con

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for con in [*self._readers, self._writer]:
            con.close()
        if self._build is not None:
            self._build.close()

    def _ensure_schema(self) -> None:
        con = self._writer
        row = None
        with contextlib.suppress(sqlite3.OperationalError):  # a new file has no meta yet
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            for table in _DROPPED:
                con.execute(f"DROP TABLE IF EXISTS {table}")
        create_schema(con)

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
        with self._gate.shared():
            rows = self._reader().execute("SELECT topic, part, next_offset FROM positions")
            return {(t, p): o for t, p, o in rows}

    def apply_now(
        self,
        offers: Iterable[OfferSnapshot] = (),
        providers: Iterable[ProviderSnapshot] = (),
        positions: Mapping[tuple[str, int], int] | None = None,
    ) -> int:
        with self._write_lock, self._transaction(self._writer) as con:
            newer = sum(self._upsert_provider(con, p) for p in providers)
            newer += sum(self._upsert_offer(con, o) for o in offers)
            if positions:
                self._save_positions(con, positions)
        return newer

    @staticmethod
    @contextlib.contextmanager
    def _transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def _building(self) -> Path:
        return self.path.with_name(self.path.name + ".rebuild")

    def begin_rebuild(self, providers: Iterable[ProviderSnapshot]) -> None:
        """Start writing a NEW file (`<name>.rebuild`) with these providers and no offers.

        It is written without journal and without fsync, into a large page cache, with
        its secondary indexes and its postings made once at the end (in key order; random
        inserts into a 6M-row B-tree would cost a page write each): a crash leaves the
        current file as it was and a half-written one that the next rebuild deletes; the
        positions are written last, so a crash means one more rebuild, never a wrong
        index. The current file keeps answering until `end_rebuild` swaps the new one in.
        """
        with self._write_lock:
            if self._build is not None:
                self._build.close()
            for leftover in (self._building, Path(f"{self._building}-journal")):
                leftover.unlink(missing_ok=True)
            con = sqlite3.connect(self._building, isolation_level=None, check_same_thread=False)
            for pragma in (
                "journal_mode = OFF",
                "synchronous = OFF",
                "locking_mode = EXCLUSIVE",
                f"cache_size = -{_BUILD_CACHE_KIB}",
                f"threads = {_BUILD_THREADS}",  # the sorter's helper threads
            ):
                con.execute(f"PRAGMA {pragma}")
            con.executescript(_TABLES)
            con.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
            con.executemany(_UPSERT_PROVIDER, [_provider_values(p) for p in providers])
            con.execute("BEGIN")  # one transaction for the whole load (no journal to grow)
            self._build, self._build_next = con, 1

    def load_now(self, offers: Sequence[Mapping[str, Any]]) -> int:
        """Insert a batch of offers (JSON form) during a rebuild."""
        return self.load_rows(prepare(offers))

    def load_rows(self, rows: Sequence[OfferRow | Tombstone]) -> int:
        """Insert prepared offers into the file being rebuilt: they are new, so no version
        check, and every statement runs once for the whole batch."""
        with self._write_lock:
            con = self._build
            if con is None:
                raise RuntimeError("load_rows outside begin_rebuild/end_rebuild")
            first = self._build_next
            self._build_next += len(rows)
            con.executemany(
                _INSERT_OFFER,
                [
                    (first + i, *(self._offer_values(r) if isinstance(r, OfferRow) else r))
                    for i, r in enumerate(rows)
                ],
            )
            published = [(first + i, r) for i, r in enumerate(rows) if isinstance(r, OfferRow)]
            con.executemany(
                "INSERT INTO snapshots (id, snapshot) VALUES (?, ?)",
                [(i, r.snapshot) for i, r in published],
            )
            con.executemany(
                "INSERT INTO offer_text (rowid, words) VALUES (?, ?)",
                [(i, r.words) for i, r in published],
            )
        return len(rows)

    def end_rebuild(self, positions: Positions) -> None:
        """Postings, indexes, positions and statistics into the new file, then swap it in:
        searches wait for the swap (milliseconds), never see a half-built index."""
        with self._write_lock:
            con = self._build
            if con is None:
                raise RuntimeError("end_rebuild without begin_rebuild")
            con.execute(_POSTINGS_OF_OFFERS)
            self._save_positions(con, positions)
            con.execute("COMMIT")
            con.executescript(_INDEXES)
            con.execute("PRAGMA analysis_limit = 1000")  # sampled statistics: seconds, not minutes
            con.execute("ANALYZE")
            con.execute("PRAGMA locking_mode = NORMAL")
            con.execute("PRAGMA journal_mode = WAL")  # the file's mode from now on
            con.close()
            self._build = None
            with self._gate.alone():
                for old in [*self._readers, self._writer]:
                    old.close()
                self._readers.clear()
                self._generation += 1
                for stale in ("-wal", "-shm"):  # the old file's; closed above (checkpointed)
                    Path(f"{self.path}{stale}").unlink(missing_ok=True)
                os.replace(self._building, self.path)
                self._writer = self._connect(self.path)
            self._count_postings()

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
            orjson.dumps(row.posting_keys()).decode(),
            row.words,
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

    def _unlist(self, con: sqlite3.Connection, oid: int) -> None:
        """Take a published offer out of postings, FTS and snapshots (its `offers` row,
        which says what to delete, is rewritten by the caller)."""
        found = con.execute(
            f"SELECT {_ROW_OF_POSTINGS} FROM offers WHERE id = ? AND published = 1",  # noqa: S608
            (oid,),
        ).fetchone()
        if found is None:
            return
        keys_json, price_key, offer_id, words = found
        keys: list[str] = orjson.loads(keys_json)
        con.executemany(
            "DELETE FROM postings WHERE key = ? AND price_key = ? AND offer_id = ?",
            [(k, price_key, offer_id) for k in keys],
        )
        self._counts.subtract(keys)
        # contentless FTS5: a row is deleted by giving the words it was indexed with
        con.execute(
            "INSERT INTO offer_text (offer_text, rowid, words) VALUES ('delete', ?, ?)",
            (oid, words),
        )
        con.execute("DELETE FROM snapshots WHERE id = ?", (oid,))

    def _upsert_provider(self, con: sqlite3.Connection, provider: ProviderSnapshot) -> bool:
        row = con.execute(
            "SELECT version FROM providers WHERE provider_id = ?", (provider.provider_id,)
        ).fetchone()
        if row is not None and row[0] >= provider.version:
            return False
        active = provider.status is ProviderStatus.ACTIVE
        con.execute(_UPSERT_PROVIDER, _provider_values(provider))
        published = con.execute(
            "SELECT posting_keys, price_key, offer_id FROM offers "
            "WHERE provider_id = ? AND published = 1",
            (provider.provider_id,),
        ).fetchall()
        con.executemany(
            "UPDATE postings SET live = ?, tz = ? WHERE key = ? AND price_key = ? AND offer_id = ?",
            [
                (int(active), provider.time_zone, k, price_key, offer_id)
                for keys_json, price_key, offer_id in published
                for k in orjson.loads(keys_json)
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
            oid = int(con.execute("SELECT coalesce(max(id), 0) + 1 FROM offers").fetchone()[0])
            con.execute(_INSERT_OFFER, (oid, *values))
        else:
            oid = old[0]
            self._unlist(con, oid)
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
            con.execute("INSERT INTO snapshots (id, snapshot) VALUES (?, ?)", (oid, row.snapshot))
        return True

    # -- search ---------------------------------------------------------------------------

    def search_now(self, query: OfferQuery, after: SortKey | None) -> SearchPage:
        """One page. Text queries first walk at most `text_walk` postings in price order,
        testing each offer's words (cheap when the words are common: the page fills
        early; FTS5 would hand over every offer holding them, 300k for a common word at
        1M); if the page is not full by then, it goes on from where the walk stopped,
        by walking on or against the FTS5 match set, whichever `_keep_walking`
        estimates cheaper."""
        with self._gate.shared():
            con = self._reader()
            need = query.limit + 1
            if query.text is None or self.text_walk <= 0:
                found = self._rows(con, search_sql(query, after, self._counts))
            else:
                stop = con.execute(*walked_to(query, after, self._counts, self.text_walk))
                last = stop.fetchone()  # None: fewer postings than that after the cursor
                walk = search_sql(query, after, self._counts, by_words=True, stop=last)
                found = self._rows(con, walk)
                if len(found) < need and last is not None:
                    on = self._keep_walking(con, query, after, last, len(found))
                    rest = search_sql(query, after, self._counts, by_words=on, start=last)
                    found += self._rows(con, rest)
            ids = [r[0] for r in found[: query.limit]]
            marks = ", ".join("?" * len(ids))
            snapshots = dict(
                con.execute(
                    f"SELECT id, snapshot FROM snapshots WHERE id IN ({marks})",  # noqa: S608
                    ids,
                ).fetchall()
            )
        page = [OfferSnapshot.model_validate_json(snapshots[i]) for i in ids]
        more = len(found) > query.limit
        return SearchPage(
            items=page, next_cursor=encode_cursor(sort_key(page[-1])) if more else None
        )

    def _keep_walking(
        self,
        con: sqlite3.Connection,
        query: OfferQuery,
        after: SortKey | None,
        last: Sequence[str],
        hits: int,
    ) -> bool:
        """After a walk that did not fill the page: walk on (no bound) or ask FTS5?

        The walk tells how common the words are among the offers that pass the other
        filters (`hits` of `passed`), hence about how many offers FTS5 would hand over,
        and how many more postings the walk needs for the page. A common word with
        rare filters that no posting key serves (zone, delivery mode) walks on; a rare
        word goes to FTS5. Costs measured here: ~1.5 us per walked posting, ~1 us per
        offer FTS5 hands over."""
        if hits == 0:
            return False  # rare words (or filters): FTS5's set is the small one
        untexted = query.model_copy(update={"text": None})
        sql, params = search_sql(untexted, after, self._counts, select="count(*)", stop=last)
        assert sql is not None
        passed = int(con.execute(sql.split(" ORDER BY")[0], params[:-1]).fetchone()[0])
        fts_offers = hits / max(passed, 1) * self._counts.get(ALL, 0)
        more_postings = (query.limit + 1 - hits) * self.text_walk / hits
        return 1.5 * more_postings < fts_offers

    @staticmethod
    def _rows(con: sqlite3.Connection, sql: tuple[str | None, list[Any]]) -> list[Any]:
        return con.execute(sql[0], sql[1]).fetchall() if sql[0] is not None else []

    def explain(self, query: OfferQuery, after: SortKey | None = None) -> list[str]:
        """The query plan (for the benchmark and for tuning); text: the walk's."""
        by_words = query.text is not None and self.text_walk > 0
        sql, params = search_sql(query, after, self._counts, by_words=by_words)
        if sql is None:
            return ["empty"]
        with self._gate.shared():
            rows = self._reader().execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        return [str(r[-1]) for r in rows]

    def count(self, query: OfferQuery) -> int:
        """How many offers match (the benchmark's "matches" column)."""
        sql, params = search_sql(query, None, self._counts, select="count(*)")
        assert sql is not None
        unordered = sql.split(" ORDER BY")[0]
        with self._gate.shared():
            return int(self._reader().execute(unordered, params[:-1]).fetchone()[0])


_UPSERT_PROVIDER = (
    "INSERT INTO providers (provider_id, version, active, tz) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (provider_id) DO UPDATE SET version = excluded.version, "
    "active = excluded.active, tz = excluded.tz WHERE excluded.version > version"
)
"""A provider's row, unless the stored one is as new (snapshots carry versions)."""


def _provider_values(provider: ProviderSnapshot) -> tuple[str, int, int, str]:
    active = provider.status is ProviderStatus.ACTIVE
    return (provider.provider_id, provider.version, int(active), provider.time_zone)


def create_schema(con: sqlite3.Connection) -> None:
    con.executescript(_TABLES)
    con.executescript(_INDEXES)
    con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))


def rarest_key(query: OfferQuery, counts: Mapping[str, int]) -> str:
    """The posting list a search walks: the query's rarest key (all offers when none)."""
    candidates = [ALL]
    if query.category is not None:
        candidates.append(f"c:{query.category}")
    if query.skill is not None:
        candidates.append(f"s:{query.skill}@{query.min_level or MIN_LEVEL}")
    if query.language is not None:
        candidates.append(f"l:p:{primary_language(query.language)}")
    return min(candidates, key=lambda k: counts.get(k, 0) if k != ALL else sum(counts.values()))


def _after(after: SortKey | None, table: str = "") -> tuple[str, list[Any]] | None:
    """The cursor as a condition on postings (`""` for none); None when nothing can follow
    it (past the highest indexable price)."""
    if after is None:
        return "", []
    amount, offer_id = after
    try:
        bound = amount_key(amount, ROUND_FLOOR)
    except ValueError:
        return None
    if Decimal(bound) == amount:
        return f" AND ({table}price_key, {table}offer_id) > (?, ?)", [bound, offer_id]
    return f" AND {table}price_key > ?", [bound]  # between two keys: the lower one sorts before


def search_sql(
    query: OfferQuery,
    after: SortKey | None,
    counts: Mapping[str, int] | None = None,
    select: str = "p.id",
    *,
    by_words: bool = False,
    start: Sequence[str] | None = None,
    stop: Sequence[str] | None = None,
) -> tuple[str | None, list[Any]]:
    """The SQL of a checked query; None when nothing can match (a cursor past every price).

    It walks the postings of ONE key (`rarest_key`) in `(price_key, offer_id)` order,
    checks every other filter on the posting itself (it carries them all) and stops at
    the page's end: a page costs at most the number of postings of that key, usually far
    less. Text: `by_words` tests each offer's words (`instr`, the specification's prefix
    match: cheap per posting, so for a bounded walk); otherwise the postings are tested
    against the FTS5 match set. `start` < rows <= `stop` (posting keys `(price_key,
    offer_id)`) bound the walk.
    """
    key = rarest_key(query, counts or {})
    cursor = _after(after, "p.")
    if cursor is None:
        return None, []
    where = ["p.key = ?" + cursor[0], "p.live = 1"]
    params: list[Any] = [key, *cursor[1]]

    def add(condition: str, *values: Any) -> None:
        where.append(condition)
        params.extend(values)

    if start is not None:
        add("(p.price_key, p.offer_id) > (?, ?)", *start)
    if stop is not None:
        add("(p.price_key, p.offer_id) <= (?, ?)", *stop)
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
    terms = search_terms(query.text) if query.text is not None else []
    if terms and not by_words:
        # FTS5 answers prefixes of 1-3 letters from its prefix indexes; a longer prefix
        # would merge the lists of every word it starts (6 ms per 30k offers), so it asks
        # for the first 3 letters and `instr` below checks the whole prefix
        match = " ".join(dict.fromkeys(f'"{w[:PREFIX_INDEXED]}"*' for w in terms))
        add("p.id IN (SELECT rowid FROM offer_text WHERE offer_text MATCH ?)", match)
    tables = "postings p"
    if terms:
        tables += " JOIN offers o ON o.id = p.id"
        for term in terms:  # last: only offers that passed every other filter are read
            add("instr(o.words, ?) > 0", f" {term}")
    sql = (
        f"SELECT {select} FROM {tables} WHERE "  # noqa: S608
        + " AND ".join(where)
        + " ORDER BY p.price_key, p.offer_id LIMIT ?"
    )
    params.append(query.limit + 1)
    return sql, params


def walked_to(
    query: OfferQuery, after: SortKey | None, counts: Mapping[str, int], walk: int
) -> tuple[str, list[Any]]:
    """The SQL of the `walk`-th posting a walk met (none: it met every posting of its key)."""
    cursor = _after(after)
    if cursor is None:
        return "SELECT NULL WHERE 0", []
    return (
        "SELECT price_key, offer_id FROM postings WHERE key = ?"  # noqa: S608
        + cursor[0]
        + " ORDER BY price_key, offer_id LIMIT 1 OFFSET ?",
        [rarest_key(query, counts), *cursor[1], walk - 1],
    )


__all__ = [
    "OfferRow",
    "SqliteSearchIndex",
    "offer_row",
    "rarest_key",
    "search_sql",
    "walked_to",
    "wanted_lang_keys",
]
