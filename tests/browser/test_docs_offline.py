"""Each service's `/docs` in a real browser with the network blocked: Swagger UI runs
from the assets the service serves itself and lists every operation of its OpenAPI
document (the rendered DOM, after the page's scripts ran)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from billing.app import create_app as billing_app
from catalog.app import create_app as catalog_app
from delego_shared.testing.browser import listed_operations, rendered_dom, screenshot, served
from fastapi import FastAPI
from matching.app import create_app as matching_app
from notifications.app import create_app as notifications_app

pytestmark = pytest.mark.tools  # Chromium, installed by `make browser`

APPS: dict[str, Callable[[], FastAPI]] = {
    "catalog": catalog_app,
    "matching": matching_app,
    "billing": billing_app,
    "notifications": notifications_app,
}


def documented(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in {"get", "post", "put", "patch", "delete"}
    }


@pytest.mark.parametrize("name", sorted(APPS))
def test_docs_list_every_operation_offline(name):
    app = APPS[name]()  # the service's own settings (defaults); nothing connects
    with served(app) as base:
        dom = rendered_dom(f"{base}/docs")
    listed = listed_operations(dom)
    assert len(listed) == len(set(listed)), "an operation is listed twice"
    expected = documented(app)
    assert len(expected) >= 5  # the two health probes, the privacy route, the service's own
    assert set(listed) == expected


def test_a_cdn_page_stays_empty_in_the_same_browser():
    """The block is real: FastAPI's default `/docs` (Swagger UI from a CDN) lists nothing."""
    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    with served(app) as base:
        dom = rendered_dom(f"{base}/docs")
    assert "cdn.jsdelivr.net" in dom  # the page asked for its bundle there
    assert listed_operations(dom) == []


def test_screenshot_of_the_docs_is_a_png_of_the_window(tmp_path):
    """The call that refreshes `docs/swagger-ui-offline.png` (`python -m
    delego_shared.testing.browser`, see its docstring) writes a PNG of the window's size."""
    png = tmp_path / "docs.png"
    with served(matching_app()) as base:
        screenshot(f"{base}/docs", png, width=800, height=600)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (800, 600)
