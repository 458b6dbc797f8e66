"""Factories for billing domain tests: terms, profiles, rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from billing.domain.rules import BillingRules, load_tax_credit_rules
from billing.domain.tax_credit import ClientTaxProfile, TaxCreditRules
from delego_shared.events.common import AgreedTerms, DeliveryMode
from delego_shared.types import Money

ISSUED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def eur(x: str | int) -> Money:
    return Money.of(Decimal(str(x)), "EUR")


@pytest.fixture
def rules() -> BillingRules:
    return BillingRules.load()


@pytest.fixture
def tc2026() -> TaxCreditRules:
    return load_tax_credit_rules(2026)


@pytest.fixture
def make_terms() -> Callable[..., AgreedTerms]:
    def make(**over: Any) -> AgreedTerms:
        base: dict[str, Any] = {
            "offer_id": "off_1",
            "offer_version": 1,
            "provider_id": "prv_1",
            "provider_display_name": "Camille Tutrice",
            "provider_sap_number": "SAP123456789",
            "category": "tutoring",
            "delivery_mode": DeliveryMode.AT_HOME,
            "sap_activity": "soutien_scolaire_domicile",
            "currency": "EUR",
            "pricing": {"model": "hourly", "rate": {"amount": "40.00", "currency": "EUR"}},
        }
        base.update(over)
        return AgreedTerms.model_validate(base)

    return make


@pytest.fixture
def profile_fr() -> ClientTaxProfile:
    return ClientTaxProfile(residence_country="FR")
