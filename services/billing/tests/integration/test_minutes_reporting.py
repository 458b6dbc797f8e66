"""WorkCompleted with `actual_minutes` → an invoice priced on the exact minutes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from delego_shared.events import Envelope
from delego_shared.events.matching import WorkCompleted

pytestmark = pytest.mark.integration


async def test_seventy_minutes_are_billed_as_seventy_minutes(
    billing_settings, app_factory, running, make_terms, publish, billing_events
):
    settings = billing_settings()
    terms = make_terms(
        pricing={
            "model": "hourly",
            "rate": {"amount": "40.00", "currency": "EUR"},
            "minimum_minutes": 0,
            "increment_minutes": 1,
        }
    )
    done = WorkCompleted(
        request_id="req_min",
        client_id="cli_1",
        provider_id=terms.provider_id,
        terms=terms,
        actual_hours=Decimal("1.1667"),  # what older consumers read (70.002 min)
        actual_minutes=70,
        completed_at=datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
    )
    async with running(app_factory(settings)):
        await publish(settings, [Envelope(done, source="/delego/matching")])
        [(ce_type, body)] = await billing_events(settings, expect=1)
    assert ce_type == "delego.billing.InvoiceIssued.v1"
    # 70 min at 40 EUR/h = 46.67 (the decimal hours alone would bill 71 min = 47.33)
    assert body["total_net"] == {"amount": "46.67", "currency": "EUR"}
