"""Value types every contract uses: money, UTC instants, IANA zones, ids.

Money is a decimal string plus an ISO 4217 code on the wire (never a float);
instants are timezone-aware and normalised to UTC; zones are validated IANA
names. These are the only representations allowed on a topic.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

# ISO 4217 active codes (2024). Kept as data: the list changes rarely and a
# typo such as "EUROS" must fail with a precise message.
ISO_4217 = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)

# Minor units where they are not 2 (ISO 4217); used to round to "the cent".
_MINOR_UNITS = {
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


def _check_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code (e.g. EUR, USD, INR)")
    return code


Currency = Annotated[
    str,
    AfterValidator(_check_currency),
    WithJsonSchema({"type": "string", "enum": sorted(ISO_4217), "description": "ISO 4217"}),
]
"""Validated in code (with a clear message); the JSON schema lists the same codes."""


class CurrencyMismatch(ValueError):
    """Arithmetic between two different currencies."""


DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


POSITIVE_DECIMAL_PATTERN = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$"
NON_NEGATIVE_DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def decimal_string_pattern(pattern: str) -> Any:
    """`json_schema_extra` of a `Decimal` field published as a string too: the string
    form gets the format (and sign) its bounds allow, so the schema says what is read."""

    def extra(schema: dict[str, Any]) -> None:
        for branch in [schema, *schema.get("anyOf", [])]:
            if branch.get("type") == "string":
                branch["pattern"] = pattern

    return extra


def decimal_number_schema(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a bounded `Decimal` input: pydantic documents it as a number
    within the bounds *or any string*; the string branch said nothing of the bounds nor
    of the format, so schema-valid inputs were refused. A decimal string is still
    accepted (same bounds); the schema promises the number form."""
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        schema["anyOf"] = [b for b in branches if b.get("type") != "string"]
        if len(schema["anyOf"]) == 1:
            schema.update(schema.pop("anyOf")[0])


"""A decimal amount as a string (what the schema promises; the code accepts no float)."""


class Money(BaseModel):
    """An exact amount in one currency: `{"amount": "650.00", "currency": "EUR"}`."""

    model_config = ConfigDict(frozen=True)

    amount: Annotated[
        Decimal,
        PlainSerializer(lambda d: str(d), return_type=str),
        WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN, "examples": ["650.00"]}),
    ]
    currency: Currency

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        if isinstance(v, float):
            raise ValueError('money amounts must be decimal strings, never floats (e.g. "16.25")')
        if isinstance(v, str):
            try:
                d = Decimal(v)
            except InvalidOperation as exc:
                raise ValueError(f"'{v}' is not a decimal amount") from exc
            if not d.is_finite():
                raise ValueError("money amounts must be finite")
        return v

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Self:
        return cls(amount=Decimal(amount), currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(amount=Decimal("0"), currency=currency)

    @property
    def minor_units(self) -> int:
        return _MINOR_UNITS.get(self.currency, 2)

    def rounded(self) -> Money:
        """Round half-up to the currency's minor unit (the cent for EUR)."""
        q = Decimal(1).scaleb(-self.minor_units)
        return Money(amount=self.amount.quantize(q, rounding=ROUND_HALF_UP), currency=self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply money by Decimal or int, never float")
        return Money(amount=self.amount * factor, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def PositiveMoney() -> Any:
    """Validator for money that must be > 0 (prices)."""

    def check(m: Money) -> Money:
        if m.amount <= 0:
            raise ValueError(f"amount must be greater than zero, got {m.amount} {m.currency}")
        return m

    return AfterValidator(check)


def _to_utc(v: datetime) -> datetime:
    if v.tzinfo is None or v.tzinfo.utcoffset(v) is None:
        raise ValueError("instant must carry a UTC offset (e.g. 2026-11-29T17:30:00Z)")
    return v.astimezone(UTC)


UtcInstant = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(
        lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z"), return_type=str
    ),
]
"""A timezone-aware instant, normalised to UTC and written as ISO-8601 with Z."""


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError(f"'{name}' is not an IANA time zone (e.g. Europe/Paris, Asia/Kolkata)")
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - listed but not loadable
        raise ValueError(f"time zone '{name}' cannot be loaded") from exc
    return name


def zone_names() -> list[str]:
    """Every IANA zone name `IanaZone` accepts, sorted (for JSON schemas)."""
    return sorted(_zones())


IanaZone = Annotated[
    str,
    AfterValidator(_check_zone),
    WithJsonSchema(
        {"type": "string", "enum": sorted(_zones()), "description": "IANA time zone name"}
    ),
]
"""An IANA zone name, validated against the tz database shipped with tzdata (the
schema lists the same names, so a client sees what is accepted)."""

_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _check_country(code: str) -> str:
    if not _COUNTRY.match(code):
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code (e.g. FR, BE, IN)")
    return code


CountryCode = Annotated[
    str,
    AfterValidator(_check_country),
    WithJsonSchema(
        {"type": "string", "pattern": _COUNTRY.pattern, "description": "ISO 3166-1 alpha-2"}
    ),
]

_BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{4})?(-([A-Z]{2}|[0-9]{3}))?$")


def _check_language(tag: str) -> str:
    if not _BCP47.match(tag):
        raise ValueError(f"'{tag}' is not a BCP 47 language tag (e.g. fr, en-GB, pt-BR)")
    return tag


LanguageTag = Annotated[
    str,
    AfterValidator(_check_language),
    WithJsonSchema({"type": "string", "pattern": _BCP47.pattern, "description": "BCP 47"}),
]

COUNTRY_PATTERN = _COUNTRY.pattern
LANGUAGE_PATTERN = _BCP47.pattern

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""An opaque id (aggregate ids, user ids): safe in keys, headers and URLs."""


def new_id(prefix: str) -> str:
    """A new opaque id such as `prv_3f2a...` (prefix says what it identifies)."""
    return f"{prefix}_{uuid.uuid4().hex}"


_CLOCK_ORIGIN: tuple[str, datetime, float] | None = None


def utcnow() -> datetime:
    """The platform's clock: every service reads time through this.

    `DELEGO_CLOCK_START` (an ISO-8601 instant) runs a simulated clock that
    reads that instant at the real moment `DELEGO_CLOCK_ANCHOR` (Unix seconds;
    default: first use) and then advances at real speed. The demo and the
    end-to-end story use it to play "a Tuesday at 18:30 in Paris" in every
    process at once, whatever the real time is.
    """
    global _CLOCK_ORIGIN
    start = os.environ.get("DELEGO_CLOCK_START")
    if not start:
        return datetime.now(UTC)
    if _CLOCK_ORIGIN is None or _CLOCK_ORIGIN[0] != start:
        anchor = float(os.environ.get("DELEGO_CLOCK_ANCHOR") or time.time())
        _CLOCK_ORIGIN = (start, _parse_start(start), anchor)
    _, origin, anchor_s = _CLOCK_ORIGIN
    return origin + timedelta(seconds=time.time() - anchor_s)


def _parse_start(value: str) -> datetime:
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("DELEGO_CLOCK_START must carry a UTC offset")
    return at.astimezone(UTC)
