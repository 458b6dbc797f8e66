"""Use cases of a request's sealed private details: read (audited), erase, retention.

- `read`: the domain decides who may open the text (`domain.details`); every
  read that returns text is first stored as a `details_reads` document with its
  `PrivateDetailsRead` event (outbox), then published on `privacy.subjects.v1`
  (keyed by the client), so no text leaves without its audit record.
- `erase`: delete the request's data key (crypto-shredding: every copy of the
  ciphertext, backups included, becomes unreadable), then remove the ciphertext
  and any clear text from the request, as a new version. Idempotent; used by
  a person's erasure (`privacy.py`) and by the retention sweep.
- `sweep_retention`: erase the details of requests that ended more than the
  retention ago (slow timer and start-up). It reads `request_keys` on its
  indexed `erase_after`, then works by `_id`.
- `seal_clear_texts`: once, at start-up, seal the descriptions of requests
  stored in clear before sealing existed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from delego_shared.events.envelope import Envelope
from delego_shared.events.privacy import PrivateDetailsRead
from delego_shared.logging import get_logger
from delego_shared.messaging import PublishNow, publish_nothing
from delego_shared.mongo import Document
from delego_shared.timing import survive
from delego_shared.types import new_id, utcnow

from .domain import ClientRequest
from .domain.details import Access, Reader, details_access, erase_details_after
from .sealing import SealedText, Sealer
from .store import DETAILS_READS, MatchingStore

log = get_logger(__name__)

ATTEMPTS = 5
"""Conditional writes retried when the request changed meanwhile (version moved)."""
SWEEP_BATCH = 500
"""Keys read per query of the retention sweep (it reads again until a batch is short)."""


class DetailsNotVisible(LookupError):
    """Not the caller's request (HTTP 404, as for the request itself)."""


class DetailsForbidden(Exception):
    """The caller is a party but may not read the details now (HTTP 403)."""


class DetailsErased(Exception):
    """The details were erased (HTTP 410)."""


class DetailsStore(Protocol):
    """What these use cases need of the store (`MatchingStore`; a fake in unit tests)."""

    async def load_sealed(
        self, request_id: str
    ) -> tuple[ClientRequest, SealedText | None] | None: ...
    async def wrapped_key(self, request_id: str) -> bytes | None: ...
    async def record_read(self, record: Document, envelopes: Sequence[Envelope]) -> None: ...
    async def shred_key(self, request_id: str) -> bool: ...
    async def details_state(self, request_id: str) -> tuple[int, bool] | None: ...
    async def clear_details(self, request_id: str, version: int) -> bool: ...
    async def details_due(self, now: datetime, limit: int = 500) -> list[str]: ...
    async def schedule_details_erasure(self, request_id: str, at: datetime | None) -> None: ...
    async def request_key(
        self, request_id: str, client_id: str, wrapped_key: bytes, erase_after: datetime | None
    ) -> bytes: ...
    async def clear_text_requests(self) -> list[str]: ...
    async def seal_in_place(self, request_id: str, version: int, sealed: SealedText) -> bool: ...


class PrivateDetails:
    def __init__(
        self,
        store: DetailsStore,
        sealer: Sealer,
        *,
        retention: timedelta,
        source: str,
        publish: PublishNow = publish_nothing,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self.retention = retention
        self.source = source
        self.publish = publish
        self.clock = clock

    async def read(self, request_id: str, reader: Reader) -> str:
        """The private text for `reader`, recorded in the audit before it is returned."""
        loaded = await self.store.load_sealed(request_id)
        if loaded is None:
            raise DetailsNotVisible(request_id)
        req, sealed = loaded
        access = details_access(req, reader)
        if access is Access.NOT_VISIBLE:
            raise DetailsNotVisible(request_id)
        if access is Access.NOT_YET:
            raise DetailsForbidden(
                "the private details are for the provider who accepted, once accepted; "
                "a proposal shows only the request's summary"
            )
        if access is Access.REASON_REQUIRED:
            raise DetailsForbidden("an operator reads private details only with a stated reason")
        if req.details_erased:
            raise DetailsErased(request_id)
        text = req.spec.description  # stored before sealing existed (the backfill seals it)
        if sealed is not None:
            key = await self.store.wrapped_key(request_id)
            if key is None:
                raise DetailsErased(request_id)  # shredded; the ciphertext is going
            text = self.sealer.open(request_id, key, sealed)
        if text:
            await self._record(req, reader)
        return text

    async def _record(self, req: ClientRequest, reader: Reader) -> None:
        now = self.clock()
        read = PrivateDetailsRead(
            read_id=new_id("read"),
            subject_id=req.client_id,
            request_id=req.request_id,
            reader_id=reader.reader_id,
            reader_role=reader.role.value,
            channel=reader.channel,
            reason=reader.reason.value if reader.reason is not None else None,
            reference=reader.reference,
            read_at=now,
        )
        envelope = Envelope(data=read, source=self.source)
        record = {"_id": read.read_id, **read.model_dump(mode="json"), "read_at": now}
        await self.store.record_read(record, [envelope])
        await self.publish(DETAILS_READS, read.read_id, stored=[envelope], pending=1)
        log.info(
            "details.read",
            request_id=req.request_id,
            reader_role=reader.role.value,
            reason=read.reason,
        )

    async def erase(self, request_id: str) -> bool:
        """Shred the key, then clear the request's stored details. True if anything was
        erased now (False when already erased: idempotent)."""
        shredded = await self.store.shred_key(request_id)
        for _ in range(ATTEMPTS):
            state = await self.store.details_state(request_id)
            if state is None or not state[1]:
                return shredded
            if await self.store.clear_details(request_id, state[0]):
                return True
        raise RuntimeError(f"request {request_id} kept changing during its erasure; retried")

    async def seal_clear_texts(self) -> int:
        """Seal the descriptions stored in clear before sealing existed (a start-up
        migration), so that erasure and retention reach them like any other."""
        sealed = 0
        for request_id in await self.store.clear_text_requests():
            for _ in range(ATTEMPTS):
                loaded = await self.store.load_sealed(request_id)
                if loaded is None or not loaded[0].spec.description:
                    break
                req = loaded[0]
                key = await self.store.request_key(
                    request_id,
                    req.client_id,
                    self.sealer.new_key(),
                    erase_details_after(req, self.retention),
                )
                text = self.sealer.seal(request_id, key, req.spec.description)
                if await self.store.seal_in_place(request_id, req.version, text):
                    sealed += 1
                    break
        return sealed

    async def sweep_retention(self) -> int:
        """Erase the details of requests ended more than the retention ago."""
        now = self.clock()
        erased = 0
        while True:  # each id handled leaves the due set: erased, re-dated or withdrawn
            batch = await self.store.details_due(now, SWEEP_BATCH)
            for request_id in batch:
                loaded = await self.store.load_sealed(request_id)
                due = erase_details_after(loaded[0], self.retention) if loaded else now
                if due is not None and due <= now:
                    erased += await self.erase(request_id)
                    log.info("details.retention_erased", request_id=request_id)
                else:  # written ahead of a transition that did not happen, or not yet due
                    await self.store.schedule_details_erasure(request_id, due)
            if len(batch) < SWEEP_BATCH:
                return erased


async def retention_loop(
    details: PrivateDetails,
    interval_s: float,
    at_start: Sequence[Callable[[], Awaitable[object]]] = (),
) -> None:
    """Start-up jobs (migrations), then the retention sweep now and every `interval_s`."""
    for job in at_start:
        await survive(job, "details.startup_job_failed")
    while True:
        await survive(details.sweep_retention, "details.retention_failed")
        await asyncio.sleep(interval_s)


CLEAR_TEXT_MIGRATION = "seal_clear_texts"


async def run_once(
    store: MatchingStore,
    name: str,
    job: Callable[[], Awaitable[int]],
    clock: Callable[[], datetime],
) -> int:
    """A start-up migration, skipped once `migrations/<name>` says it was done."""
    if await store.migration_done(name):
        return 0
    count = await job()
    await store.mark_migration(name, clock(), {"documents": count})
    log.info("migration.done", migration=name, documents=count)
    return count
