from datetime import UTC, datetime, time

import pytest
from delego_shared.events.notifications import Channel
from notifications.domain import QuietHours, Recipient, hold_until, in_quiet_hours, quiet_until
from pydantic import ValidationError

NIGHT = QuietHours(start=time(21), end=time(8))
PARIS = "Europe/Paris"


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_outside_the_window_is_not_held():
    assert quiet_until(NIGHT, PARIS, utc(2026, 1, 15, 11, 0)) is None  # 12:00 Paris


def test_evening_is_held_until_next_morning_across_midnight():
    # 22:00 CET on 15 Jan -> 08:00 CET on 16 Jan = 07:00 UTC
    assert quiet_until(NIGHT, PARIS, utc(2026, 1, 15, 21, 0)) == utc(2026, 1, 16, 7, 0)


def test_after_midnight_is_held_until_the_same_morning():
    # 02:00 CET on 16 Jan -> 08:00 CET the same day
    assert quiet_until(NIGHT, PARIS, utc(2026, 1, 16, 1, 0)) == utc(2026, 1, 16, 7, 0)


def test_boundaries_start_inclusive_end_exclusive():
    assert quiet_until(NIGHT, PARIS, utc(2026, 1, 15, 20, 0)) == utc(2026, 1, 16, 7, 0)  # 21:00
    assert quiet_until(NIGHT, PARIS, utc(2026, 1, 15, 19, 59)) is None  # 20:59
    assert quiet_until(NIGHT, PARIS, utc(2026, 1, 16, 7, 0)) is None  # 08:00 sharp


def test_spring_forward_morning_end_uses_summer_offset():
    # Europe/Paris switches to CEST on Sunday 29 March 2026 at 02:00 local.
    # Held at 22:00 CET on Saturday; 08:00 on Sunday is CEST, i.e. 06:00 UTC (not 07:00).
    assert quiet_until(NIGHT, PARIS, utc(2026, 3, 28, 21, 0)) == utc(2026, 3, 29, 6, 0)


def test_fall_back_morning_end_uses_winter_offset():
    # Back to CET on Sunday 25 October 2026 at 03:00 CEST. Held at 23:00 CEST on
    # Saturday; 08:00 on Sunday is CET, i.e. 07:00 UTC (not 06:00).
    assert quiet_until(NIGHT, PARIS, utc(2026, 10, 24, 21, 0)) == utc(2026, 10, 25, 7, 0)
    # Held during the repeated hour itself (02:30 CET, second pass).
    assert quiet_until(NIGHT, PARIS, utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 7, 0)


def test_end_inside_the_spring_gap_releases_at_the_transition():
    # 02:30 does not exist on 29 March 2026 in Paris: the clock jumps 02:00 -> 03:00
    # at 01:00 UTC, the first instant at which the wall clock is past 02:30.
    quiet = QuietHours(start=time(22), end=time(2, 30))
    assert quiet_until(quiet, PARIS, utc(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 1, 0)


def test_end_inside_the_autumn_fold_releases_after_now():
    quiet = QuietHours(start=time(21), end=time(2, 30))
    # First 02:15 (CEST, 00:15 UTC) -> first 02:30 (00:30 UTC).
    assert quiet_until(quiet, PARIS, utc(2026, 10, 25, 0, 15)) == utc(2026, 10, 25, 0, 30)
    # Second 02:15 (CET, 01:15 UTC) -> second 02:30 (01:30 UTC), never a past instant.
    assert quiet_until(quiet, PARIS, utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 25, 1, 30)


def test_same_day_window_and_other_zone():
    lunch = QuietHours(start=time(12), end=time(14))
    # Kolkata is UTC+05:30: 12:30 local = 07:00 UTC, release 14:00 local = 08:30 UTC
    assert quiet_until(lunch, "Asia/Kolkata", utc(2026, 5, 4, 7, 0)) == utc(2026, 5, 4, 8, 30)
    assert quiet_until(lunch, "Asia/Kolkata", utc(2026, 5, 4, 9, 0)) is None
    assert not in_quiet_hours(None, PARIS, utc(2026, 5, 4, 23, 0))


def test_naive_instants_and_empty_windows_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_until(NIGHT, PARIS, datetime(2026, 1, 1, 22, 0))
    with pytest.raises(ValidationError):
        QuietHours(start=time(8), end=time(8))


def test_hold_applies_to_email_only_and_never_to_critical_kinds():
    r = Recipient(recipient_id="cli_1", email="a@example.com", quiet_hours=NIGHT)
    night = utc(2026, 1, 15, 22, 0)
    assert hold_until(r, Channel.EMAIL, critical=False, now=night) == utc(2026, 1, 16, 7, 0)
    assert hold_until(r, Channel.EMAIL, critical=True, now=night) is None
    assert hold_until(r, Channel.INAPP, critical=False, now=night) is None
    assert (
        hold_until(Recipient(recipient_id="cli_2"), Channel.EMAIL, critical=False, now=night)
        is None
    )
