"""Every pricing model: valid examples, each rule, and the reference price."""

from decimal import Decimal

import pytest
from catalog.domain import (
    Offer,
    OfferDraft,
    ValidationFailed,
    parse,
    reference_price,
    reference_price_key,
)
from delego_shared.events.common import Pricing
from delego_shared.types import Money
from pydantic import TypeAdapter

PRICING = TypeAdapter(Pricing)


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def pricing_errors(make_provider, offer_data, now, pricing, **overrides) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as exc:
        Offer.create(
            "off_x",
            make_provider(),
            parse(OfferDraft, offer_data(pricing=pricing, **overrides)),
            now,
        )
    return {i.field: i.message for i in exc.value.issues}


# -- valid examples from the market (DESIGN.md) ---------------------------------------------


@pytest.mark.parametrize(
    ("pricing", "reference"),
    [
        ({"model": "hourly", "rate": eur("25.00")}, "25.00"),  # Officeo, by the hour
        ({"model": "package", "price": eur("650"), "hours_included": "40"}, "650"),
        (
            {
                "model": "subscription",
                "price_per_period": eur("15"),
                "included_hours": "2",
                "overage_rate": eur("12.50"),
            },
            "15",
        ),  # MyConciergerie monthly plan
        ({"model": "subscription", "price_per_period": eur("10"), "included_hours": "0"}, "10"),
        ({"model": "per_unit", "unit_name": "module", "unit_price": eur("10")}, "10"),  # TutoClic
    ],
)
def test_market_examples_are_valid_and_have_a_reference_price(make_offer, pricing, reference):
    offer = make_offer(pricing=pricing)
    assert reference_price(offer.snapshot().pricing) == Money.of(reference, "EUR")


def test_hourly_defaults_are_sane(make_offer):
    pricing = make_offer(pricing={"model": "hourly", "rate": eur("16.25")}).snapshot().pricing
    assert pricing.model == "hourly"
    assert (pricing.minimum_minutes, pricing.increment_minutes) == (60, 15)


# -- rules common to every model ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pricing", "field"),
    [
        ({"model": "hourly", "rate": eur("0")}, "pricing.rate"),
        ({"model": "package", "price": eur("-650")}, "pricing.price"),
        (
            {"model": "subscription", "price_per_period": eur("0"), "included_hours": "1"},
            "pricing.price_per_period",
        ),
        (
            {
                "model": "subscription",
                "price_per_period": eur("15"),
                "included_hours": "1",
                "overage_rate": eur("-1"),
            },
            "pricing.overage_rate",
        ),
        (
            {"model": "per_unit", "unit_name": "module", "unit_price": eur("0.00")},
            "pricing.unit_price",
        ),
    ],
)
def test_zero_or_negative_prices_are_rejected(make_provider, offer_data, now, pricing, field):
    errors = pricing_errors(make_provider, offer_data, now, pricing)
    assert list(errors) == [field]
    assert errors[field].startswith("must be greater than zero, got ")


@pytest.mark.parametrize("amount", ["1E+30", "1000000000000000"])
def test_absurdly_large_prices_are_rejected_not_crashing(make_provider, offer_data, now, amount):
    errors = pricing_errors(
        make_provider, offer_data, now, {"model": "hourly", "rate": eur(amount)}
    )
    assert "must be less than 1000000000000000" in errors["pricing.rate"]


def test_more_decimals_than_the_currency_allows(make_provider, offer_data, now):
    errors = pricing_errors(
        make_provider, offer_data, now, {"model": "hourly", "rate": eur("16.255")}
    )
    assert errors == {"pricing.rate": "16.255 EUR has more decimals than EUR allows (2)"}
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {"model": "hourly", "rate": {"amount": "1500.5", "currency": "JPY"}},
        currency="JPY",
    )
    assert errors == {"pricing.rate": "1500.5 JPY has more decimals than JPY allows (0)"}


def test_trailing_zeros_are_not_extra_decimals(make_offer):
    offer = make_offer(pricing={"model": "hourly", "rate": eur("16.2500")})
    assert reference_price(offer.snapshot().pricing).amount == Decimal("16.25")


@pytest.mark.parametrize(
    ("pricing", "field"),
    [
        ({"model": "hourly", "rate": {"amount": "20", "currency": "USD"}}, "pricing.rate.currency"),
        (
            {"model": "package", "price": {"amount": "650", "currency": "GBP"}},
            "pricing.price.currency",
        ),
        (
            {
                "model": "subscription",
                "price_per_period": eur("15"),
                "included_hours": "2",
                "overage_rate": {"amount": "12", "currency": "USD"},
            },
            "pricing.overage_rate.currency",
        ),
        (
            {
                "model": "per_unit",
                "unit_name": "page",
                "unit_price": {"amount": "3", "currency": "CHF"},
            },
            "pricing.unit_price.currency",
        ),
    ],
)
def test_pricing_currency_must_equal_offer_currency(make_provider, offer_data, now, pricing, field):
    errors = pricing_errors(make_provider, offer_data, now, pricing)
    assert list(errors) == [field]
    assert errors[field].endswith("differs from the offer currency EUR")


def test_non_iso_currency_in_a_price_is_a_structural_error(offer_data):
    with pytest.raises(ValidationFailed) as exc:
        parse(
            OfferDraft,
            offer_data(pricing={"model": "hourly", "rate": eur("10") | {"currency": "EUROS"}}),
        )
    assert exc.value.as_list() == [
        {
            "field": "pricing.hourly.rate.currency",
            "message": "'EUROS' is not an ISO 4217 currency code (e.g. EUR, USD, INR)",
        }
    ]


def test_float_amounts_are_refused(offer_data):
    with pytest.raises(ValidationFailed) as exc:
        parse(
            OfferDraft,
            offer_data(pricing={"model": "hourly", "rate": {"amount": 16.25, "currency": "EUR"}}),
        )
    assert exc.value.fields == {"pricing.hourly.rate.amount"}


# -- hourly ---------------------------------------------------------------------------------


@pytest.mark.parametrize("increment", [7, 45, 90])
def test_increment_must_divide_an_hour(make_provider, offer_data, now, increment):
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {
            "model": "hourly",
            "rate": eur("20"),
            "increment_minutes": increment,
            "minimum_minutes": 0,
        },
    )
    assert errors == {
        "pricing.increment_minutes": "must divide an hour evenly (one of 1, 2, 3, 4, 5, 6, 10, 12, "
        f"15, 20, 30, 60), got {increment}"
    }


def test_minimum_must_be_a_multiple_of_the_increment(make_provider, offer_data, now):
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {"model": "hourly", "rate": eur("20"), "increment_minutes": 15, "minimum_minutes": 50},
    )
    assert errors == {"pricing.minimum_minutes": "50 is not a multiple of increment_minutes (15)"}


def test_minimum_cannot_exceed_the_typical_effort(make_provider, offer_data, now):
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {"model": "hourly", "rate": eur("20"), "minimum_minutes": 120},
        typical_effort_hours="1.5",
    )
    assert errors == {
        "pricing.minimum_minutes": "120 min exceeds the typical effort of the offer (1.5 h)"
    }


def test_zero_minimum_and_one_minute_increment_are_fine(make_offer):
    pricing = {"model": "hourly", "rate": eur("20"), "minimum_minutes": 0, "increment_minutes": 1}
    assert make_offer(pricing=pricing).snapshot().pricing.model == "hourly"


def test_structural_bounds_on_minutes(offer_data):
    with pytest.raises(ValidationFailed) as exc:
        parse(
            OfferDraft,
            offer_data(
                pricing={
                    "model": "hourly",
                    "rate": eur("20"),
                    "minimum_minutes": -1,
                    "increment_minutes": 0,
                }
            ),
        )
    assert exc.value.fields == {
        "pricing.hourly.minimum_minutes",
        "pricing.hourly.increment_minutes",
    }


# -- package, subscription, per unit --------------------------------------------------------


def test_package_label_must_not_carry_contact_data(make_provider, offer_data, now):
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {"model": "package", "price": eur("650"), "label": "call 06 12 34 56 78"},
    )
    assert errors == {
        "pricing.label": "must not contain a phone number (contact data never leaves the platform)"
    }


def test_subscription_included_hours_fit_in_a_month(make_provider, offer_data, now):
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {"model": "subscription", "price_per_period": eur("50"), "included_hours": "745"},
    )
    assert errors == {"pricing.included_hours": "cannot exceed 744 h a month (31 x 24), got 745"}


def test_per_unit_name_must_not_be_blank(make_provider, offer_data, now):
    errors = pricing_errors(
        make_provider,
        offer_data,
        now,
        {"model": "per_unit", "unit_name": "   ", "unit_price": eur("10")},
    )
    assert errors == {"pricing.unit_name": "must not be blank (e.g. 'module')"}


# -- reference price index key --------------------------------------------------------------


def test_reference_price_key_sorts_like_the_amount():
    amounts = ["9.5", "10", "16.25", "650", "1000.01", "0.99"]
    pricings = [PRICING.validate_python({"model": "hourly", "rate": eur(a)}) for a in amounts]
    keys = [reference_price_key(p) for p in pricings]
    assert sorted(keys) == [
        reference_price_key(p) for p in sorted(pricings, key=lambda p: reference_price(p).amount)
    ]
    assert reference_price_key(pricings[2]) == "000000000000016.2500"


def test_reference_price_key_refuses_negative_amounts():
    pricing = PRICING.validate_python({"model": "package", "price": eur("-1")})
    with pytest.raises(ValueError, match="positive"):
        reference_price_key(pricing)
