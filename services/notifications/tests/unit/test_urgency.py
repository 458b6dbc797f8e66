"""Quiet hours for people: what waits, until when (their wall clock), and what does not."""

from datetime import UTC, datetime, time

from delego_shared.events.matching import FilterReason
from delego_shared.events.notifications import Channel
from notifications.domain import QuietHours, Recipient, Renderer, plan_deliveries
from notifications.domain.urgency import quiet_wait

NIGHT = QuietHours(start=time(22), end=time(7))
KOLKATA = "Asia/Kolkata"


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


def wait(now: datetime, **kw: object) -> datetime | None:
    args: dict[str, object] = {
        "kind": "match_proposed",
        "critical": False,
        "interrupts": True,
        "quiet": NIGHT,
        "zone": KOLKATA,
        "urgent_kinds": frozenset(),
        "now": now,
    }
    args.update(kw)
    return quiet_wait(**args)  # type: ignore[arg-type]


def test_a_proposal_at_23_in_bangalore_waits_until_7_her_time():
    at_23 = utc(2026, 12, 1, 17, 30)  # 23:00 IST
    assert wait(at_23) == utc(2026, 12, 2, 1, 30)  # 07:00 IST


def test_outside_quiet_hours_it_goes_now():
    assert wait(utc(2026, 12, 2, 4, 0)) is None  # 09:30 IST


def test_a_kind_the_provider_marked_urgent_goes_at_once():
    at_23 = utc(2026, 12, 1, 17, 30)
    assert wait(at_23, urgent_kinds=frozenset({"match_proposed"})) is None
    # marking another kind urgent does not wake them for this one
    assert wait(at_23, urgent_kinds=frozenset({"request_cancelled"})) is not None


def test_critical_kinds_and_channels_that_interrupt_nobody_never_wait():
    at_23 = utc(2026, 12, 1, 17, 30)
    assert wait(at_23, kind="invoice_issued", critical=True) is None
    assert wait(at_23, interrupts=False) is None
    assert wait(at_23, quiet=None) is None


def test_quiet_hours_end_on_the_wall_clock_on_the_night_the_clocks_go_back():
    # Toronto, Saturday 31 October 2026 23:00 EDT; clocks go back at 02:00 → 01:00
    at_23 = utc(2026, 11, 1, 3, 0)
    assert wait(at_23, zone="America/Toronto") == utc(2026, 11, 1, 12, 0)  # 07:00 EST


def test_routing_holds_the_providers_email_unless_marked_urgent(events):
    provider = Recipient(
        recipient_id=events.provider,
        email="priya@example.com",
        zone=KOLKATA,
        quiet_hours=NIGHT,
    )
    at_23 = utc(2026, 12, 1, 17, 30)
    ev = events.match_proposed()
    [held] = plan_deliveries("ev_1", ev, {provider.recipient_id: provider}, [], now=at_23)
    assert (held.channel, held.hold_until) == (Channel.EMAIL, utc(2026, 12, 2, 1, 30))
    urgent = provider.model_copy(update={"urgent_kinds": frozenset({"match_proposed"})})
    [now] = plan_deliveries("ev_1", ev, {urgent.recipient_id: urgent}, [], now=at_23)
    assert now.hold_until is None


def test_the_french_unmatched_mail_names_a_late_response(events):
    ev = events.request_unmatched().model_copy(
        update={"reasons": [FilterReason(filter="response", count=1, message="1 could finish")]}
    )
    r = Renderer().render(
        "request_unmatched", locale="fr", zone="Europe/Paris", context={"event": ev}
    )
    assert "- réponse du prestataire trop tardive" in r.text
    assert "réponse du prestataire trop tardive" in r.html
