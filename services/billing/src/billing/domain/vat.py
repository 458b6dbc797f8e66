"""VAT by the client's country (rules/vat_rates.toml), applied per line.

The standard rate of the client's country, or, for a services-à-la-personne
activity with a reduced rate in that country (France: CGI art. 278-0 bis D,
279 i), that rate — when the provider is a declared SAP organism and the
service is not delivered remotely (`sap_activity_for_vat`). Rates are dated:
the entry in force on the invoice date applies, so a rate change never
rewrites an issued invoice. VAT = net x rate, rounded half-up to the minor
unit on each line; the invoice's VAT is the sum of the lines'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from delego_shared.events.common import AgreedTerms, DeliveryMode
from delego_shared.types import Money

from .errors import RulesError


@dataclass(frozen=True)
class VatRate:
    country: str
    rate: Decimal
    note_fr: str = ""
    note_en: str = ""


@dataclass(frozen=True)
class ReducedRate:
    start: date
    rate: Decimal
    source: str


@dataclass(frozen=True)
class VatTable:
    default: VatRate
    countries: Mapping[str, tuple[tuple[date, Decimal], ...]] = field(default_factory=dict)
    # country -> SAP activity code -> reduced rate
    sap: Mapping[str, Mapping[str, ReducedRate]] = field(default_factory=dict)
    # country -> SAP activity codes deliberately at the standard rate
    sap_standard: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def rate_for(self, country: str, on: date, sap_activity: str | None = None) -> VatRate:
        """The rate in force in `country` on `on`: the reduced rate of `sap_activity`
        if it has one there, else the standard rate; the default rule otherwise."""
        reduced = self.sap.get(country, {}).get(sap_activity or "")
        if reduced is not None and reduced.start <= on:
            return VatRate(country, reduced.rate, reduced.source, reduced.source)
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
            sap: dict[str, dict[str, ReducedRate]] = {}
            standard: dict[str, frozenset[str]] = {}
            for code, table in dict(data.get("sap", {})).items():
                sap[str(code)] = {}
                for activity, e in dict(table.get("activities", {})).items():
                    rate = Decimal(str(e["rate"]))
                    if not isinstance(e["from"], date) or not Decimal(0) <= rate < 1:
                        raise ValueError(f"bad reduced rate for {code}/{activity}")
                    if not str(e.get("source", "")).strip():
                        raise ValueError(f"reduced rate {code}/{activity} has no source")
                    sap[str(code)][str(activity)] = ReducedRate(e["from"], rate, str(e["source"]))
                standard[str(code)] = frozenset(str(a) for a in table.get("standard_rate", []))
        except (KeyError, TypeError, ArithmeticError, ValueError, AttributeError) as exc:
            raise RulesError(f"bad VAT table: {exc!r}") from exc
        return cls(default=default, countries=countries, sap=sap, sap_standard=standard)


def sap_activity_for_vat(terms: AgreedTerms) -> str | None:
    """The SAP activity whose reduced rate may apply to these terms: only a declared
    SAP organism (it carries a SAP number) supplying the service other than remotely."""
    if not terms.sap_activity or not terms.provider_sap_number:
        return None
    if terms.delivery_mode is DeliveryMode.REMOTE:
        return None
    return terms.sap_activity


def vat_for_line(net: Money, rate: Decimal) -> Money:
    """VAT of one line, rounded half-up to the minor unit."""
    return (net * rate).rounded()
