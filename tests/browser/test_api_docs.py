"""接口文档 (issue 20 item 1): /api/v1/docs draws the OpenAPI document with Swagger UI from the
app's own files — offline, under the Content-Security-Policy (``browser_page`` fails on any
violation or script error) — and its operations carry their Chinese summaries."""

from __future__ import annotations

import re

from tests.browser.conftest import ARTIFACTS, playwright_unavailable

try:
    from playwright.sync_api import expect
except ImportError:  # skip (or fail under REQUIRE_BROWSER=1) instead of a collection error
    playwright_unavailable()


def test_the_documentation_renders_offline_under_the_policy(live_server, browser_page):
    page, (base, _app) = browser_page, live_server
    page.set_viewport_size({"width": 1366, "height": 768})
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base) and
            not r.url.startswith("data:") else None)
    page.goto(f"{base}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("建设行业人员证书管理 API")
    operation = page.locator(".opblock-summary", has_text="/api/v1/verify/certificate")
    expect(operation).to_contain_text("按证书编号和持证人姓名查询证书")
    operation.click()
    expect(page.locator(".opblock-body").first).to_contain_text(re.compile("持证人姓名"))
    assert outside == []  # nothing fetched from another host
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
