from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from delego_shared.types import (
    CountryCode,
    CurrencyMismatch,
    IanaZone,
    LanguageTag,
    Money,
    UtcInstant,
)
from pydantic import BaseModel, ValidationError


class Holder(BaseModel):
    at: UtcInstant
    zone: IanaZone
    country: CountryCode
    lang: LanguageTag


def test_money_is_a_decimal_string_with_a_currency_on_the_wire():
    m = Money.of("650.00", "EUR")
    assert m.model_dump(mode="json") == {"amount": "650.00", "currency": "EUR"}
    assert Money.model_validate_json(m.model_dump_json()) == m


def test_money_refuses_floats_and_unknown_currencies():
    with pytest.raises(ValidationError, match="never floats"):
        Money(amount=16.25, currency="EUR")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not an ISO 4217 currency"):
        Money.of("1", "EUROS")
    with pytest.raises(ValidationError, match="not a decimal amount"):
        Money.model_validate({"amount": "12,5", "currency": "EUR"})


def test_money_rounds_half_up_to_the_minor_unit():
    assert Money.of("16.245", "EUR").rounded().amount == Decimal("16.25")
    assert Money.of("16.244", "EUR").rounded().amount == Decimal("16.24")
    assert Money.of("100.5", "JPY").rounded().amount == Decimal("101")
    assert Money.of("1.2345", "KWD").rounded().amount == Decimal("1.235")


def test_money_arithmetic_stays_in_one_currency():
    assert Money.of("650", "EUR") - Money.of("97.50", "EUR") == Money.of("552.50", "EUR")
    assert Money.of("10", "EUR") * 3 == Money.of("30", "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(TypeError):
        _ = Money.of("1", "EUR") * 1.5  # type: ignore[operator]


def test_instants_are_normalised_to_utc_and_naive_ones_refused():
    paris_winter = timezone(timedelta(hours=1))
    h = Holder(
        at=datetime(2026, 11, 29, 18, 30, tzinfo=paris_winter),
        zone="Europe/Paris",
        country="FR",
        lang="fr",
    )
    assert h.at == datetime(2026, 11, 29, 17, 30, tzinfo=UTC)
    assert h.model_dump(mode="json")["at"] == "2026-11-29T17:30:00Z"
    with pytest.raises(ValidationError, match="must carry a UTC offset"):
        Holder(at=datetime(2026, 1, 1), zone="UTC", country="FR", lang="fr")


@pytest.mark.parametrize(
    "zone", ["Europe/Paris", "Asia/Kolkata", "America/Montreal", "Australia/Sydney", "Asia/Manila"]
)
def test_iana_zones_accepted(zone):
    assert Holder(at=datetime.now(UTC), zone=zone, country="FR", lang="fr").zone == zone


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("zone", "Paris", "not an IANA time zone"),
        ("zone", "CET+1", "not an IANA time zone"),
        ("country", "France", "ISO 3166-1 alpha-2"),
        ("lang", "french", "BCP 47"),
    ],
)
def test_bad_zone_country_language_are_precise_errors(field, value, message):
    data = {"at": datetime.now(UTC), "zone": "UTC", "country": "FR", "lang": "fr", field: value}
    with pytest.raises(ValidationError, match=message):
        Holder(**data)
