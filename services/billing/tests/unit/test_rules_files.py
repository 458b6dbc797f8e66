from __future__ import annotations

from decimal import Decimal

import pytest
from billing.domain.errors import RulesError
from billing.domain.rules import load_tax_credit_rules, tax_credit_years
from billing.domain.tax_credit import TaxCreditRules


@pytest.mark.parametrize("year", [2025, 2026])
def test_shipped_tax_credit_rules(year):
    r = load_tax_credit_rules(year)
    assert r.tax_year == year
    assert r.provisional_from is None
    assert (r.credit_rate, r.base_cap, r.increase_per_member, r.max_cap, r.disabled_cap) == (
        Decimal("0.50"),
        Decimal(12000),
        Decimal(1500),
        Decimal(15000),
        Decimal(20000),
    )
    assert {k: v.amount for k, v in r.sub_caps.items()} == {
        "it_assistance": Decimal(3000),
        "small_diy": Decimal(500),
        "gardening": Decimal(5000),
    }
    assert r.activities["teleassistance_visioassistance"].remote_eligible
    assert not r.activities["soutien_scolaire_domicile"].remote_eligible
    assert all(a.sources for a in r.activities.values())


def test_years_listed():
    assert {2025, 2026} <= set(tax_credit_years())


def test_later_year_falls_back_provisionally():
    r = load_tax_credit_rules(max(tax_credit_years()) + 1)
    assert r.provisional_from == max(tax_credit_years())
    assert r.tax_year == max(tax_credit_years()) + 1


def test_year_before_any_rules_is_an_error():
    with pytest.raises(RulesError):
        load_tax_credit_rules(2001)


def test_activity_with_unknown_sub_cap_is_rejected():
    data = {
        "tax_year": 2026,
        "country": "FR",
        "currency": "EUR",
        "credit_rate": "0.5",
        "caps": {"base": "1", "increase_per_member": "1", "maximum": "1", "disabled": "1"},
        "activities": {"x": {"label_fr": "x", "label_en": "x", "sub_cap": "nope"}},
    }
    with pytest.raises(RulesError):
        TaxCreditRules.from_mapping(data)


@pytest.mark.parametrize("name", ["tax_credit_2025.toml", "tax_credit_2026.toml"])
def test_every_tax_credit_value_names_its_source(name):
    import tomllib
    from importlib import resources

    data = tomllib.loads(resources.files("billing").joinpath("rules", name).read_text("utf-8"))
    assert data["credit_rate_source"].strip()
    assert data["caps"]["sources"]
    assert all(v["sources"] for v in data["sub_caps"].values())
    assert all(v["sources"] for v in data["activities"].values())
    assert "not read" in data["credit_rate_source"]  # says what was not checked


def test_the_2026_file_says_it_is_not_verified_against_the_2026_finance_law():
    from importlib import resources

    text = resources.files("billing").joinpath("rules", "tax_credit_2026.toml").read_text("utf-8")
    assert "NOT VERIFIED FOR 2026" in text
