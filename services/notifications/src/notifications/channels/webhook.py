"""Webhooks over HTTP (httpx): one signed POST per attempt.

Each attempt is signed afresh at send time (the domain's
`build_webhook_request`), so a retry never carries a stale timestamp. A 2xx
answer is a delivery; anything else is classified by the domain
(`webhook_failure`). Redirects are not followed and proxies from the
environment are not used: the registered URL is the one called.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from delego_shared.events import Envelope

from ..domain import Failure, WebhookEndpoint, build_webhook_request, webhook_failure


class WebhookSender:
    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    async def send(
        self, endpoint: WebhookEndpoint, source: Envelope, *, delivery_key: str, now: datetime
    ) -> Failure | None:
        request = build_webhook_request(endpoint, source, now=now, delivery_id=delivery_key)
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=False, trust_env=False
            ) as client:
                response = await client.post(
                    request.url, content=request.body, headers=request.headers
                )
        except httpx.HTTPError:
            return webhook_failure(None)
        if 200 <= response.status_code < 300:
            return None
        return webhook_failure(response.status_code)
