"""Flask-Admin views, public pages and templates (ARCHITECTURE: admin_views/).

``init_app`` wires the extensions in one place: Babel (Flask-Admin's zh_Hans_CN), CSRF on
every POST, Flask-Login, the admin with its menus, the public blueprints and error pages;
``hardening`` adds what every request and response passes through (input checks, security headers).
"""

from __future__ import annotations

from flask import Flask, has_request_context, redirect, render_template, url_for
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect

from models.base import format_local
from workflows.privacy import mask_id_number, mask_phone

csrf = CSRFProtect()


def _batch_state(value) -> str:
    from models import BatchStatus

    try:
        return BatchStatus(value).label
    except ValueError:
        return value


def _request_ip() -> str | None:
    """The client IP of the request being served, for every 操作日志 row written in it (client_ip:
    ProxyFix's address behind a proxy); None outside a request (job worker, CLI)."""
    from admin_views.access import client_ip

    return client_ip() if has_request_context() else None


def _corrections_of(obj) -> list:
    from flask_login import current_user

    from models import db
    from workflows.datafix import corrections

    return corrections(db.session, current_user, obj)


def _configure_ecert(app: Flask) -> None:
    """电子证书's identifiers carry ECERT_DEPARTMENT_CODE: a wrong one stops the start, not a download."""
    from workflows import ecert
    from workflows.validators import credit_check_char

    code = str(app.config["ECERT_DEPARTMENT_CODE"] or "").upper()
    if len(code) != 18 or credit_check_char(code[:17]) != code[17]:
        raise RuntimeError(f"ECERT_DEPARTMENT_CODE={code!r} 不是有效的统一社会信用代码（颁证单位代码）")
    ecert.configure(ecert.Naming(str(app.config["ECERT_ID_PREFIX"]), code))


def _error_page(code: int, message: str, exc=None):
    """The back office's error page, or for the API's paths (issue 20) a problem+json: Flask
    prefers these handlers by code to the API blueprints' handler by class, so they hand over."""
    from admin_views import api

    if api.is_api_request():
        return api.handle_http_exception(exc) if exc is not None else api.problem(code, api.TITLES.get(code, message))
    return render_template("error.html", code=code, message=message), code


def init_app(app: Flask) -> None:
    from admin_views import accounts, auth, hardening, menu, verify
    from admin_views.access import may_open
    from workflows.audit import set_ip_source

    set_ip_source(_request_ip)
    _configure_ecert(app)

    Babel(app)  # every page in BABEL_DEFAULT_LOCALE (settings: Flask-Admin's zh_Hans_CN)
    hardening.init_app(app)  # before CSRF: a NUL byte is refused before anything reads the form
    csrf.init_app(app)
    auth.init_app(app)
    accounts.init_app(app)
    menu.init_app(app)
    verify.init_app(app)
    from admin_views import api

    api.init_app(app)
    for blueprint in api.KEY_BLUEPRINTS:
        csrf.exempt(blueprint)
    app.jinja_env.globals["batch_state_label"] = _batch_state  # admin/_log.html's 状态变化 column
    app.jinja_env.filters["local_time"] = format_local
    # lists show ID numbers and phones masked (issue 17; workflows.privacy); details in full
    app.jinja_env.filters["mask_id_number"] = mask_id_number
    app.jinja_env.filters["mask_phone"] = mask_phone
    app.jinja_env.globals["may_open"] = may_open  # links to another screen only when it would open
    app.jinja_env.globals["corrections_of"] = _corrections_of  # admin/_corrections.html

    @app.route("/")
    def root():
        return redirect(url_for("admin.index"))

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("error.html", code=400, message="页面已过期或缺少安全令牌(CSRF)，请刷新页面后重试"), 400

    @app.errorhandler(403)
    def forbidden(exc):
        return _error_page(403, "无权访问该页面", exc)

    @app.errorhandler(404)
    def not_found(exc):
        return _error_page(404, "页面或记录不存在", exc)

    @app.errorhandler(413)
    def too_large(exc):
        return _error_page(413, "上传的文件过大", exc)

    @app.errorhandler(500)
    def server_error(exc):
        return _error_page(500, "系统繁忙，请稍后重试", exc)
