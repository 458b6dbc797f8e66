"""Messaging: broker factory, publisher, consumer with retry/DLQ, inbox, outbox relay, topics."""

from .broker import create_broker
from .consumer import EventConsumer, Handler, PermanentError, TransientError, is_transient
from .dead_letter import DeadLetterQueue, RawRecord
from .inbox import Inbox, apply_once_filter, apply_once_update
from .outbox import Outbox, OutboxRelay, PublishNow, publish_nothing
from .owners import TOPIC_OWNERS, ForgedEvent, owner_source
from .publisher import EventPublisher, OutgoingRecord
from .topics_admin import ensure_topics

__all__ = [
    "TOPIC_OWNERS",
    "DeadLetterQueue",
    "EventConsumer",
    "EventPublisher",
    "ForgedEvent",
    "Handler",
    "Inbox",
    "Outbox",
    "OutboxRelay",
    "OutgoingRecord",
    "PermanentError",
    "PublishNow",
    "RawRecord",
    "TransientError",
    "apply_once_filter",
    "apply_once_update",
    "create_broker",
    "ensure_topics",
    "is_transient",
    "owner_source",
    "publish_nothing",
]
