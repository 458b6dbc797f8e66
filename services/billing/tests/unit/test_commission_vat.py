from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from billing.domain.commission import CommissionRules
from billing.domain.errors import RulesError
from billing.domain.vat import VatTable, vat_for_line
from delego_shared.types import Money

from .conftest import eur

RULES = CommissionRules.from_mapping(
    {
        "default": {"rate": "0.15", "minimum": {"EUR": "1.00"}},
        "categories": {
            "tutoring": {"rate": "0.10"},
            "tutoring.math": {"rate": "0.05", "minimum": {"EUR": "2.00"}},
        },
    }
)


def test_percentage_on_net_rounded_half_up():
    assert RULES.commission("translation", eur("100.00")) == eur("15.00")
    assert RULES.commission("translation", eur("10.10")) == eur("1.52")  # 1.515 -> 1.52


def test_minimum_fee_applies_when_percentage_is_lower():
    assert RULES.commission("translation", eur("5.00")) == eur("1.00")  # 0.75 < 1.00


def test_minimum_fee_never_exceeds_the_net():
    assert RULES.commission("translation", eur("0.40")) == eur("0.40")
    assert RULES.commission("translation", eur("0.00")) == eur("0")


def test_minimum_is_per_currency():
    assert RULES.commission("translation", Money.of("5.00", "USD")) == Money.of("0.75", "USD")


def test_category_longest_prefix_then_default():
    assert RULES.rule_for("tutoring.math").rate == Decimal("0.05")
    assert RULES.rule_for("tutoring.math.algebra").rate == Decimal("0.05")
    assert RULES.rule_for("tutoring.music").rate == Decimal("0.10")
    assert RULES.rule_for("tutoringx").rate == Decimal("0.15")  # not a dotted prefix
    assert RULES.commission("tutoring.math", eur("10.00")) == eur("2.00")


def test_shipped_commission_rules_load(rules):
    assert rules.commission.default.rate == Decimal("0.15")
    assert rules.commission.commission("tutoring", eur("100")) == eur("12.00")


def test_bad_commission_rules_are_rejected():
    with pytest.raises(RulesError):
        CommissionRules.from_mapping({"default": {"rate": "1.5"}})
    with pytest.raises(RulesError):
        CommissionRules.from_mapping({})


@pytest.mark.parametrize(
    ("country", "on", "rate"),
    [
        ("FR", date(2026, 1, 1), "0.20"),
        ("BE", date(2026, 1, 1), "0.21"),
        ("DE", date(2026, 1, 1), "0.19"),
        ("DE", date(2020, 8, 1), "0.16"),  # the 2020 temporary cut
        ("EE", date(2025, 6, 30), "0.22"),
        ("EE", date(2025, 7, 1), "0.24"),
        ("US", date(2026, 1, 1), "0"),
        ("IN", date(2026, 1, 1), "0"),
    ],
)
def test_vat_rate_by_client_country_and_date(rules, country, on, rate):
    assert rules.vat.rate_for(country, on).rate == Decimal(rate)


def test_outside_eu_default_has_a_note(rules):
    r = rules.vat.rate_for("US", date(2026, 1, 1))
    assert r.rate == 0
    assert "hors" in r.note_fr
    assert "outside" in r.note_en


def test_vat_rounded_per_line_half_up():
    assert vat_for_line(eur("16.67"), Decimal("0.20")) == eur("3.33")  # 3.334
    assert vat_for_line(eur("0.125"), Decimal("0.20")) == eur("0.03")  # 0.025 -> 0.03
    assert vat_for_line(eur("10.00"), Decimal("0.255")) == eur("2.55")


def test_vat_table_rejects_bad_rate():
    with pytest.raises(RulesError):
        VatTable.from_mapping(
            {
                "default": {"rate": "0"},
                "countries": {"FR": [{"from": date(2020, 1, 1), "rate": "20"}]},
            }
        )


@pytest.mark.parametrize(
    ("activity", "country", "on", "rate"),
    [
        ("entretien_maison", "FR", date(2026, 1, 1), "0.10"),  # CGI 279 i
        ("soutien_scolaire_domicile", "FR", date(2026, 1, 1), "0.10"),
        ("assistance_personnes_agees_handicapees", "FR", date(2026, 1, 1), "0.055"),  # 278-0 bis D
        ("jardinage", "FR", date(2026, 1, 1), "0.20"),  # not in CGI ann. III art. 86
        ("assistance_informatique_domicile", "FR", date(2026, 1, 1), "0.20"),
        ("entretien_maison", "BE", date(2026, 1, 1), "0.21"),  # French rates for FR only
        (None, "FR", date(2026, 1, 1), "0.20"),
    ],
)
def test_reduced_rates_of_services_a_la_personne(rules, activity, country, on, rate):
    got = rules.vat.rate_for(country, on, activity)
    assert got.rate == Decimal(rate)
    if got.rate < Decimal("0.20") and country == "FR":
        assert "CGI art." in got.note_fr  # the article that sets it


def test_a_reduced_rate_needs_a_declared_provider_at_home(make_terms):
    from billing.domain.vat import sap_activity_for_vat
    from delego_shared.events.common import DeliveryMode

    assert sap_activity_for_vat(make_terms(sap_activity="entretien_maison")) == "entretien_maison"
    assert sap_activity_for_vat(make_terms(provider_sap_number=None)) is None
    assert sap_activity_for_vat(make_terms(delivery_mode=DeliveryMode.REMOTE)) is None
    assert sap_activity_for_vat(make_terms(delivery_mode=DeliveryMode.MIXED)) is not None


def test_a_reduced_rate_without_source_is_rejected():
    with pytest.raises(RulesError):
        VatTable.from_mapping(
            {
                "default": {"rate": "0"},
                "sap": {"FR": {"activities": {"x": {"from": date(2014, 1, 1), "rate": "0.1"}}}},
            }
        )
