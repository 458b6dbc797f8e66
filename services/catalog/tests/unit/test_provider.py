"""Provider aggregate: registration, validation, partial updates, suspension."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from catalog.domain import (
    IllegalTransition,
    Provider,
    ProviderChanges,
    ProviderProfile,
    ValidationFailed,
    parse,
)
from delego_shared.events.catalog import (
    ProviderRegistered,
    ProviderReinstated,
    ProviderSnapshot,
    ProviderStatus,
    ProviderSuspended,
    ProviderUpdated,
)

LATER = timedelta(hours=1)


def register_errors(provider_data, now, **overrides) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as exc:
        Provider.register("prv_x", parse(ProviderProfile, provider_data(**overrides)), now)
    return {i.field: i.message for i in exc.value.issues}


def test_register_produces_version_1_and_the_registered_event(provider_data, now):
    provider, event = Provider.register("prv_asha", parse(ProviderProfile, provider_data()), now)
    assert isinstance(event, ProviderRegistered)
    snap = provider.snapshot()
    assert event.provider == snap
    assert event.key() == "prv_asha"
    assert (snap.version, snap.status, snap.updated_at) == (1, ProviderStatus.ACTIVE, now)
    assert snap.weekly_capacity_hours == Decimal(30)
    assert (snap.skills[0].code, snap.skills[0].level) == ("translation.en-fr", 4)
    assert provider.is_active


def test_register_collects_every_error_at_once(provider_data, now):
    errors = register_errors(
        provider_data,
        now,
        display_name="  ",
        country="France",
        languages=["french"],
        time_zone="Europe/Pariss",
        schedule=[
            {"day": "mon", "start": "09:00", "end": "17:00"},
            {"day": "mon", "start": "16:00", "end": "18:00"},
        ],
        weekly_capacity_hours="0",
        skills=[{"code": "astrology.charts", "level": 6}],
        sap_declaration={"number": "123456789", "declared_on": "2030-01-01"},
    )
    assert errors == {
        "display_name": "must not be blank",
        "country": "'France' is not an ISO 3166-1 alpha-2 country code (e.g. FR, BE, IN)",
        "languages.0": "'french' is not a BCP 47 language tag (e.g. fr, en-GB, pt-BR)",
        "time_zone": "'Europe/Pariss' is not an IANA time zone (e.g. Europe/Paris, Asia/Kolkata)",
        "schedule.1": "mon 16:00-18:00 overlaps schedule.0 (mon 09:00-17:00)",
        "weekly_capacity_hours": "must be greater than 0 hours, got 0",
        "skills.0.code": "unknown skill 'astrology.charts' "
        "(codes are '<category>.<skill>', e.g. translation.en-fr)",
        "skills.0.level": "level 6 is outside 1-5",
        "sap_declaration.number": "'123456789' is not a SAP declaration number: "
        "'SAP' followed by the 9-digit SIREN (e.g. SAP123456789)",
        "sap_declaration.declared_on": "2030-01-01 is in the future",
    }


def test_unknown_skill_suggests_close_codes(provider_data, now):
    errors = register_errors(provider_data, now, skills=[{"code": "tutoring.math", "level": 3}])
    assert "did you mean 'tutoring.maths'" in errors["skills.0.code"]


def test_duplicate_skill_and_language(provider_data, now):
    errors = register_errors(
        provider_data,
        now,
        languages=["fr", "FR"],
        skills=[{"code": "tutoring.maths", "level": 3}, {"code": "tutoring.maths", "level": 4}],
    )
    assert errors == {
        "languages.1": "'FR' is not a BCP 47 language tag (e.g. fr, en-GB, pt-BR)",
        "skills.1.code": "skill 'tutoring.maths' is listed twice",
    }
    errors = register_errors(provider_data, now, languages=["fr", "fr"])
    assert errors == {"languages.1": "'fr' is listed twice"}


def test_languages_are_required(provider_data, now):
    assert register_errors(provider_data, now, languages=[]) == {
        "languages": "at least one language is required (BCP 47, e.g. fr, en-GB)"
    }


def test_capacity_above_schedule_is_rejected_at_registration(provider_data, now):
    errors = register_errors(
        provider_data, now, schedule=[{"day": "mon", "start": "09:00", "end": "17:00"}]
    )
    assert errors == {
        "weekly_capacity_hours": "30 h exceeds the 8 h of the weekly schedule; "
        "add working spans or lower the capacity"
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 121, "must be at most 120 characters, got 121"),
        ("Asha asha@example.com", "must not contain an e-mail address"),
        ("Asha +33 6 12 34 56 78", "must not contain a phone number"),
    ],
)
def test_display_name_rules(provider_data, now, name, message):
    errors = register_errors(provider_data, now, display_name=name)
    assert list(errors) == ["display_name"]
    assert errors["display_name"].startswith(message)


def test_display_name_with_few_digits_is_not_a_phone(make_provider):
    assert make_provider(display_name="Asha - Team 2012-2024").snapshot().display_name


def test_sap_declaration_is_kept(make_provider, now):
    provider = make_provider(
        sap_declaration={"number": "SAP123456789", "declared_on": "2020-01-15"}
    )
    sap = provider.snapshot().sap_declaration
    assert sap is not None
    assert (sap.number, sap.declared_on) == ("SAP123456789", date(2020, 1, 15))


def test_sap_declared_today_is_fine(make_provider, now):
    provider = make_provider(
        sap_declaration={"number": "SAP123456789", "declared_on": now.date().isoformat()}
    )
    assert provider.snapshot().sap_declaration is not None


def test_invalid_provider_id_is_a_validation_error(provider_data, now):
    with pytest.raises(ValidationFailed) as exc:
        Provider.register("prv asha!", parse(ProviderProfile, provider_data()), now)
    assert exc.value.fields == {"provider_id"}


def test_naive_now_is_a_programming_error(provider_data):
    with pytest.raises(ValueError, match="timezone-aware"):
        Provider.register("prv_x", parse(ProviderProfile, provider_data()), datetime(2026, 1, 1))


def test_partial_update_changes_only_given_fields(make_provider, now):
    provider = make_provider()
    before = provider.snapshot()
    event = provider.update(
        ProviderChanges(display_name="Asha Kumar", time_zone="Asia/Dubai"), now + LATER
    )
    assert isinstance(event, ProviderUpdated)
    after = provider.snapshot()
    assert event.provider == after
    assert (after.version, after.display_name, after.time_zone) == (2, "Asha Kumar", "Asia/Dubai")
    assert after.updated_at == now + LATER
    assert after.schedule == before.schedule
    assert after.skills == before.skills


def test_update_validates_the_merged_profile(make_provider, now):
    provider = make_provider()
    with pytest.raises(ValidationFailed) as exc:
        provider.update(
            parse(
                ProviderChanges, {"schedule": [{"day": "sat", "start": "10:00", "end": "12:00"}]}
            ),
            now,
        )
    assert exc.value.fields == {"weekly_capacity_hours"}
    assert provider.version == 1


def test_update_that_changes_nothing_produces_no_event(make_provider, now):
    provider = make_provider()
    assert provider.update(ProviderChanges(display_name="Asha K."), now + LATER) is None
    assert provider.update(ProviderChanges(), now + LATER) is None
    assert provider.version == 1
    assert provider.snapshot().updated_at == now


def test_update_cannot_null_a_required_field(make_provider, now):
    provider = make_provider()
    with pytest.raises(ValidationFailed) as exc:
        provider.update(parse(ProviderChanges, {"time_zone": None, "languages": None}), now)
    assert exc.value.as_list() == [
        {
            "field": "languages",
            "message": "cannot be removed (null); leave it out to keep the current value",
        },
        {
            "field": "time_zone",
            "message": "cannot be removed (null); leave it out to keep the current value",
        },
    ]


def test_update_can_remove_the_sap_declaration_with_null(make_provider, now):
    provider = make_provider(
        sap_declaration={"number": "SAP123456789", "declared_on": "2020-01-15"}
    )
    assert provider.update(parse(ProviderChanges, {"display_name": "A. K."}), now) is not None
    assert provider.snapshot().sap_declaration is not None
    event = provider.update(parse(ProviderChanges, {"sap_declaration": None}), now)
    assert event is not None
    assert event.provider.sap_declaration is None
    assert event.provider.version == 3


def test_suspend_and_reinstate(make_provider, now):
    provider = make_provider()
    suspended = provider.suspend(now + LATER, reason_code="fraud_suspected")
    assert isinstance(suspended, ProviderSuspended)
    assert suspended.reason_code == "fraud_suspected"
    assert suspended.provider.status is ProviderStatus.SUSPENDED
    assert suspended.provider.version == 2
    assert provider.suspension_reason == "fraud_suspected"
    reinstated = provider.reinstate(now + 2 * LATER)
    assert isinstance(reinstated, ProviderReinstated)
    assert reinstated.provider.status is ProviderStatus.ACTIVE
    assert reinstated.provider.version == 3
    assert reinstated.provider.updated_at == now + 2 * LATER
    assert provider.suspension_reason is None


def test_suspending_a_suspended_provider_is_illegal(make_provider, now):
    provider = make_provider()
    provider.suspend(now)
    with pytest.raises(IllegalTransition) as exc:
        provider.suspend(now)
    assert (exc.value.status, exc.value.action) == ("suspended", "suspend")
    assert provider.version == 2


def test_reinstating_an_active_provider_is_illegal(make_provider, now):
    provider = make_provider()
    with pytest.raises(IllegalTransition, match="cannot reinstate provider prv_asha: it is active"):
        provider.reinstate(now)


def test_reason_code_must_be_a_code(make_provider, now):
    provider = make_provider()
    with pytest.raises(ValidationFailed) as exc:
        provider.suspend(now, reason_code="Because I said so")
    assert exc.value.fields == {"reason_code"}
    assert provider.is_active


def test_suspended_provider_can_still_fix_its_profile(make_provider, now):
    provider = make_provider()
    provider.suspend(now)
    event = provider.update(ProviderChanges(weekly_capacity_hours=Decimal(20)), now)
    assert event is not None
    assert event.provider.status is ProviderStatus.SUSPENDED
    assert event.provider.version == 3


def test_rehydrate_from_stored_snapshot(make_provider, now):
    provider = make_provider()
    provider.suspend(now, reason_code="unpaid_fees")
    stored = provider.snapshot().model_dump(mode="json")
    again = Provider.from_snapshot(ProviderSnapshot.model_validate(stored), "unpaid_fees")
    assert again.snapshot() == provider.snapshot()
    assert again.profile == provider.profile
    assert again.suspension_reason == "unpaid_fees"
    assert again.reinstate(now).provider.version == 3


def test_response_window_is_published_changed_and_reset(make_provider, now):
    provider = make_provider(response_window_minutes=30)
    assert provider.snapshot().response_window_minutes == 30
    provider.update(parse(ProviderChanges, {"response_window_minutes": 60}), now + LATER)
    assert provider.snapshot().response_window_minutes == 60
    provider.update(parse(ProviderChanges, {"response_window_minutes": None}), now + 2 * LATER)
    assert provider.snapshot().response_window_minutes is None  # the platform's default


def test_response_window_must_be_reasonable(provider_data):
    with pytest.raises(ValidationFailed) as exc:
        parse(ProviderProfile, provider_data(response_window_minutes=2))
    assert exc.value.fields == {"response_window_minutes"}


def test_capacity_may_cover_the_fall_back_night(make_provider):
    night = [{"day": "sun", "start": "00:00", "end": "04:00"}]
    p = make_provider(time_zone="America/Toronto", schedule=night, weekly_capacity_hours="5")
    assert p.snapshot().weekly_capacity_hours == Decimal(5)
