"""Money as billing writes it: always with its currency's minor units.

An accountant reads "0.00" and "15000.00", never "0" or "15000". Amounts with
more digits than the minor units (a unit price of 0.125) keep them: writing
never rounds, it only pads.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from delego_shared.types import Money
from pydantic import BaseModel


def padded(amount: Decimal, minor_units: int) -> Decimal:
    """`amount` with at least `minor_units` decimals (exact: pads, never rounds)."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -minor_units:
        return amount.quantize(Decimal(1).scaleb(-minor_units))
    return amount


def fixed(m: Money) -> Money:
    """The same amount written with the currency's minor units."""
    return Money(amount=padded(m.amount, m.minor_units), currency=m.currency)


def amount_text(m: Money) -> str:
    return str(padded(m.amount, m.minor_units))


def with_minor_units(value: Any) -> Any:
    """Every Money inside a contract (nested models, lists) written with minor units:
    applied once at the edge to what billing publishes."""
    if isinstance(value, Money):
        return fixed(value)
    if isinstance(value, BaseModel):
        changes = {
            name: with_minor_units(getattr(value, name)) for name in type(value).model_fields
        }
        return value.model_copy(update=changes)
    if isinstance(value, list):
        return [with_minor_units(v) for v in value]
    if isinstance(value, tuple):
        return tuple(with_minor_units(v) for v in value)
    return value
