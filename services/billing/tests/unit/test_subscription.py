from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from billing.domain.errors import BillingError
from billing.domain.subscription import period_containing, period_start, periods_due


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_first_period_starts_at_acceptance_and_is_due_immediately():
    acc = utc(2026, 3, 15, 10, 30)
    (p,) = periods_due(acc, None, acc)
    assert (p.index, p.key, p.start, p.end) == (0, "2026-03", acc, utc(2026, 4, 15, 10, 30))


def test_month_end_anchor_clamps_without_drifting():
    acc = utc(2026, 1, 31, 8, 0)
    starts = [period_start(acc, i) for i in range(5)]
    assert starts == [
        utc(2026, 1, 31, 8),
        utc(2026, 2, 28, 8),  # no 31 Feb: last day of the month
        utc(2026, 3, 31, 8),  # back to the 31st, not the 28th
        utc(2026, 4, 30, 8),
        utc(2026, 5, 31, 8),
    ]


def test_leap_year_february():
    acc = utc(2028, 1, 30)
    assert period_start(acc, 1) == utc(2028, 2, 29)
    assert period_start(utc(2028, 2, 29), 12) == utc(2029, 2, 28)


def test_keys_are_stable_and_unique():
    acc = utc(2026, 1, 31)
    due = periods_due(acc, None, utc(2027, 2, 1))
    keys = [p.key for p in due]
    assert keys[:3] == ["2026-01", "2026-02", "2026-03"]
    assert len(keys) == len(set(keys)) == 13
    # asking again later returns the same first periods with the same keys
    assert [p.key for p in periods_due(acc, None, utc(2027, 6, 1))][:13] == keys


def test_period_boundaries_are_inclusive_start_exclusive_end():
    acc = utc(2026, 3, 15, 12)
    assert len(periods_due(acc, None, utc(2026, 4, 15, 11, 59))) == 1
    assert len(periods_due(acc, None, utc(2026, 4, 15, 12))) == 2
    assert periods_due(acc, None, acc - timedelta(seconds=1)) == []


def test_cancellation_mid_period_ends_after_current_period():
    acc = utc(2026, 1, 10)
    cancelled = utc(2026, 3, 20)  # during the third period
    due = periods_due(acc, cancelled, utc(2026, 12, 31))
    assert [p.key for p in due] == ["2026-01", "2026-02", "2026-03"]
    assert due[-1].end == utc(2026, 4, 10)  # paid period runs to its end


def test_cancellation_exactly_at_a_period_start_does_not_bill_that_period():
    acc = utc(2026, 1, 10)
    due = periods_due(acc, utc(2026, 3, 10), utc(2026, 12, 31))
    assert [p.key for p in due] == ["2026-01", "2026-02"]


def test_cancel_before_now_and_now_before_cancel():
    acc = utc(2026, 1, 10)
    cancel = utc(2026, 5, 1)
    assert [p.key for p in periods_due(acc, cancel, utc(2026, 2, 11))] == ["2026-01", "2026-02"]


def test_anchor_on_client_local_day():
    # 23:30 UTC on 31 Jan is already 1 Feb in Paris: periods anchor on the 1st locally.
    acc = utc(2026, 1, 31, 23, 30)
    p1 = period_containing(acc, utc(2026, 3, 5), zone="Europe/Paris")
    assert p1.key == "2026-03"
    assert p1.start == utc(2026, 2, 28, 23, 30)  # 1 Mar 00:30 Paris (CET)
    # across the DST change the local time of day is kept (00:30 CEST = 22:30 UTC)
    assert period_start(acc, 3, zone="Europe/Paris") == utc(2026, 4, 30, 22, 30)
    # the first period is keyed on the local month
    assert periods_due(acc, None, acc, zone="Europe/Paris")[0].key == "2026-02"


def test_period_containing():
    acc = utc(2026, 1, 31)
    assert period_containing(acc, utc(2026, 1, 31)).index == 0
    assert period_containing(acc, utc(2026, 2, 27, 23)).index == 0
    assert period_containing(acc, utc(2026, 2, 28)).index == 1
    assert period_containing(acc, utc(2027, 1, 31)).key == "2027-01"
    with pytest.raises(BillingError):
        period_containing(acc, utc(2026, 1, 1))


def test_naive_datetimes_are_rejected():
    with pytest.raises(BillingError):
        periods_due(datetime(2026, 1, 1), None, utc(2026, 2, 1))
