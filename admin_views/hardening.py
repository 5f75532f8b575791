"""What every request passes through before any view sees it (issue 16): input the database
cannot take is refused where it enters, the same on PostgreSQL as on SQLite.

- A NUL byte (``\\x00``) anywhere in the URL, the query string, a form field or an uploaded file's
  name: PostgreSQL refuses it in every text column and parameter (DataError, a 500), SQLite stores
  it. No legitimate input holds one, so the request is refused at once with a Chinese message.
- An integer the columns cannot hold (``?id=99999999999``, a forged ``rowid``, a filter value):
  ``models.base.CheckedInteger`` refuses it where it is bound, whatever view or query carries it;
  here that refusal becomes the answer a missing record gets — 404, nothing written.
- A method the route does not take (GET on a POST-only 导出) gets a Chinese page, not Werkzeug's.

And what every response carries: the security headers and the Content-Security-Policy (README
"Security headers"); with SERVER_TIMING on (bench/served.py), the CPU the request cost its worker.
"""

from __future__ import annotations

import secrets
import time

from flask import Flask, current_app, g, render_template, request
from sqlalchemy.exc import StatementError

from models import db
from models.base import OutOfRange

MSG_NUL = "提交的内容包含不允许的控制字符，请检查后重新输入"
MSG_NOT_FOUND = "页面或记录不存在"
MSG_METHOD = "请求方式不正确，请从页面上的按钮操作"

NUL = "\x00"


def _holds_nul() -> bool:
    if NUL in request.path:
        return True
    for key, value in request.args.items(multi=True):
        if NUL in key or NUL in value:
            return True
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in ("application/x-www-form-urlencoded",
                                                                             "multipart/form-data"):
        for key, value in request.form.items(multi=True):
            if NUL in key or NUL in value:
                return True
        for key, storage in request.files.items(multi=True):
            if NUL in key or NUL in (storage.filename or ""):
                return True
    return False


def _refused(code: int, message: str, api_message: str | None = None):
    """The error page, or for the API's paths its problem+json (issue 20)."""
    from admin_views import api

    if api.is_api_request():
        return api.problem(code, api_message or message)
    return render_template("error.html", code=code, message=message), code


def _refuse_nul():
    if _holds_nul():
        return _refused(400, MSG_NUL, "请求中包含空字符（\\u0000）等不允许的控制字符")
    return None


def _out_of_range(exc: StatementError):
    """A statement failed while binding its values: OutOfRange is a record that cannot exist."""
    if not isinstance(getattr(exc, "orig", None), OutOfRange):
        raise exc
    db.session.rollback()
    return _refused(404, MSG_NOT_FOUND, "记录不存在")


def _bare_out_of_range(exc: OutOfRange):
    db.session.rollback()
    return _refused(404, MSG_NOT_FOUND, "记录不存在")


def _method_not_allowed(exc):
    return _refused(405, MSG_METHOD, "该接口不支持这种请求方法")


# -- security headers (README "Security headers") ------------------------------------------------

HSTS = "max-age=31536000; includeSubDomains"


def csp_nonce() -> str:
    """This response's Content-Security-Policy nonce: one random value per request, put on every
    inline <script>/<style> we serve (Flask-Admin's via ``csp_nonce_generator``, ours via the
    Jinja global of the same name)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def allow_style_attributes() -> str:
    """Called by a template that cannot do without style="…" attributes: the print sheet, whose
    fields sit at per-format millimetre positions (printing/_sheet.html). Only that response's
    policy allows them; ``{{ allow_style_attributes() }}`` renders nothing."""
    g.csp_style_attributes = True
    return ""


def content_security_policy(nonce: str, style_attributes: bool = False) -> str:
    """Only this app's own files, plus inline <script>/<style> elements carrying ``nonce``.

    The product runs offline (SPEC §8), so no host is ever listed. Inline event handlers
    (onclick=…) and javascript: URLs cannot carry a nonce: they are refused, and the behaviour
    lives in static files (admin.js). ``style_attributes``: style="…" allowed for this response
    (CSP 3's style-src-attr; style-src's 'unsafe-inline' is the fallback of browsers without it,
    which a nonce would disable, so the nonce moves to style-src-elem).
    """
    if style_attributes:
        styles = ["style-src 'self' 'unsafe-inline'", f"style-src-elem 'self' 'nonce-{nonce}'",
                  "style-src-attr 'unsafe-inline'"]
    else:
        styles = [f"style-src 'self' 'nonce-{nonce}'"]
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        *styles,
        "img-src 'self' data:",  # data: is Bootstrap's own SVG icons (select arrows, validation marks)
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def security_headers(response):
    """On every response — pages, redirects, errors, static files, downloads. ``setdefault``:
    a header a view set on purpose (a download's nosniff, 证书查询's no-referrer) is kept."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy",
                       content_security_policy(csp_nonce(), g.get("csp_style_attributes", False)))
    headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors 'none' for browsers without CSP 2
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: behind HTTPS Flask-WTF's CSRF check (WTF_CSRF_SSL_STRICT)
    # refuses a POST whose Referer is missing or from another origin, so no-referrer would
    # break every form. same-origin sends it to this app only, never to another site.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config.get("SESSION_COOKIE_SECURE"):  # served over HTTPS: never over HTTP again
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _start_timing():
    g.cpu_started = time.process_time()


def _server_timing(response):
    """``Server-Timing: cpu;dur=…`` — the worker's CPU for this request (a sync gunicorn worker runs one
    request at a time, so the process's CPU is the request's). Only with SERVER_TIMING on: the bench
    reads it per kind of page; a deployment does not tell visitors how long it thinks."""
    started = g.get("cpu_started")
    if started is not None:
        response.headers["Server-Timing"] = f"cpu;dur={(time.process_time() - started) * 1000:.2f}"
    return response


def init_app(app: Flask) -> None:
    # first of the before_request hooks: nothing (sign-in, CSRF, the session guard) reads the input before
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_nul)
    app.register_error_handler(StatementError, _out_of_range)
    app.register_error_handler(OutOfRange, _bare_out_of_range)
    app.register_error_handler(405, _method_not_allowed)
    app.after_request(security_headers)
    if app.config.get("SERVER_TIMING"):
        app.before_request_funcs.setdefault(None, []).insert(0, _start_timing)
        app.after_request(_server_timing)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["allow_style_attributes"] = allow_style_attributes
