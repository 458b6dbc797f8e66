from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from billing.domain.errors import BillingError
from billing.domain.invoice import Intervention, build_credit_note, build_invoice
from billing.domain.numbering import (
    credit_note_number,
    document_year,
    invoice_number,
    parse_number,
)
from billing.domain.pricing import price_work_completed
from billing.domain.tax_credit import CapConsumption, ClientTaxProfile, DecisionCode
from delego_shared.events.billing import CreditNoteIssued, InvoiceIssued
from delego_shared.events.common import DeliveryMode

from .conftest import ISSUED, eur

D = Decimal


def issue(make_terms, rules, profile, *, terms=None, hours=("1.5",), used=None, number=None):
    terms = terms or make_terms()
    priced = [
        ln for h in hours for ln in price_work_completed(terms, actual_hours=D(h), units=None)
    ]
    return build_invoice(
        invoice_id="inv_1",
        number=number or invoice_number("DLG", 2026, 123),
        client_id="cli_1",
        request_id="req_1",
        terms=terms,
        priced=priced,
        profile=profile,
        consumption=CapConsumption(year=2026, total=used or D(0)),
        rules=rules,
        issued_at=ISSUED,
        interventions=[Intervention(date(2026, 3, 9), 90, "hourly:tutoring")],
    )


# --- numbering -------------------------------------------------------------------


def test_numbering_format_and_parse():
    assert invoice_number("DLG", 2026, 123) == "DLG-2026-000123"
    assert credit_note_number("DLG", 2026, 7) == "DLG-AV-2026-000007"
    assert invoice_number("DLG", 2026, 1234567) == "DLG-2026-1234567"
    n = parse_number("DLG-AV-2026-000007")
    assert (n.entity, n.kind, n.year, n.seq) == ("DLG", "credit_note", 2026, 7)
    assert str(n) == "DLG-AV-2026-000007"
    for bad in ("DLG-26-000001", "dlg-2026-000001", "DLG-2026-12"):
        with pytest.raises(BillingError):
            parse_number(bad)
    with pytest.raises(BillingError):
        invoice_number("DLG", 2026, 0)
    with pytest.raises(BillingError):
        invoice_number("dl g", 2026, 1)


def test_document_year_is_paris_civil_year():
    assert document_year(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == 2026
    assert document_year(datetime(2025, 12, 31, 22, 59, tzinfo=UTC)) == 2025


# --- invoice -----------------------------------------------------------------------


def test_invoice_lines_and_totals(make_terms, rules, profile_fr):
    inv, after = issue(make_terms, rules, profile_fr, hours=("1.5", "0.2"))
    l1, l2 = inv.lines
    # soutien scolaire à domicile by a declared provider: 10 % (CGI art. 279 i)
    assert l1.vat_rate == D("0.10")
    assert (l1.net, l1.vat, l1.gross) == (eur("60.00"), eur("6.00"), eur("66.00"))
    assert (l2.net, l2.vat, l2.gross) == (eur("40.00"), eur("4.00"), eur("44.00"))  # minimum 1 h
    assert l1.commission == eur("7.20")  # tutoring 12 % of the net
    assert (inv.total_net, inv.total_vat, inv.total_gross) == (eur(100), eur(10), eur(110))
    assert inv.provider_payout + inv.commission == inv.total_net
    assert inv.tax_credit == eur("55.00")  # 50 % of the gross
    assert after.total == D("110.00")
    assert inv.payable_now == inv.total_gross  # no avance immédiate


def test_avance_immediate_payable_now(make_terms, rules):
    profile = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    inv, _ = issue(make_terms, rules, profile)
    assert inv.total_gross == eur("66.00")
    assert inv.credit_advanced == eur("33.00")
    assert inv.payable_now == eur("33.00")
    event = inv.to_event()
    assert isinstance(event, InvoiceIssued)
    assert event.payable_now == eur("33.00")
    assert event.tax_credit == eur("33.00")


def test_avance_immediate_without_eligibility_advances_nothing(make_terms, rules):
    profile = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    inv, _ = issue(make_terms, rules, profile, terms=make_terms(delivery_mode=DeliveryMode.REMOTE))
    assert inv.credit_advanced == eur(0)
    assert inv.payable_now == inv.total_gross


def test_avance_immediate_partially_capped(make_terms, rules):
    profile = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    inv, after = issue(make_terms, rules, profile, used=D("11990"))
    assert inv.lines[0].decision.code is DecisionCode.ELIGIBLE_PARTIALLY_CAPPED
    assert inv.credit_advanced == eur("5.00")
    assert inv.payable_now == eur("61.00")
    assert after.total == D(12000)


def test_vat_follows_client_country(make_terms, rules):
    inv, _ = issue(make_terms, rules, ClientTaxProfile(residence_country="BE"))
    assert inv.lines[0].vat_rate == D("0.21")
    assert inv.lines[0].vat == eur("12.60")
    assert inv.lines[0].decision.code is DecisionCode.NOT_ELIGIBLE_NON_RESIDENT
    inv, _ = issue(make_terms, rules, ClientTaxProfile(residence_country="US"))
    assert inv.total_vat == eur(0)


def test_event_carries_lines_and_decisions(make_terms, rules, profile_fr):
    inv, _ = issue(make_terms, rules, profile_fr)
    ev = inv.to_event()
    assert ev.number == "DLG-2026-000123"
    assert ev.lines[0].tax_credit.code == "eligible"
    assert ev.total_gross == eur("66.00")
    body = ev.model_dump(mode="json")
    assert body["lines"][0]["net"] == {"amount": "60.00", "currency": "EUR"}


def test_invoice_refuses_inconsistent_input(make_terms, rules, profile_fr):
    with pytest.raises(BillingError):
        issue(make_terms, rules, profile_fr, hours=())
    with pytest.raises(BillingError):  # number of another year
        issue(make_terms, rules, profile_fr, number="DLG-2025-000001")
    with pytest.raises(BillingError):  # credit-note number on an invoice
        issue(make_terms, rules, profile_fr, number="DLG-AV-2026-000001")


def test_invoice_is_immutable(make_terms, rules, profile_fr):
    inv, _ = issue(make_terms, rules, profile_fr)
    with pytest.raises(AttributeError):
        inv.number = "DLG-2026-000999"


# --- credit notes -----------------------------------------------------------------


def test_full_credit_note_reverses_amounts_and_caps(make_terms, rules):
    profile = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    inv, after = issue(make_terms, rules, profile, hours=("1.5", "1"))
    cn = build_credit_note(
        invoice=inv,
        credit_note_id="cn_1",
        number=credit_note_number("DLG", 2026, 7),
        issued_at=datetime(2026, 4, 1, tzinfo=UTC),
        reason_code="cancelled_by_client",
    )
    assert cn.total_gross == inv.total_gross
    assert cn.tax_credit_reversed == inv.tax_credit
    assert cn.refundable_now == inv.payable_now
    assert after.apply(cn.cap_reversal).total == D(0)
    ev = cn.to_event()
    assert isinstance(ev, CreditNoteIssued)
    assert (ev.invoice_number, ev.total_gross) == ("DLG-2026-000123", inv.total_gross)


def test_partial_credit_note_and_no_double_credit(make_terms, rules, profile_fr):
    inv, after = issue(make_terms, rules, profile_fr, hours=("1.5", "1"))
    cn = build_credit_note(
        invoice=inv,
        credit_note_id="cn_1",
        number="DLG-AV-2026-000001",
        issued_at=ISSUED,
        reason_code="partial",
        line_nos=[2],
    )
    assert cn.total_gross == eur("44.00")
    assert after.apply(cn.cap_reversal).total == D("66.00")
    with pytest.raises(BillingError):
        build_credit_note(
            invoice=inv,
            credit_note_id="cn_2",
            number="DLG-AV-2026-000002",
            issued_at=ISSUED,
            reason_code="x",
            line_nos=[2],
            already_credited=[2],
        )
    rest = build_credit_note(
        invoice=inv,
        credit_note_id="cn_2",
        number="DLG-AV-2026-000002",
        issued_at=ISSUED,
        reason_code="x",
        already_credited=[2],
    )
    assert [ln.line_no for ln in rest.lines] == [1]
    with pytest.raises(BillingError):
        build_credit_note(
            invoice=inv,
            credit_note_id="cn_3",
            number="DLG-AV-2026-000003",
            issued_at=ISSUED,
            reason_code="x",
            already_credited=[1, 2],
        )
    with pytest.raises(BillingError):
        build_credit_note(
            invoice=inv,
            credit_note_id="cn_3",
            number="DLG-AV-2026-000003",
            issued_at=ISSUED,
            reason_code="x",
            line_nos=[9],
        )


def test_credit_note_in_next_year_reverses_the_invoice_year(make_terms, rules, profile_fr):
    inv, _ = issue(make_terms, rules, profile_fr)
    cn = build_credit_note(
        invoice=inv,
        credit_note_id="cn_1",
        number="DLG-AV-2027-000001",
        issued_at=datetime(2027, 1, 15, tzinfo=UTC),
        reason_code="late_dispute",
    )
    assert (cn.tax_year, cn.cap_reversal.year) == (2026, 2026)
    with pytest.raises(BillingError):  # numbered in the wrong year
        build_credit_note(
            invoice=inv,
            credit_note_id="cn_2",
            number="DLG-AV-2026-000002",
            issued_at=datetime(2027, 1, 15, tzinfo=UTC),
            reason_code="x",
        )
