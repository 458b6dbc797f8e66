"""Offer aggregate: validation, SAP flag, lifecycle and the events it produces."""

from datetime import timedelta

import pytest
from catalog.domain import (
    IllegalTransition,
    Offer,
    OfferChanges,
    OfferDraft,
    ProviderChanges,
    ProviderNotActive,
    ValidationFailed,
    WrongProvider,
    parse,
)
from delego_shared.events.catalog import (
    OfferPublished,
    OfferSnapshot,
    OfferStatus,
    OfferUpdated,
    OfferWithdrawn,
)
from delego_shared.events.common import PackagePricing
from delego_shared.types import Money

LATER = timedelta(minutes=5)


def create_errors(make_provider, offer_data, now, provider=None, **overrides) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as exc:
        Offer.create(
            "off_x", provider or make_provider(), parse(OfferDraft, offer_data(**overrides)), now
        )
    return {i.field: i.message for i in exc.value.issues}


def test_create_makes_a_private_draft_at_version_1(make_offer, now):
    offer = make_offer()
    snap = offer.snapshot()
    assert (snap.status, snap.version, snap.updated_at) == (OfferStatus.DRAFT, 1, now)
    assert snap.provider_id == "prv_asha"
    assert snap.pricing.model == "package"
    assert snap.sap_remote_flag is False
    assert offer.warnings == []


def test_create_collects_every_error(make_provider, offer_data, now):
    errors = create_errors(
        make_provider,
        offer_data,
        now,
        title="",
        description="Write to me at asha@example.com",
        category="astrology",
        skills=[{"code": "dating_assistance.profil_writing", "level": 0}],
        languages=["de"],
        sap_activity="cours_de_yoga",
        typical_effort_hours="0",
        currency="EURO",
        pricing={"model": "hourly", "rate": {"amount": "-5", "currency": "USD"}},
    )
    assert set(errors) == {
        "title",
        "description",
        "category",
        "skills.0.code",
        "skills.0.level",
        "languages.0",
        "sap_activity",
        "typical_effort_hours",
        "currency",
        "pricing.rate",
    }
    assert errors["title"] == "must not be blank"
    assert errors["category"].startswith("unknown category 'astrology' (one of virtual_assistance,")
    assert errors["skills.0.level"] == "level 0 is outside 1-5"
    assert errors["languages.0"] == "'de' is not among the provider's languages (en, fr, hi)"
    assert errors["sap_activity"] == (
        "unknown SAP activity 'cours_de_yoga' (Code du travail D7231-1 list)"
    )
    assert errors["typical_effort_hours"] == "must be greater than 0 hours, got 0"
    assert errors["currency"] == "'EURO' is not an ISO 4217 currency code (e.g. EUR, USD, INR)"
    assert errors["pricing.rate"] == "must be greater than zero, got -5 USD"


def test_at_least_one_skill_is_required(make_provider, offer_data, now):
    assert create_errors(make_provider, offer_data, now, skills=[]) == {
        "skills": "at least one skill is required"
    }


def test_no_skill_of_the_offer_category_is_an_error(make_provider, offer_data, now):
    errors = create_errors(
        make_provider, offer_data, now, skills=[{"code": "translation.en-fr", "level": 3}]
    )
    assert errors == {
        "skills": "none of the skills belongs to category 'dating_assistance'; add at least one "
        "'dating_assistance.*' skill (skills of other categories may be added alongside)"
    }


def test_skills_of_other_categories_are_allowed_alongside(make_offer):
    offer = make_offer(
        skills=[
            {"code": "dating_assistance.profile_writing", "level": 2},
            {"code": "translation.en-fr", "level": 4},
        ]
    )
    assert [s.code for s in offer.snapshot().skills] == [
        "dating_assistance.profile_writing",
        "translation.en-fr",
    ]


def test_provider_must_declare_the_skill_at_that_level(make_provider, offer_data, now):
    errors = create_errors(
        make_provider,
        offer_data,
        now,
        skills=[
            {"code": "dating_assistance.profile_writing", "level": 4},
            {"code": "dating_assistance.date_planning", "level": 2},
        ],
    )
    assert errors == {
        "skills.0.level": "level 4 exceeds the provider's declared level 3 "
        "for 'dating_assistance.profile_writing'",
        "skills.1.code": "the provider does not declare skill 'dating_assistance.date_planning' "
        "in its profile",
    }


def test_offer_language_matches_provider_language_by_primary_subtag(make_offer):
    assert make_offer(languages=["en-GB", "fr-BE"]).snapshot().languages == ["en-GB", "fr-BE"]


def test_text_limits(make_provider, offer_data, now):
    errors = create_errors(
        make_provider, offer_data, now, title="t" * 201, description="Call +91 98765 43210"
    )
    assert errors == {
        "title": "must be at most 200 characters, got 201",
        "description": "must not contain a phone number (contact data never leaves the platform)",
    }


def test_sap_activity_on_remote_offer_is_allowed_but_flagged(make_offer):
    offer = make_offer(
        category="tutoring",
        skills=[{"code": "tutoring.maths", "level": 5}],
        sap_activity="soutien_scolaire_domicile",
        delivery_mode="remote",
    )
    assert offer.snapshot().sap_remote_flag is True
    [warning] = offer.warnings
    assert warning.field == "sap_activity"
    assert "'soutien_scolaire_domicile' is defined as a service at the client's home" in (
        warning.message
    )


@pytest.mark.parametrize(
    ("delivery_mode", "activity"),
    [
        ("at_home", "soutien_scolaire_domicile"),
        ("mixed", "soutien_scolaire_domicile"),
        ("remote", "teleassistance_visioassistance"),
    ],
)
def test_no_flag_at_home_or_for_remote_by_nature_activity(make_offer, delivery_mode, activity):
    offer = make_offer(
        category="tutoring",
        skills=[{"code": "tutoring.maths", "level": 5}],
        sap_activity=activity,
        delivery_mode=delivery_mode,
    )
    assert offer.snapshot().sap_remote_flag is False
    assert offer.warnings == []


def test_suspended_provider_cannot_create_offers(make_provider, offer_data, now):
    provider = make_provider()
    provider.suspend(now)
    with pytest.raises(ProviderNotActive):
        Offer.create("off_x", provider, parse(OfferDraft, offer_data()), now)


def test_offer_id_must_be_an_identifier(make_provider, offer_data, now):
    with pytest.raises(ValidationFailed) as exc:
        Offer.create("off/1", make_provider(), parse(OfferDraft, offer_data()), now)
    assert exc.value.fields == {"offer_id"}


# -- lifecycle ----------------------------------------------------------------------------


def test_publish_produces_offer_published(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    event = offer.publish(provider, now + LATER)
    assert isinstance(event, OfferPublished)
    assert event.key() == "off_1"
    assert event.offer == offer.snapshot()
    assert (event.offer.status, event.offer.version) == (OfferStatus.PUBLISHED, 2)
    assert event.offer.updated_at == now + LATER


def test_updating_a_draft_bumps_version_without_event(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    assert offer.update(OfferChanges(title="Five dates"), provider, now) is None
    assert (offer.version, offer.snapshot().title) == (2, "Five dates")


def test_updating_a_published_offer_produces_full_snapshot(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    offer.publish(provider, now)
    changes = parse(
        OfferChanges,
        {"pricing": {"model": "package", "price": {"amount": "600.00", "currency": "EUR"}}},
    )
    event = offer.update(changes, provider, now + LATER)
    assert isinstance(event, OfferUpdated)
    assert event.offer == offer.snapshot()
    assert event.offer.version == 3
    assert event.offer.status is OfferStatus.PUBLISHED
    assert event.offer.title == "Six guaranteed dates"
    assert event.offer.pricing == PackagePricing(price=Money.of("600.00", "EUR"))


def test_no_op_update_of_published_offer_produces_nothing(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    offer.publish(provider, now)
    assert offer.update(OfferChanges(title="Six guaranteed dates"), provider, now) is None
    assert offer.version == 2


def test_update_is_fully_revalidated(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    with pytest.raises(ValidationFailed) as exc:
        offer.update(OfferChanges(currency="USD"), provider, now)
    assert exc.value.as_list() == [
        {"field": "pricing.price.currency", "message": "EUR differs from the offer currency USD"}
    ]
    assert offer.version == 1


def test_update_can_clear_sap_activity_but_not_required_fields(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider, sap_activity="assistance_administrative_domicile")
    assert offer.snapshot().sap_remote_flag is True
    offer.update(parse(OfferChanges, {"sap_activity": None}), provider, now)
    assert offer.snapshot().sap_activity is None
    assert offer.snapshot().sap_remote_flag is False
    with pytest.raises(ValidationFailed) as exc:
        offer.update(parse(OfferChanges, {"pricing": None}), provider, now)
    assert exc.value.fields == {"pricing"}


def test_withdraw_produces_offer_withdrawn_and_is_final(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    offer.publish(provider, now)
    event = offer.withdraw(now + LATER)
    assert isinstance(event, OfferWithdrawn)
    assert (event.offer.status, event.offer.version) == (OfferStatus.WITHDRAWN, 3)
    with pytest.raises(IllegalTransition, match="cannot update offer off_1: it is withdrawn"):
        offer.update(OfferChanges(title="again"), provider, now)
    with pytest.raises(IllegalTransition, match="cannot publish offer off_1: it is withdrawn"):
        offer.publish(provider, now)
    with pytest.raises(IllegalTransition, match="cannot withdraw offer off_1: it is withdrawn"):
        offer.withdraw(now)
    assert offer.version == 3


def test_publishing_twice_is_illegal(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    offer.publish(provider, now)
    with pytest.raises(IllegalTransition) as exc:
        offer.publish(provider, now)
    assert (exc.value.status, exc.value.action) == ("published", "publish")


def test_withdrawing_a_draft_is_illegal(make_offer, now):
    with pytest.raises(IllegalTransition, match="it is draft"):
        make_offer().withdraw(now)


def test_suspended_provider_cannot_publish_but_can_withdraw(make_provider, make_offer, now):
    provider = make_provider()
    draft = make_offer("off_draft", provider=provider)
    live = make_offer("off_live", provider=provider)
    live.publish(provider, now)
    provider.suspend(now)
    with pytest.raises(ProviderNotActive):
        draft.publish(provider, now)
    assert draft.status is OfferStatus.DRAFT
    assert live.withdraw(now).offer.status is OfferStatus.WITHDRAWN


def test_publish_rechecks_against_the_current_provider(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    provider.update(
        ProviderChanges.model_validate(
            {"skills": [{"code": "dating_assistance.profile_writing", "level": 2}]}
        ),
        now,
    )
    with pytest.raises(ValidationFailed) as exc:
        offer.publish(provider.snapshot(), now)
    assert exc.value.fields == {"skills.0.level"}
    assert offer.status is OfferStatus.DRAFT


def test_operations_refuse_another_providers_offer(make_provider, make_offer, now):
    offer = make_offer(provider=make_provider("prv_a"))
    other = make_provider("prv_b")
    with pytest.raises(WrongProvider):
        offer.publish(other, now)
    with pytest.raises(WrongProvider):
        offer.update(OfferChanges(title="mine now"), other, now)


def test_rehydrate_from_stored_snapshot(make_provider, make_offer, now):
    provider = make_provider()
    offer = make_offer(provider=provider)
    offer.publish(provider, now)
    stored = offer.snapshot().model_dump(mode="json")
    again = Offer.from_snapshot(OfferSnapshot.model_validate(stored))
    assert again.snapshot() == offer.snapshot()
    assert again.draft == offer.draft
    assert again.withdraw(now).offer.version == 3
