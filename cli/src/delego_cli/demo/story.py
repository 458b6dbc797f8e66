"""The seed's story, played through the public HTTP APIs only, and its report.

Clients and providers give their contact data to notifications, clients their
tax profile to billing, an operator registers a webhook; then each request is
submitted, proposed, accepted, completed and rated, and the story waits for
the invoices, the ledger and the notifications that follow.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from delego_shared.events import OFFERS, PROVIDERS
from delego_shared.settings import Settings
from delego_shared.types import utcnow

from ..kafka_ops import consumer_lag
from .data import (
    CLIENTS,
    OPERATOR,
    PROVIDER_CONTACTS,
    REQUESTS,
    WEBHOOK_EVENT_TYPES,
    WEBHOOK_SECRET,
)
from .seed import DemoError, bearer, check, seed_catalog
from .sinks import SmtpSink, WebhookReceiver

T = TypeVar("T")


@dataclass
class Urls:
    catalog: str
    matching: str
    billing: str
    notifications: str


@dataclass
class Bus:
    """Where the story can see whether matching has read the catalog yet."""

    bootstrap: str
    topic_prefix: str = ""


@dataclass
class RequestOutcome:
    title: str
    client: str
    request: dict[str, Any]
    invoices: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StoryReport:
    seeded: list[str]
    outcomes: list[RequestOutcome]
    balances: list[dict[str, Any]]
    mails: list[Any]
    webhooks: list[Any]
    inbox: dict[str, int]


async def until(
    what: str, probe: Callable[[], Awaitable[T | None]], timeout: float = 90.0, every: float = 0.5
) -> T:
    """Poll `probe` until it returns something; fail with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value is not None and value is not False:
            return value
        if loop.time() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


def _deadline(spec: Any) -> Any:
    """`"+7d"` → an instant 7 days from the platform clock; anything else as is."""
    if isinstance(spec, str) and (m := re.fullmatch(r"\+(\d+)d", spec)):
        at = utcnow() + timedelta(days=int(m.group(1)))
        return at.isoformat().replace("+00:00", "Z")
    return spec


async def play(
    urls: Urls,
    settings: Settings,
    smtp: SmtpSink,
    hooks: WebhookReceiver,
    bus: Bus,
    log: Callable[[str], None] = print,
) -> StoryReport:
    seeded = await seed_catalog(urls.catalog, settings)
    log(f"  catalog seeded: {len(seeded)} offers from 5 providers")
    # matching learns the catalog from its topics: wait until its group has read them
    group = Settings(service_name="matching", topic_prefix=bus.topic_prefix).consumer_group
    catalog_topics = [bus.topic_prefix + t.name for t in (PROVIDERS, OFFERS)]

    async def caught_up() -> bool:
        return await consumer_lag(bus.bootstrap, group, catalog_topics) == 0

    await until("matching to read the catalog topics", caught_up)
    log("  matching has read every catalog event")
    async with (
        httpx.AsyncClient(base_url=urls.notifications, timeout=15) as notif,
        httpx.AsyncClient(base_url=urls.billing, timeout=15) as billing,
        httpx.AsyncClient(base_url=urls.matching, timeout=30) as matching,
    ):
        for c in CLIENTS:
            auth = bearer(settings, c["id"], "client")
            check(
                await notif.put("/v1/me/contact", json=c["contact"], headers=auth),
                f"contact of {c['id']}",
            )
            check(
                await billing.put("/tax-profile", json=c["tax_profile"], headers=auth),
                f"tax profile of {c['id']}",
            )
        for pid, contact in PROVIDER_CONTACTS.items():
            check(
                await notif.put(
                    "/v1/me/contact", json=contact, headers=bearer(settings, pid, "provider")
                ),
                f"contact of {pid}",
            )
        op = bearer(settings, OPERATOR, "operator")
        check(
            await notif.post(
                "/v1/webhooks",
                headers=op,
                json={
                    "url": hooks.url,
                    "secret": WEBHOOK_SECRET,
                    "event_types": WEBHOOK_EVENT_TYPES,
                },
            ),
            "webhook registration",
        )
        log("  contact data, tax profiles and an operator webhook registered")

        outcomes = []
        for story in REQUESTS:
            outcomes.append(await _play_request(story, matching, settings, log))

        expected_invoices = len(REQUESTS) + 0  # one invoice per request in this story
        for o in outcomes:
            auth = bearer(settings, o.client, "client")
            rid = o.request["request_id"]

            async def invoices_of(rid: str = rid, auth: dict[str, str] = auth) -> Any:
                r = await billing.get("/invoices", headers=auth)
                items = [i for i in _items(check(r, "invoices")) if i.get("request_id") == rid]
                return items or None

            o.invoices = await until(f"the invoice of {rid}", invoices_of)
        log(f"  {expected_invoices} invoices issued")
        balances = check(await billing.get("/ledger/balances", headers=op), "ledger balances")

        async def mails_settled() -> Any:
            n = len(smtp.mails)
            await asyncio.sleep(2.0)
            return n if n and len(smtp.mails) == n else None

        await until("the e-mails to settle", mails_settled)
        await until("the webhook calls", lambda: _some(hooks.calls))
        inbox = {}
        for c in CLIENTS:
            r = await notif.get("/v1/me/inbox", headers=bearer(settings, c["id"], "client"))
            inbox[c["id"]] = len(_items(check(r, "inbox")))
    return StoryReport(
        seeded, outcomes, _items(balances), list(smtp.mails), list(hooks.calls), inbox
    )


async def _some(xs: list[Any]) -> Any:
    return xs or None


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in ("items", "invoices", "balances", "entries"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            return list(body[key])
    return []


async def _play_request(
    story: dict[str, Any],
    matching: httpx.AsyncClient,
    settings: Settings,
    log: Callable[[str], None],
) -> RequestOutcome:
    client = bearer(settings, story["client"], "client")
    body = {**story["body"], "deadline": _deadline(story["body"]["deadline"])}
    req = check(await matching.post("/requests", json=body, headers=client), story["title"])
    rid = req["request_id"]

    async def proposed() -> Any:
        r = check(await matching.get(f"/requests/{rid}", headers=client), "request")
        return r if r["status"] in ("proposed", "unmatched") else None

    req = await until(f"a proposal for {rid}", proposed)
    if req["status"] == "unmatched":
        raise DemoError(f"{story['title']}: unmatched — {req.get('unmatched_summary')}")
    provider = req["proposal"]["provider_id"]
    pauth = bearer(settings, provider, "provider")
    check(await matching.post(f"/requests/{rid}/accept", headers=pauth), "accept")
    if story["work"] is not None:
        check(
            await matching.post(f"/requests/{rid}/complete", json=story["work"], headers=pauth),
            "complete",
        )
    if story["rating"] is not None:
        check(
            await matching.post(
                f"/requests/{rid}/rate", json={"stars": story["rating"]}, headers=client
            ),
            "rate",
        )
    final = check(await matching.get(f"/requests/{rid}", headers=client), "request")
    log(
        f"  {story['title']}: {provider}, promised {final.get('promised_local')}, "
        f"now {final['status']}"
    )
    return RequestOutcome(story["title"], story["client"], final)


# --- report --------------------------------------------------------------------------


def _money(m: Any) -> str:
    if isinstance(m, dict) and "amount" in m:
        return f"{m['amount']} {m['currency']}"
    return str(m)


def _local(iso: Any) -> str:
    """`2026-12-02T06:30:00.5+01:00` → `Wed 02 Dec 2026 06:30 (UTC+01:00)`."""
    if not isinstance(iso, str):
        return "-"
    at = datetime.fromisoformat(iso)
    z = at.strftime("%z")
    return at.strftime("%a %d %b %Y %H:%M") + f" (UTC{z[:3]}:{z[3:]})"


def _pct(rate: Any) -> str:
    try:
        return f"{Decimal(str(rate)) * 100:.0f} %"
    except (ArithmeticError, ValueError):
        return str(rate)


def render(report: StoryReport) -> str:
    out: list[str] = []
    w = out.append
    w("=" * 78)
    w("Delego — the seed's story, played through the public APIs")
    w("=" * 78)
    for o in report.outcomes:
        r = o.request
        p = r.get("proposal") or {}
        terms = p.get("terms", {})
        score = p.get("score", {})
        w("")
        w(f"■ {o.title}")
        w(f"  client {o.client} ({r['client_zone']}), request {r['request_id']}: {r['status']}")
        w(
            f"  matched: {terms.get('provider_display_name', '?')} [{p.get('provider_id')}], "
            f"offer {terms.get('offer_id')} v{terms.get('offer_version')} "
            f"({terms.get('pricing', {}).get('model')}); {r.get('offers_considered')} offer(s) "
            "in the category"
        )
        if score:
            parts = ", ".join(
                f"{k} {score[k]:.2f}"
                for k in ("slack", "rating", "price", "load", "trust_bonus", "awake")
                if score.get(k) is not None
            )
            w(f"  why: score {score.get('total', 0):.3f} = weighted({parts})")
        for a in r.get("attempts", []):
            zone = a.get("provider_zone") or "?"
            w(
                f"  asked {a.get('provider_id')} at {_local(a.get('proposed_local'))}, "
                f"answer by {_local(a.get('expires_local'))} in {zone}: {a.get('outcome')}"
            )
        w(
            f"  deadline {_local(r.get('deadline_local'))}  →  promised "
            f"{_local(r.get('promised_local'))} in {r['client_zone']}"
        )
        for inv in o.invoices:
            t = inv.get("totals", {})
            w(
                f"  invoice {inv.get('number')}: net {_money(t.get('total_net'))} + VAT "
                f"{_money(t.get('total_vat'))} = {_money(t.get('total_gross'))}; platform "
                f"commission {_money(t.get('commission'))}, provider payout "
                f"{_money(t.get('provider_payout'))}"
            )
            advance = (
                f"; avance immédiate: payable now {_money(t.get('payable_now'))}"
                if inv.get("avance_immediate")
                else ""
            )
            w(f"    tax credit {_money(t.get('tax_credit'))}{advance}")
            for line in inv.get("lines", []):
                d = line.get("decision", {})
                w(
                    f"    line {line.get('line_no')} {line.get('label_code')}: "
                    f"{_money(line.get('gross'))} (VAT {_pct(line.get('vat_rate'))})"
                )
                w(f"      {d.get('code')}: {d.get('reason_en')} / {d.get('reason_fr')}")
    w("")
    w("Ledger balances (debit +, credit −):")
    total: dict[str, Decimal] = {}
    for b in report.balances:
        w(f"  {b.get('account', '?'):<30} {_money(b):>14}")
        total[b["currency"]] = total.get(b["currency"], Decimal(0)) + Decimal(b["amount"])
    w(
        "  sum per currency (double entry): "
        + ", ".join(f"{v} {k}" for k, v in sorted(total.items()))
    )
    w("")
    w(
        f"Notifications: {len(report.mails)} e-mails captured by the local SMTP sink, "
        f"{len(report.webhooks)} webhook calls received "
        f"({sum(1 for c in report.webhooks if c.verified)} with a valid signature)"
    )
    for m in report.mails:
        w(f"  ✉ to {', '.join(m.to)}: {m.subject}")
    for c in report.webhooks:
        w(f"  ↪ webhook {c.event_type} ({'signature ok' if c.verified else 'BAD SIGNATURE'})")
    w("  in-app inbox items: " + ", ".join(f"{k} {v}" for k, v in report.inbox.items()))
    w("=" * 78)
    return "\n".join(out)
