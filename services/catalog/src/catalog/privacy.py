"""A provider's erasure in catalog (GDPR art. 17): the public profile is pseudonymised.

The provider document (`providers/<id>`, by `_id`) is kept, because offers,
requests and invoices elsewhere refer to its id, but what names the person goes:

- the display name becomes `Erased provider` and the SAP declaration (its
  registration number) is removed, as an ordinary `ProviderUpdated` (so
  matching's read model and downstream subscribers get the pseudonymised
  snapshot);
- the provider is suspended (reason `erased`), so nothing is proposed to them.

Both steps go through the catalog's own use cases (versioned, published by the
outbox) and are idempotent: an unchanged update stores nothing, a suspended
provider is not suspended again. Earlier snapshots already on
`catalog.providers.v1` keep the old name until the topic's retention drops them.
"""

from __future__ import annotations

from typing import Any

from delego_shared.http import ServiceRuntime
from delego_shared.http.auth import Principal, Role
from delego_shared.privacy import ErasureResult, export_router, take_part_in_erasure
from fastapi import APIRouter

from .domain import ProviderChanges
from .handlers import CatalogService

ERASED_NAME = "Erased provider"
ERASURE_REASON = "erased"
ERASER = Principal(subject="privacy", role=Role.OPERATOR)


class CatalogErasure:
    """The use case: pseudonymise and suspend the subject's provider profile, if any."""

    def __init__(self, service: CatalogService) -> None:
        self.service = service

    async def __call__(self, subject_id: str) -> ErasureResult:
        provider = await self.service.store.get_provider(subject_id)
        if provider is None:
            return ErasureResult(erased={"provider_profile": 0})
        changes = ProviderChanges.model_validate(
            {"display_name": ERASED_NAME, "sap_declaration": None}
        )
        before = provider.version
        provider = await self.service.update_provider(ERASER, subject_id, changes)
        renamed = int(provider.version != before)
        if provider.is_active:
            await self.service.suspend_provider(subject_id, ERASURE_REASON)
        return ErasureResult(erased={"provider_profile": renamed})


class CatalogExport:
    """The use case: the subject's provider profile and all its offers, if a provider."""

    def __init__(self, service: CatalogService) -> None:
        self.service = service

    async def __call__(self, subject_id: str) -> dict[str, Any]:
        provider = await self.service.store.get_provider(subject_id)
        if provider is None:
            return {"provider": None, "offers": []}
        offers = await self.service.offers_of(ERASER, subject_id)
        return {
            "provider": provider.snapshot().model_dump(mode="json"),
            "suspension_reason": provider.suspension_reason,
            "offers": [o.snapshot().model_dump(mode="json") for o in offers],
        }


def wire_privacy(runtime: ServiceRuntime, service: CatalogService) -> APIRouter:
    """Take part in erasures; return the export router."""
    take_part_in_erasure(runtime, CatalogErasure(service), clock=service.clock)
    return export_router("catalog", CatalogExport(service), clock=service.clock)
