"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Attributes travel as `ce_*` headers, the body is the event's JSON. Extension
attributes `correlationid` and `causationid` tie a chain of events together:
every event caused by handling another carries the cause's correlation id and
the cause's id as causation id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from .base import Event, EventRegistry, registry

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
H_ID, H_TYPE, H_SOURCE, H_TIME = "ce_id", "ce_type", "ce_source", "ce_time"
H_SUBJECT, H_SPEC = "ce_subject", "ce_specversion"
H_CORRELATION, H_CAUSATION = "ce_correlationid", "ce_causationid"
H_CONTENT_TYPE = "content-type"
REQUIRED = (H_ID, H_TYPE, H_SOURCE, H_TIME, H_SPEC)


class MalformedEvent(ValueError):
    """A record that cannot be decoded into a known event: goes straight to the DLQ."""


@dataclass(frozen=True)
class Envelope:
    """An event plus its CloudEvents attributes."""

    data: Event
    source: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            # a naive time would be read as the host's local time: not an instant
            raise ValueError("an envelope's time must be timezone-aware (a UTC instant)")
        if self.correlation_id is None:
            object.__setattr__(self, "correlation_id", self.id)

    @property
    def type(self) -> str:
        return self.data.event_type

    @property
    def subject(self) -> str:
        return self.data.key()

    @property
    def topic(self) -> str:
        return self.data.topic.name

    def caused(self, data: Event, source: str) -> Envelope:
        """A new envelope for an event caused by handling this one."""
        return Envelope(
            data=data, source=source, correlation_id=self.correlation_id, causation_id=self.id
        )

    def headers(self) -> dict[str, str]:
        h = {
            H_SPEC: SPEC_VERSION,
            H_ID: self.id,
            H_TYPE: self.type,
            H_SOURCE: self.source,
            H_TIME: self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            H_SUBJECT: self.subject,
            H_CONTENT_TYPE: CONTENT_TYPE,
            H_CORRELATION: self.correlation_id or self.id,
        }
        if self.causation_id:
            h[H_CAUSATION] = self.causation_id
        return h

    def body(self) -> bytes:
        return self.data.model_dump_json().encode()

    def key(self) -> bytes:
        return self.subject.encode()

    # --- storage form (the outbox keeps envelopes as plain documents) -------
    def to_document(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "key": self.subject,
            "headers": self.headers(),
            "body": self.body().decode(),
        }

    @classmethod
    def from_record(
        cls,
        headers: Mapping[str, str] | Iterable[tuple[str, bytes]],
        body: bytes,
        reg: EventRegistry = registry,
    ) -> Envelope:
        """Decode a Kafka record; raises MalformedEvent with the precise reason."""
        h = normalise_headers(headers)
        missing = [k for k in REQUIRED if not h.get(k)]
        if missing:
            raise MalformedEvent(f"missing CloudEvents header(s): {', '.join(missing)}")
        if h[H_SPEC] != SPEC_VERSION:
            raise MalformedEvent(
                f"unsupported ce_specversion '{h[H_SPEC]}' (expected {SPEC_VERSION})"
            )
        try:
            cls_ = reg.resolve(h[H_TYPE])
        except LookupError as exc:
            raise MalformedEvent(str(exc)) from None
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"body is not valid JSON: {exc}") from None
        try:
            data = cls_.model_validate(payload)
        except ValidationError as exc:
            raise MalformedEvent(f"body does not match {h[H_TYPE]}: {_short(exc)}") from None
        try:
            time = datetime.fromisoformat(h[H_TIME].replace("Z", "+00:00"))
        except ValueError:
            raise MalformedEvent(f"ce_time '{h[H_TIME]}' is not an ISO-8601 instant") from None
        if time.tzinfo is None or time.utcoffset() is None:
            raise MalformedEvent(
                f"ce_time '{h[H_TIME]}' has no UTC offset: a naive time is not an instant "
                "(send e.g. 2026-01-01T09:00:00Z)"
            )
        return cls(
            data=data,
            source=h[H_SOURCE],
            id=h[H_ID],
            time=time,
            correlation_id=h.get(H_CORRELATION) or h[H_ID],
            causation_id=h.get(H_CAUSATION),
        )


def normalise_headers(headers: Mapping[str, str] | Iterable[tuple[str, bytes]]) -> dict[str, str]:
    if isinstance(headers, Mapping):
        items: Iterable[tuple[str, Any]] = headers.items()
    else:
        items = headers
    out: dict[str, str] = {}
    for k, v in items:
        out[k] = v.decode(errors="replace") if isinstance(v, bytes | bytearray) else str(v)
    return out


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
