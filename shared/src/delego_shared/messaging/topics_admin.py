"""Create topics (and their DLQs) with explicit partition counts, idempotently."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ..events.base import Topic, dlq_name


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[Topic],
    *,
    prefix: str = "",
    replication_factor: int = 1,
    dlq_partitions: int = 1,
    partitions: int | None = None,
) -> list[str]:
    """Create each topic and its `.dlq`; returns the names that were created now.

    `partitions` overrides every topic's own count (tests keep the broker light).
    """
    wanted: dict[str, int] = {}
    for t in topics:
        wanted[prefix + t.name] = partitions or t.partitions
        wanted[dlq_name(prefix + t.name)] = dlq_partitions
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="delego-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, p, replication_factor) for n, p in wanted.items() if n not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def delete_topics_with_prefix(bootstrap: str, prefix: str) -> int:
    """Delete every topic whose name starts with `prefix` (test clean-up)."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="delego-admin")
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    finally:
        await admin.close()
