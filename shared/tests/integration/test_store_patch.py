"""Our FerretDB build's patch (deploy/local/ferretdb, applied by localinfra.py).

Point operations by `_id` use the `_id` index, whatever the filter's other keys,
on every read and write path; writes to different collections run concurrently
while single-document writes stay atomic (see also test_guarantees.py); stored
documents read back exactly through the faster JSON codec; the write-ahead log
is checkpointed in the background, not in a command. Every check is on an
observable of the server (query plan, which documents the filter saw, a
server-side order of events, SQLite's log index), none on timing.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import pytest_asyncio
from bson import Binary, Int64, ObjectId, Timestamp
from delego_shared.mongo import find_by_ids
from delego_shared.testing.infra import Infra
from pymongo import AsyncMongoClient, ReturnDocument, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

pytestmark = pytest.mark.integration

Doc = dict[str, Any]


@pytest_asyncio.fixture
async def db(infra: Infra, namespace: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    """A fresh database on our FerretDB build (the patch is FerretDB's, not MongoDB's)."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(infra.mongodb_url)
    info = await client.admin.command("buildInfo")
    if "ferretdbVersion" not in info:
        await client.close()
        pytest.skip("checks our FerretDB patch; the store is not FerretDB")
    yield client[f"{namespace}_store"]
    await client.drop_database(f"{namespace}_store")
    await client.close()


async def explain_find(db: AsyncDatabase[Doc], coll: str, flt: Doc) -> tuple[bool, list[str]]:
    """FerretDB's explain: `filterPushdown` and the SQLite query plan of the backend query."""
    res = await db.command("explain", {"find": coll, "filter": flt})
    return res["filterPushdown"], list(res["queryPlanner"]["Plan"])


def searches_id_index(plan: list[str]) -> bool:
    # SQLite's EXPLAIN QUERY PLAN: "SEARCH <table> USING INDEX <table>__id_ (<expr>=?)"
    return len(plan) == 1 and "SEARCH" in plan[0] and "__id_ (<expr>=?)" in plan[0]


async def test_id_point_queries_search_the_id_index(db: AsyncDatabase[Doc]) -> None:
    oid = ObjectId()
    await db["c"].insert_many([{"_id": f"k{i}", "v": i} for i in range(50)] + [{"_id": oid}])
    points: list[Doc] = [{"_id": "k7"}, {"_id": oid}]
    for flt in points:
        pushed, plan = await explain_find(db, "c", flt)
        assert pushed, flt
        assert searches_id_index(plan), (flt, plan)
    # not an _id equality or $in of strings/ObjectIds: scanned and filtered in Go, as upstream
    others: list[Doc] = [
        {"v": 7},
        {"_id": 7},
        {"_id": {"$in": ["k7", 7]}},
        {"_id": {"$in": []}},
        {"_id": {"$nin": ["k7"]}},
        {"_id": {"$in": ["k7"], "$ne": "k8"}},
    ]
    for flt in others:
        pushed, plan = await explain_find(db, "c", flt)
        assert not pushed, flt
        assert any("SCAN" in line for line in plan), (flt, plan)


async def test_id_in_lists_search_the_id_index_and_find_exactly_those(
    db: AsyncDatabase[Doc],
) -> None:
    oid = ObjectId()
    await db["c"].insert_many([{"_id": f"k{i}", "v": i} for i in range(50)] + [{"_id": oid}])
    wanted = ["k3", "k17", "missing", "k3", oid]
    for flt in ({"_id": {"$in": wanted}}, {"v": {"$gte": 10}, "_id": {"$in": wanted}}):
        pushed, plan = await explain_find(db, "c", flt)
        assert pushed, flt
        assert searches_id_index(plan), (flt, plan)  # SQLite: one search per listed id
    found = {d["_id"] async for d in db["c"].find({"_id": {"$in": wanted}})}
    assert found == {"k3", "k17", oid}
    # the rest of the filter still applies to what the index returns
    assert [d["_id"] async for d in db["c"].find({"_id": {"$in": wanted}, "v": {"$gte": 10}})] == [
        "k17"
    ]
    # batch writes by ids touch only those documents
    res = await db["c"].update_many({"_id": {"$in": ["k1", "k2", "nope"]}}, {"$inc": {"v": 100}})
    assert res.modified_count == 2
    assert (await db["c"].delete_many({"_id": {"$in": ["k1", "k4"]}})).deleted_count == 2
    assert await db["c"].count_documents({"v": {"$gte": 100}}) == 1  # k2
    assert await db["c"].count_documents({}) == 51 - 2


async def test_id_filter_with_other_keys_is_pushed_down(db: AsyncDatabase[Doc]) -> None:
    await db["c"].insert_many([{"_id": f"k{i}", "version": i, "f": {"sub": i}} for i in range(50)])
    for flt in (
        {"_id": "k3", "version": 3},
        {"version": 3, "_id": "k3"},
        {"_id": "k3", "f.sub": {"$exists": True}},
        {"_id": "k3", "$or": [{"version": 3}, {"version": 4}]},
    ):
        pushed, plan = await explain_find(db, "c", flt)
        assert pushed, flt
        assert searches_id_index(plan), (flt, plan)
        assert await db["c"].count_documents(flt) == 1, flt
    # the whole filter still applies to what the index returns
    assert await db["c"].find_one({"_id": "k3", "version": 4}) is None
    assert await db["c"].find_one({"_id": "k3", "f.sub": {"$exists": False}}) is None


async def test_every_path_shows_the_filter_only_the_document_with_that_id(
    db: AsyncDatabase[Doc],
) -> None:
    """A tripwire: the filter fails on any other document it is evaluated on.

    `{v: {$mod: [0, 0]}}` is an error when FerretDB evaluates it on a document
    (MongoDB rejects it up front); inside `$or` after `{_id: X}` it is reached
    only for documents whose _id is not X. Those documents come first in the
    table, so a scan hits them; the `_id` index never returns them.
    """
    coll = db["c"]
    await coll.insert_many([{"_id": f"other{i}", "v": i} for i in range(20)])
    await coll.insert_many([{"_id": f"k{i}", "v": 0, "version": 0} for i in range(8)])

    def tripwire(key: str, **more: Any) -> Doc:
        return {"$or": [{"_id": key}, {"v": {"$mod": [0, 0]}}], "_id": key, **more}

    # the tripwire is real: the same filter without the top-level _id is scanned
    with pytest.raises(OperationFailure, match="divisor cannot be 0"):
        await coll.find_one({"$or": [{"_id": "k0"}, {"v": {"$mod": [0, 0]}}]})

    inc = {"$inc": {"version": 1}}
    assert (await coll.find_one(tripwire("k0")) or {}).get("_id") == "k0"
    assert await coll.count_documents(tripwire("k0")) == 1
    assert [d["_id"] async for d in coll.find(tripwire("k0", version=0))] == ["k0"]
    # update: compare-and-set, multi, and upsert (matching and not)
    assert (await coll.update_one(tripwire("k1", version=0), inc)).modified_count == 1
    assert (await coll.update_one(tripwire("k1", version=0), inc)).modified_count == 0
    assert (await coll.update_many(tripwire("k2", version=0), inc)).modified_count == 1
    assert (await coll.update_one(tripwire("k3"), inc, upsert=True)).modified_count == 1
    res = await coll.update_one(tripwire("new1", version=5), inc, upsert=True)
    assert res.upserted_id == "new1"
    assert await coll.find_one({"_id": "new1"}) == {"_id": "new1", "version": 6}
    # findAndModify: update, upsert, remove
    doc = await coll.find_one_and_update(
        tripwire("k4", version=0), inc, return_document=ReturnDocument.AFTER
    )
    assert doc is not None
    assert doc["version"] == 1
    doc = await coll.find_one_and_update(
        tripwire("new2"), inc, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc == {"_id": "new2", "version": 1}
    assert (await coll.find_one_and_delete(tripwire("k5")) or {}).get("_id") == "k5"
    # delete
    assert (await coll.delete_one(tripwire("k6", version=0))).deleted_count == 1
    assert (await coll.delete_many(tripwire("k7"))).deleted_count == 1
    assert await coll.count_documents({}) == 20 + 8 - 3 + 2


async def test_ids_that_need_escaping_are_found_by_the_index(db: AsyncDatabase[Doc]) -> None:
    """The patched _id column expression compares the same JSON text as before."""
    keys = ['q"uote', "back\\slash", "<html>&amp;", "é日本\u2028", "tab\tnl\n", "\x01ctl"]
    coll = db["c"]
    await coll.insert_many([{"_id": k, "n": 0} for k in keys])
    for k in keys:
        assert await coll.find_one({"_id": k}) == {"_id": k, "n": 0}, k
        assert (await coll.update_one({"_id": k, "n": 0}, {"$inc": {"n": 1}})).modified_count == 1
        assert await coll.find_one({"_id": k}) == {"_id": k, "n": 1}, k
        pushed, plan = await explain_find(db, "c", {"_id": k})
        assert pushed
        assert searches_id_index(plan), plan
    assert (await coll.delete_many({"_id": keys[0]})).deleted_count == 1
    assert await coll.count_documents({}) == len(keys) - 1


async def test_stored_documents_read_back_exactly_through_the_faster_codec(
    db: AsyncDatabase[Doc],
) -> None:
    """The stored-document codec decodes with go-json (the patch): every BSON type a
    service stores, nested, with strings that need escaping, reads back as written,
    after an update as well (decoded, changed, encoded again)."""
    when = datetime(2026, 3, 29, 1, 30, 15, 123000, tzinfo=UTC)
    texts = ['q"uote', "back\\slash", "é日本\u2028\u2029", "tab\tnl\n\r", "\x01\x1f", "😀 𝄞", ""]
    doc: Doc = {
        "_id": "all",
        "s": texts,
        "i32": -(2**31),
        "i64": Int64(2**62 + 7),
        "f": 0.1 + 0.2,
        "neg0": -0.0,
        "big": 1.7976931348623157e308,
        "t": True,
        "none": None,
        "at": when,
        "oid": ObjectId("5f1d7a2b9c8e4d3a2b1c0d9e"),
        "bin": bytes(range(256)),
        "bin5": Binary(b"\x00md5\xff", 5),
        "ts": Timestamp(1700000000, 5),
        "nested": {"a": [1, {"b": [{"c": {"d": "deep"}}]}, {}], "empty": [], "e": {}},
        "keys": {"with space": 1, "ünï": 2, 'a"b': 3},
    }
    coll = db["codec"]
    await coll.insert_one(doc)
    got = await coll.find_one({"_id": "all"})
    assert got == {**doc, "at": when.replace(tzinfo=None)}
    assert isinstance(got["i64"], int) and got["i64"] == 2**62 + 7
    await coll.update_one({"_id": "all"}, {"$set": {"nested.e.x": texts}, "$inc": {"i64": 1}})
    got = await coll.find_one({"_id": "all"})
    assert got["nested"]["e"] == {"x": texts}
    assert got["i64"] == 2**62 + 8 and got["s"] == texts and got["bin"] == doc["bin"]


async def test_kept_statements_follow_collections_and_databases_made_again(
    infra: Infra, db: AsyncDatabase[Doc]
) -> None:
    """Statements are kept per SQL text (the patch); a collection dropped and created
    again under the same name is the same table and text, and a database dropped
    and created again is a new SQLite file: each is read and written exactly, with
    nothing of before. The same texts run over and over, so that the later ones go
    through kept statements."""
    for rnd in range(3):
        coll = db["kept"]
        await coll.insert_many([{"_id": f"k{i}", "r": rnd, "n": 0} for i in range(20)])
        for _ in range(5):
            for i in range(20):
                assert (await coll.update_one({"_id": f"k{i}"}, {"$inc": {"n": 1}})).matched_count
                assert (await coll.find_one({"_id": f"k{i}"}) or {}).get("n", 0) > 0
        assert await coll.find_one({"_id": "k3"}) == {"_id": "k3", "r": rnd, "n": 5}
        assert (await coll.delete_one({"_id": "k4"})).deleted_count == 1
        assert sorted([d["_id"] async for d in coll.find({}, {"_id": 1})]) == sorted(
            f"k{i}" for i in range(20) if i != 4
        )
        if rnd == 1:
            await db.client.drop_database(db.name)
        else:
            await coll.drop()


async def test_kept_statements_see_an_index_created_after_them(db: AsyncDatabase[Doc]) -> None:
    """An index created after the insert and update texts were kept binds them at once
    (SQLite prepares a statement again when the schema changed): a duplicate of the new
    unique key is refused on insert (E11000) and on update (FerretDB v1 reports that one as
    an InternalError, with or without the patch), and nothing is changed."""
    coll = db["late_index"]
    for i in range(30):
        await coll.insert_one({"_id": i, "key": f"h{i}"})
    for _ in range(3):
        for i in range(30):
            await coll.update_one({"_id": i}, {"$inc": {"n": 1}})
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": 7, "key": "other"})
    await coll.create_index("key", unique=True)
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": 100, "key": "h1"})
    with pytest.raises(OperationFailure, match="UNIQUE constraint failed"):
        await coll.update_one({"_id": 2}, {"$set": {"key": "h1"}})
    assert await coll.find_one({"_id": 2}) == {"_id": 2, "key": "h2", "n": 3}
    assert await coll.find_one({"_id": 100}) is None


async def test_writes_to_two_collections_run_concurrently_and_stay_exact(
    infra: Infra, db: AsyncDatabase[Doc]
) -> None:
    """Collection A's lock is held for a whole `update_many`; B's writes go on meanwhile.

    Each write stamps its documents with `$currentDate: {$type: "timestamp"}`,
    whose increment is a process-wide atomic counter of the server: a total
    order of events taken inside each command's locked section. Proof of
    concurrency: a write to B stamped strictly between the first and the last
    stamp of one `update_many` on A (impossible under one process-wide lock).
    Proof that A's lock still excludes: a write to another document of A is
    never stamped inside such a round. And every `$inc` is applied exactly.
    """
    name = db.name
    stamp = {"$currentDate": {"at": {"$type": "timestamp"}}}
    await db["a"].insert_many([{"_id": i, "grp": "bulk", "n": 0} for i in range(200)])
    await db["a"].insert_one({"_id": "single", "n": 0})
    await db["b"].insert_one({"_id": "ctr", "n": 0})
    clients: list[AsyncMongoClient[Doc]] = [AsyncMongoClient(infra.mongodb_url) for _ in range(3)]
    a_bulk, a_single, b = (c[name] for c in clients)

    rounds: list[tuple[int, int]] = []  # (first, last) stamp increment of each update_many on A
    overlapped = asyncio.Event()
    done = asyncio.Event()

    async def bulk_on_a() -> None:
        try:
            while len(rounds) < 30 and not (overlapped.is_set() and len(rounds) >= 3):
                await a_bulk["a"].update_many({"grp": "bulk"}, {"$inc": {"n": 1}, **stamp})
                incs = [d["at"].inc async for d in a_bulk["a"].find({"grp": "bulk"}, {"at": 1})]
                assert len(incs) == 200
                rounds.append((min(incs), max(incs)))
                lo, hi = rounds[-1]
                if any(lo < s < hi for s in b_stamps):
                    overlapped.set()
        finally:
            done.set()

    async def single_writes(coll: AsyncCollection[Doc], key: str, stamps: list[int]) -> None:
        while not done.is_set():
            doc = await coll.find_one_and_update(
                {"_id": key},
                {"$inc": {"n": 1}, **stamp},
                return_document=ReturnDocument.AFTER,
            )
            assert doc is not None
            ts: Timestamp = doc["at"]
            stamps.append(ts.inc)

    b_stamps: list[int] = []
    a_single_stamps: list[int] = []
    try:
        await asyncio.gather(
            bulk_on_a(),
            single_writes(b["b"], "ctr", b_stamps),
            single_writes(a_single["a"], "single", a_single_stamps),
        )
    finally:
        for c in clients:
            await c.close()

    def inside(stamps: list[int]) -> int:
        return sum(1 for s in stamps for lo, hi in rounds if lo < s < hi)

    assert inside(b_stamps) > 0, "no write to B ran while A's update_many held A's lock"
    assert inside(a_single_stamps) == 0, "a write to A ran inside A's locked update_many"
    # exact: no lost $inc on either collection
    assert {d["n"] async for d in db["a"].find({"grp": "bulk"})} == {len(rounds)}
    assert (await db["b"].find_one({"_id": "ctr"}) or {}).get("n") == len(b_stamps)
    assert (await db["a"].find_one({"_id": "single"}) or {}).get("n") == len(a_single_stamps)


async def test_find_by_ids_reads_many_documents_in_one_command_per_thousand(
    infra: Infra, namespace: str
) -> None:
    """The shared batch read: one `find` per 1000 ids, no getMore, exactly the ids asked."""
    listener = _CommandCounter()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(infra.mongodb_url, event_listeners=[listener])
    coll = client[f"{namespace}_ids"]["c"]
    try:
        await coll.insert_many([{"_id": f"k{i}", "v": i} for i in range(1500)])
        wanted = (
            [f"k{i}" for i in range(0, 1500, 2)]
            + ["missing", "k0"]
            + [f"k{i}" for i in range(1, 600, 2)]
        )
        listener.names.clear()
        found = await find_by_ids(coll, wanted, {"v": 1})
        assert set(found) == {f"k{i}" for i in range(1500) if i % 2 == 0 or i < 600}
        assert all(found[k]["v"] == int(k[1:]) for k in found)
        assert listener.names == ["find", "find"]  # 1051 distinct ids: two chunks
        listener.names.clear()
        assert await find_by_ids(coll, ["k7"]) == {"k7": {"_id": "k7", "v": 7}}
        assert await find_by_ids(coll, []) == {}
        assert listener.names == ["find"]
    finally:
        await client.drop_database(f"{namespace}_ids")
        await client.close()


class _CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "getMore", "killCursors"):
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _ferretdb_data_dir(mongodb_url: str) -> Path | None:
    """The SQLite directory of the FerretDB process serving this URL's port, from its
    command line (`-listen-addr=…:port`, `-sqlite-url=file:<dir>/?…`); None if it is
    not a process of this machine."""
    port = urlsplit(mongodb_url).port or 27017
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(a.startswith("-listen-addr=") and a.endswith(f":{port}") for a in args):
            continue
        for a in args:
            if a.startswith("-sqlite-url=file:"):
                return Path(unquote(a.removeprefix("-sqlite-url=file:").split("?", 1)[0]))
    return None


def _log_frames(shm: Path) -> tuple[int, int]:
    """(frames in the write-ahead log, frames already copied into the database file):
    `mxFrame` of the WAL-index header and `nBackfill` of its checkpoint info
    (sqlite.org/walformat.html, native byte order)."""
    raw = shm.read_bytes()[:100]
    return struct.unpack_from("=I", raw, 16)[0], struct.unpack_from("=I", raw, 96)[0]


async def test_the_write_ahead_log_is_checkpointed_in_the_background(
    infra: Infra, db: AsyncDatabase[Doc]
) -> None:
    """A few hundred log frames, far below SQLite's autocheckpoint (1,000 pages), are
    copied into the database file soon after the writes stop: a checkpoint ran that
    no command triggered. Upstream leaves them in the log until a commit passes
    1,000 pages and then checkpoints (with its fsyncs) inside that commit."""
    data = _ferretdb_data_dir(infra.mongodb_url)
    if data is None:
        pytest.skip("reads FerretDB's SQLite files: the store is not a process of this machine")
    for i in range(100):
        await db["c"].insert_one({"_id": f"d{i}", "pad": "x" * 500})
    shm = data / f"{db.name}.sqlite-shm"
    frames, copied = _log_frames(shm)
    assert 0 < frames < 1000  # below the autocheckpoint: only ours copies them
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while copied < frames and loop.time() < deadline:
        await asyncio.sleep(0.1)
        frames, copied = _log_frames(shm)
    assert copied == frames
    assert await db["c"].count_documents({}) == 100
