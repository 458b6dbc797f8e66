"""Earliest-finish walk: real elapsed time inside working spans, across DST and midnight."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from matching.domain.schedule import (
    WeeklySchedule,
    first_instant_at,
    next_working_day_start,
    plan_work,
    wall_span_instants,
    working_overlap,
)

from .builders import WEEKDAYS, at, spans, utc

H = timedelta(hours=1)


def sched(zone: str, days, start: str, end: str) -> WeeklySchedule:
    return WeeklySchedule.of(spans(days, start, end), zone)


def covered(zone: str, start: datetime, end: datetime) -> timedelta:
    return sum((b - a for a, b in wall_span_instants(ZoneInfo(zone), start, end)), timedelta(0))


# -- plain walks ---------------------------------------------------------------


def test_work_inside_the_current_span_finishes_the_same_day():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 10, 10), 2 * H)  # Tuesday 10:00
    assert plan.finish == at("Europe/Paris", 2026, 2, 10, 12)
    assert plan.seconds_by_week == (("2026-W07", 7200),)


def test_work_outside_hours_starts_at_the_next_span():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 10, 18, 30), 2 * H)
    assert plan.finish == at("Europe/Paris", 2026, 2, 11, 11)


def test_friday_evening_work_lands_on_monday_and_splits_weeks():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 13, 17), 3 * H)  # Fri 17:00
    assert plan.finish == at("Europe/Paris", 2026, 2, 16, 11)
    assert plan.seconds_by_week == (("2026-W07", 3600), ("2026-W08", 7200))


def test_effort_spanning_several_days():
    s = sched("Asia/Kolkata", WEEKDAYS, "09:00", "18:00")
    plan = plan_work(s, at("Asia/Kolkata", 2026, 2, 9, 9), timedelta(hours=20))  # Mon 09:00
    assert plan.finish == at("Asia/Kolkata", 2026, 2, 11, 11)  # 9 + 9 + 2


def test_india_has_a_constant_offset_all_year():
    s = sched("Asia/Kolkata", WEEKDAYS, "09:00", "18:00")
    for month, day in ((3, 30), (10, 26)):  # the Mondays after Europe's DST changes
        plan = plan_work(s, utc(2026, month, day - 1, 12), H)
        assert plan.finish == utc(2026, month, day, 4, 30)  # 10:00 IST = 04:30 UTC


def test_no_schedule_never_finishes_and_zero_effort_is_now():
    now = utc(2026, 2, 10, 12)
    assert plan_work(WeeklySchedule.of([], "Europe/Paris"), now, H).finish is None
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    assert plan_work(s, now, timedelta(0)).finish == now


def test_walk_stops_at_the_limit_and_reports_partial_weeks():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    now = at("Europe/Paris", 2026, 2, 10, 17)
    plan = plan_work(s, now, 2 * H, not_after=at("Europe/Paris", 2026, 2, 11, 8))
    assert plan.finish is None
    assert plan.seconds_by_week == (("2026-W07", 3600),)


def test_a_piece_begun_before_the_limit_reports_its_true_finish():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    now = at("Europe/Paris", 2026, 2, 10, 17)
    limit = at("Europe/Paris", 2026, 2, 10, 17, 30)
    plan = plan_work(s, now, timedelta(minutes=45), not_after=limit)
    assert plan.finish == at("Europe/Paris", 2026, 2, 10, 17, 45)  # caller sees it is late
    # work that would only resume after the limit is not planned at all
    assert plan_work(s, now, 2 * H, not_after=limit).finish is None


def test_overlapping_spans_are_not_counted_twice():
    s = WeeklySchedule.of(
        spans(["mon"], "09:00", "12:00") + spans(["mon"], "11:00", "13:00"), "Europe/Paris"
    )
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 9, 8), 4 * H)
    assert plan.finish == at("Europe/Paris", 2026, 2, 9, 13)  # 09-13 is 4 h, not 5


# -- spans crossing midnight -----------------------------------------------------


def test_span_crossing_midnight_continues_into_the_next_day():
    s = sched("Europe/Paris", ["fri"], "22:00", "02:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 13, 23), 2 * H)
    assert plan.finish == at("Europe/Paris", 2026, 2, 14, 1)


def test_now_inside_yesterdays_overnight_span_is_used():
    s = sched("Europe/Paris", ["fri"], "22:00", "02:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 14, 1), 2 * H)  # Sat 01:00
    assert plan.finish == at("Europe/Paris", 2026, 2, 20, 23)  # 1 h now, 1 h next Friday
    # the shift belongs to the ISO week it starts in (Friday's)
    assert plan.seconds_by_week == (("2026-W07", 3600), ("2026-W08", 3600))


def test_sunday_night_span_into_monday_counts_for_sundays_week():
    s = sched("Europe/Paris", ["sun"], "22:00", "02:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 15, 12), 4 * H)
    assert plan.finish == at("Europe/Paris", 2026, 2, 16, 2)
    assert plan.seconds_by_week == (("2026-W07", 4 * 3600),)


def test_span_with_equal_start_and_end_is_a_whole_day():
    s = sched("Europe/Paris", ["wed"], "06:00", "06:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 11, 6), timedelta(hours=24))
    assert plan.finish == at("Europe/Paris", 2026, 2, 12, 6)


def test_span_ending_at_2400():
    s = sched("Europe/Paris", ["wed"], "20:00", "24:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 11, 12), 4 * H)
    assert plan.finish == at("Europe/Paris", 2026, 2, 12, 0)


# -- DST: Europe/Paris (last Sunday of March / October) ------------------------


def test_paris_spring_forward_span_only_has_real_minutes():
    # 29 March 2026: 02:00 CET -> 03:00 CEST
    z = "Europe/Paris"
    assert covered(z, datetime(2026, 3, 29, 1, 30), datetime(2026, 3, 29, 3, 30)) == H
    # a span starting inside the gap begins when the gap ends
    got = wall_span_instants(ZoneInfo(z), datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 4))
    assert got == ((utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),)
    # entirely inside the gap: nothing
    assert covered(z, datetime(2026, 3, 29, 2, 10), datetime(2026, 3, 29, 2, 50)) == timedelta(0)


def test_paris_spring_forward_walk_uses_one_real_hour_that_night():
    s = sched("Europe/Paris", ["sun"], "01:30", "03:30")
    plan = plan_work(s, utc(2026, 3, 28, 12), timedelta(minutes=90))
    # 1 h on 29 March (00:30-01:30 UTC), 30 min the next Sunday from 01:30 CEST
    assert plan.finish == utc(2026, 4, 5, 0, 0)
    assert plan.seconds_by_week == (("2026-W13", 3600), ("2026-W14", 1800))


def test_paris_fall_back_repeated_hour_is_real_time():
    # 25 October 2026: 03:00 CEST -> 02:00 CET
    z = "Europe/Paris"
    assert covered(z, datetime(2026, 10, 25, 1, 30), datetime(2026, 10, 25, 3, 30)) == 3 * H
    # a span inside the repeated hour is covered once per reading: two pieces
    got = wall_span_instants(
        ZoneInfo(z), datetime(2026, 10, 25, 2, 15), datetime(2026, 10, 25, 2, 45)
    )
    assert got == (
        (utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 0, 45)),
        (utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 1, 45)),
    )
    s = sched(z, ["sun"], "01:30", "03:30")
    plan = plan_work(s, utc(2026, 10, 24, 12), 3 * H)
    assert plan.finish == utc(2026, 10, 25, 2, 30)  # 03:30 CET, same night


def test_paris_weekend_change_moves_monday_in_utc_both_ways():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "17:00")
    spring = plan_work(s, at("Europe/Paris", 2026, 3, 27, 16), 3 * H)  # Fri 16:00 CET
    assert spring.finish == utc(2026, 3, 30, 9)  # Mon 11:00 CEST
    autumn = plan_work(s, at("Europe/Paris", 2026, 10, 23, 16), 3 * H)  # Fri 16:00 CEST
    assert autumn.finish == utc(2026, 10, 26, 10)  # Mon 11:00 CET


# -- DST: America/Montreal (second Sunday of March / first Sunday of November) -


def test_montreal_overnight_span_across_spring_forward_is_five_hours():
    s = sched("America/Montreal", ["sat"], "22:00", "04:00")
    plan = plan_work(s, utc(2026, 3, 7, 12), 6 * H)
    # Sat 7 Mar 22:00 EST (03:00Z) -> Sun 04:00 EDT (08:00Z) = 5 h; 1 h next Saturday
    assert plan.seconds_by_week == (("2026-W10", 5 * 3600), ("2026-W11", 3600))
    assert plan.finish == utc(2026, 3, 15, 3)  # Sat 14 Mar 23:00 EDT


def test_montreal_overnight_span_across_fall_back_is_seven_hours():
    s = sched("America/Montreal", ["sat"], "22:00", "04:00")
    plan = plan_work(s, utc(2026, 10, 31, 12), 6 * H)
    # Sat 31 Oct 22:00 EDT (02:00Z) + 6 real hours = 08:00Z = 03:00 EST, same night
    assert plan.finish == utc(2026, 11, 1, 8)
    assert (
        covered("America/Montreal", datetime(2026, 10, 31, 22), datetime(2026, 11, 1, 4)) == 7 * H
    )


def test_montreal_weekday_walk_across_both_changes():
    s = sched("America/Montreal", WEEKDAYS, "09:00", "17:00")
    spring = plan_work(s, at("America/Montreal", 2026, 3, 6, 16), 3 * H)  # Fri EST
    assert spring.finish == utc(2026, 3, 9, 15)  # Mon 11:00 EDT (UTC-4)
    autumn = plan_work(s, at("America/Montreal", 2026, 10, 30, 16), 3 * H)  # Fri EDT
    assert autumn.finish == utc(2026, 11, 2, 16)  # Mon 11:00 EST (UTC-5)


# -- DST: Australia/Sydney (first Sunday of April / first Sunday of October) --


def test_sydney_fall_back_in_april_gives_an_extra_hour():
    z = "Australia/Sydney"
    assert covered(z, datetime(2026, 4, 5, 0), datetime(2026, 4, 5, 6)) == 7 * H
    s = sched(z, ["sun"], "00:00", "06:00")
    plan = plan_work(s, utc(2026, 4, 3), 7 * H)
    assert plan.finish == utc(2026, 4, 4, 20)  # 06:00 AEST, same morning


def test_sydney_spring_forward_in_october_loses_an_hour():
    z = "Australia/Sydney"
    assert covered(z, datetime(2026, 10, 4, 0), datetime(2026, 10, 4, 6)) == 5 * H
    s = sched(z, ["sun"], "00:00", "06:00")
    plan = plan_work(s, utc(2026, 10, 2), 6 * H)
    assert plan.finish is not None
    assert plan.finish == utc(2026, 10, 10, 14)  # 5 h that night, 1 h next Sunday 01:00 AEDT


def test_sydney_weekday_walk_across_both_changes():
    s = sched("Australia/Sydney", WEEKDAYS, "09:00", "17:00")
    april = plan_work(s, at("Australia/Sydney", 2026, 4, 3, 16), 3 * H)  # Fri AEDT
    assert april.finish == utc(2026, 4, 6, 1)  # Mon 11:00 AEST (UTC+10)
    october = plan_work(s, at("Australia/Sydney", 2026, 10, 2, 16), 3 * H)  # Fri AEST
    assert october.finish == utc(2026, 10, 5, 0)  # Mon 11:00 AEDT (UTC+11)


# -- next working day, wall-time resolution, overlap ----------------------------


@pytest.mark.parametrize(
    ("now_local", "expected_local"),
    [
        ((2026, 2, 10, 18, 30), (2026, 2, 11, 9, 0)),  # Tue evening -> Wed 09:00
        ((2026, 2, 10, 7, 0), (2026, 2, 10, 9, 0)),  # Tue early -> same day 09:00
        ((2026, 2, 10, 9, 0), (2026, 2, 11, 9, 0)),  # exactly 09:00 -> next day
        ((2026, 2, 13, 18, 30), (2026, 2, 16, 9, 0)),  # Fri evening -> Monday
        ((2026, 2, 14, 11, 0), (2026, 2, 16, 9, 0)),  # Saturday -> Monday
        ((2026, 3, 27, 19, 0), (2026, 3, 30, 9, 0)),  # across the spring change
    ],
)
def test_next_working_day_start_in_client_zone(now_local, expected_local):
    now = at("Europe/Paris", *now_local)
    assert next_working_day_start(now, "Europe/Paris") == at("Europe/Paris", *expected_local)


def test_next_working_day_custom_start_and_days():
    from delego_shared.events.common import Weekday

    now = at("America/Montreal", 2026, 2, 10, 18)
    got = next_working_day_start(now, "America/Montreal", start="08:30", workdays={Weekday.SAT})
    assert got == at("America/Montreal", 2026, 2, 14, 8, 30)


def test_first_instant_at_handles_gap_and_fold():
    z = ZoneInfo("Europe/Paris")
    assert first_instant_at(z, datetime(2026, 3, 29, 2, 30)) == utc(2026, 3, 29, 1)
    assert first_instant_at(z, datetime(2026, 10, 25, 2, 30)) == utc(2026, 10, 25, 0, 30)
    assert first_instant_at(z, datetime(2026, 7, 1, 9)) == utc(2026, 7, 1, 7)


def test_working_overlap_in_real_time():
    s = sched("Asia/Kolkata", WEEKDAYS, "09:00", "18:00")
    # Paris 08:00-10:00 on a winter Wednesday = 12:30-14:30 IST: fully inside
    got = working_overlap(
        s, at("Europe/Paris", 2026, 2, 11, 8), at("Europe/Paris", 2026, 2, 11, 10)
    )
    assert got == 2 * H
    # Paris 14:00-16:00 = 18:30-20:30 IST: outside
    evening = working_overlap(
        s, at("Europe/Paris", 2026, 2, 11, 14), at("Europe/Paris", 2026, 2, 11, 16)
    )
    assert evening == timedelta(0)
    # a window across the overnight boundary is found through yesterday's span
    night = sched("Europe/Paris", ["tue"], "22:00", "02:00")
    assert working_overlap(night, utc(2026, 2, 11, 0), utc(2026, 2, 11, 3)) == H


def test_results_are_utc():
    s = sched("Europe/Paris", WEEKDAYS, "09:00", "18:00")
    plan = plan_work(s, at("Europe/Paris", 2026, 2, 10, 10), H)
    assert plan.finish is not None
    assert plan.finish.tzinfo is UTC
