"""The one way to build a Kafka broker in Delego.

Producer: idempotent, acks=all (no duplicate on producer retry, no loss on
leader change). Consumers are built by `EventConsumer` with an explicit ack
policy; FastStream's Kafka default (ACK_FIRST) would commit before handling.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from ..logging import get_logger
from ..settings import Settings


def create_broker(settings: Settings, *, description: str | None = None) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"delego-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=30_000,
        graceful_timeout=15.0,
        description=description or f"Delego {settings.service_name} service",
        logger=get_logger("faststream"),
        # "Received"/"Processed" per message at DEBUG: our consumer logs what matters
        # (retries, parking, duplicates), and two INFO lines per event cost real CPU
        log_level=logging.DEBUG,
        allow_auto_create_topics=False,
    )
