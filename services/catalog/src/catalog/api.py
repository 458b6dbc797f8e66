"""HTTP routes of the catalog: providers, offers, search, taxonomy.

Roles come from the bearer JWT (`client`, `provider`, `operator`). A wrong
role is 403; someone else's resource is 404; an illegal lifecycle transition
is 409; an invalid body or query is 422 with one `{field, message}` per
problem. Every error is an RFC 9457 problem body.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from delego_shared.events.catalog import OfferSnapshot, ProviderSnapshot
from delego_shared.events.common import DeliveryMode, PricingModel
from delego_shared.http import Caller, Idempotent, NotFound, Principal, Role, require_role
from delego_shared.http.openapi import documented_rules
from delego_shared.http.problems import problem
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .domain import (
    DomainError,
    FieldIssue,
    IllegalTransition,
    Offer,
    OfferChanges,
    OfferDraft,
    OfferQuery,
    Provider,
    ProviderChanges,
    ProviderNotActive,
    ProviderProfile,
    SearchPage,
    Taxonomy,
    ValidationFailed,
    WrongProvider,
    parse,
)
from .domain.model import (
    CATEGORY_SCHEMA,
    CURRENCY_SCHEMA,
    LANGUAGE_SCHEMA,
    RULES_OFFER,
    RULES_PROFILE,
    SKILL_CODE_SCHEMA,
    ZONE_SCHEMA,
    positive_decimal_schema,
)
from .domain.search import MAX_LIMIT, MAX_TEXT_LENGTH, MAX_TEXT_WORDS, RULES_SEARCH
from .domain.taxonomy import MAX_LEVEL, MIN_LEVEL
from .handlers import CatalogService

ProviderRole = Annotated[Principal, Depends(require_role(Role.PROVIDER))]
OwnerRole = Annotated[Principal, Depends(require_role(Role.PROVIDER, Role.OPERATOR))]
OperatorRole = Annotated[Principal, Depends(require_role(Role.OPERATOR))]


# -- response and request bodies ------------------------------------------------------------


class Problem(BaseModel):
    """RFC 9457 problem details (`errors` on 422: one entry per invalid field)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, str]] | None = None


class ProviderView(BaseModel):
    provider: ProviderSnapshot
    suspension_reason: str | None = Field(
        default=None, description="shown to the provider themselves and to operators"
    )


class OfferView(BaseModel):
    offer: OfferSnapshot
    warnings: list[FieldIssue] = Field(
        default_factory=list, description="non-blocking remarks (e.g. SAP activity sold remote)"
    )


class OfferList(BaseModel):
    items: list[OfferSnapshot]


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason_code: str = Field(default="operator_decision", examples=["fraud_suspected"])


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "missing or invalid bearer token",
        403: "the caller's role may not do this",
        404: "no such resource (or not the caller's)",
        409: "illegal lifecycle transition or state conflict",
        422: "invalid input, with one entry per field in `errors`",
    }
    return {c: {"model": Problem, "description": text[c]} for c in codes}


def _provider_view(provider: Provider, who: Principal) -> ProviderView:
    private = who.is_operator or who.subject == provider.provider_id
    return ProviderView(
        provider=provider.snapshot(),
        suspension_reason=provider.suspension_reason if private else None,
    )


def _offer_view(offer: Offer) -> OfferView:
    return OfferView(offer=offer.snapshot(), warnings=offer.warnings)


# -- domain errors as problems -----------------------------------------------------------------


async def domain_problem(request: Request, exc: Exception) -> JSONResponse:
    """DomainError -> 422 (with field details), 409 or 404."""
    path = request.url.path
    if isinstance(exc, ValidationFailed):
        n = len(exc.issues)
        return problem(
            422,
            "validation-error",
            "Invalid request",
            f"{n} invalid field(s)",
            path,
            errors=exc.as_list(),
        )
    if isinstance(exc, IllegalTransition | ProviderNotActive):
        return problem(409, "illegal-transition", "Conflict", str(exc), path)
    if isinstance(exc, WrongProvider):
        return problem(404, "not-found", "Not found", f"offer {exc.offer_id} not found", path)
    return problem(409, "conflict", "Conflict", str(exc), path)


def install_domain_problems(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_problem)


# -- routes ------------------------------------------------------------------------------------


def api_router(service: CatalogService) -> APIRouter:
    router = APIRouter()
    providers = APIRouter(prefix="/providers", tags=["providers"])
    offers = APIRouter(prefix="/offers", tags=["offers"])

    @providers.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Register yourself as a provider (provider role; id = token subject)",
        responses=_problems(401, 403, 409, 422),
        openapi_extra=documented_rules(*RULES_PROFILE),
    )
    async def register_provider(who: ProviderRole, body: ProviderProfile) -> ProviderView:
        return _provider_view(await service.register_provider(who, body), who)

    @providers.get(
        "/{provider_id}", summary="A provider's public profile", responses=_problems(401, 404)
    )
    async def read_provider(who: Caller, provider_id: str) -> ProviderView:
        return _provider_view(await service.read_provider(provider_id), who)

    @providers.patch(
        "/{provider_id}",
        summary="Update your own profile (partial; operators: any profile)",
        responses=_problems(401, 403, 404, 409, 422),
        openapi_extra=documented_rules(*RULES_PROFILE),
    )
    async def update_provider(
        who: OwnerRole, provider_id: str, body: ProviderChanges
    ) -> ProviderView:
        return _provider_view(await service.update_provider(who, provider_id, body), who)

    @providers.post(
        "/{provider_id}/suspend",
        summary="Suspend a provider (operator): their offers leave search and matching",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def suspend_provider(
        who: OperatorRole, provider_id: str, body: SuspendRequest | None = None
    ) -> ProviderView:
        reason = (body or SuspendRequest()).reason_code
        return _provider_view(await service.suspend_provider(provider_id, reason), who)

    @providers.post(
        "/{provider_id}/reinstate",
        summary="Lift a suspension (operator)",
        responses=_problems(401, 403, 404, 409),
    )
    async def reinstate_provider(who: OperatorRole, provider_id: str) -> ProviderView:
        return _provider_view(await service.reinstate_provider(provider_id), who)

    @providers.get(
        "/{provider_id}/offers",
        summary="A provider's offers (all statuses for the owner and operators, else published)",
        responses=_problems(401),
    )
    async def offers_of_provider(who: Caller, provider_id: str) -> OfferList:
        return OfferList(items=[o.snapshot() for o in await service.offers_of(who, provider_id)])

    @offers.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Create a draft offer (provider: for yourself; operator: for provider_id)",
        responses=_problems(401, 403, 404, 409, 422),
        openapi_extra=documented_rules(*RULES_OFFER),
    )
    async def create_offer(
        who: OwnerRole,
        body: OfferDraft,
        idem: Idempotent,
        provider_id: Annotated[
            str | None, Query(description="operators only: the provider the offer is for")
        ] = None,
    ) -> OfferView:
        offer_id = idem.derived_id("off")  # a retry after a crash finds it by `_id`

        async def command() -> OfferView:
            return _offer_view(await service.create_offer(who, body, provider_id, offer_id))

        async def recover() -> OfferView | None:
            try:
                return _offer_view(await service.read_offer(who, offer_id or ""))
            except NotFound:
                return None

        return await idem.run(OfferView, command, recover=recover, refusals=(DomainError,))

    @offers.get(
        "",
        summary="Search published offers (any authenticated caller)",
        description="Filters combine with AND; results are ordered by reference price "
        "(hourly rate, package price, price per month or unit price) then offer id. "
        "Pass `next_cursor` back as `cursor` for the next page.",
        responses=_problems(401, 422),
        openapi_extra=documented_rules(*RULES_SEARCH),
    )
    async def search_offers(
        who: Caller,
        category: Annotated[str | None, Query(json_schema_extra=CATEGORY_SCHEMA)] = None,
        skill: Annotated[
            str | None, Query(examples=["translation.en-fr"], json_schema_extra=SKILL_CODE_SCHEMA)
        ] = None,
        min_level: Annotated[
            int | None, Query(description="with skill, 1-5", ge=MIN_LEVEL, le=MAX_LEVEL)
        ] = None,
        language: Annotated[
            str | None,
            Query(description="BCP 47; fr matches fr-BE", json_schema_extra=LANGUAGE_SCHEMA),
        ] = None,
        max_price: Annotated[
            Decimal | None,
            Query(
                description="maximum reference price (needs currency)",
                json_schema_extra=positive_decimal_schema(),
            ),
        ] = None,
        currency: Annotated[
            str | None, Query(examples=["EUR"], json_schema_extra=CURRENCY_SCHEMA)
        ] = None,
        pricing_model: PricingModel | None = None,
        delivery_mode: DeliveryMode | None = None,
        time_zone: Annotated[
            list[str] | None,
            Query(
                description="provider IANA zone; repeat for several",
                json_schema_extra={"items": ZONE_SCHEMA},
            ),
        ] = None,
        text: Annotated[
            str | None,
            Query(
                description="words in the title or description, all required; accents and "
                f"case ignored, each word matches as a prefix (`tradu jurid`); at most "
                f"{MAX_TEXT_WORDS} words",
                examples=["traduction juridique"],
                max_length=MAX_TEXT_LENGTH,
                json_schema_extra={"pattern": r"[A-Za-z0-9]"},
            ),
        ] = None,
        cursor: Annotated[
            str | None, Query(description="`next_cursor` of the previous page, as it was")
        ] = None,
        limit: Annotated[int, Query(description=f"1-{MAX_LIMIT}", ge=1, le=MAX_LIMIT)] = 20,
    ) -> SearchPage:
        query = _offer_query(
            category=category,
            skill=skill,
            min_level=min_level,
            language=language,
            max_price=max_price,
            currency=currency,
            pricing_model=pricing_model,
            delivery_mode=delivery_mode,
            time_zones=time_zone,
            text=text,
            cursor=cursor,
            limit=limit,
        )
        return await service.search(query)

    @offers.get(
        "/{offer_id}",
        summary="An offer (drafts: owner and operators only)",
        responses=_problems(401, 404),
    )
    async def read_offer(who: Caller, offer_id: str) -> OfferView:
        return _offer_view(await service.read_offer(who, offer_id))

    @offers.patch(
        "/{offer_id}",
        summary="Update an offer (partial; a published offer publishes OfferUpdated)",
        responses=_problems(401, 403, 404, 409, 422),
        openapi_extra=documented_rules(*RULES_OFFER),
    )
    async def update_offer(who: OwnerRole, offer_id: str, body: OfferChanges) -> OfferView:
        return _offer_view(await service.update_offer(who, offer_id, body))

    @offers.post(
        "/{offer_id}/publish",
        summary="Publish a draft (OfferPublished)",
        responses=_problems(401, 403, 404, 409, 422),
    )
    async def publish_offer(who: OwnerRole, offer_id: str) -> OfferView:
        return _offer_view(await service.publish_offer(who, offer_id))

    @offers.post(
        "/{offer_id}/withdraw",
        summary="Withdraw a published offer (OfferWithdrawn; final)",
        responses=_problems(401, 403, 404, 409),
    )
    async def withdraw_offer(who: OwnerRole, offer_id: str) -> OfferView:
        return _offer_view(await service.withdraw_offer(who, offer_id))

    @offers.delete(
        "/{offer_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Delete a draft (never published, so no event)",
        responses=_problems(401, 403, 404, 409),
    )
    async def delete_offer(who: OwnerRole, offer_id: str) -> Response:
        await service.delete_draft(who, offer_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/taxonomy", tags=["taxonomy"], summary="Categories, skills, levels, SAP list")
    async def taxonomy(who: Caller) -> Taxonomy:
        return service.taxonomy

    router.include_router(providers)
    router.include_router(offers)
    return router


def _offer_query(*, max_price: Decimal | None, currency: str | None, **filters: Any) -> OfferQuery:
    """Query parameters -> OfferQuery; problems come back with the parameters' names."""
    data = {k: v for k, v in filters.items() if v is not None}
    issues: list[FieldIssue] = []
    if max_price is not None and currency is None:
        issues.append(FieldIssue(field="currency", message="is required with max_price"))
    elif max_price is None and currency is not None:
        issues.append(FieldIssue(field="currency", message="only meaningful with max_price"))
    elif max_price is not None:
        data["max_price"] = {"amount": max_price, "currency": currency}
    if issues:
        raise ValidationFailed(issues)
    try:
        return parse(OfferQuery, data)
    except ValidationFailed as exc:
        renamed = {"max_price.currency": "currency", "max_price.amount": "max_price"}
        raise ValidationFailed(
            i.model_copy(update={"field": renamed.get(i.field, i.field)}) for i in exc.issues
        ) from None
