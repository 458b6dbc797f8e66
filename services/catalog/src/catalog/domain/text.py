"""Field-level checks shared by providers, offers and search queries.

Formats (IANA zone, ISO 4217, BCP 47, ISO 3166) are the shared contract types;
these helpers run them without raising so that every problem is collected.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

from delego_shared.types import CountryCode, Currency, IanaZone, LanguageTag
from pydantic import TypeAdapter, ValidationError

from .errors import Issues

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"\+?\d[\d .\-()/]{7,}\d")
_MIN_PHONE_DIGITS = 9
_WORD = re.compile(r"[^\W_]+")  # letters and digits
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def contact_data_problem(text: str) -> str | None:
    """Text that goes on a topic must not carry an e-mail address or phone number.

    Display names, titles and descriptions are published in events; contact
    data must never be (DESIGN: privacy), and clients reach providers through
    the platform.
    """
    if _EMAIL.search(text):
        return "must not contain an e-mail address (contact data never leaves the platform)"
    for m in _PHONE.finditer(text):
        if sum(ch.isdigit() for ch in m.group()) >= _MIN_PHONE_DIGITS:
            return "must not contain a phone number (contact data never leaves the platform)"
    return None


@cache
def _adapter(kind: str) -> TypeAdapter[Any]:
    types: dict[str, Any] = {
        "zone": IanaZone,
        "currency": Currency,
        "language": LanguageTag,
        "country": CountryCode,
    }
    return TypeAdapter(types[kind])


def _format_problem(kind: str, value: str) -> str | None:
    try:
        _adapter(kind).validate_python(value)
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return None


def check_zone(value: str, field: str, issues: Issues) -> bool:
    problem = _format_problem("zone", value)
    if problem:
        issues.add(field, problem)
    return problem is None


def check_currency(value: str, field: str, issues: Issues) -> bool:
    problem = _format_problem("currency", value)
    if problem:
        issues.add(field, problem)
    return problem is None


def check_country(value: str, field: str, issues: Issues) -> bool:
    problem = _format_problem("country", value)
    if problem:
        issues.add(field, problem)
    return problem is None


def check_text(
    value: str, field: str, issues: Issues, *, max_length: int, required: bool = True
) -> None:
    """Required/non-blank, bounded length, no contact data."""
    if required and not value.strip():
        issues.add(field, "must not be blank")
        return
    if len(value) > max_length:
        issues.add(field, f"must be at most {max_length} characters, got {len(value)}")
    problem = contact_data_problem(value)
    if problem:
        issues.add(field, problem)


def check_languages(values: list[str], field: str, issues: Issues) -> None:
    """At least one BCP 47 tag, no duplicates."""
    if not values:
        issues.add(field, "at least one language is required (BCP 47, e.g. fr, en-GB)")
        return
    seen: set[str] = set()
    for i, tag in enumerate(values):
        problem = _format_problem("language", tag)
        if problem:
            issues.add(f"{field}.{i}", problem)
        elif tag.lower() in seen:
            issues.add(f"{field}.{i}", f"'{tag}' is listed twice")
        seen.add(tag.lower())


def primary_language(tag: str) -> str:
    """`fr-BE` -> `fr`."""
    return tag.split("-", 1)[0].lower()


def language_matches(wanted: str, offered: str) -> bool:
    """`fr` matches `fr` and `fr-BE`; `fr-BE` matches `fr-BE` and plain `fr`, not `fr-CA`.

    A client who asks for a regional variant accepts a provider who declared the
    language without region; a client who asks for the language accepts any region.
    """
    w, o = wanted.lower(), offered.lower()
    if w == o:
        return True
    if "-" not in w:
        return primary_language(o) == w
    return "-" not in o and primary_language(w) == o


def search_terms(text: str) -> list[str]:
    """Words of a text as search compares them: lower case, accents removed.

    A word is a run of letters and digits; `Traduction d'été` gives
    `["traduction", "d", "ete"]`. French and English are both served by
    folding accents (é → e, ç → c) and by matching query words as prefixes
    (`tradu` finds `traduction`, `translat` finds `translation`, `translator`)
    instead of stemming, which would need one stemmer per language.
    """
    folded = _NON_ASCII.sub(_drop_mark, unicodedata.normalize("NFKD", text)).lower()
    return _WORD.findall(folded)


def _drop_mark(m: re.Match[str]) -> str:
    return "" if unicodedata.combining(m.group()) else m.group()


def text_matches(wanted: list[str], words: list[str]) -> bool:
    """Every wanted word starts some word of the text (prefix match, AND)."""
    return all(any(w.startswith(t) for w in words) for t in wanted)
