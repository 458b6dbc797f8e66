"""Search filter semantics and cursor pagination (the spec the Mongo store follows)."""

from decimal import Decimal
from typing import Any

import pytest
from catalog.domain import (
    OfferQuery,
    Provider,
    ValidationFailed,
    decode_cursor,
    encode_cursor,
    offer_matches,
    parse,
    search_offers,
    sort_key,
)
from catalog.domain.text import language_matches
from delego_shared.types import Money


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


@pytest.fixture
def market(make_provider, make_offer, now):
    """Two providers (Kolkata, Paris), published offers of every model, plus noise."""
    asha = make_provider("prv_asha")
    marie = make_provider(
        "prv_marie",
        country="FR",
        languages=["fr-FR"],
        time_zone="Europe/Paris",
        skills=[
            {"code": "tutoring.maths", "level": 3},
            {"code": "concierge.reservations", "level": 4},
        ],
    )
    specs: dict[str, tuple[Provider, dict[str, Any]]] = {
        "off_hourly": (asha, {"pricing": {"model": "hourly", "rate": eur("16.25")}}),
        "off_package": (asha, {}),  # 650 EUR package, dating_assistance
        "off_maths": (
            asha,
            {
                "category": "tutoring",
                "skills": [{"code": "tutoring.maths", "level": 5}],
                "languages": ["en", "hi"],
                "pricing": {"model": "per_unit", "unit_name": "module", "unit_price": eur("10")},
            },
        ),
        "off_maths_fr": (
            marie,
            {
                "category": "tutoring",
                "skills": [{"code": "tutoring.maths", "level": 3}],
                "languages": ["fr-FR"],
                "delivery_mode": "at_home",
                "sap_activity": "soutien_scolaire_domicile",
                "pricing": {
                    "model": "subscription",
                    "price_per_period": eur("10"),
                    "included_hours": "0",
                },
            },
        ),
        "off_concierge": (
            marie,
            {
                "category": "concierge",
                "skills": [{"code": "concierge.reservations", "level": 4}],
                "languages": ["fr-FR"],
                "delivery_mode": "mixed",
                "pricing": {
                    "model": "subscription",
                    "price_per_period": eur("50"),
                    "included_hours": "3",
                },
            },
        ),
        "off_usd": (
            asha,
            {
                "currency": "USD",
                "pricing": {"model": "hourly", "rate": {"amount": "12", "currency": "USD"}},
            },
        ),
    }
    offers = {}
    for offer_id, (provider, overrides) in specs.items():
        offer = make_offer(offer_id, provider=provider, **overrides)
        offer.publish(provider, now)
        offers[offer_id] = offer.snapshot()
    offers["off_draft"] = make_offer("off_draft", provider=asha).snapshot()
    withdrawn = make_offer("off_withdrawn", provider=asha)
    withdrawn.publish(asha, now)
    withdrawn.withdraw(now)
    offers["off_withdrawn"] = withdrawn.snapshot()
    providers = {"prv_asha": asha.snapshot(), "prv_marie": marie.snapshot()}
    return offers, providers


def ids(market, **filters) -> list[str]:
    offers, providers = market
    page = search_offers(offers.values(), providers, OfferQuery(limit=100, **filters))
    return [o.offer_id for o in page.items]


def test_no_filter_returns_published_offers_by_reference_price_then_id(market):
    # 10 EUR (maths, maths_fr) tie on price and are ordered by id; USD 12 sorts by amount only.
    assert ids(market) == [
        "off_maths",
        "off_maths_fr",
        "off_usd",
        "off_hourly",
        "off_concierge",
        "off_package",
    ]


def test_category(market):
    assert ids(market, category="tutoring") == ["off_maths", "off_maths_fr"]


def test_skill_with_minimum_level(market):
    assert ids(market, skill="tutoring.maths") == ["off_maths", "off_maths_fr"]
    assert ids(market, skill="tutoring.maths", min_level=4) == ["off_maths"]
    assert ids(market, skill="tutoring.maths", min_level=5) == ["off_maths"]
    assert ids(market, skill="travel_booking.flights") == []


def test_language(market):
    assert ids(market, language="fr") == ["off_maths_fr", "off_concierge"]
    assert ids(market, language="fr-FR") == ["off_maths_fr", "off_concierge"]
    assert ids(market, language="fr-CA") == []
    assert ids(market, language="hi") == ["off_maths"]


@pytest.mark.parametrize(
    ("wanted", "offered", "expected"),
    [
        ("fr", "fr", True),
        ("fr", "fr-BE", True),
        ("fr-BE", "fr", True),
        ("fr-BE", "fr-CA", False),
        ("fr", "en", False),
        ("pt-BR", "pt-br", True),
    ],
)
def test_language_matching_rules(wanted, offered, expected):
    assert language_matches(wanted, offered) is expected


def test_max_price_compares_reference_price_in_the_same_currency_only(market):
    assert ids(market, max_price=Money.of("16.25", "EUR")) == [
        "off_maths",
        "off_maths_fr",
        "off_hourly",
    ]
    assert ids(market, max_price=Money.of("16.24", "EUR")) == ["off_maths", "off_maths_fr"]
    assert ids(market, max_price=Money.of("1000", "USD")) == ["off_usd"]
    assert ids(market, max_price=Money.of("1000", "GBP")) == []


def test_pricing_model(market):
    assert ids(market, pricing_model="subscription") == ["off_maths_fr", "off_concierge"]
    assert ids(market, pricing_model="package") == ["off_package"]
    assert ids(market, pricing_model="per_unit") == ["off_maths"]
    assert ids(market, pricing_model="hourly") == ["off_usd", "off_hourly"]


def test_delivery_mode_is_exact(market):
    assert ids(market, delivery_mode="at_home") == ["off_maths_fr"]
    assert ids(market, delivery_mode="mixed") == ["off_concierge"]


def test_provider_time_zone(market):
    assert ids(market, time_zones=["Europe/Paris"]) == ["off_maths_fr", "off_concierge"]
    assert ids(market, time_zones=["Europe/Paris", "Asia/Kolkata"]) == ids(market)
    assert ids(market, time_zones=["America/New_York"]) == []


def test_filters_combine(market):
    assert ids(
        market,
        category="tutoring",
        language="fr",
        max_price=Money.of("10", "EUR"),
        min_level=3,
        skill="tutoring.maths",
    ) == ["off_maths_fr"]


def test_suspended_and_unknown_providers_are_excluded(market, now):
    offers, providers = market
    suspended = providers["prv_marie"].model_copy(update={"status": "suspended"})
    page = search_offers(
        offers.values(), {**providers, "prv_marie": suspended}, OfferQuery(category="tutoring")
    )
    assert [o.offer_id for o in page.items] == ["off_maths"]
    page = search_offers(offers.values(), {"prv_marie": providers["prv_marie"]}, OfferQuery())
    assert {o.provider_id for o in page.items} == {"prv_marie"}


def test_offer_matches_needs_the_offers_own_provider(market):
    offers, providers = market
    assert offer_matches(offers["off_maths"], providers["prv_asha"], OfferQuery())
    assert not offer_matches(offers["off_maths"], providers["prv_marie"], OfferQuery())
    assert not offer_matches(offers["off_draft"], providers["prv_asha"], OfferQuery())
    assert not offer_matches(offers["off_withdrawn"], providers["prv_asha"], OfferQuery())


def test_cursor_pagination_has_no_gaps_or_repeats(market):
    offers, providers = market
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = search_offers(offers.values(), providers, OfferQuery(limit=2, cursor=cursor))
        seen += [o.offer_id for o in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert seen == ids(market)


def test_cursor_is_stable_when_an_offer_is_added_before_it(market, make_offer, make_provider, now):
    offers, providers = market
    first = search_offers(offers.values(), providers, OfferQuery(limit=3))
    asha = make_provider("prv_asha")
    cheap = make_offer("off_cheap", provider=asha, pricing={"model": "hourly", "rate": eur("5")})
    cheap.publish(asha, now)
    grown = [*offers.values(), cheap.snapshot()]
    rest = search_offers(grown, providers, OfferQuery(limit=100, cursor=first.next_cursor))
    assert [o.offer_id for o in first.items + rest.items] == ids(market)


def test_last_page_has_no_cursor(market):
    offers, providers = market
    page = search_offers(offers.values(), providers, OfferQuery(limit=6))
    assert len(page.items) == 6
    assert page.next_cursor is None


def test_cursor_round_trip_and_sort_key(market):
    offers, _ = market
    key = sort_key(offers["off_hourly"])
    assert key == (Decimal("16.25"), "off_hourly")
    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "W10", "WyJOYU4iLCJ4Il0"])
def test_bad_cursor_is_a_validation_error(market, cursor):
    offers, providers = market
    with pytest.raises(ValidationFailed) as exc:
        search_offers(offers.values(), providers, OfferQuery(cursor=cursor))
    assert exc.value.as_list() == [
        {"field": "cursor", "message": "is not a cursor returned by a previous page"}
    ]


def test_invalid_query_reports_every_problem(market):
    offers, providers = market
    query = parse(
        OfferQuery,
        {
            "category": "astrology",
            "skill": "tutoring.math",
            "min_level": 9,
            "language": "french",
            "max_price": {"amount": "0", "currency": "EUR"},
            "time_zones": ["Europe/Paris", "Mars/Olympus"],
            "limit": 0,
        },
    )
    with pytest.raises(ValidationFailed) as exc:
        search_offers(offers.values(), providers, query)
    errors = {i.field: i.message for i in exc.value.issues}
    assert set(errors) == {
        "category",
        "skill",
        "min_level",
        "language",
        "max_price",
        "time_zones.1",
        "limit",
    }
    assert errors["min_level"] == "level 9 is outside 1-5"
    assert errors["limit"] == "must be between 1 and 100, got 0"
    assert errors["language"] == "'french' is not a BCP 47 language tag (e.g. fr, en-GB, pt-BR)"


def test_min_level_needs_a_skill(market):
    offers, providers = market
    with pytest.raises(ValidationFailed) as exc:
        search_offers(offers.values(), providers, OfferQuery(min_level=3))
    assert exc.value.as_list() == [
        {"field": "min_level", "message": "only meaningful together with skill"}
    ]


def test_unknown_query_field_is_a_structural_error():
    with pytest.raises(ValidationFailed) as exc:
        parse(OfferQuery, {"colour": "blue"})
    assert exc.value.fields == {"colour"}
