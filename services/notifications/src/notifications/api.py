"""HTTP API: a user's own contact data, preferences and inbox; operators' webhooks and
delivery status. Errors are RFC 9457 problem responses (shared handlers).

Contact data is only ever returned to its owner (`/v1/me/...`); operators see
delivery states, ids and error codes, never an address.
"""

from __future__ import annotations

from datetime import datetime
from fnmatch import fnmatchcase
from typing import Annotated, Any

from delego_shared.events import registry
from delego_shared.events.notifications import Channel
from delego_shared.http import (
    Caller,
    NotFound,
    Principal,
    Role,
    Unprocessable,
    require_role,
)
from delego_shared.http.openapi import documented_rules
from delego_shared.types import IanaZone, Identifier, LanguageTag, new_id
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, ValidationError, WithJsonSchema

from .domain import (
    ALL_KINDS,
    CriticalKindLocked,
    Preferences,
    QuietHours,
    Recipient,
    RoutingRules,
    State,
    WebhookEndpoint,
)
from .domain.quiet_hours import RULE_NOT_EMPTY
from .domain.recipient import (
    DEFAULT_LOCALE,
    DEFAULT_ZONE,
    RULE_HOST,
    RULE_HTTPS,
)
from .domain.routing import default_rules
from .settings import Clock
from .store import NotificationsStore

Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]


def _invalid(exc: ValidationError) -> Unprocessable:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in exc.errors()
    ]
    return Unprocessable(f"{len(errors)} invalid field(s)", errors=errors)


# --- models ------------------------------------------------------------------------


class ContactData(BaseModel):
    """What a user says about how to reach them."""

    email: str | None = Field(
        default=None,
        max_length=254,
        examples=["ada@example.org"],
        # the schema promises the plain ASCII form (any address it allows is accepted);
        # the service also takes others (`EMAIL_PATTERN`)
        json_schema_extra={"pattern": r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"},
    )
    locale: LanguageTag = Field(default=DEFAULT_LOCALE, examples=["fr", "en"])
    zone: IanaZone = Field(default=DEFAULT_ZONE, examples=["Europe/Paris"])
    quiet_hours: QuietHours | None = Field(
        default=None, examples=[{"start": "21:00", "end": "08:00"}]
    )
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.EMAIL, Channel.INAPP],
        description="failover order: the first usable channel is used, then the next",
        min_length=1,
        json_schema_extra={"uniqueItems": True},
    )
    urgent_kinds: list[
        Annotated[str, WithJsonSchema({"type": "string", "enum": list(default_rules().kinds)})]
    ] = Field(
        default_factory=list,
        max_length=32,
        description="kinds delivered even during quiet hours (e.g. match_proposed)",
        examples=[["match_proposed"]],
    )


class ContactView(ContactData):
    recipient_id: str
    registered: bool


class KindPreferences(BaseModel):
    kind: str
    critical: bool = Field(description="critical kinds cannot be switched off")
    channels: dict[Channel, bool]


class PreferencesView(BaseModel):
    kinds: list[KindPreferences]


class Switch(BaseModel):
    enabled: bool


class InboxItemView(BaseModel):
    id: str
    kind: str
    subject: str
    text: str
    html: str
    source_event_id: str
    created_at: datetime
    read_at: datetime | None


class InboxView(BaseModel):
    items: list[InboxItemView]
    unread: int


class ReadAll(BaseModel):
    marked: int


class WebhookIn(BaseModel):
    url: str = Field(
        max_length=2048,
        examples=["https://erp.example.com/delego/hooks"],
        json_schema_extra={"pattern": r"^https?://[^/?#\s]+"},
    )
    secret: str = Field(min_length=16, max_length=256, description="HMAC-SHA256 key; write-only")
    event_types: list[str] = Field(
        min_length=1, examples=[["delego.billing.*", "delego.matching.MatchAccepted.v1"]]
    )
    owner_id: Identifier | None = Field(
        default=None, description="the user whose 'webhook' channel this is; none = integration"
    )
    active: bool = True


class WebhookView(BaseModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    owner_id: str | None
    active: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class DeliveryView(BaseModel):
    delivery_id: str
    state: str
    channel: Channel
    kind: str
    recipient_id: str
    event_id: str | None = None
    event_type: str | None = None
    critical: bool = False
    attempts: int = 0
    last_error: str | None = None
    hold_until: datetime | None = None
    due_at: datetime | None = None
    digest: bool = False
    parts: list[str] = Field(default_factory=list)
    digest_id: str | None = None
    failover_to: list[str] = Field(default_factory=list)
    history: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None


class RouteView(BaseModel):
    event_type: str
    kind: str
    notify: list[str]
    critical: bool


# --- conversions ---------------------------------------------------------------------


def _contact_view(r: Recipient, registered: bool) -> ContactView:
    return ContactView(
        recipient_id=r.recipient_id,
        registered=registered,
        email=r.email,
        locale=r.locale,
        zone=r.zone,
        quiet_hours=r.quiet_hours,
        channels=list(r.channels),
        urgent_kinds=sorted(r.urgent_kinds),
    )


def _webhook_view(ep: WebhookEndpoint, doc: dict[str, Any]) -> WebhookView:
    return WebhookView(
        endpoint_id=ep.endpoint_id,
        url=ep.url,
        event_types=sorted(ep.event_types),
        owner_id=ep.owner_id,
        active=ep.active,
        created_at=doc.get("created_at"),
        updated_at=doc.get("updated_at"),
    )


def _delivery_view(doc: dict[str, Any]) -> DeliveryView:
    fields = {k: v for k, v in doc.items() if k in DeliveryView.model_fields and v is not None}
    return DeliveryView(delivery_id=doc["_id"], **fields)


RULE_PATTERN_MATCHES = "matches no event type of the catalogue"
WEBHOOK_RULES = documented_rules(RULE_PATTERN_MATCHES, RULE_HTTPS, RULE_HOST)


def _known_patterns(patterns: list[str]) -> None:
    types = [c.event_type for c in registry.types()]
    unknown = [p for p in patterns if not any(fnmatchcase(t, p) for t in types)]
    if unknown:
        raise Unprocessable(
            "event type pattern(s) match no event of the catalogue",
            errors=[
                {"field": "event_types", "message": f"'{p}' {RULE_PATTERN_MATCHES}"}
                for p in unknown
            ],
        )


# --- routes ---------------------------------------------------------------------------


def api_router(store: NotificationsStore, rules: RoutingRules, clock: Clock) -> APIRouter:
    r = APIRouter(prefix="/v1")
    channels = list(Channel)

    def preferences_view(rec: Recipient) -> PreferencesView:
        kinds = [ALL_KINDS, *rules.kinds]
        return PreferencesView(
            kinds=[
                KindPreferences(
                    kind=k,
                    critical=rules.is_critical(k),
                    channels={
                        ch: rec.preferences.allows(k, ch, critical=rules.is_critical(k))
                        for ch in channels
                    },
                )
                for k in kinds
            ]
        )

    # --- the caller's own contact data, preferences, inbox --------------------------

    @r.get("/me/contact", response_model=ContactView, tags=["me"])
    async def get_contact(caller: Caller) -> ContactView:
        """Your contact data (defaults until you save some: in-app only)."""
        rec = await store.recipient(caller.subject)
        return _contact_view(rec or Recipient(recipient_id=caller.subject), rec is not None)

    @r.put(
        "/me/contact",
        response_model=ContactView,
        tags=["me"],
        openapi_extra=documented_rules(RULE_NOT_EMPTY),
    )
    async def put_contact(caller: Caller, body: ContactData) -> ContactView:
        """Replace your contact data (e-mail, locale, zone, quiet hours, channel order)."""
        current = await store.recipient(caller.subject)
        unknown = sorted(set(body.urgent_kinds) - set(rules.kinds))
        if unknown:
            raise Unprocessable(
                f"unknown notification kind(s) {', '.join(unknown)}",
                errors=[{"field": "urgent_kinds", "message": f"known: {', '.join(rules.kinds)}"}],
            )
        try:
            rec = Recipient(
                recipient_id=caller.subject,
                email=body.email,
                locale=body.locale,
                zone=body.zone,
                quiet_hours=body.quiet_hours,
                channels=tuple(body.channels),
                preferences=current.preferences if current else Preferences(),
                urgent_kinds=frozenset(body.urgent_kinds),
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        stored = await store.put_contact(rec, clock())
        return _contact_view(stored, True)

    @r.get("/me/preferences", response_model=PreferencesView, tags=["me"])
    async def get_preferences(caller: Caller) -> PreferencesView:
        """Per kind and channel: on or off. `*` switches a channel off for every kind."""
        rec = await store.recipient(caller.subject) or Recipient(recipient_id=caller.subject)
        return preferences_view(rec)

    @r.put(
        "/me/preferences/{kind}/{channel}",
        response_model=PreferencesView,
        tags=["me"],
        responses={404: {"description": "unknown kind"}, 422: {"description": "critical kind"}},
    )
    async def put_preference(
        caller: Caller, kind: str, channel: Channel, body: Switch
    ) -> PreferencesView:
        """Switch one kind on one channel on or off (critical kinds cannot be switched off)."""
        if kind != ALL_KINDS and kind not in rules.kinds:
            raise NotFound(f"no notification kind '{kind}'")
        rec = await store.recipient(caller.subject) or Recipient(recipient_id=caller.subject)
        try:
            rec.preferences.switched(kind, channel, body.enabled, critical=rules.is_critical(kind))
        except CriticalKindLocked as exc:
            raise Unprocessable(
                str(exc), type_="critical-kind", title="Critical notification"
            ) from None
        updated = await store.set_preference(caller.subject, kind, channel, body.enabled, clock())
        return preferences_view(updated)

    @r.get("/me/inbox", response_model=InboxView, tags=["me"])
    async def get_inbox(
        caller: Caller,
        unread: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> InboxView:
        """Your in-app notifications, newest first."""
        items, unread_count = await store.inbox(
            caller.subject, unread_only=unread, limit=limit, skip=offset
        )
        return InboxView(
            items=[
                InboxItemView(
                    id=i.item_id,
                    kind=i.kind,
                    subject=i.subject,
                    text=i.text,
                    html=i.html,
                    source_event_id=i.source_event_id,
                    created_at=i.created_at,
                    read_at=i.read_at,
                )
                for i in items
            ],
            unread=unread_count,
        )

    @r.post("/me/inbox/{item_id}/read", response_model=InboxItemView, tags=["me"])
    async def mark_read(caller: Caller, item_id: str) -> InboxItemView:
        """Mark one item read (idempotent: the first read time is kept)."""
        i = await store.mark_read(caller.subject, item_id, clock())
        if i is None:
            raise NotFound(f"no inbox item '{item_id}'")
        return InboxItemView(
            id=i.item_id,
            kind=i.kind,
            subject=i.subject,
            text=i.text,
            html=i.html,
            source_event_id=i.source_event_id,
            created_at=i.created_at,
            read_at=i.read_at,
        )

    @r.post("/me/inbox/read-all", response_model=ReadAll, tags=["me"])
    async def mark_all_read(caller: Caller) -> ReadAll:
        return ReadAll(marked=await store.mark_all_read(caller.subject, clock()))

    # --- operators: webhooks, delivery status ----------------------------------------

    @r.post(
        "/webhooks",
        response_model=WebhookView,
        status_code=201,
        tags=["operators"],
        openapi_extra=WEBHOOK_RULES,
    )
    async def create_webhook(who: Operator, body: WebhookIn, response: Response) -> WebhookView:
        """Register an endpoint; the secret is write-only (never returned)."""
        _known_patterns(body.event_types)
        try:
            ep = WebhookEndpoint(
                endpoint_id=new_id("whk"),
                url=body.url,
                secret=body.secret,
                event_types=frozenset(body.event_types),
                owner_id=body.owner_id,
                active=body.active,
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        now = clock()
        await store.add_endpoint(ep, now)
        response.headers["Location"] = f"/v1/webhooks/{ep.endpoint_id}"
        return _webhook_view(ep, {"created_at": now, "updated_at": now})

    @r.get("/webhooks", response_model=list[WebhookView], tags=["operators"])
    async def list_webhooks(who: Operator) -> list[WebhookView]:
        return [_webhook_view(ep, doc) for ep, doc in await store.endpoints()]

    @r.get("/webhooks/{endpoint_id}", response_model=WebhookView, tags=["operators"])
    async def get_webhook(who: Operator, endpoint_id: str) -> WebhookView:
        found = await store.endpoint(endpoint_id)
        if found is None:
            raise NotFound(f"no webhook endpoint '{endpoint_id}'")
        return _webhook_view(*found)

    @r.put(
        "/webhooks/{endpoint_id}",
        response_model=WebhookView,
        tags=["operators"],
        openapi_extra=WEBHOOK_RULES,
    )
    async def put_webhook(who: Operator, endpoint_id: str, body: WebhookIn) -> WebhookView:
        """Replace an endpoint (URL, secret, event types, owner, active)."""
        _known_patterns(body.event_types)
        try:
            ep = WebhookEndpoint(
                endpoint_id=endpoint_id,
                url=body.url,
                secret=body.secret,
                event_types=frozenset(body.event_types),
                owner_id=body.owner_id,
                active=body.active,
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        if not await store.replace_endpoint(ep, clock()):
            raise NotFound(f"no webhook endpoint '{endpoint_id}'")
        found = await store.endpoint(endpoint_id)
        assert found is not None
        return _webhook_view(*found)

    @r.delete("/webhooks/{endpoint_id}", status_code=204, tags=["operators"])
    async def delete_webhook(who: Operator, endpoint_id: str) -> Response:
        """Deactivate an endpoint (kept for the delivery history)."""
        if not await store.deactivate_endpoint(endpoint_id, clock()):
            raise NotFound(f"no webhook endpoint '{endpoint_id}'")
        return Response(status_code=204)

    @r.get("/deliveries", response_model=list[DeliveryView], tags=["operators"])
    async def list_deliveries(
        who: Operator,
        recipient_id: str | None = None,
        event_id: str | None = None,
        state: Annotated[str | None, Query(json_schema_extra={"enum": [*State.ALL, None]})] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    ) -> list[DeliveryView]:
        """Delivery status, newest first (ids, channel, state, attempts, error codes)."""
        if state is not None and state not in State.ALL:
            raise Unprocessable(
                "unknown state",
                errors=[{"field": "state", "message": f"one of {', '.join(State.ALL)}"}],
            )
        docs = await store.find_deliveries(
            recipient_id=recipient_id, event_id=event_id, state=state, limit=limit, skip=offset
        )
        return [_delivery_view(d) for d in docs]

    @r.get("/deliveries/{delivery_id}", response_model=DeliveryView, tags=["operators"])
    async def get_delivery(who: Operator, delivery_id: str) -> DeliveryView:
        doc = await store.delivery(delivery_id)
        if doc is None:
            raise NotFound(f"no delivery '{delivery_id}'")
        return _delivery_view(doc)

    @r.get("/routing", response_model=list[RouteView], tags=["routing"])
    async def routing(caller: Caller) -> list[RouteView]:
        """The routing table: which event notifies whom, as which kind."""
        return [
            RouteView(
                event_type=x.event_type, kind=x.kind, notify=list(x.notify), critical=x.critical
            )
            for x in rules.rules
        ]

    return r
