"""Contract check: billing's tax-credit activities use the catalog's SAP codes.

Offers carry `sap_activity` with a code from the catalog taxonomy
(sap_activities.activities[].code); a billing key the catalog does not know
could never match an offer, so the credit would silently never apply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from billing.domain.rules import load_tax_credit_rules, tax_credit_years

TAXONOMY = (
    Path(__file__).resolve().parents[3] / "catalog" / "src" / "catalog" / "domain" / "taxonomy.json"
)


def _catalog_codes() -> set[str]:
    data = json.loads(TAXONOMY.read_text(encoding="utf-8"))
    return {a["code"] for a in data["sap_activities"]["activities"]}


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
