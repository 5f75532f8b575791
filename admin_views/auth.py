"""Sign-in pages (SPEC §9, 003 §二): password, SMS code, logout, 修改密码, 找回密码.

The rules are in ``workflows.auth``; this module turns them into forms, redirects and
flash messages, and keeps the session honest on every request (idle timeout, accounts
whose organization went offline, forced password change).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from admin_views.access import client_ip
from admin_views.actions import perform
from models import User, db
from models.base import OutOfRange, utcnow
from workflows import WorkflowError, sessions
from workflows import auth as rules
from workflows.privacy import mask_phone
from workflows.sms import get_sender, shows_code

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

# Session keys. A half-finished sign-in (password right, SMS code not yet) is kept apart
# from Flask-Login's ``_user_id``: until the code is right, nobody is signed in.
PENDING = "auth_pending"
RESET = "auth_reset"
LAST_SEEN = "last_seen"
SID = "sid"  # the server-side session's id (workflows.sessions): a cookie without an open one is refused
# How long a half-finished sign-in or password reset waits for its SMS code.
PENDING_MINUTES = 10
# Endpoints a visitor uses before being signed in; an expired session does not bounce them.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.login_sms", "auth.login_sms_resend", "auth.forgot",
                              "auth.forgot_reset", "auth.forgot_resend", "verify.verify", "verify.by_token",
                              "accounts.register_enterprise", "accounts.register_individual", "accounts.send_sms",
                              "accounts.registered"})


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录"
    login_manager.login_message_category = "warning"
    login_manager.init_app(app)
    app.register_blueprint(bp)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """Every request re-reads the account and its server-side session: disabling the account, taking
    its organization offline, or ending the session (退出, 修改密码 elsewhere, 重置密码 …) signs the
    cookie out at its next click (SPEC §1, §9; issue 16)."""
    found = sessions.find_with_user(db.session, session.get(SID))
    row, user = found or (None, None)
    if row is None or row.ended_at is not None or str(row.user_id) != str(user_id):
        g.ended_session = row
        return None
    if not rules.may_stay_signed_in(user):
        return None
    g.user_session = row
    return user


# --- forms -------------------------------------------------------------------------------


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64, message="用户名过长")])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=128, message="密码过长")])


_CODE_VALIDATORS = [DataRequired("请输入验证码"), Regexp(r"^\s*\d{6}\s*$", message="请输入6位数字验证码")]


class CodeForm(FlaskForm):
    code = StringField("验证码", validators=_CODE_VALIDATORS)


class ChangePasswordForm(FlaskForm):
    old_password = PasswordField("原密码", validators=[DataRequired("请输入原密码")])
    new_password = PasswordField("新密码", validators=[DataRequired("请输入新密码")])
    confirm_password = PasswordField("确认新密码", validators=[DataRequired("请再次输入新密码")])


class ForgotForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64, message="用户名过长")])


class ResetForm(FlaskForm):
    code = StringField("验证码", validators=_CODE_VALIDATORS)
    new_password = PasswordField("新密码", validators=[DataRequired("请输入新密码")])
    confirm_password = PasswordField("确认新密码", validators=[DataRequired("请再次输入新密码")])


# --- helpers -----------------------------------------------------------------------------


def _send_code(user: User, purpose: str, now: datetime) -> str:
    """A code to ``user``'s phone. What the request did so far is committed before the gateway is
    called (``before_send``): no lock is held while it answers (issue 16)."""
    sender = get_sender(current_app.config, current_app.instance_path)
    return rules.issue_code(db.session, user, purpose, sender, now=now,
                            ttl_minutes=current_app.config["SMS_CODE_TTL_MINUTES"],
                            resend_seconds=current_app.config["SMS_RESEND_SECONDS"], before_send=db.session.commit)


def _show_code() -> bool:
    """SMS_SHOW_CODE, honoured only with a development sender (never with a real gateway)."""
    return shows_code(current_app.config)


def _parse_time(value) -> datetime | None:
    """Naive UTC from what a session may hold: an ISO string (ours), a datetime, a timestamp."""
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif isinstance(value, int | float):
            value = datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def safe_next(target: str | None) -> str | None:
    """A local path to return to after signing in, or None (no open redirect)."""
    if not target:
        return None
    target = target.strip()
    if target.endswith("?"):
        target = target[:-1]  # request.full_path adds a bare '?'
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(ch) < 32 for ch in target)):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _pending(key: str) -> tuple[User | None, dict]:
    """The user of a half-finished sign-in or reset, if it is recent enough."""
    data = session.get(key)
    if not isinstance(data, dict):
        return None, {}
    started = _parse_time(data.get("at"))
    if started is None or utcnow() - started > timedelta(minutes=PENDING_MINUTES):
        session.pop(key, None)
        return None, {}
    user = db.session.get(User, data.get("uid")) if isinstance(data.get("uid"), int) else None
    if user is None:
        session.pop(key, None)
        return None, {}
    return user, data


def _end_session() -> None:
    logout_user()
    session.clear()


# --- every request -----------------------------------------------------------------------


@bp.before_app_request
def _guard_session():
    """SPEC §9: 30 minutes idle ends the session; a reset password must be changed first; a cookie
    whose server-side session has ended (issue 16) is signed out and sent to 登录."""
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.endswith(".static"):
        return None
    if "_user_id" not in session:
        return None
    if not current_user.is_authenticated:
        # The loader refused: the session was ended on the server, the account disabled, or its
        # organization left 'active'.
        ended = g.get("ended_session")
        try:
            user = db.session.get(User, int(session["_user_id"]))
        except (TypeError, ValueError, OutOfRange):
            user = None
        refusal = rules.login_refusal(user) if user is not None else None
        if ended is not None and ended.ended_at is not None and user is not None and ended.user_id == user.id:
            # a replayed cookie is worth a line in the 操作日志 (who, from where, which ended session)
            rules.record_logout(db.session, user, reason=f"已失效的登录会话被再次使用，已拒绝（{ended.end_reason}）",
                                ip=client_ip())
            db.session.commit()
        _end_session()
        flash(refusal or sessions.message(ended), "warning")
        return None if endpoint in PUBLIC_ENDPOINTS else redirect(url_for("auth.login"))

    now = utcnow()
    row = g.get("user_session")
    last_seen = _parse_time(session.get(LAST_SEEN))
    idle = timedelta(minutes=current_app.config["IDLE_TIMEOUT_MINUTES"])
    if (last_seen is not None and now - last_seen > idle) or (row is not None and sessions.idle_too_long(row, idle, now)):
        rules.record_logout(db.session, current_user._get_current_object(), reason="登录超时，自动退出", ip=client_ip())
        if row is not None:
            sessions.end(row, sessions.Reason.IDLE, now)
        db.session.commit()
        _end_session()
        flash("登录超时，请重新登录", "warning")
        if endpoint in PUBLIC_ENDPOINTS:
            return None
        target = safe_next(request.full_path) if request.method == "GET" else None
        return redirect(url_for("auth.login", next=target) if target else url_for("auth.login"))
    session[LAST_SEEN] = now.isoformat()
    if row is not None and sessions.touch(row, now):
        db.session.commit()

    if current_user.must_change_password and not endpoint.startswith("auth."):
        return redirect(url_for("auth.change_password"))
    return None


# --- sign in -----------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")) or url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            user = rules.authenticate(db.session, form.username.data, form.password.data, now=now,
                                      max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                                      lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"], ip=client_ip())
        except WorkflowError as exc:
            db.session.commit()  # the failure counter and the 操作日志 row outlive the refusal
            flash(exc.message, "danger")
            return render_template("auth/login.html", form=form)

        previous = session.get(PENDING) if isinstance(session.get(PENDING), dict) else {}
        pending = {"uid": user.id, "at": now.isoformat(), "next": safe_next(request.args.get("next"))}
        try:
            code = _send_code(user, rules.Purpose.LOGIN, now)
        except rules.SmsThrottled as exc:
            # A code went out less than a minute ago and still works: go on to enter it.
            flash(exc.message, "warning")
            code = previous.get("hint") if previous.get("uid") == user.id else None
        except WorkflowError as exc:
            db.session.commit()  # not perform: the right password still clears the failure count
            flash(exc.message, "danger")
            return render_template("auth/login.html", form=form)
        db.session.commit()
        if code and _show_code():
            pending["hint"] = code
        session[PENDING] = pending
        return redirect(url_for("auth.login_sms"))
    return render_template("auth/login.html", form=form)


@bp.route("/login/sms", methods=["GET", "POST"])
def login_sms():
    user, pending = _pending(PENDING)
    if user is None:
        flash("请先输入用户名和密码", "warning")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        now = utcnow()
        try:
            rules.verify_login_code(db.session, user, form.code.data, now=now,
                                    max_attempts=current_app.config["SMS_CODE_MAX_ATTEMPTS"], ip=client_ip())
        except WorkflowError as exc:
            db.session.commit()  # the attempt counts
            flash(exc.message, "danger")
        else:
            db.session.commit()
            target = pending.get("next") or url_for("admin.index")
            sid = sessions.start(db.session, user, now=now, ip=client_ip(),
                                 user_agent=request.headers.get("User-Agent"))
            db.session.commit()
            # A fresh session (and CSRF token) for the signed-in user.
            session.clear()
            login_user(user)
            session.permanent = True
            session[SID] = sid
            session[LAST_SEEN] = now.isoformat()
            return redirect(target)
    return render_template("auth/sms.html", form=form, phone=mask_phone(user.phone),
                           hint=pending.get("hint") if _show_code() else None,
                           resend_url=url_for("auth.login_sms_resend"), back_url=url_for("auth.login"))


@bp.route("/login/sms/resend", methods=["POST"])
def login_sms_resend():
    user, pending = _pending(PENDING)
    if user is None:
        flash("请先输入用户名和密码", "warning")
        return redirect(url_for("auth.login"))
    _resend(user, rules.Purpose.LOGIN, PENDING, pending)
    return redirect(url_for("auth.login_sms"))


def _resend(user: User, purpose: str, key: str, pending: dict) -> None:
    now = utcnow()
    try:
        code = _send_code(user, purpose, now)
    except WorkflowError as exc:  # not perform: a failed send keeps nothing (no commit) and says why
        flash(exc.message, "danger")
        return
    db.session.commit()
    pending = dict(pending, at=now.isoformat())
    pending.pop("hint", None)
    if _show_code():
        pending["hint"] = code
    session[key] = pending
    flash(f"验证码已重新发送至 {mask_phone(user.phone)}", "success")


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        rules.record_logout(db.session, current_user._get_current_object(), ip=client_ip())
        if g.get("user_session") is not None:
            sessions.end(g.user_session, sessions.Reason.LOGOUT)  # a copy of the cookie is now worthless
        db.session.commit()
    _end_session()
    flash("已退出登录", "success")
    return redirect(url_for("auth.login"))


# --- passwords ---------------------------------------------------------------------------


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    user = current_user._get_current_object()
    form = ChangePasswordForm()
    if form.validate_on_submit() and perform(lambda: rules.change_password(
            db.session, user, form.old_password.data, form.new_password.data, form.confirm_password.data,
            keep=g.get("user_session")), "密码修改成功"):
        return redirect(url_for("admin.index"))
    return render_template("auth/password.html", form=form, forced=user.must_change_password)


# 找回密码 answers the same, word for word and limit for limit, whether or not the account exists
# (issue 16): the page keeps only the username typed, and workflows.auth keys the codes by it.
RESEND_SENT = "验证码已重新发送，请查收短信"


def _reset_pending() -> dict | None:
    data = session.get(RESET)
    if not isinstance(data, dict) or not isinstance(data.get("subject"), str):
        return None
    started = _parse_time(data.get("at"))
    if started is None or utcnow() - started > timedelta(minutes=PENDING_MINUTES):
        session.pop(RESET, None)
        return None
    return data


def _start_reset(username: str, now: datetime) -> str | None:
    """Step one (and 重新发送): "sent" or "throttled" (flashed) — alike for real and unknown accounts —
    or None when the form must be shown again (its message flashed)."""
    sender = get_sender(current_app.config, current_app.instance_path)
    code = None
    # not perform: a throttled request (a code sent a moment ago) still goes on to the reset step
    try:
        code = rules.start_password_reset(db.session, username, sender, now=now,
                                          ttl_minutes=current_app.config["SMS_CODE_TTL_MINUTES"],
                                          resend_seconds=current_app.config["SMS_RESEND_SECONDS"], ip=client_ip(),
                                          before_send=db.session.commit)
    except rules.SmsThrottled as exc:
        db.session.commit()
        flash(exc.message, "warning")  # the code sent a moment ago still works
        outcome = "throttled"
    except WorkflowError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return None
    else:
        outcome = "sent"
    db.session.commit()
    previous = _reset_pending() or {}
    hint = code if code and _show_code() else (previous.get("hint") if previous.get("subject") == username else None)
    session[RESET] = {"subject": username, "at": now.isoformat(), **({"hint": hint} if hint else {})}
    return outcome


@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        if _start_reset(form.username.data.strip(), utcnow()):
            return redirect(url_for("auth.forgot_reset"))
    return render_template("auth/forgot.html", form=form, step="username")


@bp.route("/forgot/reset", methods=["GET", "POST"])
def forgot_reset():
    pending = _reset_pending()
    if pending is None:
        flash("请先输入用户名获取验证码", "warning")
        return redirect(url_for("auth.forgot"))
    form = ResetForm()
    if form.validate_on_submit():
        try:
            rules.reset_password_with_code(db.session, pending["subject"], form.code.data, form.new_password.data,
                                           form.confirm_password.data, now=utcnow(),
                                           max_attempts=current_app.config["SMS_CODE_MAX_ATTEMPTS"], ip=client_ip())
        except WorkflowError as exc:
            db.session.commit()  # a wrong code counts as an attempt
            flash(exc.message, "danger")
        else:
            db.session.commit()
            session.pop(RESET, None)
            flash("密码已重置，请使用新密码登录", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form, step="reset", phone=None,
                           hint=pending.get("hint") if _show_code() else None,
                           resend_url=url_for("auth.forgot_resend"))


@bp.route("/forgot/resend", methods=["POST"])
def forgot_resend():
    pending = _reset_pending()
    if pending is None:
        flash("请先输入用户名获取验证码", "warning")
        return redirect(url_for("auth.forgot"))
    if _start_reset(pending["subject"], utcnow()) == "sent":
        flash(RESEND_SENT, "success")
    return redirect(url_for("auth.forgot_reset"))
