"""The broker's side of topic ownership: which Kafka user may do what (pure data).

With SASL each service connects as its own user (`Settings.kafka_access`), and the
broker's StandardAuthorizer denies whatever these ACLs do not allow. So a service
may write only the topics it owns or shares (`owners.TOPIC_WRITERS`) and the DLQs
of the topics it consumes (where it parks what it cannot process); it may read
every topic (events carry ids, never contact data) and use only its own consumer
group. Consumers still check `ce_source` (`owners.check_provenance`): the ACLs stop
a compromised service's writes, the check catches whatever reached a topic anyway.
`delego acls apply` creates them; the `admin` super user creates topics and replays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..events.base import dlq_name
from ..events.topics import (
    ALL_TOPICS,
    INVOICES,
    OFFERS,
    PRIVACY_SUBJECTS,
    PROVIDERS,
    REQUESTS,
)
from .owners import TOPIC_WRITERS

SERVICES = ("catalog", "matching", "billing", "notifications")

CONSUMED_BY: Mapping[str, tuple[str, ...]] = {
    "catalog": (PRIVACY_SUBJECTS.name,),
    "matching": (PROVIDERS.name, OFFERS.name, PRIVACY_SUBJECTS.name),
    "billing": (REQUESTS.name, PRIVACY_SUBJECTS.name),
    "notifications": (
        REQUESTS.name,
        INVOICES.name,
        PROVIDERS.name,
        OFFERS.name,
        PRIVACY_SUBJECTS.name,
    ),
}
"""The topics each service's consumer group subscribes to (its handlers' `subscribe`
calls): it may park records on their DLQs, and on no other."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule, for any host (Kafka's ACL binding, in our own terms)."""

    principal: str
    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefixed"]
    operation: Literal["read", "write", "describe"]


def service_acls(service: str, *, prefix: str = "") -> list[Acl]:
    """What `service`'s user may do; `prefix` is the deployment's topic prefix."""
    if service not in CONSUMED_BY:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    user = f"User:{service}"
    rules: set[Acl] = set()
    for topic in ALL_TOPICS:
        name = prefix + topic.name
        rules.add(Acl(user, "topic", name, "literal", "read"))
        # every topic's DLQ exists and is listed when a service checks its topics
        rules.add(Acl(user, "topic", dlq_name(name), "literal", "describe"))
        if service in TOPIC_WRITERS[topic.name]:
            rules.add(Acl(user, "topic", name, "literal", "write"))
    for consumed in CONSUMED_BY[service]:
        rules.add(Acl(user, "topic", dlq_name(prefix + consumed), "literal", "write"))
    # its consumer group, and those of its isolated namespaces (`Settings.consumer_group`)
    rules.add(Acl(user, "group", service, "literal", "read"))
    rules.add(Acl(user, "group", f"{service}.", "prefixed", "read"))
    return sorted(rules)


def platform_acls(*, prefix: str = "") -> list[Acl]:
    """Every service's ACLs."""
    return [acl for service in SERVICES for acl in service_acls(service, prefix=prefix)]
