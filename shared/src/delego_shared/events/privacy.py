"""Events of `privacy.subjects.v1` (key: subject id): a person's erasure, the
receipts of the services that carried it out, and every read of the person's
private details (access audit). Ids, counts and codes only: a privacy event must
not itself become a record of the person.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..types import Identifier, UtcInstant
from .base import Event, event
from .topics import PRIVACY_SUBJECTS

ERASING_SERVICES = ("catalog", "matching", "billing", "notifications")
"""The services that each confirm an erasure with an `ErasureCompleted`."""


@event("delego.privacy.ErasureRequested.v1", PRIVACY_SUBJECTS)
class ErasureRequested(Event):
    """Erase (or pseudonymise) what every service holds about `subject_id` (GDPR art. 17)."""

    erasure_id: Identifier
    subject_id: Identifier
    requested_by: Literal["operator", "subject"]
    requested_at: UtcInstant

    def key(self) -> str:
        return self.subject_id


@event("delego.privacy.ErasureCompleted.v1", PRIVACY_SUBJECTS)
class ErasureCompleted(Event):
    """One service's receipt: what it erased (documents per kind) and what it keeps.

    Published after the erasure's writes are stored, before the request's offset
    is committed: a crash in between erases again (idempotently) and repeats the
    receipt, whose counts are then those of the repeat (often zero).
    """

    erasure_id: Identifier
    subject_id: Identifier
    service: Literal["catalog", "matching", "billing", "notifications"]
    erased: dict[str, int] = Field(
        default_factory=dict, examples=[{"recipients": 1, "inbox_items": 3}]
    )
    kept: list[str] = Field(
        default_factory=list,
        description="kinds of data kept under a legal obligation (see the service's README)",
        examples=[["invoices", "credit_notes", "ledger_entries"]],
    )
    completed_at: UtcInstant

    def key(self) -> str:
        return self.subject_id


ACCESS_REASONS = (
    "support_request",
    "dispute",
    "legal_obligation",
    "security_incident",
    "subject_access_request",
)
"""Why an operator read a person's private details: a code, never free text (a
free-text reason could itself carry personal data onto the topic)."""

AccessReason = Literal[
    "support_request",
    "dispute",
    "legal_obligation",
    "security_incident",
    "subject_access_request",
]


@event("delego.privacy.PrivateDetailsRead.v1", PRIVACY_SUBJECTS)
class PrivateDetailsRead(Event):
    """Someone read the private details of one of the subject's requests (access audit).

    Keyed by the subject whose details were read, so that the subject's key holds
    their erasures and every read of their private text (`delego privacy audit`).
    Ids and codes only: never the text itself.
    """

    read_id: Identifier
    subject_id: Identifier = Field(description="whose private details were read (the client)")
    request_id: Identifier
    service: Literal["matching"] = "matching"
    reader_id: Identifier
    reader_role: Literal["client", "provider", "operator"]
    channel: Literal["details", "export"] = Field(
        default="details",
        description="`details`: GET /requests/{id}/details; `export`: GET /v1/me/data",
    )
    reason: AccessReason | None = Field(
        default=None, description="operators only: why they read it (a code)"
    )
    reference: Identifier | None = Field(
        default=None, description="operators only: the case or ticket id behind the reason"
    )
    read_at: UtcInstant

    def key(self) -> str:
        return self.subject_id
