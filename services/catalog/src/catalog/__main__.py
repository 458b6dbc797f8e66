"""`delego-catalog` / `python -m catalog`: serve the catalog on settings.http_host:http_port."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import CatalogSettings


def main() -> None:
    settings = CatalogSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # structlog (configured in the app's lifespan) handles the logs
    )


if __name__ == "__main__":
    main()
