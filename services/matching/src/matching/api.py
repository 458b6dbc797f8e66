"""HTTP API of matching: clients submit and follow requests, providers answer proposals.

Roles: a client sees and acts on its own requests; a provider sees the requests
proposed to it (and acts on those it holds); an operator reads everything. A
request that is not the caller's answers 404 (its existence is not revealed);
a role that may not do something answers 403; an action the request's state
does not allow answers 409. The private description is shown only to the
client and to the provider who accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from delego_shared.events.common import AgreedTerms, SkillLevel
from delego_shared.events.matching import (
    DelegationLevel,
    FilterReason,
    LiveWindow,
    ScoreBreakdown,
)
from delego_shared.http import (
    Caller,
    Conflict,
    Forbidden,
    Idempotent,
    NotFound,
    Principal,
    ProblemError,
    Role,
    Unprocessable,
    problem_responses,
    require_role,
)
from delego_shared.http.openapi import documented_rules
from delego_shared.types import Identifier, Money, decimal_number_schema, utcnow
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .details import DetailsErased, DetailsForbidden, DetailsNotVisible
from .details import PrivateDetails as PrivateDetailsUseCases
from .domain import (
    ClientRequest,
    IllegalTransition,
    ProposalAlreadyExpired,
    RequestDraft,
    RequestStatus,
)
from .domain.capacity import weeks_between
from .domain.details import OperatorReason, Reader, ReaderRole, summary
from .domain.request import Attempt, AttemptOutcome
from .domain.schedule import in_zone
from .domain.spec import DRAFT_RULES
from .handlers import RequestHandlers, RequestNotFound, TooMuchContention
from .store import MatchingStore

ClientCaller = Annotated[Principal, Depends(require_role(Role.CLIENT))]
ProviderCaller = Annotated[Principal, Depends(require_role(Role.PROVIDER))]
OperatorCaller = Annotated[Principal, Depends(require_role(Role.OPERATOR))]

# 401 (token), 403 (role), 404 (path id) and 422 (input) are declared from each
# route's signature (delego_shared.http.openapi); these are the others it answers.
STATE_CONFLICT = problem_responses(409)
OWN_ONLY = problem_responses(403)


# -- views ------------------------------------------------------------------


class PrivateDetailsSummary(BaseModel):
    present: bool = Field(description="the client wrote private details")
    readable_by_you: bool = Field(
        description="GET /requests/{id}/details answers you (operators: with a reason)"
    )
    erased: bool = Field(description="erased (the person's erasure or the retention period)")


class ProposalView(BaseModel):
    attempt: int
    provider_id: str
    offer_id: str
    terms: AgreedTerms
    estimated_price: Money
    reserved_hours: Decimal
    promised_at: datetime
    promised_local: str = Field(description="promised instant in the client's zone")
    score: ScoreBreakdown
    proposed_at: datetime
    expires_at: datetime = Field(
        description="answer before this: the response window, in the provider's working time"
    )
    provider_zone: str | None = None
    answer_from: datetime | None = Field(
        default=None, description="when the provider can first answer (in their working time)"
    )
    explanation: str = Field(default="", description="why this provider, in English")
    explanation_fr: str = Field(default="", description="the same in French")


class AttemptView(BaseModel):
    attempt: int
    provider_id: str
    offer_id: str
    proposed_at: datetime
    expires_at: datetime
    outcome: AttemptOutcome
    decided_at: datetime | None
    provider_zone: str | None = None
    proposed_local: str | None = Field(
        default=None, description="when the provider was asked, in their zone"
    )
    expires_local: str | None = Field(
        default=None, description="by when they must answer, in their zone"
    )

    @classmethod
    def of(cls, a: Attempt) -> AttemptView:
        z = a.provider_zone
        return cls(
            **a.model_dump(),
            proposed_local=in_zone(a.proposed_at, z).isoformat() if z else None,
            expires_local=in_zone(a.expires_at, z).isoformat() if z else None,
        )


class RequestView(BaseModel):
    request_id: str
    client_id: str
    status: RequestStatus
    category: str
    required_skills: list[SkillLevel]
    languages: list[str]
    effort_hours: Decimal | None
    units: int | None
    deadline: datetime
    deadline_local: str
    not_before: datetime | None = None
    not_before_local: str | None = Field(default=None, description="in the client's zone")
    client_zone: str
    budget: Money | None
    live_window: LiveWindow | None
    delegation_level: DelegationLevel
    submitted_at: datetime
    promised_at: datetime | None = Field(description="when the work is promised (UTC)")
    promised_local: str | None = Field(description="the same in the client's zone")
    proposal: ProposalView | None
    attempts: list[AttemptView]
    offers_considered: int
    unmatched_reasons: list[FilterReason]
    unmatched_summary: str | None
    unmatched_summary_fr: str | None = None
    actual_hours: Decimal | None
    actual_minutes: int | None = None
    actual_units: int | None
    completed_at: datetime | None
    rating: int | None
    rated_at: datetime | None
    cancelled_at: datetime | None
    version: int
    private_details: PrivateDetailsSummary = Field(
        description="a redacted summary: the text is at GET /requests/{id}/details"
    )
    description: str | None = Field(
        default=None,
        description="always null: the private text is read at GET /requests/{id}/details "
        "(each read recorded); kept for clients of the earlier API",
    )


class PrivateDetails(BaseModel):
    request_id: str
    description: str


RULE_OPERATORS_ONLY = "reason and reference are for operators"
RULE_HOURS_OR_MINUTES = "give the time in actual_hours or in actual_minutes, not both"
RULE_SOMETHING_DONE = "give the actual hours or minutes, or the units delivered"


class CompletionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actual_hours: Decimal | None = Field(
        default=None, ge=0, le=1000, json_schema_extra=decimal_number_schema
    )
    actual_minutes: int | None = Field(
        default=None, ge=0, le=60_000, description="exact alternative to actual_hours"
    )
    units: int | None = Field(default=None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _one(self) -> CompletionBody:
        if self.actual_hours is not None and self.actual_minutes is not None:
            raise ValueError(RULE_HOURS_OR_MINUTES)
        if self.actual_hours is None and self.actual_minutes is None and self.units is None:
            raise ValueError(RULE_SOMETHING_DONE)
        return self


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stars: int = Field(ge=1, le=5)


class CapacityWeek(BaseModel):
    week: str
    reserved_hours: Decimal


ACCEPTED_OR_LATER = frozenset(
    {RequestStatus.ACCEPTED, RequestStatus.COMPLETED, RequestStatus.RATED}
)


def reader_of(who: Principal, reason: OperatorReason | None = None) -> Reader:
    return Reader(who.subject, ReaderRole(who.role.value), reason=reason)


def may_see(req: ClientRequest, who: Principal) -> bool:
    if who.role is Role.OPERATOR:
        return True
    if who.role is Role.CLIENT:
        return req.client_id == who.subject
    return who.subject in req.tried_providers


def view(req: ClientRequest, who: Principal) -> RequestView:
    s, p = req.spec, req.proposal
    attempts = req.attempts
    if who.role is Role.PROVIDER:  # a provider does not learn who else was asked
        attempts = [a for a in attempts if a.provider_id == who.subject]
        if p is not None and p.provider_id != who.subject:
            p = None
    promised = p is not None and req.status in (RequestStatus.PROPOSED, *ACCEPTED_OR_LATER)
    return RequestView(
        request_id=req.request_id,
        client_id=req.client_id,
        status=req.status,
        category=s.category,
        required_skills=s.required_skills,
        languages=list(s.languages),
        effort_hours=s.effort_hours,
        units=s.units,
        deadline=s.deadline,
        deadline_local=in_zone(s.deadline, s.client_zone).isoformat(),
        not_before=s.not_before,
        not_before_local=in_zone(s.not_before, s.client_zone).isoformat() if s.not_before else None,
        client_zone=s.client_zone,
        budget=s.budget,
        live_window=s.live_window,
        delegation_level=s.delegation_level,
        submitted_at=req.submitted_at,
        promised_at=p.promised_at if promised and p else None,
        promised_local=p.promised_local if promised and p else None,
        proposal=(
            ProposalView(
                attempt=p.attempt,
                provider_id=p.provider_id,
                offer_id=p.offer_id,
                terms=p.terms,
                estimated_price=p.estimated_price,
                reserved_hours=p.reserved_hours,
                promised_at=p.promised_at,
                promised_local=p.promised_local,
                score=p.score,
                proposed_at=p.proposed_at,
                expires_at=p.expires_at,
                provider_zone=p.provider_zone,
                answer_from=p.answer_from,
                explanation=p.explanation,
                explanation_fr=p.explanation_fr,
            )
            if p is not None
            else None
        ),
        attempts=[AttemptView.of(a) for a in attempts],
        offers_considered=req.offers_considered if who.role is not Role.PROVIDER else 0,
        unmatched_reasons=req.unmatched_reasons,
        unmatched_summary=req.unmatched_summary,
        unmatched_summary_fr=req.unmatched_summary_fr,
        actual_hours=req.actual_hours,
        actual_minutes=req.actual_minutes,
        actual_units=req.actual_units,
        completed_at=req.completed_at,
        rating=req.rating,
        rated_at=req.rated_at,
        cancelled_at=req.cancelled_at,
        version=req.version,
        private_details=PrivateDetailsSummary(**asdict(summary(req, reader_of(who)))),
    )


class Gone(ProblemError):
    status, type, title = 410, "gone", "Gone"


@contextmanager
def domain_errors() -> Iterator[None]:
    """Domain outcomes → problem responses (never a 500 for a bad request)."""
    try:
        yield
    except (RequestNotFound, DetailsNotVisible):
        raise NotFound("no such request") from None
    except DetailsForbidden as exc:
        raise Forbidden(str(exc)) from None
    except DetailsErased:
        raise Gone("the private details were erased") from None
    except IllegalTransition as exc:
        raise Conflict(str(exc)) from None
    except TooMuchContention:
        raise Conflict("the request is being changed concurrently; try again") from None
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        raise Unprocessable("invalid request", errors=errors) from None
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None


def api_router(
    handlers: RequestHandlers, store: MatchingStore, details: PrivateDetailsUseCases
) -> APIRouter:
    router = APIRouter(tags=["matching"])

    async def load_visible(request_id: str, who: Principal) -> ClientRequest:
        stored = await store.get_request(request_id)
        if stored is None or not may_see(stored.request, who):
            raise NotFound("no such request")
        return stored.request

    @router.post(
        "/requests",
        status_code=201,
        responses=STATE_CONFLICT,
        summary="Submit a request (client); matching runs at once",
        openapi_extra=documented_rules(*DRAFT_RULES),
    )
    async def submit(body: RequestDraft, who: ClientCaller, idem: Idempotent) -> RequestView:
        request_id = idem.derived_id("req")  # a retry after a crash finds it by `_id`

        async def command() -> RequestView:
            with domain_errors():
                return view(await handlers.submit(who.subject, body, request_id), who)

        async def recover() -> RequestView | None:
            stored = await store.get_request(request_id) if request_id else None
            return view(stored.request, who) if stored else None

        return await idem.run(RequestView, command, recover=recover)

    @router.get(
        "/requests",
        summary="Own requests (client), assigned ones (provider), all (operator)",
        responses=OWN_ONLY,
    )
    async def list_requests(
        who: Caller,
        status: Annotated[list[RequestStatus] | None, Query()] = None,
        client_id: str | None = None,
        provider_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> list[RequestView]:
        statuses = [s.value for s in status] if status else None
        if who.role is Role.CLIENT:
            if client_id not in (None, who.subject):
                raise Forbidden("a client lists its own requests only")
            client_id, provider_id = who.subject, provider_id
        elif who.role is Role.PROVIDER:
            if provider_id not in (None, who.subject):
                raise Forbidden("a provider lists its own assignments only")
            provider_id = who.subject
        found = await store.list_requests(
            client_id=client_id,
            provider_id=provider_id,
            status=statuses,
            limit=limit,
            skip=offset,
        )
        return [view(r, who) for r in found]

    @router.get(
        "/requests/{request_id}", summary="One request (its client, its providers, operators)"
    )
    async def get_request(request_id: str, who: Caller) -> RequestView:
        return view(await load_visible(request_id, who), who)

    @router.get(
        "/requests/{request_id}/details",
        summary="The private details (client; accepted provider; operator with a reason)",
        responses={**OWN_ONLY, **problem_responses(410)},
        openapi_extra=documented_rules(RULE_OPERATORS_ONLY),
    )
    async def private_details(
        request_id: str,
        who: Caller,
        reason: Annotated[
            OperatorReason | None,
            Query(description="operators: why they read it (recorded in the audit)"),
        ] = None,
        reference: Annotated[
            Identifier | None,
            Query(description="operators: the case or ticket behind the reason"),
        ] = None,
    ) -> PrivateDetails:
        if who.role is not Role.OPERATOR and (reason is not None or reference is not None):
            raise Unprocessable(RULE_OPERATORS_ONLY)
        reader = reader_of(who, reason)
        if reference is not None:
            reader = replace(reader, reference=reference)
        with domain_errors():
            text = await details.read(request_id, reader)
        return PrivateDetails(request_id=request_id, description=text)

    @router.get("/proposals", summary="Open proposals waiting for this provider's answer")
    async def proposals(who: ProviderCaller) -> list[RequestView]:
        # from the small `open_proposals` collection, not a query over every request
        return [view(r, who) for r in await store.open_proposals_of(who.subject)]

    @router.post(
        "/requests/{request_id}/accept",
        summary="Accept a proposal (proposed provider)",
        responses=STATE_CONFLICT,
    )
    async def accept(request_id: str, who: ProviderCaller, idem: Idempotent) -> RequestView:
        async def command() -> RequestView:
            with domain_errors():
                try:
                    req = await handlers.accept(who.subject, request_id)
                except ProposalAlreadyExpired:
                    await handlers.expire(request_id)  # move on to the next candidate now
                    raise
            return view(req, who)

        async def recover() -> RequestView | None:  # accepted by this caller: it happened
            stored = await store.get_request(request_id)
            p = stored.request.proposal if stored else None
            if stored and stored.request.status in ACCEPTED_OR_LATER and p:
                return view(stored.request, who) if p.provider_id == who.subject else None
            return None

        return await idem.run(RequestView, command, recover=recover)

    @router.post(
        "/requests/{request_id}/decline",
        summary="Decline a proposal (proposed provider)",
        responses=STATE_CONFLICT,
    )
    async def decline(request_id: str, who: ProviderCaller) -> RequestView:
        with domain_errors():
            req = await handlers.decline(who.subject, request_id)
        return view(req, who)

    @router.post(
        "/requests/{request_id}/complete",
        summary="Report the work done (assigned provider)",
        responses=STATE_CONFLICT,
        openapi_extra=documented_rules(RULE_HOURS_OR_MINUTES, RULE_SOMETHING_DONE),
    )
    async def complete(request_id: str, body: CompletionBody, who: ProviderCaller) -> RequestView:
        with domain_errors():
            req = await handlers.complete(
                who.subject,
                request_id,
                actual_hours=body.actual_hours,
                units=body.units,
                actual_minutes=body.actual_minutes,
            )
        return view(req, who)

    @router.post(
        "/requests/{request_id}/rate",
        summary="Rate the completed work 1-5 (client)",
        responses=STATE_CONFLICT,
    )
    async def rate(request_id: str, body: RatingBody, who: ClientCaller) -> RequestView:
        with domain_errors():
            req = await handlers.rate(who.subject, request_id, body.stars)
        return view(req, who)

    @router.post(
        "/requests/{request_id}/cancel",
        summary="Cancel before completion (client)",
        responses=STATE_CONFLICT,
    )
    async def cancel(request_id: str, who: ClientCaller) -> RequestView:
        with domain_errors():
            req = await handlers.cancel(who.subject, request_id)
        return view(req, who)

    @router.get(
        "/providers/{provider_id}/capacity",
        summary="Hours reserved per ISO week (the provider itself or an operator)",
        responses=OWN_ONLY,
    )
    async def capacity(provider_id: str, who: Caller) -> list[CapacityWeek]:
        if who.role is Role.CLIENT or (who.role is Role.PROVIDER and who.subject != provider_id):
            raise Forbidden("only the provider itself or an operator may read its load")
        # last week through the planning horizon, read by `_id` (in UTC days,
        # with a day of margin: the provider's zone shifts the week by < 1 day)
        today = utcnow().date()
        weeks = weeks_between(
            today - timedelta(days=8), today + handlers.policy.horizon + timedelta(days=1)
        )
        found = await store.capacity_of(provider_id, weeks)
        return [CapacityWeek.model_validate(w) for w in found]

    return router


__all__ = ["OperatorCaller", "RequestView", "api_router", "view"]
