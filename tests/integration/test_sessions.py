"""Sessions end on the server (issue 16 item 3; SPEC §9): a cookie copied before 退出, 修改密码,
重置密码, 停用, 取消绑定手机号 or 下线 is refused at its next request and sent to 登录.

A copy of the cookie is another test client holding the same cookie value — exactly what a thief
replaying a stolen cookie holds. tests/served replays real cookies against gunicorn.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from models import AuditLog, User, UserSession
from models.base import utcnow
from tests.conftest import Browser
from tests.factories import org, user
from workflows import users as user_rules
from workflows.audit import Kind
from workflows.organizations import ORGANIZATION


def copy_of(browser: Browser) -> Browser:
    """Another browser holding the same session cookie."""
    cookie = browser.client.get_cookie("session")
    assert cookie is not None
    thief = Browser(browser.app.test_client(), browser.app)
    thief.client.set_cookie("session", cookie.value)
    return thief


def refused(browser: Browser, message: str | None = None) -> bool:
    resp = browser.get("/admin/")
    if resp.status_code != 302 or not resp.headers["Location"].startswith("/login"):
        return False
    page = browser.get(resp.headers["Location"]).get_data(as_text=True)
    return message is None or message in page


def test_a_signed_in_cookie_opens_the_admin_and_its_copy_too(login):
    browser = login("jinan")
    assert copy_of(browser).get("/admin/").status_code == 200  # same session: until it ends


def test_logout_ends_that_session_only(login, session):
    first, second = login("jinan"), login("jinan")
    stolen = copy_of(first)
    first.post("/logout", token_from="/admin/")
    assert refused(stolen, "您已退出登录，请重新登录")
    assert second.get("/admin/").status_code == 200
    row = session.scalars(select(UserSession).where(UserSession.end_reason == "logout")).one()
    assert row.user_id == user(session, "jinan").id and row.ended_at is not None
    replay = session.scalars(select(AuditLog).where(AuditLog.kind == Kind.LOGOUT).order_by(AuditLog.id.desc())).first()
    assert "已失效的登录会话被再次使用" in replay.summary


def test_changing_the_password_ends_every_other_session(login, session):
    here, elsewhere = login("jinan"), login("jinan")
    stolen = copy_of(here)
    resp = here.post("/password", {"old_password": "Demo@2026", "new_password": "Newer@2027",
                                   "confirm_password": "Newer@2027"}, token_from="/password")
    assert resp.status_code == 302
    assert refused(elsewhere, "密码已修改，请使用新密码重新登录")
    assert here.get("/admin/").status_code == 200 and stolen.get("/admin/").status_code == 200  # this one stays
    summary = session.scalars(select(AuditLog.summary).where(AuditLog.kind == Kind.PASSWORD)
                              .order_by(AuditLog.id.desc())).first()
    assert summary == "修改密码，其他 1 个登录会话已退出"


@pytest.mark.parametrize(("event", "message"), [
    ("reset", "密码已重置，请重新登录"),
    ("disable", "账号已停用"),
    ("unbind", "账号的绑定手机号已取消，请联系管理员"),
])
def test_an_administrators_action_ends_every_session_of_the_user(login, session, event, message):
    target = login("inst_jinan")
    stolen = copy_of(target)
    manager, victim = user(session, "jinan"), user(session, "inst_jinan")
    {"reset": lambda: user_rules.reset_password(session, manager, victim),
     "disable": lambda: user_rules.set_enabled(session, manager, victim, False),
     "unbind": lambda: user_rules.unbind_phone(session, manager, victim)}[event]()
    session.commit()
    open_rows = session.scalars(select(UserSession).where(UserSession.user_id == victim.id,
                                                          UserSession.ended_at.is_(None))).all()
    assert open_rows == []
    assert refused(stolen) and refused(target)


def test_taking_the_organization_offline_ends_its_users_sessions(login, session):
    target = login("inst_jinan")
    stolen = copy_of(target)
    ORGANIZATION.fire(session, user(session, "jinan"), org(session, user(session, "inst_jinan").organization.code),
                      "offline")
    session.commit()
    reasons = set(session.scalars(select(UserSession.end_reason).where(
        UserSession.user_id == user(session, "inst_jinan").id)))
    assert reasons == {"org_offline"}
    assert refused(stolen, "所属机构已下线，无法登录")


def test_finding_the_password_by_sms_ends_every_session(app, login, browser, session):
    target = login("jinan")
    browser.post("/forgot", {"username": "jinan"}, token_from="/forgot")
    code = browser.sms_code()
    resp = browser.post("/forgot/reset", {"code": code, "new_password": "Newer@2027",
                                          "confirm_password": "Newer@2027"}, token_from="/forgot/reset")
    assert resp.status_code == 302
    assert refused(target, "密码已重置，请重新登录")


def test_a_tampered_cookie_is_nobody(login):
    browser = login("jinan")
    value = browser.client.get_cookie("session").value
    forged = Browser(browser.app.test_client(), browser.app)
    forged.client.set_cookie("session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    resp = forged.get("/admin/certificate/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_a_session_idle_on_the_server_ends_even_with_a_fresh_cookie(login, session):
    """The cookie's own last-seen time can be kept fresh by a thief; the server's cannot."""
    browser = login("jinan")
    row = session.scalars(select(UserSession).where(UserSession.user_id == user(session, "jinan").id)).one()
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    session.commit()
    assert refused(browser, "登录超时，请重新登录")
    session.expire_all()
    assert row.end_reason == "idle"


def test_activity_is_noted_at_most_once_a_minute(login, session):
    browser = login("jinan")
    row = session.scalars(select(UserSession).where(UserSession.user_id == user(session, "jinan").id)).one()
    first = row.last_seen_at
    browser.get("/admin/")
    session.expire_all()
    assert row.last_seen_at == first  # within the minute: nothing written
    row.last_seen_at = first - timedelta(minutes=2)
    session.commit()
    browser.get("/admin/")
    session.expire_all()
    assert row.last_seen_at > first


def test_a_cookie_of_another_users_session_is_refused(login, session):
    """A session id is bound to its user: one user's id grafted under another's name is refused."""
    jinan = login("jinan")
    with jinan.client.session_transaction() as sess:
        sess["_user_id"] = str(session.scalar(select(User.id).where(User.username == "province")))
    assert refused(jinan)


# --- IDLE_TIMEOUT_MINUTES is one fact: the server's idle limit and the cookie's lifetime ---------


def idle_for(browser: Browser, session, minutes: int, monkeypatch, *, cookie_too: bool = True) -> None:
    """The signed-in session has been idle ``minutes``: the server's row and the cookie's last-seen
    time say so and, with ``cookie_too``, so does the cookie's signature — the age Flask checks a
    session cookie by (a browser would have dropped it at its expiry)."""
    ago = utcnow() - timedelta(minutes=minutes)
    for row in session.scalars(select(UserSession).where(UserSession.ended_at.is_(None))):
        row.last_seen_at = ago
    session.commit()
    signing = browser.app.session_interface.get_signing_serializer(browser.app)
    cookie = signing.loads(browser.client.get_cookie("session").value)
    cookie["last_seen"] = ago.isoformat()
    with monkeypatch.context() as clock:
        if cookie_too:
            clock.setattr(TimestampSigner, "get_timestamp", lambda signer: int(time.time()) - minutes * 60)
        browser.client.set_cookie("session", signing.dumps(cookie))


@pytest.mark.parametrize("idle", [45, 10])
def test_the_idle_timeout_holds_above_and_below_thirty_minutes(app, login, session, monkeypatch, idle):
    app.config["IDLE_TIMEOUT_MINUTES"] = idle
    browser = login("jinan")
    expires = browser.client.get_cookie("session").expires.replace(tzinfo=None)
    assert abs(expires - (utcnow() + timedelta(minutes=idle))) < timedelta(minutes=1)  # the cookie lives as long
    idle_for(browser, session, idle - 5, monkeypatch)
    assert browser.get("/admin/").status_code == 200  # 45: still signed in at 40 (the cookie once died at 30)
    idle_for(browser, session, idle + 1, monkeypatch)
    assert refused(browser)


@pytest.mark.parametrize("idle", [45, 10])
def test_the_server_ends_a_session_idle_past_the_timeout(app, login, session, monkeypatch, idle):
    app.config["IDLE_TIMEOUT_MINUTES"] = idle
    browser = login("jinan")
    idle_for(browser, session, idle - 5, monkeypatch, cookie_too=False)
    assert browser.get("/admin/").status_code == 200
    idle_for(browser, session, idle + 1, monkeypatch, cookie_too=False)
    assert refused(browser, "登录超时，请重新登录")
