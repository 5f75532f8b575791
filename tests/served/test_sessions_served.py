"""Sessions end on the server (issue 16 item 3), shown with real cookies against real servers: a
cookie copied before 退出, 修改密码, 重置密码, 停用, 取消绑定手机号 or 下线 is refused at its next
request and sent to 登录 — on gunicorn with two workers (the copy may land on either) and on
``make run``'s server alike."""

from __future__ import annotations

import itertools

import pytest

_serial = itertools.count(1)


def clone_account(site, source: str) -> str:
    """A new account like ``source`` (same organization, role, permissions and demo password) with a
    phone of its own, so that what happens to it touches no other test."""
    n = next(_serial)
    username = f"{source}_s{n}"
    phone = f"1390000{n:04d}"
    site.execute("INSERT INTO user_account (username, password_hash, name, phone, organization_id, role, is_enabled, "
                 "account_status, failed_logins, must_change_password, created_at, version) "
                 "SELECT :new, password_hash, name, :phone, organization_id, role, is_enabled, account_status, 0, "
                 "must_change_password, created_at, 1 FROM user_account WHERE username = :src",
                 new=username, phone=phone, src=source)
    site.execute("INSERT INTO user_permission (user_id, code) SELECT n.id, p.code FROM user_permission p "
                 "JOIN user_account s ON s.id = p.user_id JOIN user_account n ON n.username = :new "
                 "WHERE s.username = :src", new=username, src=source)
    return username


def user_id(site, username: str) -> int:
    return site.scalar("SELECT id FROM user_account WHERE username = :u", u=username)


def test_a_copied_cookie_is_the_same_session_until_it_ends(site):
    browser = site.visitor(clone_account(site, "inst_jinan"))
    stolen = browser.copy()
    assert stolen.signed_in()
    browser.post("/logout")
    assert stolen.sent_to_login()
    assert browser.sent_to_login()


def test_changing_the_password_ends_the_other_sessions(site):
    name = clone_account(site, "inst_jinan")
    here, elsewhere = site.visitor(name), site.visitor(name)
    stolen = elsewhere.copy()
    resp = here.post("/password", {"old_password": "Demo@2026", "new_password": "Newer@2027",
                                   "confirm_password": "Newer@2027"}, token_from="/password")
    assert resp.status_code == 302
    assert elsewhere.sent_to_login() and stolen.sent_to_login()
    assert here.signed_in()


@pytest.mark.parametrize("event", ["reset", "disable", "unbind"])
def test_an_administrators_action_ends_the_users_sessions(site, event):
    name = clone_account(site, "inst_jinan")
    target = site.visitor(name)
    stolen = target.copy()
    manager = site.visitor("jinan")
    resp = manager.post(f"/admin/user_manage/{event}/", {"id": str(user_id(site, name))},
                        token_from=f"/admin/user_manage/details/?id={user_id(site, name)}")
    assert resp.status_code in (200, 302), resp.text[:500]
    assert "alert-danger" not in resp.text
    assert stolen.sent_to_login() and target.sent_to_login()
    assert site.scalar("SELECT count(*) FROM user_session WHERE ended_at IS NULL AND user_id = :i",
                       i=user_id(site, name)) == 0


def test_taking_the_institution_offline_ends_its_users_sessions(site):
    inst = site.rows("SELECT o.id, o.version FROM organization o JOIN user_account u ON u.organization_id = o.id "
                     "WHERE u.username = 'sc_jg370101'")[0]
    target = site.visitor("sc_jg370101")
    stolen = target.copy()
    authority = site.visitor("sc_auth_370100")
    resp = authority.post("/admin/institution_manage/transition/",
                          {"id": str(inst.id), "transition": "offline", "version": str(inst.version)},
                          token_from=f"/admin/institution_manage/details/?id={inst.id}")
    assert resp.status_code == 302, resp.text[:500]
    assert site.scalar("SELECT status FROM organization WHERE id = :i", i=inst.id) == "offline"
    assert stolen.sent_to_login() and target.sent_to_login()


def test_a_tampered_cookie_is_nobody(site):
    browser = site.visitor(clone_account(site, "inst_jinan"))
    cookie = next(c for c in browser.cookies if c.name == "session")
    forged = site.visitor()
    forged.cookies.set("session", cookie.value[:-3] + ("AAA" if not cookie.value.endswith("AAA") else "BBB"),
                       domain=cookie.domain, path=cookie.path)
    assert forged.sent_to_login()
    assert browser.signed_in()  # the real one is untouched
