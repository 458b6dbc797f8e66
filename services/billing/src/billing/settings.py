"""Billing settings (`DELEGO_*` environment variables, on top of the platform's)."""

from __future__ import annotations

from delego_shared.settings import Settings
from delego_shared.types import CountryCode
from pydantic import Field


class BillingSettings(Settings):
    service_name: str = "billing"
    http_port: int = 8003

    billing_entity: str = Field(
        default="DLG",
        pattern=r"^[A-Z][A-Z0-9]{1,9}$",
        description="billing entity code: prefix of every invoice and credit note number",
    )
    scheduler_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="how often the scheduler bills due subscription periods and issues "
        "the annual tax certificates",
    )
    repair_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often (besides start-up) documents a crash interrupted are "
        "finished; the repair reads whole collections, so keep it slow",
    )
    default_tax_country: CountryCode = Field(
        default="FR",
        description="tax residence assumed for a client who has not set a tax profile",
    )
