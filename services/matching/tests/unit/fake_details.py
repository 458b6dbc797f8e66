"""An in-memory store for the private-details use cases (the `DetailsStore` surface)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from delego_shared.events.envelope import Envelope
from matching.domain import ClientRequest
from matching.sealing import SealedText, Sealer, new_platform_key, platform_key


def sealer() -> Sealer:
    return Sealer(platform_key(new_platform_key()))


class MemoryDetailsStore:
    """Requests (state + ciphertext), keys and audit records as plain dicts."""

    def __init__(self) -> None:
        self.requests: dict[str, ClientRequest] = {}
        self.sealed: dict[str, SealedText] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.reads: list[tuple[dict[str, Any], list[Envelope]]] = []
        self.concurrent_writes = 0
        """Each read of the details' state is followed by another writer's update."""

    def put(self, req: ClientRequest, sealer: Sealer, text: str, erase_after=None) -> None:
        """Store a request as the submit use case does: the text sealed, apart."""
        req.take_description()
        if text:
            req.sealed_details = True
            key = sealer.new_key()
            self.keys[req.request_id] = {"wrapped_key": key, "erase_after": erase_after}
            self.sealed[req.request_id] = sealer.seal(req.request_id, key, text)
        self.requests[req.request_id] = req

    async def load_sealed(self, request_id: str):
        req = self.requests.get(request_id)
        if req is None:
            return None
        return req.model_copy(deep=True), self.sealed.get(request_id)

    async def wrapped_key(self, request_id: str) -> bytes | None:
        k = self.keys.get(request_id)
        return k["wrapped_key"] if k else None

    async def record_read(self, record: dict[str, Any], envelopes: Sequence[Envelope]) -> None:
        self.reads.append((record, list(envelopes)))

    async def shred_key(self, request_id: str) -> bool:
        return self.keys.pop(request_id, None) is not None

    async def details_state(self, request_id: str) -> tuple[int, bool] | None:
        req = self.requests.get(request_id)
        if req is None:
            return None
        version = req.version
        if self.concurrent_writes:
            self.concurrent_writes -= 1
            req.version += 1
        return version, bool(req.spec.description) or request_id in self.sealed

    async def clear_details(self, request_id: str, version: int) -> bool:
        req = self.requests[request_id]
        if req.version != version:
            return False
        req.take_description()
        req.sealed_details, req.details_erased = False, True
        req.version += 1
        self.sealed.pop(request_id, None)
        return True

    async def details_due(self, now: datetime, limit: int = 500) -> list[str]:
        due = [
            i
            for i, k in self.keys.items()
            if k["erase_after"] is not None and k["erase_after"] <= now
        ]
        return due[:limit]

    async def schedule_details_erasure(self, request_id: str, at: datetime | None) -> None:
        if request_id in self.keys:
            self.keys[request_id]["erase_after"] = at

    async def request_key(
        self, request_id: str, client_id: str, wrapped_key: bytes, erase_after: datetime | None
    ) -> bytes:
        entry = self.keys.setdefault(
            request_id, {"wrapped_key": wrapped_key, "erase_after": erase_after}
        )
        return bytes(entry["wrapped_key"])

    async def clear_text_requests(self) -> list[str]:
        return [i for i, r in self.requests.items() if r.spec.description]

    async def seal_in_place(self, request_id: str, version: int, sealed: SealedText) -> bool:
        req = self.requests[request_id]
        if req.version != version:
            return False
        req.take_description()
        req.version += 1
        self.sealed[request_id] = sealed
        return True
