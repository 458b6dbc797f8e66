"""VAT by the client's country (rules/vat_rates.toml), applied per line.

Rates are dated: the entry in force on the invoice date applies, so a rate
change never rewrites an issued invoice. VAT = net x rate, rounded half-up to
the minor unit on each line; the invoice's VAT is the sum of the lines'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from delego_shared.types import Money

from .errors import RulesError


@dataclass(frozen=True)
class VatRate:
    country: str
    rate: Decimal
    note_fr: str = ""
    note_en: str = ""


@dataclass(frozen=True)
class VatTable:
    default: VatRate
    countries: Mapping[str, tuple[tuple[date, Decimal], ...]] = field(default_factory=dict)

    def rate_for(self, country: str, on: date) -> VatRate:
        """The standard rate in force in `country` on `on`; the default rule otherwise."""
        history = self.countries.get(country, ())
        current: Decimal | None = None
        for start, rate in history:  # sorted by start
            if start <= on:
                current = rate
        if current is None:
            return VatRate(country, self.default.rate, self.default.note_fr, self.default.note_en)
        return VatRate(country, current)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> VatTable:
        try:
            d = data["default"]
            default = VatRate(
                "*", Decimal(str(d["rate"])), str(d.get("note_fr", "")), str(d.get("note_en", ""))
            )
            countries: dict[str, tuple[tuple[date, Decimal], ...]] = {}
            for code, entries in dict(data.get("countries", {})).items():
                rows = sorted((e["from"], Decimal(str(e["rate"]))) for e in entries)
                if not all(isinstance(s, date) and Decimal(0) <= r < 1 for s, r in rows):
                    raise ValueError(f"bad VAT entries for {code}")
                countries[str(code)] = tuple(rows)
        except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
            raise RulesError(f"bad VAT table: {exc!r}") from exc
        return cls(default=default, countries=countries)


def vat_for_line(net: Money, rate: Decimal) -> Money:
    """VAT of one line, rounded half-up to the minor unit."""
    return (net * rate).rounded()
