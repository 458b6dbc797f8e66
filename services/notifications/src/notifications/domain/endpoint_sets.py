"""Webhook endpoints grouped so that each event reads them by key.

An event needs the subscription endpoints (no owner) and the endpoints owned
by the people it notifies. Both are kept as "endpoint sets": one document per
owner (`#owner:<user id>`) and one for all subscriptions (`#subscriptions`),
each mapping endpoint id -> entry. The endpoint's own document stays the
truth; a set entry carries the endpoint's version, so a late or repeated
update never overwrites a newer one, and an endpoint that moved away (owner
changed, deactivated) leaves an inactive entry behind.

The sets live beside the recipients they route to, so that an event reads the
people it notifies and every endpoint that may receive it in one command. `#`
is outside the alphabet of user ids: a set key never names a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .recipient import WebhookEndpoint

SUBSCRIPTIONS = "#subscriptions"


def set_key(owner_id: str | None) -> str:
    """The set an endpoint belongs to: its owner's, or the subscriptions."""
    return SUBSCRIPTIONS if owner_id is None else f"#owner:{owner_id}"


def set_entries(
    endpoint: WebhookEndpoint, version: int, sets: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Entry to write in each set the endpoint is or was in (active only in its own)."""
    home = set_key(endpoint.owner_id)
    out: dict[str, dict[str, Any]] = {}
    for key in {*sets, home}:
        if key == home and endpoint.active:
            out[key] = {
                "v": version,
                "active": True,
                "url": endpoint.url,
                "secret": endpoint.secret,
                "event_types": sorted(endpoint.event_types),
                "owner_id": endpoint.owner_id,
            }
        else:
            out[key] = {"v": version, "active": False}
    return out


def endpoints_of(entries: Mapping[str, Mapping[str, Any]]) -> list[WebhookEndpoint]:
    """The active endpoints of one set, by endpoint id."""
    return [
        WebhookEndpoint(
            endpoint_id=eid,
            url=e["url"],
            secret=e["secret"],
            event_types=frozenset(e["event_types"]),
            owner_id=e.get("owner_id"),
            active=True,
        )
        for eid, e in sorted(entries.items())
        if e.get("active")
    ]
