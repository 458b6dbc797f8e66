"""Per-kind, per-channel opt-outs; critical kinds cannot be switched off.

Stored as the opt-outs only (everything is on by default), so a new kind or
channel reaches people unless they said otherwise. `*` stands for every kind.
"""

from __future__ import annotations

from delego_shared.events.notifications import Channel
from pydantic import BaseModel, ConfigDict, Field

ALL_KINDS = "*"


class CriticalKindLocked(ValueError):
    """Someone tried to switch off a kind the platform must always deliver."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"'{kind}' notifications are critical and cannot be switched off")
        self.kind = kind


class Preferences(BaseModel):
    """`off[kind]` = channels the recipient switched off for that kind."""

    model_config = ConfigDict(frozen=True)

    off: dict[str, frozenset[Channel]] = Field(default_factory=dict)

    def allows(self, kind: str, channel: Channel, *, critical: bool) -> bool:
        """Critical kinds ignore opt-outs even if stored ones exist (defence in depth)."""
        if critical:
            return True
        return channel not in self.off.get(kind, frozenset()) and channel not in self.off.get(
            ALL_KINDS, frozenset()
        )

    def switched(
        self, kind: str, channel: Channel, enabled: bool, *, critical: bool
    ) -> Preferences:
        """A copy with one switch flipped; refuses to switch a critical kind off."""
        if not enabled and critical and kind != ALL_KINDS:
            raise CriticalKindLocked(kind)
        off = {k: set(v) for k, v in self.off.items()}
        current = off.setdefault(kind, set())
        if enabled:
            current.discard(channel)
        else:
            current.add(channel)
        return Preferences(off={k: frozenset(v) for k, v in sorted(off.items()) if v})
