"""Document numbers: sequential per billing entity, document kind and year.

Invoices `DLG-2026-000123`, credit notes `DLG-AV-2026-000007` ("avoir"). The
pure part formats and parses, and decides the next number from the state of a
counter (`plan_number`); the edge keeps one counter document per (entity,
kind, year), read and changed by `_id`. The year is the civil year of the issue
instant in the entity's zone (Europe/Paris), which is also the tax year an
invoice's tax credit belongs to.

A counter holds `last` (the highest number handed out), `last_at` (the issue
instant that went with it) and the reservations not yet known to be stored:
document id -> (number, issue instant, what finishes the document). The
number and the issue instant are decided together in that one conditional
write (`issue_instant`), so number order is time order (French invoicing
rules: continuous and chronological numbering), across replicas and crashes.
Anyone who finds a reservation can finish it: a crash never leaves a hole,
and a number is never handed out twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from .errors import BillingError

ENTITY_ZONE = "Europe/Paris"
_ENTITY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_NUMBER = re.compile(
    r"^(?P<entity>[A-Z][A-Z0-9]{1,9})-(?:(?P<av>AV)-)?(?P<year>\d{4})-(?P<seq>\d{6,})$"
)

DocumentKind = Literal["invoice", "credit_note"]


@dataclass(frozen=True)
class DocumentNumber:
    entity: str
    kind: DocumentKind
    year: int
    seq: int

    def __str__(self) -> str:
        return format_number(self.entity, self.kind, self.year, self.seq)


def format_number(entity: str, kind: DocumentKind, year: int, seq: int) -> str:
    if not _ENTITY.match(entity):
        raise BillingError(f"billing entity '{entity}' must be 2-10 upper-case letters/digits")
    if not 2000 <= year <= 9999:
        raise BillingError(f"year {year} out of range")
    if seq < 1:
        raise BillingError("sequence numbers start at 1")
    infix = "AV-" if kind == "credit_note" else ""
    return f"{entity}-{infix}{year:04d}-{seq:06d}"


def invoice_number(entity: str, year: int, seq: int) -> str:
    return format_number(entity, "invoice", year, seq)


def credit_note_number(entity: str, year: int, seq: int) -> str:
    return format_number(entity, "credit_note", year, seq)


def parse_number(number: str) -> DocumentNumber:
    m = _NUMBER.match(number)
    if m is None:
        raise BillingError(f"'{number}' is not a document number like DLG-2026-000123")
    kind: DocumentKind = "credit_note" if m.group("av") else "invoice"
    return DocumentNumber(m.group("entity"), kind, int(m.group("year")), int(m.group("seq")))


def document_year(issued_at: datetime, zone: str = ENTITY_ZONE) -> int:
    """Numbering and tax year of a document issued at `issued_at`."""
    if issued_at.tzinfo is None:
        raise BillingError("issued_at must be timezone-aware")
    return issued_at.astimezone(ZoneInfo(zone)).year


def counter_id(entity: str, kind: DocumentKind, year: int) -> str:
    """`_id` of the counter document of one numbering sequence."""
    return f"{entity}:{kind}:{year}"


# a reservation may have been made in the previous year's counter by an attempt
# that died just before midnight; for this long into a new year a numbering also
# looks there (repair finishes stale reservations long before, at start-up and hourly)
PREVIOUS_YEAR_LOOKBACK = timedelta(days=7)


def issue_instant(candidate: datetime, last_at: datetime | None) -> datetime:
    """The issue instant of the next number: now, but never before the previous
    number's instant (a replica whose clock lags, or a request that waited)."""
    if last_at is None or candidate >= last_at:
        return candidate
    return last_at


def years_to_look_in(candidate: datetime, zone: str = ENTITY_ZONE) -> list[int]:
    """Counter years where a reservation of a document issued around `candidate` may
    be: its own year, and the previous one in the first days of a year."""
    year = document_year(candidate, zone)
    early = document_year(candidate - PREVIOUS_YEAR_LOOKBACK, zone) != year
    return [year - 1, year] if early else [year]


@dataclass(frozen=True)
class NumberPlan:
    """What one reservation writes: the number, the new `last`, reservations to forget,
    and `taken`, the unused reservation whose number (and instant) is reused."""

    seq: int
    last: int
    forget: tuple[str, ...]
    taken: str | None = None


def plan_number(
    last: int,
    pending: Iterable[tuple[str, int]],
    *,
    used: Set[str],
    unused: Set[str],
) -> NumberPlan:
    """The number for a new document, from a counter's `last` and its reservations
    (document id, number).

    `used`: reservations whose number a stored document carries (finished: forget
    them). `unused`: reservations whose document was stored under another number, so
    their number is free; the smallest is given to the new document, so no hole stays.
    Any other reservation is in flight and kept as it is.
    """
    reservations = dict(pending)
    forget = sorted(d for d in reservations if d in used)
    free = sorted((seq, d) for d, seq in reservations.items() if d in unused and d not in used)
    if free:
        seq, taken = free[0]
        return NumberPlan(seq=seq, last=last, forget=tuple(sorted([*forget, taken])), taken=taken)
    return NumberPlan(seq=last + 1, last=last + 1, forget=tuple(forget))
