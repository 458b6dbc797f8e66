"""Event factories for the notifications domain tests (valid shared events, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from delego_shared.events.billing import (
    CreditNoteIssued,
    InvoiceIssued,
    InvoiceLine,
    TaxCertificateIssued,
    TaxCreditDecision,
)
from delego_shared.events.common import AgreedTerms, DeliveryMode, HourlyPricing
from delego_shared.events.matching import (
    FilterReason,
    MatchAccepted,
    MatchProposed,
    RequestCancelled,
    RequestUnmatched,
    ScoreBreakdown,
    WorkCompleted,
)
from delego_shared.types import Money

EUR = "EUR"


def eur(amount: str) -> Money:
    return Money.of(amount, EUR)


class Events:
    """One valid event per routed kind; fields chosen to make formatting visible."""

    client = "cli_1"
    provider = "prv_1"

    def terms(self) -> AgreedTerms:
        return AgreedTerms(
            offer_id="off_1",
            offer_version=1,
            provider_id=self.provider,
            provider_display_name="Asha <Translations>",
            category="translation",
            delivery_mode=DeliveryMode.REMOTE,
            currency=EUR,
            pricing=HourlyPricing(rate=eur("16.25")),
        )

    def match_proposed(self) -> MatchProposed:
        return MatchProposed(
            request_id="req_1",
            client_id=self.client,
            attempt=1,
            provider_id=self.provider,
            terms=self.terms(),
            estimated_price=eur("1234.50"),
            reserved_hours=Decimal("2.5"),
            promised_at=datetime(2026, 3, 30, 6, 0, tzinfo=UTC),
            promised_local="2026-03-30T08:00:00+02:00",
            client_zone="Europe/Paris",
            score=ScoreBreakdown(
                total=0.8,
                slack=1,
                rating=1,
                price=0.5,
                load=0.5,
                trust_bonus=0,
                weights={"slack": 1.0},
            ),
            expires_at=datetime(2026, 3, 29, 18, 0, tzinfo=UTC),
        )

    def match_accepted(self) -> MatchAccepted:
        return MatchAccepted(
            request_id="req_1",
            client_id=self.client,
            attempt=1,
            provider_id=self.provider,
            terms=self.terms(),
            estimated_price=eur("1234.50"),
            promised_at=datetime(2026, 3, 30, 6, 0, tzinfo=UTC),
            promised_local="2026-03-30T08:00:00+02:00",
            client_zone="Europe/Paris",
            accepted_at=datetime(2026, 3, 29, 17, 0, tzinfo=UTC),
        )

    def request_unmatched(self) -> RequestUnmatched:
        return RequestUnmatched(
            request_id="req_2",
            client_id=self.client,
            offers_considered=7,
            attempts=2,
            reasons=[
                FilterReason(filter="skill", count=5, message="5 lack skill translation.en-fr ≥ 4"),
                FilterReason(filter="budget", count=2, message="2 above your budget"),
            ],
            summary="no provider",
        )

    def request_cancelled(self) -> RequestCancelled:
        return RequestCancelled(
            request_id="req_3",
            client_id=self.client,
            provider_id=self.provider,
            cancelled_at=datetime(2026, 7, 14, 10, 0, tzinfo=UTC),
        )

    def work_completed(self) -> WorkCompleted:
        return WorkCompleted(
            request_id="req_1",
            client_id=self.client,
            provider_id=self.provider,
            terms=self.terms(),
            actual_hours=Decimal("2.5"),
            completed_at=datetime(2026, 3, 30, 5, 30, tzinfo=UTC),
        )

    def invoice_issued(self) -> InvoiceIssued:
        decision = TaxCreditDecision(
            code="not_eligible_remote",
            eligible_amount=eur("0"),
            credit=eur("0"),
            reason_fr="Service rendu à distance : non éligible",
            reason_en="Remote service: not eligible",
        )
        line = InvoiceLine(
            line_no=1,
            kind="service",
            label_code="hourly:translation",
            quantity=Decimal("2.5"),
            unit_price=eur("16.25"),
            net=eur("40.63"),
            vat_rate=Decimal("0.20"),
            vat=eur("8.13"),
            gross=eur("48.76"),
            commission=eur("4.06"),
            tax_credit=decision,
        )
        return InvoiceIssued(
            client_id=self.client,
            invoice_id="inv_1",
            number="DLG-2026-000123",
            request_id="req_1",
            provider_id=self.provider,
            issued_at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
            currency=EUR,
            lines=[line],
            total_net=eur("1028.75"),
            total_vat=eur("205.75"),
            total_gross=eur("1234.50"),
            commission=eur("102.88"),
            provider_payout=eur("925.87"),
            tax_credit=eur("0"),
            payable_now=eur("1234.50"),
        )

    def credit_note_issued(self) -> CreditNoteIssued:
        return CreditNoteIssued(
            client_id=self.client,
            credit_note_id="cn_1",
            number="DLG-AV-2026-000007",
            invoice_id="inv_1",
            invoice_number="DLG-2026-000123",
            provider_id=self.provider,
            issued_at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
            currency=EUR,
            total_gross=eur("1234.50"),
            tax_credit_reversed=eur("0"),
            reason_code="cancelled",
        )

    def tax_certificate_issued(self) -> TaxCertificateIssued:
        return TaxCertificateIssued(
            client_id=self.client,
            certificate_id="cert_1",
            provider_id=self.provider,
            year=2026,
            amount_paid=eur("1234.50"),
            eligible_amount=eur("600"),
            credit_advanced=eur("300"),
            issued_at=datetime(2027, 1, 15, 9, 0, tzinfo=UTC),
        )


@pytest.fixture
def events() -> Events:
    return Events()
