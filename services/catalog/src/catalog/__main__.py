"""`delego-catalog`: serve the service (settings from `DELEGO_*`)."""

from delego_shared.http import serve

from .app import create_app
from .settings import CatalogSettings


def main() -> None:
    serve(create_app, CatalogSettings())


if __name__ == "__main__":
    main()
