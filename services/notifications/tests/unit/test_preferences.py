import pytest
from delego_shared.events.notifications import Channel
from notifications.domain import CriticalKindLocked, Preferences, default_rules


def test_everything_is_on_by_default():
    p = Preferences()
    assert p.allows("match_proposed", Channel.EMAIL, critical=False)
    assert p.allows("work_completed", Channel.INAPP, critical=False)


def test_switch_off_one_kind_on_one_channel():
    p = Preferences().switched("work_completed", Channel.EMAIL, False, critical=False)
    assert not p.allows("work_completed", Channel.EMAIL, critical=False)
    assert p.allows("work_completed", Channel.INAPP, critical=False)
    assert p.allows("match_accepted", Channel.EMAIL, critical=False)


def test_switch_back_on_removes_the_opt_out():
    p = Preferences().switched("work_completed", Channel.EMAIL, False, critical=False)
    p = p.switched("work_completed", Channel.EMAIL, True, critical=False)
    assert p.allows("work_completed", Channel.EMAIL, critical=False)
    assert p.off == {}


def test_wildcard_switches_off_all_non_critical_kinds():
    p = Preferences().switched("*", Channel.EMAIL, False, critical=False)
    assert not p.allows("match_accepted", Channel.EMAIL, critical=False)
    assert p.allows("invoice_issued", Channel.EMAIL, critical=True)


@pytest.mark.parametrize("kind", sorted(default_rules().critical_kinds))
def test_critical_kinds_cannot_be_switched_off(kind):
    critical = default_rules().is_critical(kind)
    assert critical
    with pytest.raises(CriticalKindLocked, match=kind):
        Preferences().switched(kind, Channel.EMAIL, False, critical=critical)
    # switching on is always fine
    assert Preferences().switched(kind, Channel.EMAIL, True, critical=critical) == Preferences()


def test_preferences_are_immutable_values():
    p = Preferences()
    q = p.switched("work_completed", Channel.EMAIL, False, critical=False)
    assert p.off == {}
    assert q is not p
    assert Preferences.model_validate(q.model_dump(mode="json")) == q
