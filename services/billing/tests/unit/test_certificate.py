from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from billing.domain.certificate import build_certificate
from billing.domain.errors import BillingError
from billing.domain.invoice import Intervention, build_credit_note, build_invoice
from billing.domain.pricing import price_work_completed
from billing.domain.tax_credit import CapConsumption, ClientTaxProfile
from delego_shared.events.billing import TaxCertificateIssued
from delego_shared.events.common import DeliveryMode

from .conftest import eur

D = Decimal


def _invoices(make_terms, rules):
    profile = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    terms = make_terms()
    remote = make_terms(delivery_mode=DeliveryMode.REMOTE)
    used = CapConsumption(year=2026)
    out = []
    for i, (t, hours, when) in enumerate(
        [
            (terms, "1.5", datetime(2026, 2, 3, 17, tzinfo=UTC)),
            (terms, "1", datetime(2026, 2, 10, 17, tzinfo=UTC)),
            (remote, "1", datetime(2026, 3, 1, 17, tzinfo=UTC)),  # not eligible
        ],
        start=1,
    ):
        inv, used = build_invoice(
            invoice_id=f"inv_{i}",
            number=f"DLG-2026-{i:06d}",
            client_id="cli_1",
            request_id=f"req_{i}",
            terms=t,
            priced=price_work_completed(t, actual_hours=D(hours), units=None),
            profile=profile,
            consumption=used,
            rules=rules,
            issued_at=when,
            interventions=[Intervention(when.date(), int(D(hours) * 60), "hourly:tutoring")],
        )
        out.append(inv)
    return out


def test_certificate_sums_paid_eligible_and_advanced_net_of_credit_notes(make_terms, rules):
    invs = _invoices(make_terms, rules)
    cn = build_credit_note(
        invoice=invs[1],
        credit_note_id="cn_1",
        number="DLG-AV-2026-000001",
        issued_at=datetime(2026, 2, 12, tzinfo=UTC),
        reason_code="no_show",
    )
    cert = build_certificate(
        client_id="cli_1",
        provider_id="prv_1",
        year=2026,
        invoices=invs,
        credit_notes=[cn],
        issued_at=datetime(2027, 1, 15, tzinfo=UTC),
    )
    # paid: 66 + 44 + 48 - 44 (at home 10 % VAT, remote 20 %); eligible: 66 (+44 - 44);
    # remote line not eligible
    assert cert.amount_paid == eur("114.00")
    assert cert.eligible_amount == eur("66.00")
    assert cert.tax_credit == eur("33.00")
    assert cert.credit_advanced == eur("33.00")
    assert (cert.provider_name, cert.provider_sap_number) == ("Camille Tutrice", "SAP123456789")
    assert [i.on for i in cert.interventions] == [
        date(2026, 2, 3),
        date(2026, 2, 10),
        date(2026, 3, 1),
    ]
    assert cert.total_minutes == 90 + 60 + 60
    assert cert.invoice_numbers == ("DLG-2026-000001", "DLG-2026-000002", "DLG-2026-000003")
    assert cert.credit_note_numbers == ("DLG-AV-2026-000001",)
    assert cert.certificate_id == "att:cli_1:prv_1:2026"
    ev = cert.to_event()
    assert isinstance(ev, TaxCertificateIssued)
    assert (ev.year, ev.amount_paid, ev.credit_advanced) == (2026, eur("114.00"), eur("33.00"))


def test_certificate_filters_client_provider_and_year(make_terms, rules):
    invs = _invoices(make_terms, rules)
    with pytest.raises(BillingError):
        build_certificate(
            client_id="cli_1",
            provider_id="prv_1",
            year=2025,
            invoices=invs,
            credit_notes=[],
            issued_at=datetime(2026, 1, 15, tzinfo=UTC),
        )
    with pytest.raises(BillingError):
        build_certificate(
            client_id="cli_2",
            provider_id="prv_1",
            year=2026,
            invoices=invs,
            credit_notes=[],
            issued_at=datetime(2027, 1, 15, tzinfo=UTC),
        )


def test_no_certificate_without_sap_declaration(make_terms, rules, profile_fr):
    t = make_terms(provider_sap_number=None)
    inv, _ = build_invoice(
        invoice_id="inv_1",
        number="DLG-2026-000001",
        client_id="cli_1",
        request_id="req_1",
        terms=t,
        priced=price_work_completed(t, actual_hours=D(1), units=None),
        profile=profile_fr,
        consumption=CapConsumption(year=2026),
        rules=rules,
        issued_at=datetime(2026, 5, 1, tzinfo=UTC),
    )
    with pytest.raises(BillingError):
        build_certificate(
            client_id="cli_1",
            provider_id="prv_1",
            year=2026,
            invoices=[inv],
            credit_notes=[],
            issued_at=datetime(2027, 1, 15, tzinfo=UTC),
        )
