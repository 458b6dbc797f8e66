from datetime import UTC, datetime, time

import pytest
from delego_shared.events.notifications import Channel
from notifications.domain import (
    HeldNotification,
    QuietHours,
    Recipient,
    Renderer,
    digest_key,
    group_held,
    plan_deliveries,
    release_message,
)

NIGHT = QuietHours(start=time(21), end=time(8))


def at(h: int, m: int = 0) -> datetime:
    return datetime(2026, 3, 28, h, m, tzinfo=UTC)


def held(events, recipient: Recipient, event_id: str, factory: str, when: datetime):
    event = getattr(events, factory)().model_copy(update={"client_id": recipient.recipient_id})
    [plan] = plan_deliveries(event_id, event, {recipient.recipient_id: recipient}, [], now=when)
    assert plan.hold_until is not None
    return HeldNotification(planned=plan, event=event, occurred_at=when)


@pytest.fixture
def client():
    return Recipient(recipient_id="cli_1", email="c@example.com", locale="fr", quiet_hours=NIGHT)


def test_several_held_notifications_become_one_digest_in_time_order(events, client):
    late = held(events, client, "evt_b", "work_completed", at(22, 30))
    early = held(events, client, "evt_a", "match_accepted", at(21, 15))
    unmatched = held(events, client, "evt_c", "request_unmatched", at(23, 0))
    msg = release_message(client, [late, unmatched, early], Renderer())

    assert msg.kind == "digest"
    assert msg.channel is Channel.EMAIL
    assert msg.part_keys == (early.planned.key, late.planned.key, unmatched.planned.key)
    assert msg.key == digest_key("cli_1", Channel.EMAIL, msg.part_keys)
    r = msg.rendered
    assert r.subject == "3 notifications pendant votre absence"
    assert (r.locale, r.fell_back) == ("fr", False)
    # Each part is in the digest, in order, with its time in the recipient's zone.
    positions = [
        r.text.index(s)
        for s in (
            "samedi 28 mars 2026, 22:15 (heure normale d\u2019Europe centrale)",
            "Votre demande est acceptée",
            "Travail terminé par Asha <Translations>",
            "Nous n'avons pas trouvé de prestataire",
        )
    ]
    assert positions == sorted(positions)
    assert r.html.count("<section") == 3
    assert "Asha &lt;Translations&gt;" in r.html  # parts stay escaped inside the digest


def test_digest_is_deterministic_whatever_the_input_order(events, client):
    items = [held(events, client, f"evt_{i}", "work_completed", at(21, 0)) for i in range(3)]
    a = release_message(client, items, Renderer())
    b = release_message(client, list(reversed(items)), Renderer())
    assert a == b
    assert a.part_keys == tuple(
        h.planned.key for h in sorted(items, key=lambda h: h.planned.event_id)
    )


def test_replayed_held_item_is_merged_once(events, client):
    one = held(events, client, "evt_a", "match_accepted", at(21, 15))
    two = held(events, client, "evt_b", "work_completed", at(22, 0))
    msg = release_message(client, [one, two, one], Renderer())
    assert len(msg.part_keys) == 2
    assert msg.rendered.subject.startswith("2 ")


def test_a_single_held_item_is_sent_as_itself(events, client):
    only = held(events, client, "evt_a", "match_accepted", at(21, 15))
    msg = release_message(client, [only], Renderer())
    assert (msg.key, msg.kind, msg.part_keys) == (
        only.planned.key,
        "match_accepted",
        (only.planned.key,),
    )
    assert msg.rendered.subject.startswith("Votre demande est acceptée")


def test_english_digest(events):
    en = Recipient(
        recipient_id="cli_1",
        email="c@example.com",
        locale="en",
        zone="Asia/Kolkata",
        quiet_hours=QuietHours(start=time(0), end=time(23)),
    )
    items = [
        held(events, en, "evt_a", "match_accepted", at(3)),
        held(events, en, "evt_b", "work_completed", at(4)),
    ]
    r = release_message(en, items, Renderer()).rendered
    assert r.subject == "2 notifications while you were away"
    assert "Saturday, March 28, 2026, 8:30\u202fAM (India Standard Time)" in r.text


def test_one_digest_per_recipient_and_channel(events, client):
    other = Recipient(recipient_id="cli_2", email="d@example.com", quiet_hours=NIGHT)
    a = held(events, client, "evt_a", "match_accepted", at(22))
    b = held(events, other, "evt_a", "match_accepted", at(21))
    c = held(events, client, "evt_b", "work_completed", at(21))
    groups = group_held([a, b, c])
    assert list(groups) == [("cli_1", Channel.EMAIL), ("cli_2", Channel.EMAIL)]
    assert groups[("cli_1", Channel.EMAIL)] == [c, a]
    with pytest.raises(ValueError, match="one recipient"):
        release_message(client, [a, b], Renderer())
    with pytest.raises(ValueError, match="nothing"):
        release_message(client, [], Renderer())
