"""Security headers on every response (README "Security headers").

Framing denied, nosniff, a strict Referrer-Policy, HSTS when SESSION_COOKIE_SECURE is on, and a
Content-Security-Policy naming no source outside the app, with a per-request nonce instead of
'unsafe-inline' for scripts. Every kind of response is checked — pages, redirects, errors,
static files, downloads — and the HTML of every menu page of several roles is read for what the
policy would refuse in a browser (tests/browser/test_content_security_policy.py runs it).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app import create_app
from tests.conftest import Browser

HSTS = "max-age=31536000; includeSubDomains"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def policy(resp) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    directives = {}
    for part in resp.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = sources
    return directives


def nonce_of(resp) -> str:
    nonces = [s for s in policy(resp)["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1, policy(resp)["script-src"]
    return nonces[0][len("'nonce-"):-1]


def assert_secured(resp, *, hsts: bool = False, referrer: str = "same-origin") -> None:
    headers = resp.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == referrer
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Permissions-Policy"] == "camera=(), microphone=(), geolocation=()"
    assert headers.get("Strict-Transport-Security") == (HSTS if hsts else None)
    csp = policy(resp)
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    assert csp["font-src"] == ["'self'"] and csp["img-src"] == ["'self'", "data:"]
    # nothing from elsewhere: only keywords ('self', 'none', a nonce …) and Bootstrap's data: images
    for directive, sources in csp.items():
        for source in sources:
            assert source.startswith("'") or (directive == "img-src" and source == "data:"), (directive, source)
            assert source != "'unsafe-eval'", directive
    script = csp["script-src"]
    assert script[0] == "'self'" and len(script) == 2 and re.fullmatch(r"'nonce-[\w-]{16,}'", script[1]), script
    assert "'unsafe-inline'" not in script and "'unsafe-hashes'" not in script


# -- every kind of response ------------------------------------------------------------------------------


def test_a_signed_in_page(login):
    resp = login("province").get("/admin/")
    assert resp.status_code == 200
    assert_secured(resp)


def test_the_login_page_and_a_redirect(browser):
    resp = browser.get("/login")
    assert resp.status_code == 200
    assert_secured(resp)
    for url in ("/", "/admin/"):  # the root, and a page that wants a signed-in user
        resp = browser.get(url)
        assert resp.status_code == 302
        assert_secured(resp)


@pytest.mark.parametrize("url", ["/static/app.css", "/static/admin.js", "/admin/static/vendor/jquery.min.js"])
def test_a_static_file(browser, url):
    resp = browser.get(url)
    assert resp.status_code == 200
    assert_secured(resp)


def test_a_download_keeps_its_own_content_type(login):
    resp = login("inst_jinan").get("/admin/batch-create/template.xlsx")
    assert resp.status_code == 200 and resp.mimetype == XLSX
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert_secured(resp)


def test_error_pages(browser, login, app):
    resp = browser.get("/no-such-page")
    assert resp.status_code == 404
    assert_secured(resp)
    resp = login("jinan").get("/admin/batch-create/template.xlsx")  # an institution's screen
    assert resp.status_code == 403
    assert_secured(resp)
    resp = browser.post("/login", {"username": "province", "password": "x"}, csrf=False)
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    assert_secured(resp)
    app.config["MAX_CONTENT_LENGTH"] = 1024
    resp = browser.post("/login", {"username": "x" * 4096})
    assert resp.status_code == 413
    assert_secured(resp)


def test_a_server_error():
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False, "SECRET_KEY": "x",
                      "SQLALCHEMY_DATABASE_URI": "sqlite://"})

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    resp = app.test_client().get("/boom")
    assert resp.status_code == 500 and "系统繁忙" in resp.get_data(as_text=True)
    assert_secured(resp)


def test_the_public_verification_page_keeps_its_referrer_on_the_site(app, browser):
    """证书查询's QR token is in its URL: the Referer never leaves the site (same-origin) — but is sent to
    the site itself, which the CSRF check behind HTTPS needs (no-referrer refused every lookup there)."""
    for url, status in (("/verify", 200), ("/verify/t/not-a-token", 404)):
        resp = browser.get(url)
        assert resp.status_code == status
        assert_secured(resp, referrer="same-origin")
    client = app.test_client()
    page = client.get("/verify", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "number": "26370100000000", "name": "张三"}
    refused = client.post("/verify", data=form, base_url="https://localhost")
    assert refused.status_code == 400  # what a browser sending no Referer got behind HTTPS
    sent = client.post("/verify", data=form, base_url="https://localhost",
                       headers={"Referer": "https://localhost/verify"})
    assert sent.status_code == 200


def test_hsts_only_when_the_session_cookie_is_secure(app, browser):
    assert "Strict-Transport-Security" not in browser.get("/login").headers
    app.config["SESSION_COOKIE_SECURE"] = True
    for url in ("/login", "/static/app.css", "/no-such-page"):
        assert_secured(browser.get(url, base_url="https://localhost"), hsts=True)


# -- the nonce -------------------------------------------------------------------------------------------


class Markup(HTMLParser):
    """What the policy decides about in a page: inline scripts and styles (and their nonce),
    event-handler and style attributes."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict] = []  # attributes of each <script>
        self.styles: list[dict] = []  # attributes of each <style>
        self.handlers: list[str] = []  # <tag on…="…">
        self.style_attributes: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
        elif tag == "style":
            self.styles.append(attributes)
        self.handlers += [f"<{tag} {name}=…>" for name, _ in attrs if name.startswith("on")]
        if "style" in attributes:
            self.style_attributes.append(f"<{tag} style={attributes['style']!r}>")


def test_one_nonce_per_response_on_the_pages_inline_scripts(browser):
    first, second = browser.get("/register/individual"), browser.get("/register/individual")
    assert nonce_of(first) != nonce_of(second)
    for resp in (first, second):
        inline = [s for s in Markup(resp.get_data(as_text=True)).scripts if "src" not in s]
        assert inline and all(s.get("nonce") == nonce_of(resp) for s in inline)  # the SMS button's script


def test_flask_admins_scripts_carry_the_nonce(login):
    resp = login("inst_jinan").get("/admin/certificate/")  # a list: filters, actions, select2 …
    scripts = Markup(resp.get_data(as_text=True)).scripts
    flask_admin = [s for s in scripts if s.get("src", "").startswith("/admin/static/")]
    assert len(flask_admin) >= 8 and all(s.get("nonce") == nonce_of(resp) for s in flask_admin)
    assert {"src": "/static/admin.js"} in scripts


def test_only_the_print_page_allows_style_attributes(login):
    client = login("inst_jinan")
    listing = client.get("/admin/certificate/")
    assert policy(listing)["style-src"] == ["'self'", f"'nonce-{nonce_of(listing)}'"]
    assert "style-src-attr" not in policy(listing)
    ident = re.search(r"/admin/certificate/details/\?id=(\d+)", listing.get_data(as_text=True)).group(1)
    resp = client.get(f"/admin/certificate/print/?id={ident}")
    assert resp.status_code == 200
    assert_secured(resp)
    csp, nonce = policy(resp), nonce_of(resp)
    assert csp["style-src-attr"] == ["'unsafe-inline'"]  # the fields' millimetre positions
    assert csp["style-src-elem"] == ["'self'", f"'nonce-{nonce}'"]  # @page size: a <style> with the nonce
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]  # browsers without CSP 3's -elem/-attr
    page = Markup(resp.get_data(as_text=True))
    assert page.styles == [{"nonce": nonce}] and page.style_attributes and not page.handlers


# -- what a browser would refuse, on every menu page of several roles ------------------------------------

NAV_LINK = re.compile(r'<a [^>]*href="(/admin/[^"]*)"')
DETAILS = re.compile(r'href="(/admin/[\w-]+/details/\?id=\d+[^"]*)"')


def assert_nothing_refused(url: str, resp) -> None:
    """No event-handler attribute, no inline script or style without the nonce, no style attribute
    unless this response allows them (the print sheet), javascript: links only as void(0)."""
    assert resp.status_code == 200, url
    html = resp.get_data(as_text=True)
    found = Markup(html)
    assert not found.handlers, (url, found.handlers)
    if "style-src-attr" not in policy(resp):
        assert not found.style_attributes, (url, found.style_attributes)
    inline = [s for s in found.scripts + found.styles if "src" not in s]
    assert all(s.get("nonce") == nonce_of(resp) for s in inline), (url, inline)
    assert set(re.findall(r'href="(javascript:[^"]*)"', html)) <= {"javascript:void(0)"}, url  # admin.js


@pytest.mark.parametrize("username", ["province", "jinan", "inst_jinan", "enterprise", "person", "ministry"])
def test_menu_pages_have_nothing_the_policy_refuses(login, username):
    client: Browser = login(username)
    home = client.get("/admin/").get_data(as_text=True)
    nav = home[home.index("<nav"):home.index("</nav>")]
    pages = list(dict.fromkeys(["/admin/", *NAV_LINK.findall(nav)]))
    assert len(pages) >= 3
    for url in pages:
        resp = client.get(url)
        assert_nothing_refused(url, resp)
        details = DETAILS.search(resp.get_data(as_text=True))
        if details:  # the first record of a list, too
            record = details.group(1).replace("&amp;", "&")
            assert_nothing_refused(record, client.get(record))


def test_public_pages_have_nothing_the_policy_refuses(browser):
    for url in ("/login", "/forgot", "/register/individual", "/register/enterprise", "/verify"):
        assert_nothing_refused(url, browser.get(url))
