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
)
"""Erasure requests (operator tooling, or notifications for the person) and each
service's receipt: one topic shared by design, so that one key holds a subject's
whole erasure story in order."""

ALL_TOPICS = (PROVIDERS, OFFERS, REQUESTS, INVOICES, DELIVERIES, PRIVACY_SUBJECTS)
