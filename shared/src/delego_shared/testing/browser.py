"""Headless Chromium on a service's pages with the network blocked.

Used by the offline-docs test (`tests/browser/`) and to refresh its screenshot:

    .venv/bin/python -m delego_shared.testing.browser matching.app:create_app \
        docs/swagger-ui-offline.png

The browser is Debian's `chromium` (installed, pinned, by `make browser`). Each
run gets a fresh profile; every request goes through a "proxy" on a local port
that refuses connections and every host name resolves to nothing, loopback
excepted: a page renders only with what the service serves itself.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import uvicorn
from fastapi import FastAPI

CHROMIUM = os.environ.get("DELEGO_CHROMIUM", "/usr/bin/chromium")
# background traffic off (component updates, sync, first-run pages), no GPU, no sandbox (root)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class ChromiumMissing(RuntimeError):
    pass


def chromium() -> str:
    """The browser's path, or a clear error saying how to install it."""
    found = shutil.which(CHROMIUM)
    if not found:
        raise ChromiumMissing(f"{CHROMIUM} not found: run `make browser` (Debian's chromium)")
    return found


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve `app` on an ephemeral loopback port in this process; yields its base URL.

    The lifespan is off: nothing connects to a broker or database (the docs
    need neither).
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="docs-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the docs server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def _refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening (connections refused) while in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def run_chromium(url: str, *action: str, budget_ms: int = 10_000, timeout: float = 60) -> str:
    """Load `url` offline, let its scripts run for `budget_ms` of virtual time, do `action`.

    `action` is `--dump-dom` (the rendered DOM is returned) or
    `--screenshot=<file>`, once the budget is spent (virtual time runs ahead
    while the page waits for nothing, so this takes a few seconds).
    """
    with (
        _refusing_port() as blackhole,
        tempfile.TemporaryDirectory(prefix="delego-chromium-") as profile,
    ):
        cmd = [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{blackhole}",  # loopback is never proxied
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--virtual-time-budget={budget_ms}",
            *action,
            url,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result.stdout


def rendered_dom(url: str) -> str:
    return run_chromium(url, "--dump-dom")


def screenshot(url: str, path: Path, *, width: int = 1280, height: int = 1400) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(url, f"--window-size={width},{height}", f"--screenshot={path}")
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {path}")


class _Operations(HTMLParser):
    """Swagger UI's operation rows: `<span class="opblock-summary-method">GET</span>`
    followed by `<span class="opblock-summary-path" data-path="/x">`."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._in_method = False
        self._method = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._in_method, self._method = True, ""
        elif "opblock-summary-path" in classes and a.get("data-path"):
            self.found.append((self._method.strip().upper(), a["data-path"] or ""))

    def handle_endtag(self, tag: str) -> None:
        self._in_method = False

    def handle_data(self, data: str) -> None:
        if self._in_method:
            self._method += data


def listed_operations(dom: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every operation Swagger UI rendered, in page order."""
    parser = _Operations()
    parser.feed(dom)
    return parser.found


def main(argv: list[str] | None = None) -> int:
    """Refresh a screenshot of a service's `/docs` (offline): `module:factory` and a PNG path."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("factory", help="e.g. matching.app:create_app")
    parser.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    module, name = args.factory.split(":")
    app = getattr(importlib.import_module(module), name)()
    with served(app) as base:
        screenshot(f"{base}/docs", args.png)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
