"""Parking a record on `<topic>.dlq` with the reason, so the partition keeps flowing.

The parked record keeps the original key, body and headers; `dlq_*` headers
say why (error type and message, attempts, the consumer group that failed)
and where it came from, so `delego dlq replay` can put it back on its topic
for that group only.

Every record that was read can be parked. A copy that would not fit in one
Kafka record (the broker accepted a record of about 1 MiB; our `dlq_*`
headers on top of it would not pass the producer's `max_request_size`) keeps
what fits: the body's SHA-256 and size always, the body itself only when it
fits, the key and headers cut to a bounded size. If the broker still refuses
the copy as too large, a minimal copy (metadata and digests only) is parked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from ..events.base import dlq_name
from ..logging import get_logger, mask_text
from .publisher import EventPublisher

log = get_logger(__name__)

H_ERROR_TYPE = "dlq_error_type"
H_ERROR_MESSAGE = "dlq_error_message"
H_ATTEMPTS = "dlq_attempts"
H_GROUP = "dlq_consumer_group"
H_TOPIC = "dlq_original_topic"
H_PARTITION = "dlq_original_partition"
H_OFFSET = "dlq_original_offset"
H_BODY_SHA256 = "dlq_body_sha256"
H_BODY_SIZE = "dlq_body_size"
H_BODY_OMITTED = "dlq_body_omitted"
""""true" when the body did not fit: the record cannot be replayed, only inspected."""
H_KEY_SHA256 = "dlq_key_sha256"
H_HEADERS_CUT = "dlq_headers_truncated"
DLQ_HEADERS = (
    H_ERROR_TYPE,
    H_ERROR_MESSAGE,
    H_ATTEMPTS,
    H_GROUP,
    H_TOPIC,
    H_PARTITION,
    H_OFFSET,
    H_BODY_SHA256,
    H_BODY_SIZE,
    H_BODY_OMITTED,
    H_KEY_SHA256,
    H_HEADERS_CUT,
)
H_REPLAY_GROUP = "delego_replay_group"
"""Set by `delego dlq replay` on a replayed record: only that consumer group handles it."""
H_REPLAY_OF = "dlq_replay_of"
"""On a marker record `delego dlq replay` appends to the DLQ: the offset it replayed."""

MAX_DLQ_RECORD_BYTES = 1_000_000
"""Below the producer's default `max_request_size` (1,048,576) and the broker's default
`message.max.bytes` (1,048,588), with room for the headers FastStream adds."""
MAX_KEY_BYTES = 1024
MAX_HEADER_VALUE_BYTES = 1024
MAX_HEADERS_BYTES = 16 * 1024
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class RawRecord:
    """What we need of a consumed Kafka record (aiokafka ConsumerRecord shape)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @classmethod
    def of(cls, rec: Any) -> RawRecord:
        return cls(
            rec.topic,
            rec.partition,
            rec.offset,
            rec.key,
            rec.value or b"",
            [(k, v or b"") for k, v in rec.headers or ()],
        )

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode(errors="replace")
        return None


@dataclass(frozen=True)
class DeadLetter:
    """The record to append to `<topic>.dlq`."""

    topic: str
    key: bytes | None
    headers: dict[str, str]
    body: bytes

    def size(self) -> int:
        """What the producer counts against `max_request_size`."""
        headers = [(k, v.encode()) for k, v in self.headers.items()]
        return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(self.key, self.body, headers))


def _cut(text: str, limit: int) -> str:
    raw = text.encode()
    return text if len(raw) <= limit else raw[:limit].decode(errors="ignore")


def _fit_headers(headers: Iterable[tuple[str, bytes]]) -> tuple[dict[str, str], bool]:
    """The original headers (ours removed), each value and the whole set bounded."""
    out: dict[str, str] = {}
    used, cut = 0, False
    for k, v in headers:
        if k in DLQ_HEADERS or k == H_REPLAY_GROUP:
            continue
        name, value = _cut(k, 256), _cut(v.decode(errors="replace"), MAX_HEADER_VALUE_BYTES)
        cut = cut or name != k or len(value.encode()) < len(v)
        if used + len(name) + len(value.encode()) > MAX_HEADERS_BYTES:
            cut = True
            continue
        out[name] = value
        used += len(name) + len(value.encode())
    return out, cut


def dead_letter(
    record: RawRecord, error: BaseException, attempts: int, group: str, *, minimal: bool = False
) -> DeadLetter:
    """The DLQ copy of `record`: as much of it as fits in one record the broker accepts.

    `minimal` keeps only our metadata and the digests (the last resort).
    """
    meta = {
        H_ERROR_TYPE: type(error).__name__,
        H_ERROR_MESSAGE: mask_text(str(error))[:MAX_ERROR_CHARS],
        H_ATTEMPTS: str(attempts),
        H_GROUP: group,
        H_TOPIC: record.topic,
        H_PARTITION: str(record.partition),
        H_OFFSET: str(record.offset),
        H_BODY_SHA256: hashlib.sha256(record.value).hexdigest(),
        H_BODY_SIZE: str(len(record.value)),
    }
    key = record.key
    if key is not None and (minimal or len(key) > MAX_KEY_BYTES):
        meta[H_KEY_SHA256] = hashlib.sha256(key).hexdigest()
        key = key[:MAX_KEY_BYTES] if not minimal else None
    if minimal:
        kept: dict[str, str] = {}
        meta[H_HEADERS_CUT] = "true"
    else:
        kept, cut = _fit_headers(record.headers)
        if cut:
            meta[H_HEADERS_CUT] = "true"
    headers = {**kept, **meta}
    letter = DeadLetter(dlq_name(record.topic), key, headers, record.value)
    if minimal or letter.size() > MAX_DLQ_RECORD_BYTES:
        letter = DeadLetter(letter.topic, key, {**headers, H_BODY_OMITTED: "true"}, b"")
    return letter


class DeadLetterQueue:
    def __init__(self, publisher: EventPublisher, group: str) -> None:
        self.publisher = publisher
        self.group = group

    async def park(self, record: RawRecord, error: BaseException, attempts: int) -> DeadLetter:
        """Append the record's DLQ copy (acks=all); a broker that is down raises, and the
        consumer tries again: the record is never skipped unparked."""
        letter = dead_letter(record, error, attempts, self.group)
        try:
            await self._send(letter)
        except MessageSizeTooLargeError:
            # the DLQ topic's own limit is lower than ours: keep what always fits
            log.warning("dlq.copy_too_large", topic=record.topic, offset=record.offset)
            letter = dead_letter(record, error, attempts, self.group, minimal=True)
            await self._send(letter)
        return letter

    async def _send(self, letter: DeadLetter) -> None:
        await self.publisher.publish_physical(letter.topic, letter.key, letter.headers, letter.body)
