"""Document numbers: sequential per billing entity, document kind and year.

Invoices `DLG-2026-000123`, credit notes `DLG-AV-2026-000007` ("avoir"). The
pure part formats and parses; the edge allocates the next sequence number
(gapless) from a counter document per (entity, kind, year). The year is the
civil year of the issue instant in the entity's zone (Europe/Paris), which is
also the tax year an invoice's tax credit belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
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
