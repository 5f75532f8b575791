"""证书查询, the public verification page (SPEC §10): no sign-in, CSRF on, rate-limited.

What a visitor may learn is decided in ``workflows.verification``; this module turns it into
pages. ``verify_url`` and ``qr_code`` are for the print page (SPEC §6): the QR code printed on
a certificate opens ``/verify/t/<token>``; ``ecert_url`` is the QR code of an electronic
certificate (issue 19), ``/verify/e/<token>``, its token signed under a salt of its own.

Two ways to ask, as two tabs of one page: 证书编号 and 姓名 (``/verify``), and 电子证书核验
(``/verify/file``): an uploaded electronic certificate, checked by ``workflows.verification.check_upload``.
Every lookup — a form, a QR code, a file — counts towards the same limit per address.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from admin_views.ecert_keys import trust_roots
from models import db
from models.base import utcnow
from workflows import WorkflowError, ecert_document
from workflows import verification as rules

bp = Blueprint("verify", __name__)

NOT_FOUND = "未查询到匹配的证书，请核对证书编号和姓名"
TOO_MANY = "查询过于频繁，请稍后再试"
BAD_TOKEN = "二维码无效或已损坏，请使用证书编号和姓名查询"
NO_FILE = "请选择要核验的电子证书文件（.pdf）"
NOT_CONFIGURED = "本系统尚未配置电子证书签名证书，暂不能核验电子证书，请联系省厅系统管理员"
# the rest of an upload's request besides the file: the multipart headers, the CSRF token
FORM_OVERHEAD = 64 * 1024


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


class VerifyForm(FlaskForm):
    number = StringField("证书编号", validators=[DataRequired("请输入证书编号"),
                                             Length(max=rules.MAX_NUMBER_LENGTH, message="证书编号过长")])
    name = StringField("持证人姓名", validators=[DataRequired("请输入持证人姓名"),
                                            Length(max=rules.MAX_NAME_LENGTH, message="姓名过长")])


class EcertForm(FlaskForm):
    file = FileField("电子证书文件", validators=[FileRequired(NO_FILE)])


# --- for the print page ------------------------------------------------------------------


def _secret() -> str:
    return current_app.config.get("VERIFY_TOKEN_SECRET") or current_app.config["SECRET_KEY"]


def verify_url(number: str) -> str:
    """The address the QR code on certificate ``number`` opens (needs a request context
    unless VERIFY_PUBLIC_URL is set)."""
    token = rules.token_for(number, _secret())
    base = current_app.config.get("VERIFY_PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for("verify.by_token", token=token, _external=False)
    return url_for("verify.by_token", token=token, _external=True)


def ecert_url(identifier: str) -> str:
    """The address the QR code on an electronic certificate opens: its 证照标识, signed, so the page
    can say which issue it is (「已变更，请以新证为准」) without the holder's name."""
    token = rules.ecert_token_for(identifier, _secret())
    base = current_app.config.get("VERIFY_PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for("verify.by_ecert_token", token=token, _external=False)
    return url_for("verify.by_ecert_token", token=token, _external=True)


def qr_code(number: str) -> Markup:
    """The QR code of ``verify_url(number)`` as inline SVG, safe to put in a template."""
    return Markup(rules.qr_svg(verify_url(number)))  # segno's own markup, no user text in it


# --- the pages ---------------------------------------------------------------------------


def count_lookup() -> tuple[bool, int]:
    """Count this lookup for the client's address; (allowed, seconds until the window ends).

    The counter row is committed at once: a refused or failed lookup still counts.
    """
    window = int(current_app.config["VERIFY_RATE_WINDOW"])
    now = utcnow()
    allowed = rules.hit(db.session, f"verify:{request.remote_addr or '-'}",
                        int(current_app.config["VERIFY_RATE_LIMIT"]), window, now)
    db.session.commit()
    return allowed, rules.retry_after(now, window)


def _max_bytes() -> int:
    return int(current_app.config["ECERT_VERIFY_MAX_BYTES"])


def _size_words(size: int) -> str:
    """「1MB」, 「512KB」: the limit as the hint under the upload says it."""
    mib = 1024 * 1024
    return f"{size // mib}MB" if size % mib == 0 else f"{max(1, size // 1024)}KB"


def _page(tab: str, *, form=None, error: str | None = None, status: int = 200, headers=None):
    """证书查询's form page on one of its tabs: ``number`` (证书编号和姓名) or ``file`` (电子证书核验)."""
    if form is None:
        form = EcertForm(formdata=None) if tab == "file" else VerifyForm(formdata=None)
    html = render_template("verify/form.html", tab=tab, form=form, error=error,
                           max_size=_size_words(_max_bytes()))
    return html, status, headers or {}


def _too_many(tab: str, wait: int):
    current_app.logger.info("证书查询: rate limit reached")
    return _page(tab, error=TOO_MANY, status=429, headers={"Retry-After": str(wait)})


@bp.url_value_preprocessor
def _upload_limit(endpoint, values):
    """Runs before any before_request hook reads the form (the NUL check, CSRF): the upload's request
    may be the file limit and its form, not the app's MAX_CONTENT_LENGTH of an attachment form —
    anything bigger is refused (413, ``_too_large``) without being read."""
    if endpoint == "verify.check_upload":
        request.max_content_length = _max_bytes() + FORM_OVERHEAD


@bp.errorhandler(413)
def _too_large(exc):
    if request.endpoint == "verify.check_upload":
        current_app.logger.info("证书查询(电子证书核验): request too large")
        return _page("file", error=ecert_document.TOO_BIG, status=413)
    return render_template("error.html", code=413, message="上传的文件过大"), 413


@bp.after_request
def _private(response):
    """Results are per visitor and the QR token sits in the URL: no caches, and the Referer (with the
    token) never leaves the site — but is sent to the site itself: Flask-WTF's CSRF check behind HTTPS
    refuses a POST without a same-origin Referer, so `no-referrer` broke the form there."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    form = VerifyForm()
    if not form.validate_on_submit():
        return _page("number", form=form)
    allowed, wait = count_lookup()
    if not allowed:
        return _too_many("number", wait)
    number = rules.normalize_number(form.number.data)
    result = rules.lookup(db.session, number, form.name.data)
    # SPEC §10 logs: the number searched and the outcome, never the name typed.
    current_app.logger.info("证书查询: number=%s matched=%s", number, result is not None)
    if result is None:
        # A blank form: echoing what was typed would tell a wrong name from an unknown number.
        return _page("number", error=NOT_FOUND)
    return render_template("verify/result.html", result=result)


def _qr_page(token: str, read_token, lookup, what: str, field: str):
    """A QR code's page: the token counted as a lookup, its signed value looked up, the card."""
    allowed, wait = count_lookup()
    if not allowed:
        return _too_many("number", wait)
    value = read_token(token, _secret())
    result = lookup(db.session, value) if value else None
    current_app.logger.info("证书查询(%s): %s=%s matched=%s", what, field, value or "-", result is not None)
    if result is None:
        return render_template("verify/invalid.html", message=BAD_TOKEN), 404
    return render_template("verify/result.html", result=result)


@bp.route("/verify/t/<token>")
def by_token(token: str):
    """The QR code printed on a certificate (its number, signed)."""
    return _qr_page(token, rules.number_from_token, rules.lookup_by_number, "二维码", "number")


@bp.route("/verify/e/<token>")
def by_ecert_token(token: str):
    """The QR code of an electronic certificate: the certificate's card and whether this issue of
    its electronic certificate is current (issue 19)."""
    return _qr_page(token, rules.identifier_from_token, rules.lookup_by_identifier, "电子证书二维码", "identifier")


@bp.route("/verify/file", methods=["GET", "POST"])
def check_upload():
    """电子证书核验: an uploaded electronic certificate — is its signature the province's, is the
    file as signed, and (only then) the certificate's card and whether that issue is current."""
    form = EcertForm()
    if not form.validate_on_submit():
        return _page("file", form=form)
    max_bytes = _max_bytes()
    data = form.file.data.stream.read(max_bytes + 1)  # never more: a bigger file is TOO_BIG either way
    if not data:  # an empty file is not a lookup, like an empty form
        form.file.errors = [rules.EMPTY_FILE]
        return _page("file", form=form)
    allowed, wait = count_lookup()
    if not allowed:
        return _too_many("file", wait)
    try:
        roots = trust_roots()
    except WorkflowError:
        current_app.logger.warning("证书查询(电子证书核验): no signing certificate configured")
        return _page("file", error=NOT_CONFIGURED)
    answer = rules.check_upload(db.session, data, roots, max_bytes=max_bytes)
    # as the other lookups: the identifier checked and the outcome; the file's holder never
    current_app.logger.info("证书查询(电子证书核验): identifier=%s genuine=%s matched=%s problem=%s",
                            answer.identifier or "-", answer.identifier is not None, answer.result is not None,
                            answer.problem or "-")
    if not answer.examined:
        return _page("file", error=answer.problem)
    return render_template("verify/file_result.html", answer=answer)
