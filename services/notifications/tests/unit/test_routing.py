from datetime import UTC, datetime, time

import pytest
from delego_shared.events import registry
from delego_shared.events.catalog import ProviderRegistered
from delego_shared.events.notifications import Channel
from notifications.domain import (
    Preferences,
    QuietHours,
    Recipient,
    WebhookEndpoint,
    default_rules,
    delivery_key,
    parse_rules,
    plan_deliveries,
)
from pydantic import ValidationError

NOON = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)  # 12:00 in Paris
NIGHT = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)  # 23:00 in Paris
SECRET = "whsec_0123456789abcdef"


def person(rid: str, **kw):
    return Recipient(recipient_id=rid, email=f"{rid}@example.com", **kw)


def endpoint(eid: str, *types: str, owner: str | None = None, active: bool = True):
    return WebhookEndpoint(
        endpoint_id=eid,
        url="https://hooks.example.com/delego",
        secret=SECRET,
        event_types=frozenset(types),
        owner_id=owner,
        active=active,
    )


@pytest.mark.parametrize(
    ("factory", "kind", "who"),
    [
        ("match_proposed", "match_proposed", "prv_1"),
        ("match_accepted", "match_accepted", "cli_1"),
        ("request_unmatched", "request_unmatched", "cli_1"),
        ("request_cancelled", "request_cancelled", "prv_1"),
        ("work_completed", "work_completed", "cli_1"),
        ("invoice_issued", "invoice_issued", "cli_1"),
        ("credit_note_issued", "credit_note_issued", "cli_1"),
        ("tax_certificate_issued", "tax_certificate_issued", "cli_1"),
    ],
)
def test_each_event_reaches_the_right_person_by_email(events, factory, kind, who):
    event = getattr(events, factory)()
    directory = {"cli_1": person("cli_1"), "prv_1": person("prv_1")}
    [plan] = plan_deliveries("evt_1", event, directory, [], now=NOON)
    assert (plan.recipient_id, plan.channel, plan.kind) == (who, Channel.EMAIL, kind)
    assert plan.key == delivery_key("evt_1", who, Channel.EMAIL)
    assert plan.event_type == event.event_type
    assert plan.hold_until is None


def test_critical_kinds_are_the_billing_documents():
    rules = default_rules()
    assert rules.critical_kinds == {
        "invoice_issued",
        "credit_note_issued",
        "tax_certificate_issued",
    }
    assert not rules.is_critical("match_proposed")


def test_every_rule_names_a_registered_event_type():
    types = {c.event_type for c in registry.types()}
    assert {r.event_type for r in default_rules().rules} <= types


def test_rules_are_validated_when_loaded():
    with pytest.raises(ValidationError, match="unknown event type"):
        parse_rules('[[rule]]\nevent_type = "delego.x.Nope.v1"\nkind = "x"\nnotify = ["a"]\n')
    with pytest.raises(ValidationError, match="no field"):
        parse_rules(
            '[[rule]]\nevent_type = "delego.matching.MatchAccepted.v1"\n'
            'kind = "x"\nnotify = ["nobody_id"]\n'
        )


def test_unrouted_event_notifies_nobody_but_subscribed_webhooks(events):
    reg = ProviderRegistered.model_validate(
        {
            "provider": {
                "provider_id": "prv_9",
                "version": 1,
                "display_name": "Asha",
                "country": "IN",
                "languages": ["en"],
                "time_zone": "Asia/Kolkata",
                "schedule": [],
                "weekly_capacity_hours": "30",
                "skills": [],
                "status": "active",
                "updated_at": "2026-01-01T00:00:00Z",
            }
        }
    )
    eps = [
        endpoint("ep_b", "delego.catalog.*"),
        endpoint("ep_a", reg.event_type),
        endpoint("ep_c", "delego.billing.*"),
    ]
    plans = plan_deliveries("evt_9", reg, {}, eps, now=NOON)
    assert [(p.recipient_id, p.channel, p.kind, p.via_subscription) for p in plans] == [
        ("ep_a", Channel.WEBHOOK, "provider_registered", True),
        ("ep_b", Channel.WEBHOOK, "provider_registered", True),
    ]


def test_people_first_then_subscriptions_skipping_inactive_and_owned(events):
    eps = [
        endpoint("ep_1", "delego.billing.*"),
        endpoint("ep_0", "delego.billing.*", active=False),
        endpoint("ep_own", "delego.billing.*", owner="someone_else"),
    ]
    plans = plan_deliveries(
        "evt_2", events.invoice_issued(), {"cli_1": person("cli_1")}, eps, now=NOON
    )
    assert [(p.recipient_id, p.channel) for p in plans] == [
        ("cli_1", Channel.EMAIL),
        ("ep_1", Channel.WEBHOOK),
    ]
    assert all(p.critical for p in plans)


def test_unknown_recipient_gets_the_inbox_only(events):
    [plan] = plan_deliveries("evt_3", events.match_accepted(), {}, [], now=NOON)
    assert (plan.recipient_id, plan.channel) == ("cli_1", Channel.INAPP)


def test_first_usable_channel_in_the_recipient_order(events):
    owner_hook = endpoint("ep_mine", "delego.matching.*", owner="prv_1")
    prv = person("prv_1", channels=(Channel.WEBHOOK, Channel.EMAIL))
    [plan] = plan_deliveries(
        "evt_4", events.match_proposed(), {"prv_1": prv}, [owner_hook], now=NOON
    )
    assert (plan.channel, plan.endpoint_id, plan.via_subscription) == (
        Channel.WEBHOOK,
        "ep_mine",
        False,
    )
    # Without an owned endpoint the webhook channel is unusable: next one.
    [plan] = plan_deliveries("evt_4", events.match_proposed(), {"prv_1": prv}, [], now=NOON)
    assert (plan.channel, plan.endpoint_id) == (Channel.EMAIL, None)


def test_opted_out_channels_are_skipped_and_all_off_means_nothing(events):
    prefs = Preferences().switched("match_accepted", Channel.EMAIL, False, critical=False)
    cli = person("cli_1", preferences=prefs)
    [plan] = plan_deliveries("evt_5", events.match_accepted(), {"cli_1": cli}, [], now=NOON)
    assert plan.channel == Channel.INAPP
    prefs = prefs.switched("match_accepted", Channel.INAPP, False, critical=False)
    cli = person("cli_1", preferences=prefs)
    assert plan_deliveries("evt_5", events.match_accepted(), {"cli_1": cli}, [], now=NOON) == []


def test_critical_kinds_ignore_stored_opt_outs(events):
    # An opt-out stored before the kind became critical must not silence an invoice.
    cli = person(
        "cli_1",
        preferences=Preferences(
            off={
                "invoice_issued": frozenset({Channel.EMAIL, Channel.INAPP}),
                "*": frozenset({Channel.EMAIL}),
            }
        ),
    )
    [plan] = plan_deliveries("evt_6", events.invoice_issued(), {"cli_1": cli}, [], now=NOON)
    assert plan.channel == Channel.EMAIL


def test_quiet_hours_hold_non_critical_email_but_not_invoices(events):
    cli = person("cli_1", quiet_hours=QuietHours(start=time(21), end=time(8)))
    [held] = plan_deliveries("evt_7", events.work_completed(), {"cli_1": cli}, [], now=NIGHT)
    assert held.hold_until == datetime(2026, 1, 16, 7, 0, tzinfo=UTC)
    [sent] = plan_deliveries("evt_8", events.invoice_issued(), {"cli_1": cli}, [], now=NIGHT)
    assert sent.hold_until is None


def test_planning_is_deterministic_and_replay_gives_the_same_keys(events):
    eps = [endpoint("ep_2", "*"), endpoint("ep_1", "*")]
    a = plan_deliveries(
        "evt_10", events.invoice_issued(), {"cli_1": person("cli_1")}, eps, now=NOON
    )
    b = plan_deliveries(
        "evt_10", events.invoice_issued(), {"cli_1": person("cli_1")}, list(reversed(eps)), now=NOON
    )
    assert a == b
    assert len({p.key for p in a}) == 3
