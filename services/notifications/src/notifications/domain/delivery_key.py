"""Stable keys that make sends effectively-once.

The same (event, recipient, channel) always gives the same key, whichever
replica handles a replayed record, so a unique index on the key turns a
second send into a no-op. Ids may contain any Identifier character
(including ':'), so the parts are encoded unambiguously and hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from delego_shared.events.notifications import Channel


def _digest(prefix: str, parts: list[str]) -> str:
    raw = json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{prefix}_{hashlib.sha256(raw).hexdigest()[:40]}"


def delivery_key(event_id: str, recipient_id: str, channel: Channel) -> str:
    """`dlv_<40 hex>`: one delivery of one event to one recipient on one channel."""
    return _digest("dlv", [event_id, recipient_id, Channel(channel).value])


def digest_key(recipient_id: str, channel: Channel, part_keys: Iterable[str]) -> str:
    """`dgs_<40 hex>`: a digest is identified by the set of deliveries it merges."""
    return _digest("dgs", [recipient_id, Channel(channel).value, *sorted(set(part_keys))])
