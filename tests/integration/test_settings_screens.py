"""设置 through the real sign-in, CSRF on (SPEC §7, 003 §五): 个人资料, 更换绑定手机 with an SMS
code to the new number, 修改密码 from the user menu, 机构资料."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import AuditLog
from tests.factories import user

PROFILE, PHONE, CONFIRM = "/admin/profile/", "/admin/profile/phone/", "/admin/profile/phone/confirm/"
ORG, ORG_EDIT = "/admin/org_profile/", "/admin/org_profile/edit/"
NEW = "13912340000"
ACCOUNTS = ("province", "province_reviewer", "jinan", "jinan_reviewer", "qingdao", "inst_jinan", "inst_qingdao",
            "direct_inst", "enterprise", "enterprise2", "school", "person", "ministry")
GOOD_ORG = {"contact": "刘科长", "phone": "0531-12345678", "address": "济南市市中区经二路1号", "postcode": "250001"}


def text(resp) -> str:
    return resp.get_data(as_text=True)


def outbox(app) -> list[str]:
    with open(app.config["SMS_OUTBOX_PATH"], encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def edit_logs(session, start):
    return list(session.scalars(select(AuditLog).where(AuditLog.summary.startswith(start))))


@pytest.mark.parametrize("who", ACCOUNTS)
def test_every_demo_account_opens_its_settings(login, session, who):
    browser = login(who)
    u = user(session, who)
    home = text(browser.get("/admin/"))
    for link in ('id="profile-link"', 'id="change-phone-menu-link"', 'id="org-profile-link"', "修改密码",
                 'id="logout-button"'):
        assert link in home
    page = browser.get(PROFILE)
    assert page.status_code == 200
    body = text(page)
    assert u.username in body and u.name in body and u.role.label in body
    assert f"{u.phone[:3]}****{u.phone[-4:]}" in body and u.phone not in body
    assert (u.organization.name if u.organization else "个人用户") in body
    assert browser.get(PHONE).status_code == 200
    org_page = browser.get(ORG)
    assert org_page.status_code == 200
    if u.organization is not None:
        assert u.organization.name in text(org_page) and u.organization.kind.label in text(org_page)
    # the top menu does not list them: they live in the user menu
    assert not re.search(r'class="nav-link"[^>]*href="/admin/profile/"', home)


def test_person_sees_their_person_record_masked(login, session):
    browser = login("person")
    person = user(session, "person").person
    body = text(browser.get(ORG))
    assert 'id="person-info"' in body and person.name in body
    assert person.id_number not in body and person.id_number[-4:] in body
    assert person.id_number not in text(browser.get(PROFILE))


def test_name_edit(login, session):
    browser = login("inst_jinan")
    resp = browser.post(PROFILE, {"name": "王建设"}, follow_redirects=True)
    assert "个人资料已保存" in text(resp)
    assert user(session, "inst_jinan").name == "王建设"
    assert len(edit_logs(session, "修改个人资料")) == 1
    resp = browser.post(PROFILE, {"name": "  "})
    assert resp.status_code == 200 and "请填写姓名" in text(resp)
    resp = browser.post(PROFILE, {"name": "张" * 51})
    assert "姓名不能超过50个字符" in text(resp)
    assert user(session, "inst_jinan").name == "王建设"


def test_phone_change_end_to_end(app, login, session):
    browser = login("jinan")
    old = user(session, "jinan").phone
    before = len(outbox(app))
    resp = browser.post(PHONE, {"phone": NEW}, follow_redirects=True)
    assert "验证码已发送至 139****0000" in text(resp)
    assert 'id="sms-code-hint"' in text(resp)  # SMS_SHOW_CODE: the demo shows the code
    sent = outbox(app)[before:]
    assert len(sent) == 1 and f"\t{NEW}\t" in sent[0]  # the new number, and the old one gets nothing
    code = browser.sms_code()
    assert code in text(resp)

    # a second 获取验证码 within a minute is throttled, the first code still works
    resp = browser.post(PHONE, {"phone": NEW}, follow_redirects=True)
    assert "验证码发送过于频繁" in text(resp) and 'id="phone-confirm-form"' in text(resp)
    assert len(outbox(app)) == before + 1

    wrong = "000000" if code != "000000" else "111111"
    resp = browser.post(CONFIRM, {"code": wrong}, follow_redirects=True)
    assert "验证码错误" in text(resp)
    assert user(session, "jinan").phone == old

    resp = browser.post(CONFIRM, {"code": code}, follow_redirects=True)
    assert "绑定手机已更换为 139****0000" in text(resp)
    assert user(session, "jinan").phone == NEW
    [row] = edit_logs(session, "更换绑定手机")
    assert row.detail == {"phone": {"before": f"{old[:3]}****{old[-4:]}", "after": "139****0000"}}

    # the next sign-in sends its code to the new number
    browser.post("/logout", {})
    login("jinan")
    assert f"\t{NEW}\t" in outbox(app)[-1]


def test_five_wrong_codes_close_the_code(login, session):
    browser = login("qingdao")
    old = user(session, "qingdao").phone
    browser.post(PHONE, {"phone": NEW})
    code = browser.sms_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        assert "验证码错误" in text(browser.post(CONFIRM, {"code": wrong}, follow_redirects=True))
    assert "错误次数过多" in text(browser.post(CONFIRM, {"code": wrong}, follow_redirects=True))
    assert "错误次数过多" in text(browser.post(CONFIRM, {"code": code}, follow_redirects=True))
    assert user(session, "qingdao").phone == old


def test_same_number_and_bad_number_refused(app, login, session):
    browser = login("person")
    old = user(session, "person").phone
    before = len(outbox(app))
    resp = browser.post(PHONE, {"phone": old})
    assert resp.status_code == 200 and "新手机号与当前绑定的手机号相同" in text(resp)
    assert "手机号格式不正确" in text(browser.post(PHONE, {"phone": "1234"}))
    assert len(outbox(app)) == before
    resp = browser.post(CONFIRM, {"code": "123456"}, follow_redirects=True)
    assert "请先输入新手机号并获取验证码" in text(resp)
    assert user(session, "person").phone == old


def test_password_link_leads_to_the_existing_page(login):
    browser = login("school")
    assert 'href="/password"' in text(browser.get(PROFILE))
    assert 'id="password-form"' in text(browser.get("/password"))


def test_org_admin_edits_org_profile(login, session):
    browser = login("jinan")
    assert 'id="org-edit-link"' in text(browser.get(ORG))
    assert 'id="org-form"' in text(browser.get(ORG_EDIT))
    org = user(session, "jinan").organization
    before = org.contact
    resp = browser.post(ORG_EDIT, GOOD_ORG, follow_redirects=True)
    assert "机构资料已保存" in text(resp) and "刘科长" in text(resp)
    org = user(session, "jinan").organization
    assert (org.contact, org.phone, org.address, org.postcode) == tuple(GOOD_ORG.values())
    [row] = edit_logs(session, "修改机构资料")
    assert row.detail["contact"] == {"before": before, "after": "刘科长"}

    resp = browser.post(ORG_EDIT, {**GOOD_ORG, "contact": "", "postcode": "abc"})
    assert resp.status_code == 200 and "请填写联系人" in text(resp) and "邮政编码应为6位数字" in text(resp)
    assert user(session, "jinan").organization.contact == "刘科长"


def test_reviewer_reads_only(login, session):
    browser = login("jinan_reviewer")
    body = text(browser.get(ORG))
    assert 'id="read-only-notice"' in body and 'id="org-edit-link"' not in body
    before = user(session, "jinan").organization.contact
    assert browser.get(ORG_EDIT).status_code == 403
    assert browser.post(ORG_EDIT, GOOD_ORG).status_code == 403
    assert user(session, "jinan").organization.contact == before
    assert edit_logs(session, "修改机构资料") == []


def test_enterprise_is_pointed_to_enterprise_info(login, session):
    browser = login("enterprise")
    body = text(browser.get(ORG))
    assert 'id="enterprise-notice"' in body and 'href="/admin/enterprise_info/"' in body
    assert 'id="org-edit-link"' not in body
    before = user(session, "enterprise").organization.contact
    resp = browser.post(ORG_EDIT, GOOD_ORG, follow_redirects=True)
    assert "企业信息" in text(resp)
    assert user(session, "enterprise").organization.contact == before


def test_individual_cannot_edit_an_organization(login):
    browser = login("person")
    assert browser.get(ORG_EDIT).status_code == 403


@pytest.mark.parametrize("url, data", [(PROFILE, {"name": "王建设"}), (PHONE, {"phone": NEW}),
                                       (CONFIRM, {"code": "123456"}), (ORG_EDIT, GOOD_ORG)])
def test_missing_csrf_is_refused(app, login, session, url, data):
    browser = login("jinan")
    before = (user(session, "jinan").name, user(session, "jinan").organization.contact)
    sent = len(outbox(app))
    resp = browser.post(url, data, csrf=False)
    assert resp.status_code == 400
    assert (user(session, "jinan").name, user(session, "jinan").organization.contact) == before
    assert len(outbox(app)) == sent


def test_signed_out_visitor_is_sent_to_login(browser):
    for url in (PROFILE, PHONE, ORG):
        resp = browser.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_number_bound_to_another_account_is_refused_and_no_code_is_sent(app, login, session):
    """Issue 17: one phone, one active account — the SMS code of one must never reach another."""
    browser = login("jinan")
    taken, before = user(session, "qingdao").phone, len(outbox(app))
    resp = browser.post(PHONE, {"phone": taken}, follow_redirects=True)
    assert "该手机号已绑定其他账号（一个手机号只能绑定一个账号），请更换手机号" in text(resp)
    assert len(outbox(app)) == before and 'id="phone-confirm-form"' not in text(resp)
    assert user(session, "jinan").phone != taken
