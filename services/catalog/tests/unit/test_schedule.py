"""Working schedule and weekly capacity rules (on the weekly circle)."""

from datetime import date
from decimal import Decimal

import pytest
from catalog.domain import ValidationFailed, weekly_hours
from catalog.domain.errors import Issues
from catalog.domain.schedule import check_capacity, check_schedule, longest_real_week_hours
from delego_shared.events.common import WorkingSpan


def span(day: str, start: str, end: str) -> WorkingSpan:
    return WorkingSpan.model_validate({"day": day, "start": start, "end": end})


def schedule_issues(*spans: WorkingSpan) -> list[tuple[str, str]]:
    issues = Issues()
    check_schedule(list(spans), issues)
    return [(i.field, i.message) for i in issues]


def test_disjoint_and_adjacent_spans_are_fine():
    assert (
        schedule_issues(
            span("mon", "08:00", "12:00"),
            span("mon", "12:00", "13:00"),
            span("mon", "14:00", "18:00"),
            span("tue", "09:00", "10:00"),
        )
        == []
    )


def test_overlap_on_the_same_day_names_both_spans():
    assert schedule_issues(span("mon", "09:00", "12:00"), span("mon", "11:00", "13:00")) == [
        ("schedule.1", "mon 11:00-13:00 overlaps schedule.0 (mon 09:00-12:00)")
    ]


def test_span_crossing_midnight_overlaps_next_morning():
    issues = schedule_issues(span("fri", "22:00", "02:00"), span("sat", "01:00", "05:00"))
    assert issues == [("schedule.1", "sat 01:00-05:00 overlaps schedule.0 (fri 22:00-02:00)")]


def test_span_crossing_midnight_ending_when_next_starts_is_fine():
    assert schedule_issues(span("fri", "22:00", "02:00"), span("sat", "02:00", "05:00")) == []


def test_sunday_night_span_wraps_into_monday():
    issues = schedule_issues(span("mon", "01:00", "03:00"), span("sun", "23:00", "01:30"))
    assert issues == [("schedule.1", "sun 23:00-01:30 overlaps schedule.0 (mon 01:00-03:00)")]


def test_sunday_night_span_ending_before_monday_span_is_fine():
    assert schedule_issues(span("mon", "01:00", "03:00"), span("sun", "23:00", "01:00")) == []


def test_identical_spans_overlap():
    assert schedule_issues(span("wed", "09:00", "10:00"), span("wed", "09:00", "10:00")) == [
        ("schedule.1", "wed 09:00-10:00 overlaps schedule.0 (wed 09:00-10:00)")
    ]


def test_every_overlapping_pair_is_reported():
    issues = schedule_issues(
        span("mon", "09:00", "17:00"), span("mon", "10:00", "11:00"), span("mon", "16:00", "18:00")
    )
    assert [f for f, _ in issues] == ["schedule.1", "schedule.2"]


def test_zero_length_span_is_rejected():
    assert schedule_issues(span("tue", "10:00", "10:00")) == [
        (
            "schedule.0",
            "zero-length span (tue 10:00-10:00): start and end are equal; "
            "a whole day is written 00:00-24:00",
        )
    ]


def test_start_at_24_00_is_rejected():
    assert schedule_issues(span("tue", "24:00", "02:00")) == [
        ("schedule.0.start", "24:00 is an end of day, not a start; use 00:00")
    ]


def test_whole_day_is_00_00_to_24_00():
    assert schedule_issues(span("sat", "00:00", "24:00"), span("sun", "00:00", "24:00")) == []
    assert weekly_hours([span("sat", "00:00", "24:00")]) == 24


def test_empty_schedule_is_rejected():
    assert schedule_issues() == [("schedule", "at least one working span is required")]


def test_too_many_spans_are_rejected():
    spans = [
        span(d, f"{h:02d}:00", f"{h:02d}:30") for d in ("mon", "tue", "wed") for h in range(24)
    ]
    assert schedule_issues(*spans) == [("schedule", "at most 70 working spans, got 72")]


def test_weekly_hours_counts_midnight_crossing_and_wrap():
    assert weekly_hours([span("sun", "22:00", "02:00"), span("wed", "09:00", "12:30")]) == Decimal(
        "7.5"
    )


def capacity_issues(capacity: str, *spans: WorkingSpan) -> list[tuple[str, str]]:
    issues = Issues()
    check_capacity(Decimal(capacity), list(spans), True, issues)
    return [(i.field, i.message) for i in issues]


@pytest.mark.parametrize("capacity", ["0", "-5"])
def test_capacity_must_be_positive(capacity):
    assert capacity_issues(capacity, span("mon", "09:00", "17:00")) == [
        ("weekly_capacity_hours", f"must be greater than 0 hours, got {capacity}")
    ]


def test_capacity_cannot_exceed_a_week():
    week = [span(d, "00:00", "24:00") for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")]
    assert capacity_issues("168", *week) == []
    assert capacity_issues("168.5", *week) == [
        ("weekly_capacity_hours", "must be at most 168 hours (7 x 24), got 168.5")
    ]


def test_capacity_above_scheduled_hours_is_an_error():
    spans = (span("mon", "09:00", "17:00"), span("fri", "22:00", "01:30"))
    assert capacity_issues("11.5", *spans) == []
    assert capacity_issues("12", *spans) == [
        (
            "weekly_capacity_hours",
            "12 h exceeds the 11.5 h of the weekly schedule; "
            "add working spans or lower the capacity",
        )
    ]


def test_capacity_is_not_compared_with_a_broken_schedule():
    issues = Issues()
    check_capacity(Decimal(40), [], False, issues)
    assert not issues


def test_nan_capacity_is_rejected():
    issues = Issues()
    check_capacity(Decimal("NaN"), [span("mon", "09:00", "17:00")], True, issues)
    assert [i.field for i in issues] == ["weekly_capacity_hours"]
    with pytest.raises(ValidationFailed):
        issues.raise_if_any()


# -- capacity against the real week (DST) ------------------------------------------


def real_capacity_issues(capacity: str, zone: str, today: date, *spans: WorkingSpan):
    issues = Issues()
    check_capacity(Decimal(capacity), list(spans), True, issues, zone=zone, today=today)
    return [(i.field, i.message) for i in issues]


@pytest.mark.parametrize(
    ("zone", "longest"),
    [
        ("America/Toronto", "5"),  # clocks back Sunday 1 Nov 2026 02:00 → 01:00
        ("Europe/Paris", "5"),  # Sunday 25 Oct 2026 03:00 → 02:00
        ("Australia/Sydney", "5"),  # Sunday 5 Apr 2026 03:00 → 02:00
        ("Australia/Lord_Howe", "4.5"),  # Sunday 5 Apr 2026 02:00 → 01:30
        ("Asia/Kolkata", "4"),  # no DST
    ],
)
def test_longest_real_week_counts_the_fall_back_hour(zone, longest):
    night = [span("sun", "00:00", "04:00")]
    assert longest_real_week_hours(night, zone, date(2026, 1, 1)) == Decimal(longest)


def test_capacity_up_to_the_fall_back_week_is_accepted_beyond_it_refused():
    night = span("sun", "00:00", "04:00")
    today = date(2026, 6, 1)
    assert real_capacity_issues("5", "America/Toronto", today, night) == []
    assert real_capacity_issues("5.5", "America/Toronto", today, night) == [
        (
            "weekly_capacity_hours",
            "5.5 h exceeds the 5 h of the weekly schedule; add working spans or lower the capacity",
        )
    ]
    # a zone without DST keeps the wall-clock limit
    assert real_capacity_issues("5", "Asia/Kolkata", today, night) == [
        (
            "weekly_capacity_hours",
            "5 h exceeds the 4 h of the weekly schedule; add working spans or lower the capacity",
        )
    ]


def test_a_span_away_from_the_transition_gains_nothing():
    day = span("sun", "09:00", "13:00")
    assert real_capacity_issues("4.5", "America/Toronto", date(2026, 6, 1), day) != []
