"""Routing: which event becomes which deliveries, as a pure function of data.

The rules are data (`routing.toml`); `plan_deliveries` turns one event plus
the recipients' directory entries and the registered webhook endpoints into
planned deliveries. The edge loads the recipients named by
`RoutingRules.recipients_of(event)`, calls `plan_deliveries`, stores the plans
under their delivery keys and sends (or holds) them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib.resources import files

from delego_shared.events import Event, UnknownEventType, registry
from delego_shared.events.notifications import Channel
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .delivery_key import delivery_key
from .recipient import Recipient, WebhookEndpoint
from .urgency import quiet_wait

KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
QUIET_CHANNELS = frozenset({Channel.EMAIL})
"""Channels that interrupt a person; in-app inbox and machine webhooks are never held."""


class RoutingRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_type: str
    kind: str = Field(pattern=KIND.pattern)
    notify: tuple[str, ...] = Field(min_length=1)
    critical: bool = False


class RoutingRules(BaseModel):
    """The routing table, validated against the event registry when loaded."""

    model_config = ConfigDict(frozen=True)

    rules: tuple[RoutingRule, ...] = Field(alias="rule")

    @model_validator(mode="after")
    def _consistent(self) -> RoutingRules:
        seen: set[str] = set()
        critical: dict[str, bool] = {}
        for r in self.rules:
            if r.event_type in seen:
                raise ValueError(f"two rules for {r.event_type}")
            seen.add(r.event_type)
            try:
                cls = registry.resolve(r.event_type)
            except UnknownEventType as exc:
                raise ValueError(str(exc)) from None
            missing = [f for f in r.notify if f not in cls.model_fields]
            if missing:
                raise ValueError(f"{r.event_type} has no field(s) {', '.join(missing)}")
            if critical.setdefault(r.kind, r.critical) != r.critical:
                raise ValueError(f"kind '{r.kind}' is both critical and not critical")
        return self

    def rule_for(self, event_type: str) -> RoutingRule | None:
        return next((r for r in self.rules if r.event_type == event_type), None)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.kind for r in self.rules))

    @property
    def critical_kinds(self) -> frozenset[str]:
        return frozenset(r.kind for r in self.rules if r.critical)

    def is_critical(self, kind: str) -> bool:
        return kind in self.critical_kinds

    def kind_of(self, event_type: str) -> str:
        """The rule's kind, else the event class name in snake case (for webhooks)."""
        rule = self.rule_for(event_type)
        if rule is not None:
            return rule.kind
        return _snake(registry.resolve(event_type).__name__)

    def recipients_of(self, event: Event) -> list[str]:
        """User ids the event notifies, in rule order, without duplicates."""
        rule = self.rule_for(event.event_type)
        if rule is None:
            return []
        ids = (getattr(event, f, None) for f in rule.notify)
        return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def parse_rules(text: str) -> RoutingRules:
    return RoutingRules.model_validate(tomllib.loads(text))


@lru_cache(maxsize=1)
def default_rules() -> RoutingRules:
    """The rules shipped with the service (`routing.toml` next to this module)."""
    return parse_rules(
        files(__package__ or "notifications.domain")
        .joinpath("routing.toml")
        .read_text(encoding="utf-8")
    )


@dataclass(frozen=True)
class PlannedDelivery:
    """One message to send: what the edge stores (by `key`) and hands to a sender.

    `recipient_id` is a user id, or the endpoint id for a subscription webhook
    (`via_subscription`). `hold_until` is set when quiet hours apply: the
    edge keeps the delivery until then and may merge it into a digest.
    """

    key: str
    event_id: str
    event_type: str
    kind: str
    recipient_id: str
    channel: Channel
    critical: bool
    hold_until: datetime | None = None
    endpoint_id: str | None = None
    via_subscription: bool = False


def owned_endpoint(
    recipient_id: str, event_type: str, endpoints: Iterable[WebhookEndpoint]
) -> WebhookEndpoint | None:
    """The user's own webhook for this event type (lowest id wins, deterministic)."""
    mine = sorted(
        (e for e in endpoints if e.owner_id == recipient_id and e.subscribes(event_type)),
        key=lambda e: e.endpoint_id,
    )
    return mine[0] if mine else None


def usable_channels(
    recipient: Recipient,
    kind: str,
    event_type: str,
    *,
    critical: bool,
    endpoints: Iterable[WebhookEndpoint],
) -> list[tuple[Channel, str | None]]:
    """The recipient's channels, in failover order, that can carry this kind now.

    A channel is usable when preferences allow it (critical kinds ignore
    opt-outs) and it can be reached. Each entry carries the endpoint id for
    a webhook channel.
    """
    eps = list(endpoints)
    out: list[tuple[Channel, str | None]] = []
    for ch in recipient.channels:
        if not recipient.preferences.allows(kind, ch, critical=critical):
            continue
        if ch is Channel.EMAIL and recipient.email is None:
            continue
        if ch is Channel.WEBHOOK:
            ep = owned_endpoint(recipient.recipient_id, event_type, eps)
            if ep is None:
                continue
            out.append((ch, ep.endpoint_id))
            continue
        out.append((ch, None))
    return out


def hold_until(
    recipient: Recipient,
    channel: Channel,
    *,
    critical: bool,
    now: datetime,
    kind: str | None = None,
) -> datetime | None:
    """When quiet hours end, if this delivery must wait for them (`urgency.quiet_wait`:
    critical kinds and kinds the recipient marked urgent never wait)."""
    return quiet_wait(
        kind=kind,
        critical=critical,
        interrupts=channel in QUIET_CHANNELS,
        quiet=recipient.quiet_hours,
        zone=recipient.zone,
        urgent_kinds=recipient.urgent_kinds,
        now=now,
    )


def person_delivery(
    *,
    event_id: str,
    event_type: str,
    kind: str,
    critical: bool,
    recipient: Recipient,
    channel: Channel,
    endpoint_id: str | None,
    now: datetime,
) -> PlannedDelivery:
    return PlannedDelivery(
        key=delivery_key(event_id, recipient.recipient_id, channel),
        event_id=event_id,
        event_type=event_type,
        kind=kind,
        recipient_id=recipient.recipient_id,
        channel=channel,
        critical=critical,
        hold_until=hold_until(recipient, channel, critical=critical, now=now, kind=kind),
        endpoint_id=endpoint_id,
    )


def plan_deliveries(
    event_id: str,
    event: Event,
    recipients: Mapping[str, Recipient],
    endpoints: Iterable[WebhookEndpoint],
    *,
    now: datetime,
    rules: RoutingRules | None = None,
) -> list[PlannedDelivery]:
    """Every delivery one event causes, in a deterministic order.

    People first (rule order), each on the first usable channel of their
    failover order; then subscription webhooks sorted by endpoint id. A user
    missing from the directory gets the defaults, i.e. the in-app inbox only.
    A person who switched every channel off for a non-critical kind gets
    nothing.
    """
    rules = rules or default_rules()
    eps = list(endpoints)
    event_type = event.event_type
    kind = rules.kind_of(event_type)
    critical = rules.is_critical(kind)
    plans: list[PlannedDelivery] = []
    for rid in rules.recipients_of(event):
        recipient = recipients.get(rid) or Recipient(recipient_id=rid)
        usable = usable_channels(recipient, kind, event_type, critical=critical, endpoints=eps)
        if not usable:
            continue
        channel, endpoint_id = usable[0]
        plans.append(
            person_delivery(
                event_id=event_id,
                event_type=event_type,
                kind=kind,
                critical=critical,
                recipient=recipient,
                channel=channel,
                endpoint_id=endpoint_id,
                now=now,
            )
        )
    for ep in sorted(eps, key=lambda e: e.endpoint_id):
        if ep.owner_id is None and ep.subscribes(event_type):
            plans.append(
                PlannedDelivery(
                    key=delivery_key(event_id, ep.endpoint_id, Channel.WEBHOOK),
                    event_id=event_id,
                    event_type=event_type,
                    kind=kind,
                    recipient_id=ep.endpoint_id,
                    channel=Channel.WEBHOOK,
                    critical=critical,
                    endpoint_id=ep.endpoint_id,
                    via_subscription=True,
                )
            )
    return plans
