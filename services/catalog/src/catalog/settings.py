"""Catalog settings: the platform `DELEGO_*` settings with the catalog's defaults."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from delego_shared.settings import Settings
from pydantic import Field


class CatalogSettings(Settings):
    """`DELEGO_SERVICE_NAME` defaults to `catalog`, `DELEGO_HTTP_PORT` to 8001."""

    service_name: str = Field(
        default="catalog", description="also the consumer group and ce_source"
    )
    http_port: int = 8001
    search_index_dir: str = Field(
        default="",
        description="directory of this replica's search index file (DELEGO_SEARCH_INDEX_DIR; "
        "default: <temp dir>/delego-catalog-search). One directory per replica; keep it "
        "across restarts so that a restart only catches up",
    )

    @classmethod
    def of(cls, settings: Settings | None = None, **overrides: object) -> CatalogSettings:
        """Catalog settings from the environment, or from platform settings plus overrides."""
        if isinstance(settings, cls) and not overrides:
            return settings
        base = settings.model_dump() if settings is not None else {}
        return cls(**{**base, **overrides})

    def search_index_path(self) -> Path:
        """One file per database and topic prefix (what the index is a copy of)."""
        base = Path(self.search_index_dir or Path(tempfile.gettempdir()) / "delego-catalog-search")
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.database}-{self.topic_prefix}")
        return base / f"{name.strip('.-_') or 'catalog'}.sqlite"
