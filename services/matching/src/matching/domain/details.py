"""Who may read a request's private details, and how long they are kept (pure rules).

The private description is sealed at rest (see `matching.sealing`); these rules
decide, from the request alone, whether a caller may have it opened:

- its client, always;
- a proposed provider: never before accepting (they see a redacted summary);
  after acceptance only the provider the request is assigned to;
- an operator: only with a stated reason (a code from `OperatorReason`), and
  every such read is recorded;
- anybody else: the request is not theirs to see (404, as the rest of the API).

Retention (GDPR art. 5(1)(e)): once the request has ended (completed, cancelled
or unmatched) its details are erased `retention` later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from .request import ClientRequest, RequestStatus

READABLE_BY_ASSIGNED = frozenset(
    {RequestStatus.ACCEPTED, RequestStatus.COMPLETED, RequestStatus.RATED}
)
ENDED = frozenset(
    {RequestStatus.COMPLETED, RequestStatus.RATED, RequestStatus.CANCELLED, RequestStatus.UNMATCHED}
)
DEFAULT_RETENTION = timedelta(days=90)


class ReaderRole(StrEnum):
    CLIENT = "client"
    PROVIDER = "provider"
    OPERATOR = "operator"


class OperatorReason(StrEnum):
    """Why an operator opens someone's private details (a code, never free text)."""

    SUPPORT_REQUEST = "support_request"
    DISPUTE = "dispute"
    LEGAL_OBLIGATION = "legal_obligation"
    SECURITY_INCIDENT = "security_incident"
    SUBJECT_ACCESS_REQUEST = "subject_access_request"


class Access(StrEnum):
    """The decision on one read."""

    ALLOWED = "allowed"
    NOT_YET = "not_yet"
    """A proposed provider before acceptance, or one no longer assigned (HTTP 403)."""
    REASON_REQUIRED = "reason_required"
    """An operator who gave no reason (HTTP 403)."""
    NOT_VISIBLE = "not_visible"
    """Not the caller's request at all (HTTP 404: its existence is not revealed)."""


@dataclass(frozen=True)
class Reader:
    """Who asks to read: the token's subject and role, and an operator's reason."""

    reader_id: str
    role: ReaderRole
    reason: OperatorReason | None = None
    reference: str | None = None
    channel: Literal["details", "export"] = "details"


def details_access(req: ClientRequest, reader: Reader) -> Access:
    """May `reader` open `req`'s private details?"""
    if reader.role is ReaderRole.CLIENT:
        return Access.ALLOWED if req.client_id == reader.reader_id else Access.NOT_VISIBLE
    if reader.role is ReaderRole.OPERATOR:
        return Access.ALLOWED if reader.reason is not None else Access.REASON_REQUIRED
    if reader.reader_id not in req.tried_providers:
        return Access.NOT_VISIBLE
    assigned = req.proposal is not None and req.proposal.provider_id == reader.reader_id
    return Access.ALLOWED if assigned and req.status in READABLE_BY_ASSIGNED else Access.NOT_YET


def ended_at(req: ClientRequest) -> datetime | None:
    """When the request ended (its details are then no longer needed), None while live."""
    if req.status not in ENDED:
        return None
    if req.status in (RequestStatus.COMPLETED, RequestStatus.RATED):
        return req.completed_at
    if req.status is RequestStatus.CANCELLED:
        return req.cancelled_at
    decided = [a.decided_at for a in req.attempts if a.decided_at is not None]
    return max(decided, default=req.submitted_at)  # unmatched: after its last answer


def erase_details_after(req: ClientRequest, retention: timedelta) -> datetime | None:
    """The instant from which the retention sweep erases the details, None while live."""
    end = ended_at(req)
    return end + retention if end is not None else None


@dataclass(frozen=True)
class DetailsSummary:
    """What a caller who may not open the details learns about them (redacted)."""

    present: bool
    readable_by_you: bool
    """`GET /requests/{id}/details` would answer this caller (operators: with a reason)."""
    erased: bool


def summary(req: ClientRequest, reader: Reader) -> DetailsSummary:
    present = req.sealed_details or bool(req.spec.description)
    access = details_access(req, reader)
    return DetailsSummary(
        present=present,
        readable_by_you=present and access in (Access.ALLOWED, Access.REASON_REQUIRED),
        erased=req.details_erased,
    )
