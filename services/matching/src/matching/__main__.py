"""`delego-matching`: run the matching service (settings from `DELEGO_*`)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import MatchingSettings


def main() -> None:
    settings = MatchingSettings()
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
    )


if __name__ == "__main__":
    main()
