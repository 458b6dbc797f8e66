"""Messaging: broker factory, publisher, consumer with retry/DLQ, inbox, outbox relay, topics."""

from .broker import create_broker
from .consumer import EventConsumer, Handler, PermanentError
from .dead_letter import DeadLetterQueue, RawRecord
from .inbox import Inbox, apply_once_filter, apply_once_update
from .outbox import Outbox, OutboxRelay, PublishNow, publish_nothing
from .publisher import EventPublisher, OutgoingRecord
from .topics_admin import ensure_topics

__all__ = [
    "DeadLetterQueue",
    "EventConsumer",
    "EventPublisher",
    "Handler",
    "Inbox",
    "Outbox",
    "OutboxRelay",
    "OutgoingRecord",
    "PermanentError",
    "PublishNow",
    "RawRecord",
    "apply_once_filter",
    "apply_once_update",
    "create_broker",
    "ensure_topics",
    "publish_nothing",
]
