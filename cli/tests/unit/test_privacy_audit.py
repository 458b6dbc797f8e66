"""`delego privacy audit`: which records count as reads of a subject's private details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from delego_cli.privacy import audit_of
from delego_shared.events import Envelope
from delego_shared.events.privacy import ErasureRequested, PrivateDetailsRead

T0 = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def read(read_id: str, at: datetime, *, subject: str = "cli-1", source: str = "/delego/matching"):
    return Envelope(
        data=PrivateDetailsRead(
            read_id=read_id,
            subject_id=subject,
            request_id="req_1",
            reader_id="ops-1",
            reader_role="operator",
            reason="dispute",
            read_at=at,
        ),
        source=source,
    )


def test_lists_the_subjects_reads_oldest_first_each_once() -> None:
    later, earlier = read("read_2", T0 + timedelta(hours=1)), read("read_1", T0)
    erasure = Envelope(
        data=ErasureRequested(
            erasure_id="era_1", subject_id="cli-1", requested_by="operator", requested_at=T0
        ),
        source="/delego/privacy",
    )
    reads = audit_of("cli-1", [later, erasure, earlier, later])  # `later` delivered twice
    assert [r.read_id for r in reads] == ["read_1", "read_2"]
    assert reads[0].reason == "dispute"


def test_a_read_posted_by_another_service_or_of_another_subject_is_ignored() -> None:
    forged = read("read_1", T0, source="/delego/catalog")
    other = read("read_2", T0, subject="cli-2")
    assert audit_of("cli-1", [forged, other]) == []
