"""证书查询, the public verification page (SPEC §10): no sign-in, CSRF on, rate-limited.

What a visitor may learn is decided in ``workflows.verification``; this module turns it into
pages. ``verify_url`` and ``qr_code`` are for the print page (SPEC §6): the QR code printed on
a certificate opens ``/verify/t/<token>``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, request, url_for
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from models import db
from models.base import utcnow
from workflows import verification as rules

bp = Blueprint("verify", __name__)

NOT_FOUND = "未查询到匹配的证书，请核对证书编号和姓名"
TOO_MANY = "查询过于频繁，请稍后再试"
BAD_TOKEN = "二维码无效或已损坏，请使用证书编号和姓名查询"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


class VerifyForm(FlaskForm):
    number = StringField("证书编号", validators=[DataRequired("请输入证书编号"),
                                             Length(max=rules.MAX_NUMBER_LENGTH, message="证书编号过长")])
    name = StringField("持证人姓名", validators=[DataRequired("请输入持证人姓名"),
                                            Length(max=rules.MAX_NAME_LENGTH, message="姓名过长")])


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
    token = rules.token_for(identifier, _secret())
    base = current_app.config.get("VERIFY_PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for("verify.by_ecert_token", token=token, _external=False)
    return url_for("verify.by_ecert_token", token=token, _external=True)


def qr_code(number: str) -> Markup:
    """The QR code of ``verify_url(number)`` as inline SVG, safe to put in a template."""
    return Markup(rules.qr_svg(verify_url(number)))  # segno's own markup, no user text in it


# --- the pages ---------------------------------------------------------------------------


def _allowed() -> tuple[bool, int]:
    """Count this lookup for the client's address; (allowed, seconds until the window ends).

    The counter row is committed at once: a refused or failed lookup still counts.
    """
    window = int(current_app.config["VERIFY_RATE_WINDOW"])
    now = utcnow()
    allowed = rules.hit(db.session, f"verify:{request.remote_addr or '-'}",
                        int(current_app.config["VERIFY_RATE_LIMIT"]), window, now)
    db.session.commit()
    return allowed, rules.retry_after(now, window)


def _too_many(form: VerifyForm, wait: int):
    current_app.logger.info("证书查询: rate limit reached")
    html = render_template("verify/form.html", form=form, error=TOO_MANY)
    return html, 429, {"Retry-After": str(wait)}


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
        return render_template("verify/form.html", form=form, error=None)
    allowed, wait = _allowed()
    if not allowed:
        return _too_many(VerifyForm(formdata=None), wait)
    number = rules.normalize_number(form.number.data)
    result = rules.lookup(db.session, number, form.name.data)
    # SPEC §10 logs: the number searched and the outcome, never the name typed.
    current_app.logger.info("证书查询: number=%s matched=%s", number, result is not None)
    if result is None:
        # A blank form: echoing what was typed would tell a wrong name from an unknown number.
        return render_template("verify/form.html", form=VerifyForm(formdata=None), error=NOT_FOUND)
    return render_template("verify/result.html", result=result)


@bp.route("/verify/t/<token>")
def by_token(token: str):
    allowed, wait = _allowed()
    if not allowed:
        return _too_many(VerifyForm(formdata=None), wait)
    number = rules.number_from_token(token, _secret())
    result = rules.lookup_by_number(db.session, number) if number else None
    current_app.logger.info("证书查询(二维码): number=%s matched=%s", number or "-", result is not None)
    if result is None:
        return render_template("verify/invalid.html", message=BAD_TOKEN), 404
    return render_template("verify/result.html", result=result)


@bp.route("/verify/e/<token>")
def by_ecert_token(token: str):
    """The QR code of an electronic certificate: the certificate's card and whether this issue of
    its electronic certificate is current (issue 19)."""
    allowed, wait = _allowed()
    if not allowed:
        return _too_many(VerifyForm(formdata=None), wait)
    identifier = rules.number_from_token(token, _secret())
    result = rules.lookup_by_identifier(db.session, identifier) if identifier else None
    current_app.logger.info("证书查询(电子证书二维码): identifier=%s matched=%s", identifier or "-", result is not None)
    if result is None:
        return render_template("verify/invalid.html", message=BAD_TOKEN), 404
    return render_template("verify/result.html", result=result)
