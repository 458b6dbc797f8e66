"""The event catalogue: envelope, registry, topics and every event model.

Importing this package registers every event type, so any consumer can decode
any record of the platform.
"""

from . import billing, catalog, matching, notifications, privacy
from .base import Event, EventRegistry, Topic, UnknownEventType, dlq_name, event, registry
from .envelope import Envelope, MalformedEvent
from .topics import (
    ALL_TOPICS,
    DELIVERIES,
    INVOICES,
    OFFERS,
    PRIVACY_SUBJECTS,
    PROVIDERS,
    REQUESTS,
)

__all__ = [
    "ALL_TOPICS",
    "DELIVERIES",
    "INVOICES",
    "OFFERS",
    "PRIVACY_SUBJECTS",
    "PROVIDERS",
    "REQUESTS",
    "Envelope",
    "Event",
    "EventRegistry",
    "MalformedEvent",
    "Topic",
    "UnknownEventType",
    "billing",
    "catalog",
    "dlq_name",
    "event",
    "matching",
    "notifications",
    "privacy",
    "registry",
]
