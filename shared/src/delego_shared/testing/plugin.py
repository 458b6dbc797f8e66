"""pytest plugin: session-wide real infrastructure, per-test isolated topics and databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import pytest_asyncio

from ..events.topics import ALL_TOPICS
from ..messaging.topics_admin import delete_topics_with_prefix, ensure_topics
from ..settings import Settings
from .infra import Infra, provide


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """Real Kafka + Mongo-wire database for the whole session."""
    with ExitStack() as stack:
        found = provide(stack)
        _USED.append(found)
        print(
            f"\n[delego] integration infra: {found.origin} "
            f"kafka={found.kafka_bootstrap} mongodb={found.mongodb_url}"
        )
        yield found


@pytest.fixture
def namespace() -> str:
    """A unique prefix for this test's topics and databases."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture
async def settings_for(infra: Infra, namespace: str) -> AsyncIterator[Callable[..., Settings]]:
    """Build isolated settings for a service: own topics (prefix) and own database."""
    # 3 partitions: enough for key ordering and multi-instance tests, light on the broker
    await ensure_topics(infra.kafka_bootstrap, ALL_TOPICS, prefix=f"{namespace}.", partitions=3)

    def make(service: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "service_name": service,
            "environment": "test",
            "kafka_bootstrap": infra.kafka_bootstrap,
            "mongodb_url": infra.mongodb_url,
            "mongodb_database": f"{namespace}_{service}",
            "topic_prefix": f"{namespace}.",
            "consumer_backoff_initial_s": 0.05,
            "consumer_backoff_max_s": 0.2,
            "outbox_sweep_interval_s": 1.0,
            "log_format": "console",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    yield make
    try:  # keep a long session's broker light; a failure here must not fail the test
        await delete_topics_with_prefix(infra.kafka_bootstrap, f"{namespace}.")
    except Exception as exc:  # pragma: no cover - best effort
        print(f"[delego] could not delete test topics {namespace}.*: {exc}")


_USED: list[Infra] = []
_OUTCOMES: dict[str, dict[str, int]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        kind = next((m for m in ("e2e", "integration") if item.get_closest_marker(m)), "unit")
        counts = _OUTCOMES.setdefault(kind, {})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: object) -> None:
    """Say what ran against what: integration tests must run on real infrastructure."""
    write = terminalreporter.write_line  # type: ignore[attr-defined]
    for infra in _USED:
        write(
            f"delego: real infrastructure ({infra.origin}): Kafka {infra.kafka_bootstrap}, "
            f"Mongo-wire {infra.mongodb_url}"
        )
    for kind in ("unit", "integration", "e2e"):
        if kind in _OUTCOMES:
            parts = ", ".join(f"{n} {o}" for o, n in sorted(_OUTCOMES[kind].items()))
            write(f"delego: {kind} tests: {parts}")
