"""`/docs` and `/redoc` load only assets the service serves itself (no CDN)."""

import re
from urllib.parse import urlsplit

import httpx
import pytest
from delego_shared.http import ServiceRuntime, create_http_app
from delego_shared.settings import Settings


@pytest.fixture
async def client():
    runtime = ServiceRuntime(Settings(service_name="docs-test"))  # nothing connects until started
    app = create_http_app(runtime, title="Docs test")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as c:
        yield c


def asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html) + re.findall(
        r"""url\s*:\s*["']([^"']+)["']""", html
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_same_origin_assets_that_are_served(client, page):
    resp = await client.get(page)
    assert resp.status_code == 200
    urls = asset_urls(resp.text)
    assert any(u.endswith(".js") for u in urls), urls  # the UI bundle is referenced
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        assert (await client.get(url)).status_code == 200, url
    assert "cdn" not in resp.text.lower()
