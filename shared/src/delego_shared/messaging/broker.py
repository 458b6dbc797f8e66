"""The one way to build a Kafka broker in Delego.

Producer: idempotent, acks=all (no duplicate on producer retry, no loss on
leader change). Consumers are built by `EventConsumer` with an explicit ack
policy; FastStream's Kafka default (ACK_FIRST) would commit before handling.
"""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from ..logging import get_logger
from ..settings import KafkaAccess, Settings


def broker_security(access: KafkaAccess) -> BaseSecurity | None:
    """FastStream's form of our Kafka credentials (None: PLAINTEXT)."""
    if not access.sasl:
        return None
    scram = SASLScram512 if access.sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(
        access.username,
        access.password.get_secret_value(),
        use_ssl=access.security_protocol == "SASL_SSL",
    )


def create_broker(settings: Settings, *, description: str | None = None) -> KafkaBroker:
    """As the service's own Kafka user when SASL is configured: the broker's ACLs then
    let it write only its own topics (and the DLQs of those it consumes)."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        security=broker_security(settings.kafka_access),
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
