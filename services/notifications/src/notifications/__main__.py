"""`delego-notifications`: serve the service (settings from `DELEGO_*`)."""

from delego_shared.http import serve

from .app import create_app
from .settings import NotificationsSettings


def main() -> None:
    serve(create_app, NotificationsSettings())


if __name__ == "__main__":
    main()
