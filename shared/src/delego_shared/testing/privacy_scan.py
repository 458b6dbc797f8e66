"""What an erasure test looks for: every record of every topic, every stored document.

Shared by the in-process erasure test and the end-to-end story (services as
processes): both read everything a deployment left, after an erasure, and look
for the person's data in it. Test only: these reads scan whole topics and
collections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient

from ..events import ALL_TOPICS
from ..events.base import dlq_name
from .kafka_tools import read_records


@dataclass(frozen=True)
class Found:
    """One needle in one place: `topic` (a record) or `database.collection` (a document)."""

    place: str
    needle: str


@dataclass(frozen=True)
class RecordText:
    """A record's key, headers and body as one text, with the topic it was read from."""

    topic: str
    text: str


async def topic_texts(bootstrap: str, prefix: str, *, timeout: float = 8.0) -> list[RecordText]:
    """Every record of every platform topic and its dead-letter topic under `prefix`."""
    out = []
    for topic in ALL_TOPICS:
        for name in (topic.name, dlq_name(topic.name)):
            for rec in await read_records(bootstrap, prefix + name, timeout=timeout, idle=1.0):
                text = (rec.key or b"").decode(errors="replace") + str(rec.headers)
                out.append(RecordText(name, text + rec.value.decode(errors="replace")))
    return out


def find_in(texts: Iterable[RecordText], needles: Iterable[str]) -> list[Found]:
    wanted = list(needles)
    return [Found(t.topic, n) for t in texts for n in wanted if n in t.text]


async def scan_topics(bootstrap: str, prefix: str, needles: list[str]) -> tuple[list[Found], int]:
    """The needles found on the deployment's topics, and how many records were read."""
    texts = await topic_texts(bootstrap, prefix)
    return find_in(texts, needles), len(texts)


async def scan_databases(
    mongodb_url: str, databases: Iterable[str], needles: list[str]
) -> list[Found]:
    """The needles found in any document of any collection of `databases` (one hit per
    document and needle)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    found = []
    try:
        for name in databases:
            db = mongo[name]
            for coll in await db.list_collection_names():
                async for doc in db[coll].find({}):
                    text = json.dumps(doc, default=str, ensure_ascii=False)
                    found += [Found(f"{name}.{coll}", n) for n in needles if n in text]
    finally:
        await mongo.close()
    return found
