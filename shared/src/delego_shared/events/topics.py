"""Every topic of the platform, in one place (names are part of the public contract)."""

from .base import Topic

PROVIDERS = Topic("catalog", "providers", 1, key_doc="provider id")
OFFERS = Topic("catalog", "offers", 1, key_doc="offer id")
REQUESTS = Topic("matching", "requests", 1, key_doc="request id")
INVOICES = Topic("billing", "invoices", 1, key_doc="client id")
DELIVERIES = Topic("notifications", "deliveries", 1, key_doc="recipient id")

PRIVACY_SUBJECTS = Topic(
    "privacy",
    "subjects",
    1,
    key_doc="subject (person) id",
    writers=("catalog", "matching", "billing", "notifications"),
    retention_ms=-1,
)
"""Erasure requests (operator tooling, or notifications for the person), each
service's receipt and every read of the person's private details (matching's
access audit): one topic shared by design, so that one key holds a subject's
whole privacy story in order. Ids and codes only; kept for good (accountability,
GDPR art. 5(2)): `delego privacy status|audit` read it from the beginning."""

ALL_TOPICS = (PROVIDERS, OFFERS, REQUESTS, INVOICES, DELIVERIES, PRIVACY_SUBJECTS)
