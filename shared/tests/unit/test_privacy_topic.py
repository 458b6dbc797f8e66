"""The shared erasure topic: who may write on it, and that other topics keep one owner."""

from datetime import UTC, datetime

import pytest
from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel, NotificationDelivered
from delego_shared.events.privacy import ErasureCompleted, ErasureRequested
from delego_shared.messaging.owners import ForgedEvent, check_provenance

NOW = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def request() -> ErasureRequested:
    return ErasureRequested(
        erasure_id="era_1", subject_id="cli-1", requested_by="operator", requested_at=NOW
    )


def receipt(service: str) -> ErasureCompleted:
    return ErasureCompleted(
        erasure_id="era_1",
        subject_id="cli-1",
        service=service,  # type: ignore[arg-type]
        erased={"x": 1},
        completed_at=NOW,
    )


@pytest.mark.parametrize(
    "source", ["/delego/privacy", "/delego/notifications", "/delego/catalog", "/delego/billing"]
)
def test_operators_tooling_and_every_service_may_write_on_the_privacy_topic(source: str) -> None:
    check_provenance("privacy.subjects.v1", Envelope(data=request(), source=source))
    check_provenance("privacy.subjects.v1", Envelope(data=receipt("billing"), source=source))


def test_a_stranger_may_not_write_on_the_privacy_topic() -> None:
    with pytest.raises(ForgedEvent, match="/delego/privacy"):
        check_provenance("privacy.subjects.v1", Envelope(data=request(), source="/delego/evil"))


def test_other_topics_still_have_their_owner_only() -> None:
    delivered = NotificationDelivered(
        delivery_id="dlv_1",
        recipient_id="cli-1",
        channel=Channel.EMAIL,
        kind="invoice_issued",
        source_event_id="e1",
        attempts=1,
        delivered_at=NOW,
    )
    for source in ("/delego/privacy", "/delego/billing"):
        with pytest.raises(ForgedEvent):
            check_provenance("notifications.deliveries.v1", Envelope(data=delivered, source=source))
    check_provenance(
        "notifications.deliveries.v1", Envelope(data=delivered, source="/delego/notifications")
    )


def test_erasure_events_are_keyed_by_the_subject_and_carry_no_free_text() -> None:
    assert request().key() == "cli-1" and receipt("catalog").key() == "cli-1"
    fields = set(ErasureRequested.model_fields) | set(ErasureCompleted.model_fields)
    assert fields == {
        "erasure_id",
        "subject_id",
        "requested_by",
        "requested_at",
        "service",
        "erased",
        "kept",
        "completed_at",
    }
