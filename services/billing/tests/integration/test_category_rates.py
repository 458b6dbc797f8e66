"""Each catalog category is charged its own commission, through billing's public path:
matching's events in, InvoiceIssued on the topic and the invoice on the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from delego_shared.events import Envelope
from delego_shared.events.common import DeliveryMode
from delego_shared.events.matching import MatchAccepted, WorkCompleted

pytestmark = pytest.mark.integration

MATCHING_SOURCE = "/delego/matching"


async def test_dating_assistance_pays_20_and_home_services_10_percent_in_minor_units(
    billing_settings, app_factory, running, auth, make_terms, publish, billing_events
):
    settings = billing_settings()
    dating = make_terms(
        category="dating_assistance",
        delivery_mode=DeliveryMode.REMOTE,
        sap_activity=None,
        provider_sap_number=None,
        pricing={"model": "package", "price": {"amount": "650.00", "currency": "EUR"}},
    )
    household = make_terms(
        category="home_services", sap_activity="entretien_maison", provider_id="prv_2"
    )
    accepted = MatchAccepted(
        request_id="req_dating",
        client_id="cli_rates",
        attempt=1,
        provider_id=dating.provider_id,
        terms=dating,
        estimated_price=dating.pricing.price,
        promised_at=datetime(2026, 3, 20, tzinfo=UTC),
        promised_local="2026-03-20T01:00:00+01:00",
        client_zone="Europe/Paris",
        accepted_at=datetime(2026, 3, 10, 8, 0, tzinfo=UTC),
    )
    cleaning = WorkCompleted(
        request_id="req_home",
        client_id="cli_rates",
        provider_id=household.provider_id,
        terms=household,
        actual_hours=Decimal("2"),
        completed_at=datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
    )
    app = app_factory(settings)
    async with running(app) as http:
        envelopes = [Envelope(e, source=MATCHING_SOURCE) for e in (accepted, cleaning)]
        await publish(settings, envelopes)
        events = {b["request_id"]: b for _, b in await billing_events(settings, expect=2)}
        client = auth(settings, "cli_rates", "client")
        pages = {
            rid: (await http.get(f"/invoices/{b['invoice_id']}", headers=client)).json()
            for rid, b in events.items()
        }
    # 650.00 net at 20 %: 130.00 (not 97.50, the default 15 %)
    assert events["req_dating"]["commission"] == {"amount": "130.00", "currency": "EUR"}
    assert events["req_dating"]["provider_payout"]["amount"] == "520.00"
    assert pages["req_dating"]["totals"]["commission"]["amount"] == "130.00"
    # 2 h x 40.00 = 80.00 net at 10 %: 8.00 (not 12.00)
    assert events["req_home"]["commission"] == {"amount": "8.00", "currency": "EUR"}
    assert pages["req_home"]["totals"]["commission"]["amount"] == "8.00"
    assert pages["req_home"]["totals"]["provider_payout"]["amount"] == "72.00"
    # money keeps its minor units on the topic and on the API (no "0", no "650")
    assert events["req_dating"]["tax_credit"] == {"amount": "0.00", "currency": "EUR"}
    assert events["req_dating"]["lines"][0]["unit_price"]["amount"] == "650.00"
    assert pages["req_dating"]["totals"]["eligible_amount"]["amount"] == "0.00"
    assert pages["req_dating"]["lines"][0]["decision"]["credit"]["amount"] == "0.00"
