"""A person's erasure across the four services, on the real Kafka and Mongo-wire database.

The four apps run in this process (their real wiring: consumers, outbox relays,
SMTP to a real local server); the flow goes through their HTTP APIs; the
erasure is asked for by the operator CLI's code and by the person
(`POST /v1/me/erasure`), and confirmed by the receipts on `privacy.subjects.v1`.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from billing.app import create_app as billing_app
from billing.settings import BillingSettings
from catalog.app import create_app as catalog_app
from delego_cli.privacy import access_audit, collect_export, request_erasure, wait_for_erasure
from delego_shared.http import mint_token
from delego_shared.settings import Settings
from delego_shared.testing import privacy_scan
from delego_shared.testing.privacy_scan import Found
from delego_shared.testing.waiting import wait_for
from fastapi import FastAPI
from matching.app import create_app as matching_app
from matching.settings import MatchingSettings
from notifications.app import create_app as notifications_app
from notifications.settings import NotificationsSettings

pytestmark = pytest.mark.integration

EMAIL = "zoe.private@example.fr"
PRIVATE = "Le code de ma porte est 4242, et mon bailleur s'appelle M. Durand"
ALWAYS = [
    {"day": d, "start": "00:00", "end": "24:00"}
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
]
PROFILE = {
    "display_name": "Asha K. — translator",
    "country": "IN",
    "languages": ["en", "fr"],
    "time_zone": "Asia/Kolkata",
    "schedule": ALWAYS,
    "weekly_capacity_hours": "40",
    "skills": [{"code": "translation.en-fr", "level": 4}],
}
OFFER = {
    "title": "English → French translation",
    "category": "translation",
    "skills": [{"code": "translation.en-fr", "level": 4}],
    "languages": ["en", "fr"],
    "delivery_mode": "remote",
    "typical_effort_hours": "2",
    "currency": "EUR",
    "pricing": {"model": "hourly", "rate": {"amount": "20.00", "currency": "EUR"}},
}


class Mailbox:
    def __init__(self) -> None:
        self.to: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_from_bytes(envelope.content, policy=policy.default)
        self.to.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclass
class Platform:
    settings: dict[str, Settings]
    http: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]

    def auth(self, subject: str, role: str) -> dict[str, str]:
        token = mint_token(self.settings["catalog"], subject, role)
        return {"Authorization": f"Bearer {token}"}

    @property
    def bootstrap(self) -> str:
        return self.settings["catalog"].kafka_bootstrap

    @property
    def prefix(self) -> str:
        return self.settings["catalog"].topic_prefix


@asynccontextmanager
async def platform(
    settings_for: Callable[..., Settings], smtp_port: int
) -> AsyncIterator[Platform]:
    settings: dict[str, Settings] = {
        "catalog": settings_for("catalog"),
        "matching": MatchingSettings.of(settings_for("matching")),
        "billing": BillingSettings(**settings_for("billing").model_dump()),
        "notifications": NotificationsSettings.of(
            settings_for("notifications"),
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_from="Delego <no-reply@delego.test>",
        ),
    }
    apps = {
        "catalog": catalog_app(settings["catalog"]),
        "matching": matching_app(settings["matching"]),
        "billing": billing_app(settings["billing"]),  # type: ignore[arg-type]
        "notifications": notifications_app(settings["notifications"]),
    }
    async with AsyncExitStack() as stack:
        http = {}
        for name, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            http[name] = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=30
                )
            )
        yield Platform(settings, http, apps)


def ok(r: httpx.Response, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201)), (r.status_code, r.text[:500])
    return r.json() if r.content else None


async def register_provider(p: Platform, provider_id: str) -> None:
    auth = p.auth(provider_id, "provider")
    ok(await p.http["catalog"].post("/providers", json=PROFILE, headers=auth))
    offer = ok(await p.http["catalog"].post("/offers", json=OFFER, headers=auth))
    offer_id = offer["offer"]["offer_id"]
    ok(await p.http["catalog"].post(f"/offers/{offer_id}/publish", headers=auth))


async def play_request(p: Platform, client_id: str) -> str:
    """Submit, get proposed, accept, complete, rate; returns the request id."""
    client = p.auth(client_id, "client")
    body = {
        "category": "translation",
        "required_skills": [{"code": "translation.en-fr", "level": 4}],
        "languages": ["fr"],
        "effort_hours": "2",
        "client_zone": "Europe/Paris",
        "deadline": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "delegation_level": "autonomous",
        "description": PRIVATE,
    }

    async def proposed() -> Any:
        # matching may not have read the catalog yet: submit again until it proposes
        r = ok(await p.http["matching"].post("/requests", json=body, headers=client), 200, 201)
        return r if r["status"] == "proposed" else None

    req = await wait_for(proposed, timeout=60, interval=1.0)
    rid: str = req["request_id"]
    provider = p.auth(req["proposal"]["provider_id"], "provider")
    ok(await p.http["matching"].post(f"/requests/{rid}/accept", headers=provider))
    ok(
        await p.http["matching"].post(
            f"/requests/{rid}/complete", json={"actual_minutes": 105}, headers=provider
        )
    )
    ok(await p.http["matching"].post(f"/requests/{rid}/rate", json={"stars": 5}, headers=client))
    return rid


async def scan_topics(p: Platform, needles: list[str]) -> tuple[list[Found], int]:
    return await privacy_scan.scan_topics(p.bootstrap, p.prefix, needles)


async def scan_databases(p: Platform, needles: list[str]) -> list[Found]:
    mongodb_url = p.settings["catalog"].mongodb_url
    return await privacy_scan.scan_databases(
        mongodb_url, [s.database for s in p.settings.values()], needles
    )


async def client_with_history(p: Platform, client_id: str, provider_id: str) -> str:
    """Contact data, a tax profile, a completed and rated request with private text,
    its invoice issued and its notifications sent; returns the request id."""
    client = p.auth(client_id, "client")
    await register_provider(p, provider_id)
    ok(
        await p.http["notifications"].put(
            "/v1/me/contact",
            json={
                "email": EMAIL,
                "locale": "fr",
                "zone": "Europe/Paris",
                "channels": ["email", "inapp"],
            },
            headers=client,
        )
    )
    # acceptance in the inbox (a rendered message), the rest by e-mail
    ok(
        await p.http["notifications"].put(
            "/v1/me/preferences/match_accepted/email", json={"enabled": False}, headers=client
        )
    )
    ok(
        await p.http["billing"].put(
            "/tax-profile", json={"residence_country": "FR", "dependents": 2}, headers=client
        )
    )
    rid = await play_request(p, client_id)
    await wait_for(lambda: invoices_of(p, client_id, rid), timeout=60)

    async def inbox() -> Any:
        r = ok(await p.http["notifications"].get("/v1/me/inbox", headers=client))
        return r["items"]

    await wait_for(inbox, timeout=60)
    return rid


async def invoices_of(p: Platform, client_id: str, rid: str) -> list[dict[str, Any]]:
    r = ok(await p.http["billing"].get("/invoices", headers=p.auth(client_id, "client")))
    return [i for i in r if i.get("request_id") == rid]


async def test_erasure_of_a_client_reaches_every_service_and_leaves_nothing_on_topics(
    settings_for: Callable[..., Settings], mailbox: tuple[Mailbox, int]
) -> None:
    _, smtp_port = mailbox
    client_id = f"cli-{uuid.uuid4().hex[:8]}"
    provider_id = f"prv-{uuid.uuid4().hex[:8]}"
    async with platform(settings_for, smtp_port) as p:
        client = p.auth(client_id, "client")
        rid = await client_with_history(p, client_id, provider_id)
        # the personal data is there before the erasure (so the scans below can fail)
        assert await scan_databases(p, [EMAIL, PRIVATE])
        details = f"/requests/{rid}/details"
        assert ok(await p.http["matching"].get(details, headers=client))["description"] == PRIVATE
        matching = p.apps["matching"].state.store
        backup = await matching.requests.find_one({"_id": rid})  # a copy taken before
        assert backup is not None and backup["sealed"]["ciphertext"]
        assert await matching.request_keys.find_one({"_id": rid}) is not None

        await request_erasure(p.bootstrap, client_id, prefix=p.prefix)
        status = await wait_for_erasure(p.bootstrap, client_id, prefix=p.prefix, timeout_s=60)

        assert status.complete, status.to_json()
        assert status.receipts["notifications"].erased["recipients"] == 1
        assert status.receipts["notifications"].erased["inbox_items"] >= 1
        assert status.receipts["matching"].erased["request_descriptions"] == 1
        assert status.receipts["matching"].erased["client_ratings"] == 1
        assert status.receipts["billing"].erased == {"tax_profiles": 1}
        assert "invoices" in status.receipts["billing"].kept
        assert status.receipts["catalog"].erased == {"provider_profile": 0}
        # stored data: gone from every database; the invoice is kept (by client id)
        assert await scan_databases(p, [EMAIL, PRIVATE]) == []
        req = ok(await p.http["matching"].get(f"/requests/{rid}", headers=client))
        assert req["status"] == "rated"
        profile = ok(await p.http["billing"].get("/tax-profile", headers=client))
        assert profile["declared"] is False and profile["dependents"] == 0
        assert await invoices_of(p, client_id, rid)
        assert ok(await p.http["notifications"].get("/v1/me/inbox", headers=client))["items"] == []
        # the request text is unreadable: its key is shredded, so the copy taken before
        # (ciphertext) opens for nobody, and the service answers 410 to its own client
        assert (await p.http["matching"].get(details, headers=client)).status_code == 410
        assert await matching.request_keys.find_one({"_id": rid}) is None
        assert "sealed" not in (await matching.requests.find_one({"_id": rid}) or {})
        assert req["private_details"]["erased"] is True
        # and nothing on any topic ever carried the e-mail or the private text
        found, read = await scan_topics(p, [EMAIL, PRIVATE])
        assert found == []
        assert read >= 10  # the flow's events and the five privacy records were read


async def test_a_provider_erases_themselves_through_notifications(
    settings_for: Callable[..., Settings], mailbox: tuple[Mailbox, int]
) -> None:
    _, smtp_port = mailbox
    provider_id = f"prv-{uuid.uuid4().hex[:8]}"
    async with platform(settings_for, smtp_port) as p:
        await register_provider(p, provider_id)
        me = p.auth(provider_id, "provider")
        assert (await p.http["notifications"].post("/v1/me/erasure")).status_code == 401
        accepted = ok(await p.http["notifications"].post("/v1/me/erasure", headers=me), 202)
        assert accepted["subject_id"] == provider_id

        status = await wait_for_erasure(p.bootstrap, provider_id, prefix=p.prefix, timeout_s=60)

        assert status.complete, status.to_json()
        assert status.request is not None and status.request.requested_by == "subject"
        assert status.request.erasure_id == accepted["erasure_id"]
        assert status.receipts["catalog"].erased == {"provider_profile": 1}
        view = ok(await p.http["catalog"].get(f"/providers/{provider_id}", headers=me))
        assert view["provider"]["display_name"] == "Erased provider"
        assert view["provider"]["status"] == "suspended"
        assert view["suspension_reason"] == "erased"
        # matching's read model has the pseudonymised snapshot too; no database keeps the name
        await wait_for(lambda: _no_name_in(p), timeout=30)


async def _no_name_in(p: Platform) -> bool:
    return await scan_databases(p, [str(PROFILE["display_name"])]) == []


async def test_export_gathers_what_every_service_holds_about_a_client_and_a_provider(
    settings_for: Callable[..., Settings], mailbox: tuple[Mailbox, int]
) -> None:
    _, smtp_port = mailbox
    client_id = f"cli-{uuid.uuid4().hex[:8]}"
    provider_id = f"prv-{uuid.uuid4().hex[:8]}"
    async with platform(settings_for, smtp_port) as p:
        rid = await client_with_history(p, client_id, provider_id)
        operator = mint_token(p.settings["catalog"], "op-1", "operator")

        mine = await collect_export(p.http, client_id, operator)

        parts = mine["services"]
        assert set(parts) == {"catalog", "matching", "billing", "notifications"}
        assert parts["notifications"]["contact"]["email"] == EMAIL
        assert parts["notifications"]["inbox"] and all(
            i["user_id"] == client_id for i in parts["notifications"]["inbox"]
        )
        [request] = parts["matching"]["requests"]
        assert request["request_id"] == rid and request["spec"]["description"] == PRIVATE
        assert parts["matching"]["ratings"]["given"]["given"]
        # opening the client's text for the export is a read like any other: audited
        reads = await access_audit(p.bootstrap, client_id, prefix=p.prefix)
        assert ("op-1", "operator", "export", "subject_access_request") in [
            (r.reader_id, r.reader_role, r.channel, r.reason) for r in reads
        ]
        assert parts["billing"]["tax_profile"]["dependents"] == 2
        assert [i["request_id"] for i in parts["billing"]["as_client"]["invoices"]] == [rid]
        assert parts["catalog"]["provider"] is None

        theirs = (await collect_export(p.http, provider_id, operator))["services"]
        assert theirs["catalog"]["provider"]["display_name"] == PROFILE["display_name"]
        assert len(theirs["catalog"]["offers"]) == 1
        assert [i["request_id"] for i in theirs["billing"]["as_provider"]["invoices"]] == [rid]
        assert theirs["matching"]["ratings"]["received"]["count"] == 1
        assert theirs["notifications"]["contact"] is None  # the provider gave none here

        # a person reads their own part; not someone else's
        own = ok(await p.http["billing"].get("/v1/me/data", headers=p.auth(client_id, "client")))
        assert own["subject_id"] == client_id and own["data"]["tax_profile"]["dependents"] == 2
        other = await p.http["billing"].get(
            "/v1/me/data", params={"subject_id": client_id}, headers=p.auth(provider_id, "provider")
        )
        assert other.status_code == 403
