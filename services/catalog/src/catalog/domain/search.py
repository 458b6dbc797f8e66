"""Offer search semantics, as a pure function: the specification the Mongo store follows.

An offer is returned when all of these hold (absent filters match everything):

- the offer is `published` and its provider is known and `active`;
- `category`: equals the offer's category;
- `skill` (+ `min_level`, default 1): the offer lists that skill at a level
  >= min_level (the level the offer requires/provides);
- `language`: one of the offer's languages matches (`text.language_matches`:
  `fr` matches `fr-BE`; `fr-BE` matches `fr-BE` and plain `fr`);
- `max_price`: the offer's reference price (`pricing.reference_price`) is in
  the same currency and <= the amount. Offers in other currencies are
  excluded, never converted;
- `pricing_model`: equals `pricing.model`;
- `delivery_mode`: equals the offer's delivery mode (no implication: a `mixed`
  offer is found by `mixed` only);
- `time_zones`: the provider's IANA time zone is one of them;
- `text`: every word of it starts a word of the offer's title or description
  (`text.search_terms`: lower case, accents removed; prefix match, so
  `tradu jurid` finds "Traduction juridique", in French as in English).

Order is `(reference amount, offer_id)` ascending: total and stable, so a
cursor (the key of the last item returned) pages without gaps or repeats while
offers are added. A read model indexes the reference amount with
`pricing.reference_price_key` (sortable string) and the currency, and
denormalises the provider's status and time zone onto the offer
(`catalog.search_index`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from delego_shared.events.catalog import (
    OfferSnapshot,
    OfferStatus,
    ProviderSnapshot,
    ProviderStatus,
)
from delego_shared.events.common import DeliveryMode, PricingModel
from delego_shared.types import Money
from pydantic import BaseModel, ConfigDict

from .errors import Issues
from .model import unknown_category_message, unknown_skill_message
from .pricing import MAX_AMOUNT, reference_price
from .taxonomy import MAX_LEVEL, MIN_LEVEL, Taxonomy, default_taxonomy
from .text import check_languages, check_zone, language_matches, search_terms, text_matches

MAX_LIMIT = 100
MAX_TEXT_LENGTH = 200
MAX_TEXT_WORDS = 8
RULES_SEARCH = (
    "only meaningful together with skill",
    "is required with max_price",
    "only meaningful with max_price",
    "is not a cursor returned by a previous page",
    f"must have at most {MAX_TEXT_WORDS} words",
    "must contain at least one letter or digit",
)
"""Search rules a JSON schema cannot say (across parameters, opaque cursors, words)."""

SortKey = tuple[Decimal, str]


class OfferQuery(BaseModel):
    """Search filters; every field optional. `cursor` comes from a previous page."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = None
    skill: str | None = None
    min_level: int | None = None
    language: str | None = None
    max_price: Money | None = None
    pricing_model: PricingModel | None = None
    delivery_mode: DeliveryMode | None = None
    time_zones: list[str] | None = None
    text: str | None = None
    cursor: str | None = None
    limit: int = 20


class SearchPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[OfferSnapshot]
    next_cursor: str | None = None


def check_query(query: OfferQuery, taxonomy: Taxonomy | None = None) -> SortKey | None:
    """Validate the filters (unknown codes are an error, not an empty result).

    Returns the decoded cursor key, if any.
    """
    tax = taxonomy or default_taxonomy()
    issues = Issues()
    if query.category is not None and tax.category(query.category) is None:
        issues.add("category", unknown_category_message(query.category, tax))
    if query.skill is not None and tax.skill(query.skill) is None:
        issues.add("skill", unknown_skill_message(query.skill, tax))
    if query.min_level is not None:
        if query.skill is None:
            issues.add("min_level", "only meaningful together with skill")
        elif not MIN_LEVEL <= query.min_level <= MAX_LEVEL:
            issues.add("min_level", f"level {query.min_level} is outside {MIN_LEVEL}-{MAX_LEVEL}")
    if query.language is not None:
        sub = Issues()
        check_languages([query.language], "language", sub)
        issues.extend(i.model_copy(update={"field": "language"}) for i in sub)
    if query.max_price is not None and query.max_price.amount <= 0:
        issues.add("max_price", f"must be greater than zero, got {query.max_price}")
    for i, zone in enumerate(query.time_zones or []):
        check_zone(zone, f"time_zones.{i}", issues)
    if query.text is not None:
        words = search_terms(query.text)
        if len(query.text) > MAX_TEXT_LENGTH:
            issues.add("text", f"must be at most {MAX_TEXT_LENGTH} characters")
        elif not words:
            issues.add("text", "must contain at least one letter or digit")
        elif len(words) > MAX_TEXT_WORDS:
            issues.add("text", f"must have at most {MAX_TEXT_WORDS} words, got {len(words)}")
    if not 1 <= query.limit <= MAX_LIMIT:
        issues.add("limit", f"must be between 1 and {MAX_LIMIT}, got {query.limit}")
    key: SortKey | None = None
    if query.cursor is not None:
        try:
            key = decode_cursor(query.cursor)
        except ValueError:
            issues.add("cursor", "is not a cursor returned by a previous page")
    issues.raise_if_any()
    return key


def sort_key(offer: OfferSnapshot) -> SortKey:
    return reference_price(offer.pricing).amount, offer.offer_id


def encode_cursor(key: SortKey) -> str:
    raw = json.dumps([str(key[0]), key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """Inverse of `encode_cursor`; ValueError on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        amount, offer_id = json.loads(raw)
        if not isinstance(amount, str) or not isinstance(offer_id, str):
            raise ValueError("bad cursor")
        value = Decimal(amount)
    except (binascii.Error, ValueError, TypeError, InvalidOperation) as exc:
        raise ValueError("bad cursor") from exc
    if not value.is_finite() or not 0 <= value < MAX_AMOUNT:  # no offer has such a price
        raise ValueError("bad cursor")
    return value, offer_id


def offer_matches(
    offer: OfferSnapshot, provider: ProviderSnapshot | None, query: OfferQuery
) -> bool:
    """The filter predicate (see the module docstring); the query is assumed valid."""
    if offer.status is not OfferStatus.PUBLISHED:
        return False
    if provider is None or provider.provider_id != offer.provider_id:
        return False
    if provider.status is not ProviderStatus.ACTIVE:
        return False
    if query.category is not None and offer.category != query.category:
        return False
    if query.skill is not None:
        wanted = query.min_level or MIN_LEVEL
        if not any(s.code == query.skill and s.level >= wanted for s in offer.skills):
            return False
    if query.language is not None and not any(
        language_matches(query.language, tag) for tag in offer.languages
    ):
        return False
    if query.max_price is not None:
        ref = reference_price(offer.pricing)
        if ref.currency != query.max_price.currency or ref.amount > query.max_price.amount:
            return False
    if query.pricing_model is not None and offer.pricing.model != query.pricing_model:
        return False
    if query.delivery_mode is not None and offer.delivery_mode is not query.delivery_mode:
        return False
    if query.time_zones is not None and provider.time_zone not in query.time_zones:
        return False
    return query.text is None or text_matches(search_terms(query.text), offer_words(offer))


def offer_words(offer: OfferSnapshot) -> list[str]:
    """The words text search looks at: title and description."""
    return text_words(offer.title, offer.description)


def text_words(title: str, description: str) -> list[str]:
    return search_terms(f"{title}\n{description}")


def search_offers(
    offers: Iterable[OfferSnapshot],
    providers: Mapping[str, ProviderSnapshot],
    query: OfferQuery,
    taxonomy: Taxonomy | None = None,
) -> SearchPage:
    """One page of matching offers in `(reference amount, offer_id)` order."""
    after = check_query(query, taxonomy)
    found = sorted(
        (o for o in offers if offer_matches(o, providers.get(o.provider_id), query)),
        key=sort_key,
    )
    if after is not None:
        found = [o for o in found if sort_key(o) > after]
    page = found[: query.limit]
    more = len(found) > query.limit
    return SearchPage(items=page, next_cursor=encode_cursor(sort_key(page[-1])) if more else None)
