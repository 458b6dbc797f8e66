"""Digests: the notifications held during quiet hours, released as one message.

Held deliveries of one recipient on one channel are merged, ordered by when
they happened (then event id, then kind) so every replica builds the same
message with the same digest key. A single held item is sent as itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from delego_shared.events import Event
from delego_shared.events.notifications import Channel
from markupsafe import Markup

from .delivery_key import digest_key
from .recipient import Recipient
from .render import Rendered, Renderer
from .routing import PlannedDelivery

DIGEST_KIND = "digest"


@dataclass(frozen=True)
class HeldNotification:
    planned: PlannedDelivery
    event: Event
    occurred_at: datetime


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send now. `part_keys` are the deliveries it settles."""

    key: str
    recipient_id: str
    channel: Channel
    kind: str
    part_keys: tuple[str, ...]
    rendered: Rendered


def digest_order(items: Iterable[HeldNotification]) -> list[HeldNotification]:
    return sorted(items, key=lambda h: (h.occurred_at, h.planned.event_id, h.planned.kind))


def group_held(
    items: Iterable[HeldNotification],
) -> dict[tuple[str, Channel], list[HeldNotification]]:
    """Held items per (recipient, channel), each group in digest order, groups sorted."""
    groups: dict[tuple[str, Channel], list[HeldNotification]] = {}
    for h in items:
        groups.setdefault((h.planned.recipient_id, h.planned.channel), []).append(h)
    return {k: digest_order(groups[k]) for k in sorted(groups)}


def release_message(
    recipient: Recipient, held: Sequence[HeldNotification], renderer: Renderer
) -> OutgoingMessage:
    """The message that releases `held` (one recipient, one channel) after quiet hours."""
    if not held:
        raise ValueError("nothing to release")
    channels = {h.planned.channel for h in held}
    owners = {h.planned.recipient_id for h in held}
    if owners != {recipient.recipient_id} or len(channels) != 1:
        raise ValueError("a digest merges one recipient's notifications on one channel")
    items = digest_order({h.planned.key: h for h in held}.values())  # a replay adds nothing
    channel = items[0].planned.channel
    if len(items) == 1:
        only = items[0]
        rendered = renderer.render(
            only.planned.kind,
            locale=recipient.locale,
            zone=recipient.zone,
            context={"event": only.event},
        )
        return OutgoingMessage(
            key=only.planned.key,
            recipient_id=recipient.recipient_id,
            channel=channel,
            kind=only.planned.kind,
            part_keys=(only.planned.key,),
            rendered=rendered,
        )
    parts = [
        (
            h,
            renderer.render(
                h.planned.kind,
                locale=recipient.locale,
                zone=recipient.zone,
                context={"event": h.event},
            ),
        )
        for h in items
    ]
    context = {
        "count": len(parts),
        "items": [
            {
                "kind": h.planned.kind,
                "occurred_at": h.occurred_at,
                "subject": r.subject,
                "text": r.text.strip(),
                "html": Markup(r.html_body),  # noqa: S704 - rendered with autoescape
            }
            for h, r in parts
        ],
    }
    digest = renderer.render(
        DIGEST_KIND, locale=recipient.locale, zone=recipient.zone, context=context
    )
    missing = tuple(dict.fromkeys(m for _, r in parts for m in r.missing)) + digest.missing
    rendered = Rendered(
        subject=digest.subject,
        text=digest.text,
        html=digest.html,
        html_body=digest.html_body,
        locale=digest.locale,
        fell_back=bool(missing),
        missing=missing,
    )
    keys = tuple(h.planned.key for h in items)
    return OutgoingMessage(
        key=digest_key(recipient.recipient_id, channel, keys),
        recipient_id=recipient.recipient_id,
        channel=channel,
        kind=DIGEST_KIND,
        part_keys=keys,
        rendered=rendered,
    )
