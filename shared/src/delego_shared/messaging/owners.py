"""Who may publish on which topic: the one map of topic owners.

Each topic `<service>.<aggregate>.v<major>` is written by exactly one service
(the table in the top README); every record it publishes has
`ce_source = /delego/<service>` (`Settings.source`). A record on a topic with
another `ce_source` was not written by the owner: a consumer parks it as
forged instead of acting on it (real e-mails and webhooks were sent for forged
`InvoiceIssued` events). Broker ACLs keep others from writing at all; this
check is the consumer's own line of defence and costs no round trip.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..events.envelope import Envelope
from ..events.topics import ALL_TOPICS

TOPIC_OWNERS: Mapping[str, str] = {t.name: t.service for t in ALL_TOPICS}
"""Logical topic name → the service that owns (alone publishes on) it."""

TOPIC_WRITERS: Mapping[str, frozenset[str]] = {
    t.name: frozenset((t.service, *t.writers)) for t in ALL_TOPICS
}
"""Logical topic name → every service that may publish on it (the owner, plus the
declared `writers` of a shared topic such as `privacy.subjects.v1`)."""


class ForgedEvent(ValueError):
    """A record that its topic's owner did not publish: parked, never applied."""


def owner_source(service: str) -> str:
    """The `ce_source` of everything `service` publishes (equals `Settings.source`)."""
    return f"/delego/{service}"


def check_provenance(logical_topic: str, envelope: Envelope) -> None:
    """Raise `ForgedEvent` unless the topic's owner published this event on its own topic."""
    owner = TOPIC_OWNERS.get(logical_topic)
    if owner is None:
        raise ForgedEvent(f"topic '{logical_topic}' has no owner: nobody may publish on it")
    allowed = {owner_source(w) for w in TOPIC_WRITERS[logical_topic]}
    expected = " or ".join(sorted(allowed))
    if envelope.source not in allowed:
        raise ForgedEvent(
            f"forged: ce_source '{envelope.source[:200]}' is not the owner of "
            f"{logical_topic} (expected {expected})"
        )
    if envelope.data.topic.name != logical_topic:
        raise ForgedEvent(
            f"forged: {envelope.type} belongs on {envelope.data.topic.name}, not {logical_topic}"
        )
