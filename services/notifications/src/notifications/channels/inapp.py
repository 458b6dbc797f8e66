"""The in-app inbox: a delivery is one stored message, keyed by the delivery key."""

from __future__ import annotations

from datetime import datetime

from ..domain import Rendered
from ..store import NotificationsStore


class InAppSender:
    def __init__(self, store: NotificationsStore) -> None:
        self.store = store

    async def send(
        self,
        *,
        user_id: str,
        kind: str,
        rendered: Rendered,
        delivery_key: str,
        source_event_id: str,
        now: datetime,
    ) -> None:
        """Idempotent: a second call for the same key stores nothing more."""
        await self.store.add_inbox_item(
            delivery_key,
            user_id=user_id,
            kind=kind,
            rendered=rendered,
            source_event_id=source_event_id,
            now=now,
        )
