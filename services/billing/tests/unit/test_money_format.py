"""Money is written with its currency's minor units: API documents, events, pages."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from billing.api import _fmt_money
from billing.domain.invoice import Intervention, build_invoice
from billing.domain.money import amount_text, fixed, padded, with_minor_units
from billing.domain.numbering import invoice_number
from billing.domain.pricing import price_work_completed
from billing.domain.tax_credit import CapConsumption, DecisionCode
from billing.store import invoice_to_doc
from delego_shared.events.common import DeliveryMode
from delego_shared.types import Money

from .conftest import ISSUED

D = Decimal


def test_padded_pads_and_never_rounds():
    assert padded(D("0"), 2) == D("0.00") and str(padded(D("0"), 2)) == "0.00"
    assert str(padded(D("15000"), 2)) == "15000.00"
    assert str(padded(D("1.5"), 2)) == "1.50"
    assert str(padded(D("0.125"), 2)) == "0.125"  # a unit price finer than the cent
    assert str(padded(D("7"), 0)) == "7"
    assert amount_text(Money.of("650", "EUR")) == "650.00"
    assert amount_text(Money.of("5", "JPY")) == "5"
    assert amount_text(Money.of("1", "KWD")) == "1.000"
    assert fixed(Money.zero("EUR")) == Money.zero("EUR")  # same value


def _not_eligible_invoice(make_terms, rules, profile_fr):
    terms = make_terms(
        delivery_mode=DeliveryMode.REMOTE,
        sap_activity=None,
        pricing={"model": "hourly", "rate": {"amount": "40", "currency": "EUR"}},
    )
    priced = price_work_completed(terms, actual_hours=D("1"), units=None)
    inv, _ = build_invoice(
        invoice_id="inv_1",
        number=invoice_number("DLG", 2026, 1),
        client_id="cli_1",
        request_id="req_1",
        terms=terms,
        priced=priced,
        profile=profile_fr,
        consumption=CapConsumption(year=2026, total=D(0)),
        rules=rules,
        issued_at=ISSUED,
        interventions=[Intervention(date(2026, 3, 9), 60, "hourly:tutoring")],
    )
    assert inv.lines[0].decision.code is not DecisionCode.ELIGIBLE
    return inv


def test_published_invoice_writes_zero_as_0_00(make_terms, rules, profile_fr):
    inv = _not_eligible_invoice(make_terms, rules, profile_fr)
    raw = json.loads(inv.to_event().model_dump_json())
    assert raw["tax_credit"]["amount"] == "0"  # what the shared model writes by itself
    body = json.loads(with_minor_units(inv.to_event()).model_dump_json())
    assert body["tax_credit"] == {"amount": "0.00", "currency": "EUR"}
    assert body["lines"][0]["tax_credit"]["eligible_amount"]["amount"] == "0.00"
    assert body["lines"][0]["unit_price"]["amount"] == "40.00"
    assert body["payable_now"]["amount"] == "48.00"


def test_stored_invoice_document_writes_minor_units(make_terms, rules, profile_fr):
    inv = _not_eligible_invoice(make_terms, rules, profile_fr)
    doc = invoice_to_doc(inv, entity="DLG", seq=1, source="s", instance="i")
    assert doc["totals"]["tax_credit"]["amount"] == "0.00"
    assert doc["totals"]["credit_advanced"]["amount"] == "0.00"
    assert doc["lines"][0]["decision"]["credit"]["amount"] == "0.00"
    assert doc["lines"][0]["unit_price"]["amount"] == "40.00"


def test_printed_page_uses_the_currency_minor_units():
    assert _fmt_money({"amount": "15000", "currency": "EUR"}) == "15\u202f000.00 EUR"
    assert _fmt_money({"amount": "1500", "currency": "JPY"}) == "1\u202f500 JPY"
