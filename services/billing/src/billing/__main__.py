"""`delego-billing`: run the billing service (HTTP + consumers + scheduler)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import BillingSettings


def main() -> None:
    settings = BillingSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
    )


if __name__ == "__main__":
    main()
