"""Catalog settings: the platform `DELEGO_*` settings with the catalog's defaults."""

from __future__ import annotations

from delego_shared.settings import Settings
from pydantic import Field


class CatalogSettings(Settings):
    """`DELEGO_SERVICE_NAME` defaults to `catalog`, `DELEGO_HTTP_PORT` to 8001."""

    service_name: str = Field(
        default="catalog", description="also the consumer group and ce_source"
    )
    http_port: int = 8001
