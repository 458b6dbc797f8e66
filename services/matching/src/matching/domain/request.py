"""The client request aggregate and its lifecycle (pure state machine).

    submitted ─propose─► proposed(n) ─accept─► accepted ─complete─► completed ─rate─► rated
                            │  decline / expire: next candidate (providers tried are
                            │  excluded) as proposed(n+1), or unmatched after
                            ▼  `max_attempts` proposals or when nobody qualifies
                         unmatched
    cancel: from submitted, proposed or accepted → cancelled

Every transition mutates the aggregate, bumps `version` (the edge stores the
document with a conditional update on the previous version) and returns the
events it produced, so state and events are written in one document. An
illegal transition raises `IllegalTransition` (HTTP 409 at the edge).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Self

from delego_shared.events.base import Event
from delego_shared.events.common import AgreedTerms
from delego_shared.events.matching import (
    FilterReason,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    ProposalExpired,
    RequestCancelled,
    RequestSubmitted,
    RequestUnmatched,
    ScoreBreakdown,
    WorkCompleted,
    WorkRated,
)
from delego_shared.types import IanaZone, Identifier, Money, UtcInstant
from pydantic import BaseModel, ConfigDict, Field

from .explain import proposal_explanation
from .matcher import MatchOutcome
from .policy import DEFAULT_POLICY, MatchingPolicy
from .schedule import in_zone
from .spec import RequestDraft, RequestSpec

Finder = Callable[[frozenset[str]], MatchOutcome]
"""Runs matching for this request, excluding the given provider ids.

The edge binds the spec, `now`, the index and the live context, e.g.
`lambda tried: find_matches(index, req.spec, now, context=ctx, exclude_providers=tried)`.
"""


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    UNMATCHED = "unmatched"
    COMPLETED = "completed"
    RATED = "rated"
    CANCELLED = "cancelled"


class AttemptOutcome(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class IllegalTransition(Exception):
    """The request is not in a state that allows this action (HTTP 409)."""

    def __init__(self, request_id: str, status: RequestStatus, action: str, why: str = "") -> None:
        self.request_id = request_id
        self.status = status
        self.action = action
        msg = f"cannot {action} request {request_id} while {status.value}"
        super().__init__(f"{msg}: {why}" if why else msg)


class NotTheProposedProvider(IllegalTransition):
    """Someone other than the provider the request is proposed to tried to answer."""


class ProposalAlreadyExpired(IllegalTransition):
    """Accepting after `expires_at`: the edge should run `expire` instead."""


class ProposalStillOpen(IllegalTransition):
    """Expiring before `expires_at` (a timer fired early or twice)."""


class Proposal(BaseModel):
    """The open (or last) proposal: what MatchProposed said, plus the reservation."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    provider_id: Identifier
    offer_id: Identifier
    terms: AgreedTerms
    estimated_price: Money
    reserved_hours: Decimal
    reservation: dict[str, Decimal]
    """Hours reserved per capacity key (release them on decline/expiry/cancel)."""
    promised_at: UtcInstant
    promised_local: str
    score: ScoreBreakdown
    proposed_at: UtcInstant
    expires_at: UtcInstant
    """The end of the provider's response window, counted in their working time."""
    provider_zone: IanaZone | None = None
    answer_from: UtcInstant | None = None
    """When the provider could first answer (the proposal time when at work)."""
    explanation: str = ""
    explanation_fr: str = ""


class Attempt(BaseModel):
    attempt: int
    provider_id: Identifier
    offer_id: Identifier
    proposed_at: UtcInstant
    expires_at: UtcInstant
    provider_zone: IanaZone | None = None
    outcome: AttemptOutcome = AttemptOutcome.PENDING
    decided_at: UtcInstant | None = None


class ClientRequest(BaseModel):
    """Aggregate root. Serialise with `model_dump(mode="json")`, load with `model_validate`.

    `repr`/`str` omit the private description (see `RequestSpec`).
    """

    request_id: Identifier
    client_id: Identifier
    spec: RequestSpec
    status: RequestStatus = RequestStatus.SUBMITTED
    submitted_at: UtcInstant
    max_attempts: int = Field(ge=1)
    acceptance_window_seconds: int = Field(gt=0)
    attempts: list[Attempt] = Field(default_factory=list)
    proposal: Proposal | None = None
    offers_considered: int = 0
    unmatched_reasons: list[FilterReason] = Field(default_factory=list)
    unmatched_summary: str | None = None
    unmatched_summary_fr: str | None = None
    actual_hours: Decimal | None = None
    actual_minutes: int | None = None
    """The work reported in whole minutes (exact); `actual_hours` is then derived."""
    actual_units: int | None = None
    completed_at: UtcInstant | None = None
    rating: int | None = None
    rated_at: UtcInstant | None = None
    cancelled_at: UtcInstant | None = None
    sealed_details: bool = False
    """The private description is stored sealed beside this state, never in it."""
    details_erased: bool = False
    """The private details were erased (the person's erasure or the retention sweep)."""
    version: int = 0

    # -- creation ----------------------------------------------------------

    @classmethod
    def submit(
        cls,
        request_id: str,
        client_id: str,
        draft: RequestDraft,
        now: datetime,
        policy: MatchingPolicy = DEFAULT_POLICY,
    ) -> tuple[Self, list[Event]]:
        """Create the request (deadline resolved in the client's zone) → RequestSubmitted."""
        spec = draft.resolve(now)
        req = cls(
            request_id=request_id,
            client_id=client_id,
            spec=spec,
            submitted_at=now,
            max_attempts=policy.max_attempts,
            acceptance_window_seconds=int(policy.acceptance_window.total_seconds()),
            version=1,
        )
        return req, [
            RequestSubmitted(
                request_id=request_id,
                client_id=client_id,
                category=spec.category,
                required_skills=spec.required_skills,
                languages=spec.languages,
                effort_hours=spec.effort_hours,
                units=spec.units,
                deadline=spec.deadline,
                client_zone=spec.client_zone,
                budget=spec.budget,
                live_window=spec.live_window,
                delegation_level=spec.delegation_level,
                submitted_at=now,
                not_before=spec.not_before,
            )
        ]

    # -- transitions -------------------------------------------------------

    def propose(self, now: datetime, find: Finder) -> list[Event]:
        """First proposal after submission → MatchProposed, or RequestUnmatched."""
        self._require("propose", RequestStatus.SUBMITTED)
        return self._next(now, find)

    def accept(self, provider_id: str, now: datetime) -> list[Event]:
        """The proposed provider accepts before `expires_at` → MatchAccepted."""
        p = self._open_proposal("accept", provider_id)
        if now >= p.expires_at:
            raise ProposalAlreadyExpired(
                self.request_id, self.status, "accept", f"the proposal expired at {p.expires_at}"
            )
        self._close_attempt(AttemptOutcome.ACCEPTED, now)
        self.status = RequestStatus.ACCEPTED
        return self._bump(
            MatchAccepted(
                request_id=self.request_id,
                client_id=self.client_id,
                attempt=p.attempt,
                provider_id=p.provider_id,
                terms=p.terms,
                estimated_price=p.estimated_price,
                promised_at=p.promised_at,
                promised_local=p.promised_local,
                client_zone=self.spec.client_zone,
                accepted_at=now,
            )
        )

    def decline(self, provider_id: str, now: datetime, find: Finder) -> list[Event]:
        """The proposed provider declines → MatchDeclined + next proposal or unmatched."""
        p = self._open_proposal("decline", provider_id)
        self._close_attempt(AttemptOutcome.DECLINED, now)
        declined = MatchDeclined(
            request_id=self.request_id,
            client_id=self.client_id,
            attempt=p.attempt,
            provider_id=p.provider_id,
            offer_id=p.offer_id,
            declined_at=now,
        )
        return [declined, *self._next(now, find)]

    def expire(self, now: datetime, find: Finder) -> list[Event]:
        """The acceptance window is over → ProposalExpired + next proposal or unmatched."""
        self._require("expire", RequestStatus.PROPOSED)
        p = self._proposal()
        if now < p.expires_at:
            raise ProposalStillOpen(
                self.request_id, self.status, "expire", f"the proposal is open until {p.expires_at}"
            )
        self._close_attempt(AttemptOutcome.EXPIRED, now)
        expired = ProposalExpired(
            request_id=self.request_id,
            client_id=self.client_id,
            attempt=p.attempt,
            provider_id=p.provider_id,
            offer_id=p.offer_id,
            expired_at=now,
        )
        return [expired, *self._next(now, find)]

    def cancel(self, now: datetime) -> list[Event]:
        """The client withdraws before completion → RequestCancelled."""
        self._require(
            "cancel", RequestStatus.SUBMITTED, RequestStatus.PROPOSED, RequestStatus.ACCEPTED
        )
        provider_id = None
        if self.status is not RequestStatus.SUBMITTED and self.proposal is not None:
            provider_id = self.proposal.provider_id
        if self.status is RequestStatus.PROPOSED:
            self._close_attempt(AttemptOutcome.CANCELLED, now)
        self.status = RequestStatus.CANCELLED
        self.cancelled_at = now
        return self._bump(
            RequestCancelled(
                request_id=self.request_id,
                client_id=self.client_id,
                provider_id=provider_id,
                cancelled_at=now,
            )
        )

    def complete(
        self,
        provider_id: str,
        now: datetime,
        *,
        actual_hours: Decimal | None = None,
        units: int | None = None,
        actual_minutes: int | None = None,
    ) -> list[Event]:
        """The assigned provider delivered → WorkCompleted (billing prices from it).

        The time is reported as decimal `actual_hours` or exact `actual_minutes`,
        never both; with minutes, the event also carries the hours (rounded to
        1/10 000 h) for consumers that read only those.
        """
        self._require("complete", RequestStatus.ACCEPTED)
        p = self._proposal()
        if provider_id != p.provider_id:
            raise NotTheProposedProvider(
                self.request_id, self.status, "complete", f"assigned to {p.provider_id}"
            )
        if actual_hours is not None and actual_minutes is not None:
            raise ValueError("report the time in actual_hours or in actual_minutes, not both")
        if actual_hours is None and actual_minutes is None and units is None:
            raise ValueError("completion needs the actual hours or minutes, or the units delivered")
        if any(v is not None and v < 0 for v in (actual_hours, actual_minutes, units)):
            raise ValueError("actual hours, minutes and units cannot be negative")
        if actual_minutes is not None:
            actual_hours = (Decimal(actual_minutes) / 60).quantize(Decimal("0.0001"))
        self.status = RequestStatus.COMPLETED
        self.actual_hours, self.actual_units, self.completed_at = actual_hours, units, now
        self.actual_minutes = actual_minutes
        return self._bump(
            WorkCompleted(
                request_id=self.request_id,
                client_id=self.client_id,
                provider_id=p.provider_id,
                terms=p.terms,
                actual_hours=actual_hours,
                actual_minutes=actual_minutes,
                units=units,
                completed_at=now,
            )
        )

    def rate(self, stars: int, now: datetime) -> list[Event]:
        """The client rates the completed work once, 1-5 → WorkRated."""
        self._require("rate", RequestStatus.COMPLETED)
        if not 1 <= stars <= 5:
            raise ValueError(f"a rating is 1 to 5 stars, got {stars}")
        p = self._proposal()
        self.status = RequestStatus.RATED
        self.rating, self.rated_at = stars, now
        return self._bump(
            WorkRated(
                request_id=self.request_id,
                client_id=self.client_id,
                provider_id=p.provider_id,
                rating=stars,
                rated_at=now,
            )
        )

    def take_description(self) -> str:
        """Move the private description out of the aggregate, to be stored sealed."""
        text = self.spec.description
        self.spec = self.spec.model_copy(update={"description": ""})
        self.sealed_details = self.sealed_details or bool(text)
        return text

    # -- queries -----------------------------------------------------------

    @property
    def tried_providers(self) -> frozenset[str]:
        return frozenset(a.provider_id for a in self.attempts)

    def log_fields(self) -> dict[str, object]:
        """What may go to a log line (no private description, no free text)."""
        return {
            "request_id": self.request_id,
            "client_id": self.client_id,
            "status": self.status.value,
            "category": self.spec.category,
            "attempts": len(self.attempts),
            "version": self.version,
        }

    # -- internals ---------------------------------------------------------

    def _require(self, action: str, *allowed: RequestStatus) -> None:
        if self.status not in allowed:
            raise IllegalTransition(self.request_id, self.status, action)

    def _proposal(self) -> Proposal:
        if self.proposal is None:  # pragma: no cover - guarded by the status
            raise IllegalTransition(self.request_id, self.status, "answer", "no proposal")
        return self.proposal

    def _open_proposal(self, action: str, provider_id: str) -> Proposal:
        self._require(action, RequestStatus.PROPOSED)
        p = self._proposal()
        if provider_id != p.provider_id:
            raise NotTheProposedProvider(
                self.request_id, self.status, action, f"proposed to {p.provider_id}"
            )
        return p

    def _close_attempt(self, outcome: AttemptOutcome, now: datetime) -> None:
        last = self.attempts[-1]
        self.attempts[-1] = last.model_copy(update={"outcome": outcome, "decided_at": now})

    def _bump(self, *events: Event) -> list[Event]:
        self.version += 1
        return list(events)

    def _next(self, now: datetime, find: Finder) -> list[Event]:
        """Propose the best untried candidate, or give up with reasons."""
        n = len(self.attempts)
        if n >= self.max_attempts:
            who = f"{n} provider{'s' if n != 1 else ''}"
            qui = f"{n} prestataire{'s' if n != 1 else ''}"
            reasons = [
                FilterReason(
                    filter="attempts",
                    count=n,
                    message=f"{who} declined or let the proposal expire",
                    message_fr=f"{qui} ont refusé ou laissé expirer la proposition"
                    if n != 1
                    else f"{qui} a refusé ou laissé expirer la proposition",
                )
            ]
            pl = "s" if n != 1 else ""
            return self._unmatched(
                reasons,
                f"no provider accepted after {n} proposal{pl}",
                f"aucun prestataire n'a accepté après {n} proposition{pl}",
            )
        outcome = find(self.tried_providers)
        self.offers_considered = outcome.offers_considered
        best = outcome.best
        if best is None:
            return self._unmatched(list(outcome.reasons), outcome.summary, outcome.summary_fr)
        expires = best.response.answer_by
        promised_local = in_zone(best.finish, self.spec.client_zone).isoformat()
        terms = best.terms()
        zone = best.provider.time_zone
        why, why_fr = proposal_explanation(
            spec=self.spec,
            provider_name=terms.provider_display_name,
            provider_zone=zone,
            response=best.response,
            finish=best.finish,
            score=best.score,
        )
        self.proposal = Proposal(
            attempt=n + 1,
            provider_id=best.provider.provider_id,
            offer_id=best.offer_id,
            terms=terms,
            estimated_price=best.price,
            reserved_hours=best.effort_hours,
            reservation=best.reservation,
            promised_at=best.finish,
            promised_local=promised_local,
            score=best.score,
            proposed_at=now,
            expires_at=expires,
            provider_zone=zone,
            answer_from=best.response.answer_from,
            explanation=why,
            explanation_fr=why_fr,
        )
        self.attempts.append(
            Attempt(
                attempt=n + 1,
                provider_id=best.provider.provider_id,
                offer_id=best.offer_id,
                proposed_at=now,
                expires_at=expires,
                provider_zone=zone,
            )
        )
        self.status = RequestStatus.PROPOSED
        return self._bump(
            MatchProposed(
                request_id=self.request_id,
                client_id=self.client_id,
                attempt=n + 1,
                provider_id=best.provider.provider_id,
                terms=terms,
                estimated_price=best.price,
                reserved_hours=best.effort_hours,
                promised_at=best.finish,
                promised_local=promised_local,
                client_zone=self.spec.client_zone,
                score=best.score,
                expires_at=expires,
            )
        )

    def _unmatched(
        self, reasons: list[FilterReason], summary: str, summary_fr: str = ""
    ) -> list[Event]:
        self.status = RequestStatus.UNMATCHED
        self.unmatched_reasons = reasons
        self.unmatched_summary = summary
        self.unmatched_summary_fr = summary_fr or None
        return self._bump(
            RequestUnmatched(
                request_id=self.request_id,
                client_id=self.client_id,
                offers_considered=self.offers_considered,
                attempts=len(self.attempts),
                reasons=reasons,
                summary=summary,
                summary_fr=summary_fr or None,
            )
        )
