"""Messaging: broker factory, publisher, consumer with retry/DLQ, inbox, outbox relay, topics."""

from .broker import create_broker
from .consumer import EventConsumer, Handler, PermanentError
from .dead_letter import DeadLetterQueue, RawRecord
from .inbox import Inbox, apply_once_filter, apply_once_update
from .outbox import Outbox, OutboxRelay
from .publisher import EventPublisher
from .topics_admin import ensure_topics

__all__ = [
    "DeadLetterQueue",
    "EventConsumer",
    "EventPublisher",
    "Handler",
    "Inbox",
    "Outbox",
    "OutboxRelay",
    "PermanentError",
    "RawRecord",
    "apply_once_filter",
    "apply_once_update",
    "create_broker",
    "ensure_topics",
]
