"""A service's part in a person's erasure: consume `ErasureRequested`, erase, post a receipt.

Each service passes its own erasure use case (`Eraser`); this module only wires it
to the shared topic `privacy.subjects.v1`, the same way in all four services:

- the request is handled by the service's ordinary consumer (retry, DLQ,
  provenance check), and its offset is committed only after the handler returns;
- the handler runs the service's erasure, a sequence of idempotent writes by
  `_id`, then publishes `ErasureCompleted` (acks=all) before returning.

So a crash anywhere in between redelivers the request: the erasure runs again
(changing nothing already erased) and the receipt is posted (again). The operator
reads the receipts with `delego privacy status <subject>`.

`export_router` is the other half: `GET /v1/me/data` on every service, the
person's own data (an operator may name the subject), gathered by
`delego privacy export <subject>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel

from .events.envelope import Envelope
from .events.privacy import ErasureCompleted, ErasureRequested
from .events.topics import PRIVACY_SUBJECTS
from .http.app import ServiceRuntime
from .http.auth import Caller, Principal
from .http.problems import Forbidden
from .logging import get_logger
from .messaging.consumer import PermanentError
from .types import Identifier, utcnow

log = get_logger(__name__)

ServiceName = Literal["catalog", "matching", "billing", "notifications"]


@dataclass(frozen=True)
class ErasureResult:
    """What one run of a service's erasure did: documents erased (or pseudonymised)
    per kind, and the kinds it keeps under a legal obligation."""

    erased: dict[str, int] = field(default_factory=dict)
    kept: tuple[str, ...] = ()


Eraser = Callable[[str], Awaitable[ErasureResult]]
"""A service's erasure use case: subject id → what it did. Must be idempotent."""


def take_part_in_erasure(
    runtime: ServiceRuntime, erase: Eraser, *, clock: Callable[[], datetime] = utcnow
) -> None:
    """Subscribe the service's consumer to erasure requests and answer each with a receipt."""
    service = cast(ServiceName, runtime.settings.service_name)

    async def on_request(envelope: Envelope) -> None:
        request = envelope.data
        if not isinstance(request, ErasureRequested):  # registry guarantees it; be explicit
            raise PermanentError(f"not an erasure request: {envelope.type}")
        result = await erase(request.subject_id)
        receipt = ErasureCompleted(
            erasure_id=request.erasure_id,
            subject_id=request.subject_id,
            service=service,
            erased=dict(result.erased),
            kept=list(result.kept),
            completed_at=clock(),
        )
        await runtime.publisher.publish(envelope.caused(receipt, runtime.settings.source))
        log.info("privacy.erased", erasure_id=request.erasure_id, erased=result.erased)

    runtime.consumer.on(ErasureRequested)(on_request)
    runtime.consumer.subscribe([PRIVACY_SUBJECTS])


# --- export (GDPR art. 15 and 20) ------------------------------------------------------

Exporter = Callable[[str], Awaitable[dict[str, Any]]]
"""A service's export: subject id → what it holds about them (JSON-able)."""

ReaderExporter = Callable[[str, Principal], Awaitable[dict[str, Any]]]
"""An export that also needs who asks (matching records who read private details)."""


class DataExport(BaseModel):
    """What one service holds about one person."""

    service: str
    subject_id: str
    exported_at: datetime
    data: dict[str, Any]


def export_router(
    service: str,
    export: Exporter | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    export_for: ReaderExporter | None = None,
) -> APIRouter:
    """`GET /v1/me/data`: the caller's own data; an operator may name `subject_id`.

    Give `export`, or `export_for` when the export depends on who asks."""
    if (export is None) == (export_for is None):
        raise ValueError("give exactly one of export and export_for")
    router = APIRouter(prefix="/v1/me", tags=["privacy"])

    @router.get(
        "/data",
        summary="Everything this service holds about the caller (right of access, art. 15)",
        responses={401: {"description": "no valid token"}, 403: {"description": "not yours"}},
    )
    async def my_data(
        who: Caller,
        subject_id: Annotated[
            Identifier | None, Query(description="operators only: whose data to export")
        ] = None,
    ) -> DataExport:
        subject = subject_id or who.subject
        if subject != who.subject and not who.is_operator:
            raise Forbidden("only operators may export another person's data")
        if export is not None:
            held = await export(subject)
        else:
            assert export_for is not None
            held = await export_for(subject, who)
        data = jsonable_encoder(held)
        return DataExport(service=service, subject_id=subject, exported_at=clock(), data=data)

    return router
