"""`delego privacy` — a person's erasure across the services, its receipts, their export.

`erase SUBJECT` publishes `ErasureRequested` on `privacy.subjects.v1` (keyed by
the subject id, source `/delego/privacy`); each service erases what it holds and
answers with `ErasureCompleted`. `status SUBJECT` reads the topic and says which
services have confirmed the subject's latest erasure (exit code 0 once all four
have, 1 before). Receipts whose `ce_source` is not the service they name are
ignored: only billing can confirm for billing. `export SUBJECT` gathers
`GET /v1/me/data` of the four services (operator token) into one JSON document.
`audit SUBJECT` lists every recorded read of SUBJECT's private details
(`PrivateDetailsRead` on the same topic and key): who, which request, when, and
an operator's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from aiokafka import AIOKafkaProducer
from delego_shared.events.envelope import Envelope, MalformedEvent
from delego_shared.events.privacy import (
    ERASING_SERVICES,
    ErasureCompleted,
    ErasureRequested,
    PrivateDetailsRead,
)
from delego_shared.events.topics import PRIVACY_SUBJECTS
from delego_shared.http.auth import Role, mint_token
from delego_shared.messaging.owners import owner_source
from delego_shared.messaging.topics_admin import Kafka
from delego_shared.settings import KafkaAccess, Settings
from delego_shared.types import utcnow

from . import kafka_ops

OPERATOR_SOURCE = owner_source(PRIVACY_SUBJECTS.service)
"""`/delego/privacy`: the operators' tooling, owner of `privacy.subjects.v1`."""


async def request_erasure(kafka: Kafka, subject_id: str, *, prefix: str = "") -> ErasureRequested:
    """Publish one erasure request (acks=all) and return it."""
    request = ErasureRequested(
        erasure_id=f"era_{uuid.uuid4().hex}",
        subject_id=subject_id,
        requested_by="operator",
        requested_at=utcnow(),
    )
    envelope = Envelope(data=request, source=OPERATOR_SOURCE)
    producer = AIOKafkaProducer(
        **KafkaAccess.of(kafka).client_options(), acks="all", enable_idempotence=True
    )
    try:
        await producer.start()
    except Exception as exc:
        raise kafka_ops.BrokerUnreachable(
            f"cannot reach Kafka at {KafkaAccess.of(kafka).bootstrap}: {exc}"
        ) from None
    try:
        await producer.send_and_wait(
            prefix + PRIVACY_SUBJECTS.name,
            envelope.body(),
            key=envelope.key(),
            headers=[(k, v.encode()) for k, v in envelope.headers().items()],
        )
    finally:
        await producer.stop()
    return request


@dataclass
class ErasureStatus:
    """The subject's latest erasure request and the receipts that answer it."""

    subject_id: str
    request: ErasureRequested | None = None
    receipts: dict[str, ErasureCompleted] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [s for s in ERASING_SERVICES if s not in self.receipts]

    @property
    def complete(self) -> bool:
        return self.request is not None and not self.missing

    def to_json(self) -> dict[str, object]:
        return {
            "subject_id": self.subject_id,
            "erasure_id": self.request.erasure_id if self.request else None,
            "requested_at": self.request.requested_at.isoformat() if self.request else None,
            "complete": self.complete,
            "missing": self.missing,
            "receipts": {
                s: r.model_dump(mode="json", include={"erased", "kept", "completed_at"})
                for s, r in sorted(self.receipts.items())
            },
        }


async def subject_records(
    kafka: Kafka, subject_id: str, *, prefix: str = "", idle_s: float = 1.0
) -> list[Envelope]:
    """The subject's records of `privacy.subjects.v1`, from the beginning (an operator's
    read of a small topic)."""
    key = subject_id.encode()
    envelopes = []
    async for rec in kafka_ops.read(
        kafka, prefix + PRIVACY_SUBJECTS.name, from_beginning=True, follow=False, idle_s=idle_s
    ):
        if rec.key != key:
            continue
        try:
            envelopes.append(Envelope.from_record(rec.headers, rec.value))
        except MalformedEvent:
            continue
    return envelopes


async def erasure_status(
    kafka: Kafka, subject_id: str, *, prefix: str = "", idle_s: float = 1.0
) -> ErasureStatus:
    envelopes = await subject_records(kafka, subject_id, prefix=prefix, idle_s=idle_s)
    return status_of(subject_id, envelopes)


def audit_of(subject_id: str, envelopes: Iterable[Envelope]) -> list[PrivateDetailsRead]:
    """Reads of the subject's private details, oldest first; a record counts only when
    its `ce_source` is the service it names (one read once, by `read_id`)."""
    reads: dict[str, PrivateDetailsRead] = {}
    for env in envelopes:
        data = env.data
        if (
            isinstance(data, PrivateDetailsRead)
            and data.subject_id == subject_id
            and env.source == owner_source(data.service)
        ):
            reads[data.read_id] = data
    return sorted(reads.values(), key=lambda r: r.read_at)


async def access_audit(
    kafka: Kafka, subject_id: str, *, prefix: str = ""
) -> list[PrivateDetailsRead]:
    return audit_of(subject_id, await subject_records(kafka, subject_id, prefix=prefix))


def status_of(subject_id: str, envelopes: Iterable[Envelope]) -> ErasureStatus:
    """The latest request for the subject and the receipts of that request; a receipt
    counts only when its `ce_source` is the service it names."""
    requests: list[ErasureRequested] = []
    receipts: list[ErasureCompleted] = []
    for env in envelopes:
        data = env.data
        if isinstance(data, ErasureRequested) and data.subject_id == subject_id:
            requests.append(data)
        elif (
            isinstance(data, ErasureCompleted)
            and data.subject_id == subject_id
            and env.source == owner_source(data.service)
        ):
            receipts.append(data)
    status = ErasureStatus(subject_id)
    if requests:
        status.request = max(requests, key=lambda r: r.requested_at)
        wanted = status.request.erasure_id
        status.receipts = {r.service: r for r in receipts if r.erasure_id == wanted}
    return status


async def wait_for_erasure(
    kafka: Kafka, subject_id: str, *, prefix: str = "", timeout_s: float = 60.0
) -> ErasureStatus:
    """Poll the status until every service confirmed or `timeout_s` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        status = await erasure_status(kafka, subject_id, prefix=prefix)
        if status.complete or loop.time() >= deadline:
            return status
        await asyncio.sleep(1.0)


SERVICE_URLS = {
    "catalog": "http://127.0.0.1:8001",
    "matching": "http://127.0.0.1:8002",
    "billing": "http://127.0.0.1:8003",
    "notifications": "http://127.0.0.1:8004",
}
"""Defaults of `make run`; `DELEGO_<SERVICE>_URL` overrides each."""


class ExportFailed(RuntimeError):
    """A service did not answer the export: the document would be incomplete."""


async def collect_export(
    services: Mapping[str, httpx.AsyncClient], subject_id: str, operator_token: str
) -> dict[str, Any]:
    """`GET /v1/me/data?subject_id=` on every service (operator token), in one document."""
    parts: dict[str, Any] = {}
    for name, http in services.items():
        r = await http.get(
            "/v1/me/data",
            params={"subject_id": subject_id},
            headers={"Authorization": f"Bearer {operator_token}"},
        )
        if r.status_code != 200:
            raise ExportFailed(f"{name}: HTTP {r.status_code} {r.text[:300]}")
        parts[name] = r.json()["data"]
    return {"subject_id": subject_id, "exported_at": utcnow().isoformat(), "services": parts}


async def export_from_urls(urls: Mapping[str, str], subject_id: str, token: str) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            for name, url in urls.items()
        }
        return await collect_export(clients, subject_id, token)


# --- commands --------------------------------------------------------------------------

privacy_app = typer.Typer(help="A person's erasure across the services.", no_args_is_help=True)

Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap", "-b", envvar="DELEGO_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers"
    ),
]
Prefix = Annotated[str, typer.Option(help="topic name prefix (isolated deployments)")]


@privacy_app.command("erase")
def erase(subject: str, bootstrap: Bootstrap = "127.0.0.1:9092", prefix: Prefix = "") -> None:
    """Ask every service to erase SUBJECT (a user id); `status` shows their receipts."""
    from .main import _run

    request = _run(request_erasure(kafka_ops.operator_access(bootstrap), subject, prefix=prefix))
    typer.echo(f"erasure {request.erasure_id} of {subject} requested")


@privacy_app.command("status")
def status(
    subject: str,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    prefix: Prefix = "",
    wait: Annotated[float, typer.Option(help="seconds to wait for every receipt")] = 0.0,
) -> None:
    """Which services have confirmed SUBJECT's latest erasure (exit 1 until all four have)."""
    from .main import _run

    st = _run(
        wait_for_erasure(
            kafka_ops.operator_access(bootstrap), subject, prefix=prefix, timeout_s=wait
        )
    )
    typer.echo(json.dumps(st.to_json(), indent=2))
    if not st.complete:
        raise typer.Exit(1)


@privacy_app.command("export")
def export(
    subject: str,
    out: Annotated[Path | None, typer.Option(help="write the JSON here (default: stdout)")] = None,
) -> None:
    """Everything the four services hold about SUBJECT, as one JSON document (art. 15, 20)."""
    urls = {
        name: os.environ.get(f"DELEGO_{name.upper()}_URL", url)
        for name, url in SERVICE_URLS.items()
    }
    token = mint_token(Settings(), "privacy-export", Role.OPERATOR, ttl=timedelta(minutes=5))
    try:
        document = asyncio.run(export_from_urls(urls, subject, token))
    except (ExportFailed, httpx.HTTPError) as exc:
        typer.echo(f"error: export incomplete: {exc}", err=True)
        raise typer.Exit(2) from None
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        typer.echo(f"wrote {out}")


@privacy_app.command("audit")
def audit(subject: str, bootstrap: Bootstrap = "127.0.0.1:9092", prefix: Prefix = "") -> None:
    """Every recorded read of SUBJECT's private details: who, which request, when, why."""
    from .main import _run

    reads = _run(access_audit(kafka_ops.operator_access(bootstrap), subject, prefix=prefix))
    fields = {"read_at", "request_id", "reader_id", "reader_role", "channel", "reason", "reference"}
    typer.echo(
        json.dumps(
            {
                "subject_id": subject,
                "reads": [r.model_dump(mode="json", include=fields) for r in reads],
            },
            indent=2,
        )
    )
