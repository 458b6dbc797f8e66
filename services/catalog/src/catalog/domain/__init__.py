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
from .pricing import reference_price, reference_price_key
from .provider import Provider
from .schedule import weekly_hours
from .search import (
    OfferQuery,
    SearchPage,
    check_query,
    decode_cursor,
    encode_cursor,
    offer_matches,
    search_offers,
    sort_key,
)
from .taxonomy import Category, SapActivity, Skill, Taxonomy, default_taxonomy, parse_taxonomy

__all__ = [
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
    "Taxonomy",
    "ValidationFailed",
    "WrongProvider",
    "check_query",
    "decode_cursor",
    "default_taxonomy",
    "encode_cursor",
    "offer_matches",
    "offer_warnings",
    "parse",
    "parse_taxonomy",
    "reference_price",
    "reference_price_key",
    "sap_remote_flag",
    "search_offers",
    "sort_key",
    "weekly_hours",
]
