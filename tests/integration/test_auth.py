"""Sign-in through HTTP (SPEC §9, 003 §二): password, SMS code, lockout, timeouts, passwords.

Everything goes through the real forms with CSRF on, as ``Browser.login`` in conftest does.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditLog, OrgStatus, SmsCode, User
from models.base import utcnow
from workflows.audit import Kind
from workflows.engine import setting_state

DEMO_PASSWORD = "Demo@2026"


def user_named(session, username) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def text(resp) -> str:
    return resp.get_data(as_text=True)


def password_step(browser, username, password=DEMO_PASSWORD, url="/login"):
    browser.token = None
    return browser.post(url, {"username": username, "password": password}, token_from="/login")


def sms_step(browser, code):
    return browser.post("/login/sms", {"code": code}, token_from="/login/sms")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def signed_in(browser) -> bool:
    resp = browser.get("/admin/")
    return resp.status_code == 200


def location(resp) -> str:
    return resp.headers.get("Location", "")


# --- the two steps ------------------------------------------------------------------------


def test_login_page(browser):
    page = text(browser.get("/login"))
    for needle in ('id="username"', 'id="password"', 'name="csrf_token"', ">登录</button>", "找回密码",
                   '<label for="username">用户名</label>', '<label for="password">密码</label>'):
        assert needle in page


@pytest.mark.parametrize("username", ["province", "jinan", "inst_jinan", "direct_inst", "enterprise", "school",
                                      "person", "ministry"])
def test_demo_accounts_sign_in(login, session, username):
    browser = login(username)
    assert signed_in(browser)
    (row,) = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGIN_OK,
                                                    AuditLog.username == username)).all()
    assert row.user_id == user_named(session, username).id and row.ip


def test_password_alone_does_not_sign_in(browser):
    resp = password_step(browser, "jinan")
    assert resp.status_code == 302 and location(resp).endswith("/login/sms")
    resp = browser.get("/admin/")
    assert resp.status_code == 302 and "/login" in location(resp)


def test_sms_page_shows_masked_phone_and_demo_code(browser, session):
    password_step(browser, "jinan")
    page = text(browser.get("/login/sms"))
    phone = user_named(session, "jinan").phone
    assert f"验证码已发送至 {phone[:3]}****{phone[-4:]}" in page
    assert phone not in page
    hint = re.search(r'id="sms-code-hint"[^>]*>演示环境验证码：<strong>(\d{6})</strong>', page)
    assert hint and hint.group(1) == browser.sms_code()
    assert 'id="code"' in page and ">验证</button>" in page


def test_sms_page_hides_code_unless_configured(app, browser):
    app.config["SMS_SHOW_CODE"] = False
    password_step(browser, "jinan")
    page = text(browser.get("/login/sms"))
    assert "sms-code-hint" not in page and browser.sms_code() not in page


def test_sms_page_needs_the_password_step(browser):
    resp = browser.get("/login/sms")
    assert resp.status_code == 302 and location(resp).endswith("/login")


def test_login_returns_to_the_page_asked_for(browser):
    resp = browser.get("/admin/")
    assert resp.status_code == 302
    target = location(resp)
    assert "/login?next=" in target
    password_step(browser, "jinan", url=target)
    resp = sms_step(browser, browser.sms_code())
    assert resp.status_code == 302 and location(resp).endswith("/admin/")


@pytest.mark.parametrize("evil", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_site(browser, evil):
    browser.token = None
    browser.post(f"/login?next={evil}", {"username": "jinan", "password": DEMO_PASSWORD}, token_from="/login")
    resp = sms_step(browser, browser.sms_code())
    assert resp.status_code == 302
    assert "evil" not in location(resp) and location(resp).endswith("/admin/")


def test_passwords_are_stored_hashed(session):
    for user in session.scalars(select(User)):
        assert user.password_hash != DEMO_PASSWORD and DEMO_PASSWORD not in user.password_hash


# --- wrong password and lockout -----------------------------------------------------------


@pytest.mark.parametrize("username, password", [("jinan", "Wrong@2026"), ("nobody", DEMO_PASSWORD)])
def test_wrong_credentials(browser, session, username, password):
    resp = password_step(browser, username, password)
    assert resp.status_code == 200
    assert "用户名或密码错误" in text(resp)
    row = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGIN_FAIL)).all()[-1]
    assert row.username == username
    if username == "nobody":
        assert row.user_id is None


def test_empty_form_is_refused_in_chinese(browser):
    resp = password_step(browser, "", "")
    assert resp.status_code == 200
    assert "请输入用户名" in text(resp) and "请输入密码" in text(resp)


def test_lockout_after_five_wrong_passwords(browser, login, session):
    for _ in range(4):
        assert "用户名或密码错误" in text(password_step(browser, "jinan", "Wrong@2026"))
    resp = password_step(browser, "jinan", "Wrong@2026")
    assert "密码错误次数过多，账号已锁定，请15分钟后再试" in text(resp)
    resp = password_step(browser, "jinan")
    assert resp.status_code == 200 and "账号已锁定，请15分钟后再试" in text(resp)
    assert len(session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGIN_FAIL,
                                                      AuditLog.username == "jinan")).all()) == 6

    user = user_named(session, "jinan")
    user.locked_until = utcnow() - timedelta(seconds=1)  # the 15 minutes have passed
    session.commit()
    assert signed_in(login("jinan"))


# --- the SMS code -------------------------------------------------------------------------


def test_wrong_sms_code(browser):
    password_step(browser, "jinan")
    resp = sms_step(browser, wrong(browser.sms_code()))
    assert resp.status_code == 200 and "验证码错误" in text(resp)
    assert not signed_in(browser)


def test_malformed_sms_code_is_refused_by_the_form(browser):
    password_step(browser, "jinan")
    resp = sms_step(browser, "12ab")
    assert resp.status_code == 200 and "请输入6位数字验证码" in text(resp)


def test_expired_sms_code(browser, session):
    password_step(browser, "jinan")
    code = browser.sms_code()
    row = session.scalars(select(SmsCode).where(SmsCode.user_id == user_named(session, "jinan").id)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    resp = sms_step(browser, code)
    assert "验证码已过期，请重新获取" in text(resp)
    assert not signed_in(browser)


def test_five_wrong_sms_codes_close_the_code(browser):
    password_step(browser, "jinan")
    code = browser.sms_code()
    for _ in range(4):
        assert "验证码错误" in text(sms_step(browser, wrong(code)))
    assert "验证码错误次数过多，请重新获取" in text(sms_step(browser, wrong(code)))
    resp = sms_step(browser, code)
    assert "验证码错误次数过多，请重新获取" in text(resp)
    assert not signed_in(browser)


def test_resend_is_limited_to_once_a_minute(browser, session):
    password_step(browser, "jinan")
    first = browser.sms_code()
    resp = browser.post("/login/sms/resend", token_from="/login/sms")
    assert resp.status_code == 302
    page = text(browser.get("/login/sms"))
    assert re.search(r"验证码发送过于频繁，请\d+秒后再试", page)
    assert browser.sms_code() == first

    for row in session.scalars(select(SmsCode)):
        row.created_at -= timedelta(seconds=61)
    session.commit()
    browser.post("/login/sms/resend", token_from="/login/sms")
    second = browser.sms_code()
    page = text(browser.get("/login/sms"))
    assert "验证码已重新发送至 138****" in page and f"演示环境验证码：<strong>{second}</strong>" in page
    if second != first:
        assert "验证码错误" in text(sms_step(browser, first))
    resp = sms_step(browser, second)
    assert resp.status_code == 302 and signed_in(browser)


def test_signing_in_twice_in_a_minute_works(login):
    """The resend limit counts only open codes: a second browser of the same user is fine."""
    assert signed_in(login("jinan")) and signed_in(login("jinan"))


def test_account_without_phone(browser, session):
    user_named(session, "jinan").phone = None
    session.commit()
    resp = password_step(browser, "jinan")
    assert resp.status_code == 200 and "未绑定手机号，请联系管理员" in text(resp)


# --- accounts and organizations that may not sign in --------------------------------------


@pytest.mark.parametrize("status, message", [
    (OrgStatus.pending, "账号待主管部门审核"),
    (OrgStatus.rejected, "账号审核未通过"),
    (OrgStatus.offline, "所属机构已下线，无法登录"),
])
def test_organization_status_refuses_login(browser, session, status, message):
    with setting_state():
        user_named(session, "enterprise").organization.status = status
    session.commit()
    resp = password_step(browser, "enterprise")
    assert resp.status_code == 200 and message in text(resp)


def test_disabled_account_refused(browser, session):
    user_named(session, "jinan").is_enabled = False
    session.commit()
    assert "账号已停用" in text(password_step(browser, "jinan"))


def test_organization_taken_offline_ends_open_sessions(login, session):
    browser = login("inst_jinan")
    assert signed_in(browser)
    with setting_state():
        user_named(session, "inst_jinan").organization.status = OrgStatus.offline
    session.commit()
    resp = browser.get("/admin/")
    assert resp.status_code == 302 and "/login" in location(resp)
    page = text(browser.get(location(resp)))
    assert "所属机构已下线，无法登录" in page
    with setting_state():
        user_named(session, "inst_jinan").organization.status = OrgStatus.active
    session.commit()
    assert not signed_in(browser)  # the session is gone, not merely suspended


def test_disabled_account_ends_open_sessions(login, session):
    browser = login("jinan")
    user_named(session, "jinan").is_enabled = False
    session.commit()
    assert not signed_in(browser)


# --- idle timeout -------------------------------------------------------------------------


def _idle(browser, minutes):
    with browser.client.session_transaction() as sess:
        sess["last_seen"] = (utcnow() - timedelta(minutes=minutes)).isoformat()


def test_idle_timeout(login, session):
    browser = login("jinan")
    _idle(browser, 29)
    assert signed_in(browser)  # and the clock restarts
    _idle(browser, 31)
    resp = browser.get("/admin/")
    assert resp.status_code == 302 and "/login" in location(resp)
    assert "登录超时，请重新登录" in text(browser.get(location(resp)))
    assert not signed_in(browser)
    row = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGOUT)).all()[-1]
    assert row.username == "jinan" and "超时" in row.summary


def test_idle_timeout_applies_to_posts(login):
    browser = login("jinan")
    _idle(browser, 31)
    resp = browser.post("/password", {"old_password": DEMO_PASSWORD, "new_password": "Better2026",
                                      "confirm_password": "Better2026"})
    assert resp.status_code == 302 and "/login" in location(resp)
    assert signed_in(login("jinan"))  # the password was not changed


def test_idle_timeout_config(app, login):
    app.config["IDLE_TIMEOUT_MINUTES"] = 5
    browser = login("jinan")
    _idle(browser, 6)
    assert not signed_in(browser)


# --- passwords ----------------------------------------------------------------------------


def test_must_change_password_before_anything_else(login, app, browser, session):
    user_named(session, "jinan").must_change_password = True
    session.commit()
    # conftest's login() reads its token from /admin/, which this user cannot see yet.
    other = type(browser)(app.test_client(), app)
    password_step(browser, "jinan")
    resp = sms_step(browser, browser.sms_code())
    assert resp.status_code == 302
    resp = browser.get("/admin/")
    assert resp.status_code == 302 and location(resp).endswith("/password")
    for url in ("/admin/batch/", "/no-such-page"):
        assert location(browser.get(url)).endswith("/password")
    browser.token = None
    page = text(browser.get("/password"))
    browser.csrf_token("/password")
    assert "首次登录或密码已被重置，请先修改密码" in page
    for field in ('id="old_password"', 'id="new_password"', 'id="confirm_password"', ">保存</button>"):
        assert field in page

    form = {"old_password": "Wrong@2026", "new_password": "Better2026", "confirm_password": "Better2026"}
    resp = browser.post("/password", form)
    assert resp.status_code == 200 and "原密码错误" in text(resp)
    resp = browser.post("/password", dict(form, old_password=DEMO_PASSWORD, new_password="weak",
                                          confirm_password="weak"))
    assert resp.status_code == 200 and "密码至少8位，且必须包含字母和数字" in text(resp)
    assert browser.get("/admin/").status_code == 302

    resp = browser.post("/password", dict(form, old_password=DEMO_PASSWORD))
    assert resp.status_code == 302 and location(resp).endswith("/admin/")
    assert browser.get("/admin/").status_code == 200

    user = user_named(session, "jinan")
    assert not user.must_change_password and user.password_hash != "Better2026"
    assert session.scalars(select(AuditLog).where(AuditLog.kind == Kind.PASSWORD)).all()[-1].username == "jinan"
    assert "用户名或密码错误" in text(password_step(other, "jinan"))
    assert signed_in(login("jinan", "Better2026"))


def test_change_password_page(login):
    browser = login("enterprise")
    page = text(browser.get("/password"))
    assert "首次登录或密码已被重置" not in page and "修改密码" in page
    resp = browser.post("/password", {"old_password": DEMO_PASSWORD, "new_password": "Better2026",
                                      "confirm_password": "Other2026"})
    assert "两次输入的新密码不一致" in text(resp)


def test_change_password_needs_login(browser):
    resp = browser.get("/password")
    assert resp.status_code == 302 and "/login" in location(resp)
    assert "请先登录" in text(browser.get(location(resp)))


def test_forgot_password_by_sms(browser, login, session):
    page = text(browser.get("/forgot"))
    assert 'id="username"' in page and "获取验证码" in page
    resp = browser.post("/forgot", {"username": "inst_jinan"}, token_from="/forgot")
    assert resp.status_code == 302 and location(resp).endswith("/forgot/reset")
    page = text(browser.get("/forgot/reset"))
    code = browser.sms_code()
    # the page never shows whose phone (or whether there is one): the same text for any username
    assert "如账号存在且已绑定手机，验证码已发送至绑定的手机" in page and "138****" not in page
    assert f"演示环境验证码：<strong>{code}</strong>" in page

    form = {"code": code, "new_password": "weak", "confirm_password": "weak"}
    assert "密码至少8位" in text(browser.post("/forgot/reset", form))
    resp = browser.post("/forgot/reset", dict(form, new_password="Better2026", confirm_password="Better2026"))
    assert resp.status_code == 302 and location(resp).endswith("/login")
    assert "密码已重置，请使用新密码登录" in text(browser.get("/login"))
    assert "用户名或密码错误" in text(password_step(browser, "inst_jinan"))
    assert signed_in(login("inst_jinan", "Better2026"))


def test_forgot_password_does_not_tell_which_accounts_exist(browser, app):
    """An unknown username gets the same next page as a real one, no SMS, and any code is wrong."""
    resp = browser.post("/forgot", {"username": "nobody"}, token_from="/forgot")
    assert resp.status_code == 302 and location(resp).endswith("/forgot/reset")
    page = text(browser.get("/forgot/reset"))
    assert "如账号存在且已绑定手机，验证码已发送至绑定的手机" in page and "用户名不存在" not in page
    resp = browser.post("/forgot/reset", {"code": "123456", "new_password": "Better2026",
                                          "confirm_password": "Better2026"}, token_from="/forgot/reset")
    assert "验证码错误" in text(resp)


def test_forgot_reset_needs_the_first_step(browser):
    resp = browser.get("/forgot/reset")
    assert resp.status_code == 302 and location(resp).endswith("/forgot")


# --- logout and CSRF ----------------------------------------------------------------------


def test_logout(login, session):
    browser = login("jinan")
    resp = browser.post("/logout")
    assert resp.status_code == 302 and location(resp).endswith("/login")
    assert "已退出登录" in text(browser.get("/login"))
    assert not signed_in(browser)
    row = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGOUT)).all()[-1]
    assert row.username == "jinan"


def test_logout_is_post_only(login):
    browser = login("jinan")
    assert browser.get("/logout").status_code == 405
    assert signed_in(browser)


def test_login_without_csrf_token_is_refused(browser):
    resp = browser.post("/login", {"username": "jinan", "password": DEMO_PASSWORD}, csrf=False)
    assert resp.status_code == 400
    assert "安全令牌" in text(resp)


def test_logout_without_csrf_token_is_refused(login):
    browser = login("jinan")
    assert browser.post("/logout", {}, csrf=False).status_code == 400
    assert signed_in(browser)
