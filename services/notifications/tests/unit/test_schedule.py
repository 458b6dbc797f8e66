"""Schedule repair: an entry is brought back in line with its delivery, never dropped
while the delivery still needs work; and which retries wake an in-process timer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from notifications.domain import (
    DeliveryStatus,
    Drop,
    FinishFailover,
    Op,
    Reschedule,
    State,
    Wait,
    repair,
    retry_timer_delay,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=2)
LATER = NOW + timedelta(seconds=90)


def fix(status: DeliveryStatus | None, created: datetime = NOW - timedelta(hours=1)):
    return repair(status, entry_created_at=created, now=NOW, grace=GRACE)


def test_an_entry_without_delivery_waits_for_its_writer_then_goes():
    assert fix(None, created=NOW - timedelta(seconds=5)) == Wait()
    assert fix(None, created=NOW - GRACE) == Drop()


@pytest.mark.parametrize("state", [State.DELIVERED, State.DIGESTED, State.FAILED])
def test_final_deliveries_leave_the_schedule(state):
    assert fix(DeliveryStatus(state=state)) == Drop()


def test_a_failure_with_successors_not_yet_inserted_is_finished_first():
    assert fix(DeliveryStatus(state=State.FAILED, failover_pending=True)) == FinishFailover()


def test_pending_sending_and_held_are_rescheduled_to_what_the_delivery_says():
    assert fix(DeliveryStatus(state=State.PENDING, due_at=LATER)) == Reschedule(Op.SEND, LATER)
    assert fix(DeliveryStatus(state=State.SENDING, lease_until=LATER)) == Reschedule(Op.SEND, LATER)
    # e.g. a release that turned the entry to `send` and died before releasing
    assert fix(DeliveryStatus(state=State.HELD, hold_until=LATER)) == Reschedule(Op.RELEASE, LATER)


def test_every_non_final_state_keeps_an_entry():
    for state in set(State.ALL) - State.FINAL:
        assert not isinstance(fix(DeliveryStatus(state=state)), Drop | Wait)


def test_retry_timers_only_within_the_horizon_and_never_negative():
    horizon = timedelta(minutes=5)
    assert retry_timer_delay(NOW + timedelta(seconds=30), NOW, horizon=horizon) == 30.0
    assert retry_timer_delay(NOW - timedelta(seconds=3), NOW, horizon=horizon) == 0.0
    assert retry_timer_delay(NOW + timedelta(minutes=6), NOW, horizon=horizon) is None
