"""Browser tests (ARCHITECTURE "Tests"): Playwright driving Debian's Chromium headless.

Every test here gets a real HTTP server on a free loopback port, serving a fresh copy of the
demo database (SPEC §12), and a headless Chromium page. Where Chromium or Playwright is
missing the tests skip with a clear message — or fail under ``REQUIRE_BROWSER=1`` (CI).
A failing test leaves a full-page screenshot in ``test-artifacts/<test name>.png``.

Every test also fails when a page it opened reported a Content-Security-Policy violation or an
uncaught JavaScript error (README "Security headers"): a policy that silently stops the
pages' scripts would be worse than none.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import threading
from pathlib import Path
from typing import NamedTuple

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from models import db
from tests.conftest import DEMO_PASSWORD, _config

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"

# Chromium as root in a container: no sandbox, no GPU, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 15_000


PLAYWRIGHT_MISSING = "the Python package playwright is not installed (pip install -e '.[test]')"


def _unavailable(message: str, *, module_level: bool = False):
    """Skip with ``message``, or fail when the run requires the browser (REQUIRE_BROWSER=1)."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{message} (REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(message, allow_module_level=module_level)


def playwright_unavailable() -> None:
    """For a test module whose ``from playwright.sync_api import …`` failed."""
    _unavailable(PLAYWRIGHT_MISSING, module_level=True)


def find_chromium() -> str | None:
    """CHROMIUM_PATH, else chromium / chromium-browser on PATH, else Debian's /usr/bin/chromium."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    fallback = "/usr/bin/chromium"
    return fallback if os.path.isfile(fallback) and os.access(fallback, os.X_OK) else None


# -- marking and failure reports ----------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    """Every test in this directory is a ``browser`` test (``-m "not browser"`` leaves them out)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (``rep_setup``, ``rep_call``, ``rep_teardown``)
    so fixture teardown knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# -- the server ---------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per request (they drown a failure's report); errors still print."""

    def log_request(self, code="-", size="-"):
        pass


class LiveServer(NamedTuple):
    """``base, app = live_server``: the server's base URL (no trailing slash) and its app."""

    url: str
    app: Flask


@pytest.fixture
def live_server(demo_template, tmp_path):
    """The app on a real socket (werkzeug, threaded) over a fresh copy of the demo database."""
    path = tmp_path / "live.db"
    shutil.copyfile(demo_template, path)
    app = create_app(_config(path, tmp_path))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# -- the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium binary, once Playwright's Python package is known to be importable."""
    if importlib.util.find_spec("playwright") is None:
        _unavailable(PLAYWRIGHT_MISSING)
    path = find_chromium()
    if path is None:
        _unavailable("Chromium not found: set CHROMIUM_PATH or install Debian's chromium (apt-get install chromium)")
    return path


@pytest.fixture(autouse=True)
def _needs_browser(chromium_path):
    """Checked first, so a machine without Chromium skips before a server is built."""


@pytest.fixture(scope="session")
def _browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # a broken binary or missing shared libraries
            _unavailable(f"Chromium at {chromium_path} does not start: {exc}")
        yield browser
        browser.close()


# Each document reports its violations to Python as they happen (the binding outlives navigations);
# Chromium also logs each one to the console ("Refused to … Content Security Policy …").
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  var line = [location.pathname, e.effectiveDirective, e.blockedURI || "-",
              (e.sourceFile || "-") + ":" + e.lineNumber, e.sample || ""].join(" | ");
  if (window.__reportCspViolation) { window.__reportCspViolation(line); }
});
"""


@pytest.fixture
def page_problems():
    """What the pages of this test reported: CSP violations and uncaught JavaScript errors.
    ``browser_page`` fails the test at teardown if there is any; a test may look at it sooner."""
    return []


@pytest.fixture
def browser_page(_browser, request, page_problems):
    """A fresh context (downloads on, 1400×900, zh-CN) and its page; a screenshot if the test fails;
    the test fails if a page reported a CSP violation or an uncaught JavaScript error."""
    from playwright.sync_api import expect

    context = _browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900},
                                   locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    context.expose_function("__reportCspViolation", lambda line: page_problems.append(f"CSP violation: {line}"))
    context.add_init_script(_REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.on("console", lambda msg: page_problems.append(f"console {msg.type}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: page_problems.append(f"JavaScript error on {page.url}: {exc}"))
    try:
        yield page
        try:
            page.evaluate("0")  # a round trip: reports still on their way arrive first
        except Exception:  # the page may be gone
            pass
        if page_problems:
            pytest.fail("the pages reported problems:\n" + "\n".join(dict.fromkeys(page_problems)), pytrace=False)
    finally:
        report = getattr(request.node, "rep_call", None)
        if (report is not None and report.failed) or page_problems:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception as exc:  # the page may be gone; the test's own failure matters more
                print(f"screenshot failed: {exc}")
        context.close()


# -- helpers ------------------------------------------------------------------------------------


def sign_in(page, base: str, username: str, password: str = DEMO_PASSWORD, landing=None) -> None:
    """003 §二: username and password, then the SMS code (the demo shows it on the page); lands on
    首页, or on ``landing`` (a URL or pattern: 修改密码 after a reset)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="登录", exact=True).click()
    hint = page.locator("#sms-code-hint strong")
    expect(hint).to_have_text(re.compile(r"^\d{6}$"))
    page.fill("#code", hint.inner_text().strip())
    page.locator("#verify-button").click()
    expect(page).to_have_url(landing or f"{base}/admin/")


def snapshot(page, name: str) -> None:
    """With BROWSER_SCREENSHOTS=1, keep a full-page screenshot of this step in test-artifacts/
    (to look at the pages while developing; failures are captured regardless)."""
    if os.environ.get("BROWSER_SCREENSHOTS") == "1":
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_out(page) -> None:
    """The user menu (top right) → 退出登录."""
    from playwright.sync_api import expect

    page.wait_for_load_state("load")  # Bootstrap's dropdown script runs at the end of <body>
    page.locator("#userDropdown").click()
    button = page.locator("#logout-button")
    expect(button).to_be_visible()
    button.click()
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    expect(page.locator(".alert", has_text="已退出登录")).to_be_visible()


# -- page helpers shared by the journeys ---------------------------------------------------------
CELL = r"^\s*{}\s*$"  # list cells and menu entries keep the template's whitespace


def open_menu(page, category: str, item: str) -> None:
    """The top menu: a category (批次管理, 证书业务处理 …), then exactly one of its entries."""
    page.wait_for_load_state("load")  # Bootstrap's dropdown script runs at the end of <body>
    page.locator("nav .dropdown-toggle", has_text=category).click()
    entry = re.compile(CELL.format(re.escape(item)))  # 申请业务 is also inside 已申请业务
    page.locator(".dropdown-menu.show a.dropdown-item", has_text=entry).click()


def open_tab(page, label: str) -> None:
    from playwright.sync_api import expect

    tab = page.locator("#status-tabs a.nav-link", has_text=label)
    tab.click()
    expect(tab).to_have_class(re.compile(r"\bactive\b"))


def flash(page, text: str, category: str = "success"):
    from playwright.sync_api import expect

    alert = page.locator(f".alert.alert-{category}", has_text=text)
    expect(alert).to_be_visible()
    return alert


def list_row(page, text: str):
    return page.locator("table.model-list tbody tr", has_text=text)
