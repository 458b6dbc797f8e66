"""Parking a record on `<topic>.dlq` with the reason, so the partition keeps flowing.

The parked record keeps the original key, body and headers; `dlq_*` headers
say why (error type and message, attempts, consumer group) and where it came
from, so `delego dlq replay` can put it back on its topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..events.base import dlq_name
from ..logging import mask_text
from .publisher import EventPublisher

H_ERROR_TYPE = "dlq_error_type"
H_ERROR_MESSAGE = "dlq_error_message"
H_ATTEMPTS = "dlq_attempts"
H_GROUP = "dlq_consumer_group"
H_TOPIC = "dlq_original_topic"
H_PARTITION = "dlq_original_partition"
H_OFFSET = "dlq_original_offset"
DLQ_HEADERS = (H_ERROR_TYPE, H_ERROR_MESSAGE, H_ATTEMPTS, H_GROUP, H_TOPIC, H_PARTITION, H_OFFSET)


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
            rec.topic, rec.partition, rec.offset, rec.key, rec.value or b"", list(rec.headers or ())
        )


class DeadLetterQueue:
    def __init__(self, publisher: EventPublisher, group: str) -> None:
        self.publisher = publisher
        self.group = group

    async def park(self, record: RawRecord, error: BaseException, attempts: int) -> None:
        headers = {k: v.decode(errors="replace") for k, v in record.headers if k not in DLQ_HEADERS}
        headers.update(
            {
                H_ERROR_TYPE: type(error).__name__,
                H_ERROR_MESSAGE: mask_text(str(error))[:2000],
                H_ATTEMPTS: str(attempts),
                H_GROUP: self.group,
                H_TOPIC: record.topic,
                H_PARTITION: str(record.partition),
                H_OFFSET: str(record.offset),
            }
        )
        await self.publisher.publish_physical(
            dlq_name(record.topic), record.key, headers, record.value
        )
