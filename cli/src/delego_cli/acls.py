"""`delego acls apply|show`: the platform's Kafka ACLs (`delego_shared.messaging.acls`)
created on a SASL broker, as its super user.

aiokafka has no ACL admin API; confluent-kafka (librdkafka) has, so this one
operator command uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from delego_shared.messaging.acls import Acl
from delego_shared.settings import KafkaAccess

from .kafka_ops import BrokerUnreachable

_RESOURCE = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
_PATTERN = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
_OPERATION = {
    "read": AclOperation.READ,
    "write": AclOperation.WRITE,
    "describe": AclOperation.DESCRIBE,
}


def binding(acl: Acl) -> AclBinding:
    return AclBinding(
        _RESOURCE[acl.resource],
        acl.name,
        _PATTERN[acl.pattern],
        acl.principal,
        "*",
        _OPERATION[acl.operation],
        AclPermissionType.ALLOW,
    )


def admin_client(access: KafkaAccess) -> AdminClient:
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": access.bootstrap,
        "security.protocol": access.security_protocol,
    }
    if access.sasl:
        config |= {
            "sasl.mechanism": access.sasl_mechanism,
            "sasl.username": access.username,
            "sasl.password": access.password.get_secret_value(),
        }
    return AdminClient(config)


def apply_acls(access: KafkaAccess, acls: Iterable[Acl], *, timeout_s: float = 15.0) -> int:
    """Create every ACL (an existing one is left as it is); returns how many were sent."""
    bindings = [binding(a) for a in acls]
    if not bindings:
        return 0
    admin = admin_client(access)  # kept alive: its futures fail once it is collected
    futures = admin.create_acls(bindings, request_timeout=timeout_s)
    try:
        for future in futures.values():
            future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnreachable(f"cannot create ACLs on {access.bootstrap}: {exc}") from None
    return len(bindings)
