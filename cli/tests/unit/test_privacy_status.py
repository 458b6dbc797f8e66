"""`delego privacy status`: which receipts count for a subject's erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from delego_cli.privacy import OPERATOR_SOURCE, status_of
from delego_shared.events import Envelope
from delego_shared.events.privacy import ERASING_SERVICES, ErasureCompleted, ErasureRequested

T0 = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def asked(erasure_id: str, at: datetime, subject: str = "cli-1") -> Envelope:
    return Envelope(
        data=ErasureRequested(
            erasure_id=erasure_id, subject_id=subject, requested_by="operator", requested_at=at
        ),
        source=OPERATOR_SOURCE,
    )


def done(erasure_id: str, service: str, source: str | None = None) -> Envelope:
    return Envelope(
        data=ErasureCompleted(
            erasure_id=erasure_id,
            subject_id="cli-1",
            service=service,  # type: ignore[arg-type]
            completed_at=T0,
        ),
        source=source or f"/delego/{service}",
    )


def test_complete_once_every_service_confirmed_the_latest_request() -> None:
    st = status_of("cli-1", [asked("era_1", T0), *(done("era_1", s) for s in ERASING_SERVICES)])
    assert st.complete and st.missing == []
    assert st.to_json()["erasure_id"] == "era_1"


def test_receipts_of_an_earlier_request_do_not_confirm_a_later_one() -> None:
    envs = [
        asked("era_1", T0),
        *(done("era_1", s) for s in ERASING_SERVICES),
        asked("era_2", T0 + timedelta(days=1)),
        done("era_2", "billing"),
    ]
    st = status_of("cli-1", envs)
    assert not st.complete
    assert st.missing == ["catalog", "matching", "notifications"]


def test_a_receipt_posted_by_another_service_than_it_names_is_ignored() -> None:
    envs = [
        asked("era_1", T0),
        *(done("era_1", s) for s in ("catalog", "matching", "notifications")),
        done("era_1", "billing", source="/delego/catalog"),
    ]
    st = status_of("cli-1", envs)
    assert st.missing == ["billing"]


def test_nothing_asked_is_not_complete() -> None:
    st = status_of("cli-1", [asked("era_9", T0, subject="cli-2")])
    assert st.request is None and not st.complete
