"""Register the demo providers and publish their offers through the catalog's HTTP API."""

from __future__ import annotations

from typing import Any

import httpx
from delego_shared.http.auth import mint_token
from delego_shared.settings import Settings

from .data import PROVIDERS


class DemoError(RuntimeError):
    """The platform answered something the demo did not expect."""


def bearer(settings: Settings, subject: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, subject, role)}"}


def check(r: httpx.Response, what: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    if r.status_code not in ok:
        raise DemoError(f"{what}: HTTP {r.status_code} {r.text[:500]}")
    return r.json() if r.content else None


async def seed_catalog(catalog_url: str, settings: Settings) -> list[str]:
    """Idempotent enough for a demo: an already registered provider is reused."""
    lines = []
    async with httpx.AsyncClient(base_url=catalog_url, timeout=15) as http:
        for p in PROVIDERS:
            auth = bearer(settings, p["id"], "provider")
            r = await http.post("/providers", json=p["profile"], headers=auth)
            if r.status_code == 409:
                lines.append(f"{p['id']}: already registered")
                continue
            check(r, f"register {p['id']}")
            for offer in p["offers"]:
                created = check(
                    await http.post("/offers", json=offer, headers=auth),
                    f"create offer of {p['id']}",
                )
                offer_id = created["offer"]["offer_id"]
                check(
                    await http.post(f"/offers/{offer_id}/publish", headers=auth),
                    f"publish {offer_id}",
                )
                lines.append(f"{p['id']} ({p['city']}): published {offer_id} — {offer['title']}")
    return lines
