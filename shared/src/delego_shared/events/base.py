"""Integration events: the public contract between services and with downstream systems.

An event class declares its CloudEvents `type` and its topic; the registry maps
types to classes so a consumer can decode any record it receives, and so the
AsyncAPI catalogue can be generated from code. Subclasses live in one module
per publishing service (`events/catalog.py`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

TOPIC_SERVICES = ("catalog", "matching", "billing", "notifications", "privacy")
"""`privacy` is the operators' tooling (`delego privacy`), not a deployable."""


@dataclass(frozen=True)
class Topic:
    """A stream named `<service>.<aggregate>.v<major>`, keyed by the aggregate id."""

    service: str
    aggregate: str
    major: int
    key_doc: str = "aggregate id"
    partitions: int = 6
    writers: tuple[str, ...] = ()
    """Services besides the owner that may publish on it (only the shared
    `privacy.subjects.v1`, where every service posts its erasure receipt)."""
    retention_ms: int | None = None
    """The topic's `retention.ms` when created (None: the broker's default, 7 days;
    -1: kept for good)."""

    def __post_init__(self) -> None:
        if self.service not in TOPIC_SERVICES:
            raise ValueError(f"unknown service '{self.service}' (one of {TOPIC_SERVICES})")
        if not self.aggregate.isidentifier() or self.aggregate.lower() != self.aggregate:
            raise ValueError(f"aggregate '{self.aggregate}' must be a lower-case identifier")
        if self.major < 1:
            raise ValueError("major version starts at 1")

    @property
    def name(self) -> str:
        return f"{self.service}.{self.aggregate}.v{self.major}"

    @property
    def dlq(self) -> str:
        return dlq_name(self.name)

    def __str__(self) -> str:
        return self.name


def dlq_name(topic: str) -> str:
    return f"{topic}.dlq"


class Event(BaseModel):
    """Base of every integration event (the JSON body of a record).

    Subclasses set `event_type` (the CloudEvents `type`, e.g.
    `delego.catalog.ProviderRegistered.v1`), `topic`, and implement `key()`
    (the aggregate id: the Kafka key and the CloudEvents `subject`).
    Events are immutable. Unknown fields are ignored so that a consumer built
    against v1.n still reads what a v1.n+1 producer writes (additive changes
    only within a major version; the contract test guards that).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[Topic]

    def key(self) -> str:
        raise NotImplementedError


class UnknownEventType(LookupError):
    """A record whose `ce_type` is not in the registry."""


class EventRegistry:
    """`ce_type` → event class; one per process (see `registry`)."""

    def __init__(self) -> None:
        self._by_type: dict[str, type[Event]] = {}

    def register(self, cls: type[Event]) -> type[Event]:
        existing = self._by_type.get(cls.event_type)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"event type {cls.event_type} registered twice "
                f"({existing.__qualname__} and {cls.__qualname__})"
            )
        self._by_type[cls.event_type] = cls
        return cls

    def resolve(self, event_type: str) -> type[Event]:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(f"unknown event type '{event_type}'") from None

    def types(self) -> list[type[Event]]:
        return sorted(self._by_type.values(), key=lambda c: (c.topic.name, c.event_type))

    def topics(self) -> list[Topic]:
        seen: dict[str, Topic] = {}
        for cls in self.types():
            seen.setdefault(cls.topic.name, cls.topic)
        return [seen[n] for n in sorted(seen)]

    def for_topic(self, topic: Topic | str) -> list[type[Event]]:
        name = topic.name if isinstance(topic, Topic) else topic
        return [c for c in self.types() if c.topic.name == name]


registry = EventRegistry()


E = TypeVar("E", bound=Event)


def event(event_type: str, topic: Topic) -> Callable[[type[E]], type[E]]:
    """Class decorator: declare the CloudEvents type and topic, and register the class."""

    def wrap(cls: type[E]) -> type[E]:
        cls.event_type = event_type
        cls.topic = topic
        registry.register(cls)
        return cls

    return wrap
