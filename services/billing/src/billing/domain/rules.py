"""Loading the rules files shipped in `billing/rules/` (TOML, with comments).

Reading a packaged file is the only "I/O" in the domain; every parser also
accepts a plain mapping, so tests and the edge can pass rules directly.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from .commission import CommissionRules
from .errors import RulesError
from .tax_credit import TaxCreditRules
from .vat import VatTable

_TAX_FILE = re.compile(r"^tax_credit_(\d{4})\.toml$")


def _read(name: str) -> dict[str, Any]:
    path = resources.files("billing").joinpath("rules", name)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RulesError(f"rules file {name} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {name} is not valid TOML: {exc}") from exc


@lru_cache(maxsize=1)
def load_commission_rules() -> CommissionRules:
    return CommissionRules.from_mapping(_read("commission.toml"))


@lru_cache(maxsize=1)
def load_vat_table() -> VatTable:
    return VatTable.from_mapping(_read("vat_rates.toml"))


@lru_cache(maxsize=1)
def tax_credit_years() -> tuple[int, ...]:
    folder = resources.files("billing").joinpath("rules")
    years = [int(m.group(1)) for p in folder.iterdir() if (m := _TAX_FILE.match(p.name))]
    return tuple(sorted(years))


@lru_cache(maxsize=16)
def load_tax_credit_rules(year: int) -> TaxCreditRules:
    """The rules for `year`; if none yet, the latest earlier year's, marked provisional.

    A missing file for a new year must not stop invoicing on 1 January; the
    decisions then say which year's rules were applied.
    """
    years = tax_credit_years()
    if year in years:
        rules = TaxCreditRules.from_mapping(_read(f"tax_credit_{year}.toml"))
        if rules.tax_year != year:
            raise RulesError(f"tax_credit_{year}.toml declares tax_year {rules.tax_year}")
        return rules
    earlier = [y for y in years if y < year]
    if not earlier:
        raise RulesError(f"no tax-credit rules for {year} or any earlier year")
    return replace(load_tax_credit_rules(earlier[-1]), tax_year=year, provisional_from=earlier[-1])


@dataclass(frozen=True)
class BillingRules:
    """Every rule set an invoice needs, in one value the edge passes in."""

    commission: CommissionRules
    vat: VatTable
    tax_credit: dict[int, TaxCreditRules] = field(default_factory=dict)

    def tax_credit_for(self, year: int) -> TaxCreditRules:
        rules = self.tax_credit.get(year)
        return rules if rules is not None else load_tax_credit_rules(year)

    @classmethod
    def load(cls) -> BillingRules:
        return cls(commission=load_commission_rules(), vat=load_vat_table())
