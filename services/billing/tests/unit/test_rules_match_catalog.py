"""Contract check: billing's rules files name only what the catalog's taxonomy has.

Offers carry `category` (categories[].code) and `sap_activity`
(sap_activities.activities[].code) from the catalog taxonomy. A billing key
the catalog does not know could never match an offer, so its rule would
silently never apply (the offer would fall back to the default commission, or
never get its tax credit).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from billing.domain.commission import CommissionRules
from billing.domain.rules import (
    load_commission_rules,
    load_tax_credit_rules,
    load_vat_table,
    tax_credit_years,
)

TAXONOMY = (
    Path(__file__).resolve().parents[3] / "catalog" / "src" / "catalog" / "domain" / "taxonomy.json"
)


def _taxonomy() -> dict:
    return json.loads(TAXONOMY.read_text(encoding="utf-8"))


def _catalog_codes() -> set[str]:
    return {a["code"] for a in _taxonomy()["sap_activities"]["activities"]}


def _categories() -> set[str]:
    return {c["code"] for c in _taxonomy()["categories"]}


def _skills() -> set[str]:
    return {s["code"] for s in _taxonomy()["skills"]}


def commission_mismatches(rules: CommissionRules, categories: set[str], skills: set[str]):
    """(keys the catalog does not have, categories falling back to the default unasked)."""
    unknown = {k for k in rules.categories if k not in categories | skills}
    unknown |= {k for k in rules.default_categories if k not in categories}
    silent = {
        c
        for c in categories
        if rules.rule_for(c) is rules.default and c not in rules.default_categories
    }
    return unknown, silent


def test_every_commission_key_is_a_catalog_category_and_none_falls_back_silently():
    unknown, silent = commission_mismatches(load_commission_rules(), _categories(), _skills())
    assert not unknown, f"commission.toml names categories the catalog does not have: {unknown}"
    assert not silent, f"catalog categories falling back to the default commission: {silent}"


def test_the_commission_check_catches_a_misnamed_key():
    # the bug this check exists for: "dating_assistant" instead of "dating_assistance"
    misnamed = CommissionRules.from_mapping(
        {
            "default": {"rate": "0.15", "categories": ["gaming"]},
            "categories": {"dating_assistant": {"rate": "0.20"}},
        }
    )
    unknown, silent = commission_mismatches(misnamed, {"dating_assistance", "gaming"}, set())
    assert unknown == {"dating_assistant"}
    assert silent == {"dating_assistance"}


def test_shipped_category_rates():
    rules = load_commission_rules()
    assert rules.rule_for("dating_assistance").rate == Decimal("0.20")
    assert rules.rule_for("home_services").rate == Decimal("0.10")
    assert rules.rule_for("virtual_assistance.agenda").minimum == {"EUR": Decimal("2.00")}


def test_every_commission_rule_names_its_source():
    rules = load_commission_rules()
    assert all(r.source for r in [rules.default, *rules.categories.values()])


def test_catalog_taxonomy_is_readable():
    assert TAXONOMY.is_file(), TAXONOMY
    assert "soutien_scolaire_domicile" in _catalog_codes()


@pytest.mark.parametrize("year", tax_credit_years())
def test_every_billing_activity_is_a_catalog_code(year):
    unknown = set(load_tax_credit_rules(year).activities) - _catalog_codes()
    assert not unknown, f"tax_credit_{year}.toml has activity codes unknown to the catalog"


@pytest.mark.parametrize("year", tax_credit_years())
def test_remote_eligibility_agrees_with_catalog(year):
    data = json.loads(TAXONOMY.read_text(encoding="utf-8"))
    remote = {a["code"] for a in data["sap_activities"]["activities"] if a.get("remote")}
    rules = load_tax_credit_rules(year)
    assert {c for c, a in rules.activities.items() if a.remote_eligible} == remote & set(
        rules.activities
    )


def test_every_vat_activity_is_a_catalog_code_and_none_falls_back_silently():
    vat = load_vat_table()
    codes = _catalog_codes()
    for country, table in vat.sap.items():
        standard = vat.sap_standard.get(country, frozenset())
        unknown = (set(table) | standard) - codes
        assert not unknown, f"vat_rates.toml [sap.{country}] names unknown codes: {unknown}"
        assert not set(table) & standard, "an activity both reduced and standard"
        silent = codes - set(table) - standard
        assert not silent, f"SAP activities at the standard rate unasked in {country}: {silent}"
    assert "FR" in vat.sap


@pytest.mark.parametrize("year", tax_credit_years())
def test_no_catalog_activity_is_left_out_of_the_tax_credit_silently(year):
    import tomllib
    from importlib import resources

    name = f"tax_credit_{year}.toml"
    data = tomllib.loads(resources.files("billing").joinpath("rules", name).read_text("utf-8"))
    listed = set(data["activities"])
    not_listed = set(data["not_listed"])
    assert not listed & not_listed
    assert not_listed <= _catalog_codes(), "not_listed names codes the catalog does not have"
    assert _catalog_codes() - listed - not_listed == set(), "activities left out unasked"
