"""Every form and search of every demo role, fuzzed against gunicorn on PostgreSQL (issue 16 item 9):
no answer of 500 or more.

Each role crawls what it can reach from /admin/ (links and forms as the pages show them), then
sends every form it found — searches and filters (GET) and every POST form but 退出 — once per
hostile value, that value in every field the form has: a NUL byte, integers beyond any column,
negative ids, text of 5,000 characters, markup, SQL, malformed dates and full-width digits.
PostgreSQL refuses NUL bytes and out-of-range integers that SQLite accepts, so this is where a
check missing from a view shows; the served server's log is read for tracebacks too.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import requests

ROLES = ("province", "province_reviewer", "jinan", "qingdao", "inst_jinan", "inst_qingdao", "direct_inst",
         "enterprise", "enterprise2", "school", "person", "ministry")
HOSTILE = ["a\x00b", "9" * 20, "2147483648", "-1", "", "a" * 5000, "<script>alert('x')</script>--' OR '1'='1",
           "2026-13-45", "１２３４５６"]
MAX_PAGES = 70  # per role: every menu page and a few of each kind of detail page
PER_ENDPOINT = 3
SKIP_ACTIONS = ("/logout",)
HREF_RE = re.compile(r'href="([^"#]+)"')


class Forms(HTMLParser):
    """The forms of a page: (method, action, enctype, [(name, kind, value)])."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self._current = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = [(a.get("method") or "get").lower(), a.get("action") or "", a.get("enctype") or "", []]
            self.forms.append(self._current)
        elif self._current is not None and tag in ("input", "select", "textarea") and a.get("name"):
            kind = a.get("type", "text") if tag == "input" else tag
            if kind not in ("submit", "button", "image", "reset"):
                self._current[3].append((a["name"], kind, a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def _shape(path: str) -> str:
    """A page's kind: its path with numbers and query values blanked (one crawl per kind, a few rows)."""
    parts = urlsplit(path)
    return re.sub(r"\d+", "#", parts.path) + "?" + "&".join(sorted(k for k, _ in parse_qsl(parts.query)))


def crawl(visitor) -> list[tuple]:
    """Reachable pages (bounded) and the forms on them: [(page, method, action, enctype, fields)]."""
    queue, seen, shapes, forms = ["/admin/"], {"/admin/"}, {}, []
    while queue and len(seen) <= MAX_PAGES:
        path = queue.pop(0)
        resp = visitor.get(path)
        if resp.status_code != 200 or "text/html" not in resp.headers.get("Content-Type", ""):
            continue
        parser = Forms()
        parser.feed(resp.text)
        for method, action, enctype, fields in parser.forms:
            target = urlsplit(urljoin(visitor.base + path, html.unescape(action) or path))
            forms.append((path, method, target.path + (f"?{target.query}" if target.query else ""), enctype, fields))
        for href in HREF_RE.findall(resp.text):
            url = urlsplit(urljoin(visitor.base + path, html.unescape(href)))
            if url.netloc != urlsplit(visitor.base).netloc or not url.path.startswith("/admin"):
                continue
            link = url.path + (f"?{url.query}" if url.query else "")
            shape = _shape(link)
            if link in seen or shapes.get(shape, 0) >= PER_ENDPOINT or "export" in link or "download" in link:
                continue
            shapes[shape] = shapes.get(shape, 0) + 1
            seen.add(link)
            queue.append(link)
    return forms


def test_every_form_and_search_of_every_role_answers_below_500(gunicorn_pg):
    site = gunicorn_pg
    sent, problems, forms_seen = 0, [], 0
    for role in ROLES:
        visitor = site.visitor(role)
        unique = {}
        for page, method, action, enctype, fields in crawl(visitor):
            if any(action.startswith(s) for s in SKIP_ACTIONS):
                continue
            unique.setdefault((method, action.split("?")[0], tuple(sorted(n for n, *_ in fields))),
                              (page, method, action, enctype, fields))
        forms_seen += len(unique)
        for _page, method, action, enctype, fields in unique.values():
            for value in HOSTILE:
                data = {name: (default if name == "csrf_token" else value)
                        for name, kind, default in fields if kind != "file"}
                try:
                    if method == "post":
                        data.setdefault("csrf_token", visitor.token or visitor.fetch_token("/admin/"))
                        files = {"_none": ("", b"")} if "multipart" in enctype else None
                        resp = visitor.post(action, data, files=files)
                    else:
                        base = action.split("?")[0]
                        resp = visitor.get(f"{base}?{urlencode(data)}")
                except requests.RequestException as exc:
                    problems.append(f"{role} {method} {action} {value[:20]!r}: {type(exc).__name__}")
                    continue
                sent += 1
                if resp.status_code >= 500:
                    problems.append(f"{role} {method.upper()} {action} {value[:20]!r}: {resp.status_code}")
                if resp.status_code == 302 and resp.headers.get("Location", "").split("?")[0].endswith("/login"):
                    visitor = site.visitor(role)  # a form that signed us out (a changed phone …): again
    errors = site.served.server_errors()
    assert not problems, "\n".join(problems[:40])
    assert not errors, "\n\n".join(errors[:5])
    assert forms_seen > 150 and sent > 1400, (forms_seen, sent)
    assert site.settled() == 0
