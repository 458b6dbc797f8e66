"""Catalog domain core: providers, offers, taxonomy, search semantics. No I/O.

The edges (HTTP, Mongo, Kafka) call only what is exported here.
"""

from .errors import (
    DomainError,
    FieldIssue,
    IllegalTransition,
    ProviderNotActive,
    ValidationFailed,
    WrongProvider,
)
from .model import (
    OfferChanges,
    OfferDraft,
    ProviderChanges,
    ProviderProfile,
    SkillClaim,
    parse,
)
from .offer import Offer, offer_warnings, sap_remote_flag
from .pricing import REFERENCE_FIELD, amount_key, reference_price, reference_price_key
from .provider import Provider
from .schedule import weekly_hours
from .search import (
    OfferQuery,
    SearchPage,
    SortKey,
    check_query,
    decode_cursor,
    encode_cursor,
    offer_matches,
    offer_words,
    search_offers,
    sort_key,
    text_words,
)
from .taxonomy import Category, SapActivity, Skill, Taxonomy, default_taxonomy, parse_taxonomy
from .text import search_terms

__all__ = [
    "REFERENCE_FIELD",
    "Category",
    "DomainError",
    "FieldIssue",
    "IllegalTransition",
    "Offer",
    "OfferChanges",
    "OfferDraft",
    "OfferQuery",
    "Provider",
    "ProviderChanges",
    "ProviderNotActive",
    "ProviderProfile",
    "SapActivity",
    "SearchPage",
    "Skill",
    "SkillClaim",
    "SortKey",
    "Taxonomy",
    "ValidationFailed",
    "WrongProvider",
    "amount_key",
    "check_query",
    "decode_cursor",
    "default_taxonomy",
    "encode_cursor",
    "offer_matches",
    "offer_warnings",
    "offer_words",
    "parse",
    "parse_taxonomy",
    "reference_price",
    "reference_price_key",
    "sap_remote_flag",
    "search_offers",
    "search_terms",
    "sort_key",
    "text_words",
    "weekly_hours",
]
