"""Platform commission: rules as data (rules/commission.toml).

Computed on the NET (ex-VAT) amount of each line: VAT belongs to the state,
so the platform's cut must not depend on the client's country. The minimum
fee applies per line (each line is one billed transaction: a work completion,
a package, a subscription period). The commission never exceeds the net, so
the provider payout (net - commission) is never negative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from delego_shared.types import Money

from .errors import RulesError


@dataclass(frozen=True)
class CommissionRule:
    rate: Decimal
    minimum: Mapping[str, Decimal] = field(default_factory=dict)  # currency -> amount
    source: str = ""  # where the value comes from (a policy decision, not a statute)

    def commission(self, net: Money) -> Money:
        if net.amount <= 0:
            return Money.zero(net.currency)
        pct = (net * self.rate).rounded()
        floor = self.minimum.get(net.currency)
        fee = pct if floor is None else max(pct, Money(amount=floor, currency=net.currency))
        return min(fee, net)


@dataclass(frozen=True)
class CommissionRules:
    default: CommissionRule
    categories: Mapping[str, CommissionRule] = field(default_factory=dict)
    # catalog categories meant to use the default rule (declared, so that a new
    # catalog category never falls back to it unnoticed: see the contract test)
    default_categories: frozenset[str] = frozenset()

    def rule_for(self, category: str) -> CommissionRule:
        """Longest dotted-prefix match: "tutoring.math" falls back to "tutoring"."""
        parts = category.split(".")
        for n in range(len(parts), 0, -1):
            rule = self.categories.get(".".join(parts[:n]))
            if rule is not None:
                return rule
        return self.default

    def commission(self, category: str, net: Money) -> Money:
        return self.rule_for(category).commission(net)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CommissionRules:
        try:
            default = _rule(data["default"])
            cats = {str(k): _rule(v) for k, v in dict(data.get("categories", {})).items()}
            on_default = frozenset(str(c) for c in data["default"].get("categories", []))
        except (KeyError, TypeError, ArithmeticError, ValueError, AttributeError) as exc:
            raise RulesError(f"bad commission rules: {exc!r}") from exc
        both = on_default & set(cats)
        if both:
            raise RulesError(f"categories {sorted(both)} have a rule and are listed on default")
        return cls(default=default, categories=cats, default_categories=on_default)


def _rule(raw: Mapping[str, Any]) -> CommissionRule:
    rate = Decimal(str(raw["rate"]))
    if not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"commission rate {rate} outside [0, 1]")
    minimum = {str(c): Decimal(str(a)) for c, a in dict(raw.get("minimum", {})).items()}
    return CommissionRule(rate=rate, minimum=minimum, source=str(raw.get("source", "")))
