"""企业信息, 变更申请, 企业信息变更审核 and 人员管理 through the real sign-in, CSRF on
(SPEC §5.4, §7; 000 §二(一); 002 §3.1.5; 004 §3.7).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import (
    Attachment,
    AttachmentKind,
    Certificate,
    EnterpriseChange,
    EnterpriseChangeStatus,
    Organization,
    Person,
    Registration,
    RegistrationStatus,
    User,
)
from models.user import Permission
from tests.factories import user
from tests.samples import make_png
from workflows.auth import login_refusal
from workflows.engine import setting_state
from workflows.enterprise import REGISTRATIONS_IN_PROGRESS

S = EnterpriseChangeStatus
INFO, REVIEW, STAFF = "/admin/enterprise_info/", "/admin/enterprise_change_review/", "/admin/staff/"
NEW_NAME = "山东鲁建控股集团有限公司"
REASON = "未提交工商部门出具的企业名称变更函"
PASSWORD = "Staff2026ok"


# -- helpers -------------------------------------------------------------------------------------------
def flashes(resp) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', resp.get_data(as_text=True), re.S))


def text(resp) -> str:
    return resp.get_data(as_text=True)


def bulk(client, action, *ids, **kw):
    return client.post(f"{REVIEW}action/", {"action": action, "rowid": [str(i) for i in ids]}, **kw)


def enterprise_org(session, username="enterprise") -> Organization:
    return user(session, username).organization


def no_registrations_in_progress(session, org: Organization) -> None:
    """The demo may grow registrations of every state: a change is refused while any runs."""
    for row in session.scalars(select(Registration).where(Registration.enterprise_id == org.id,
                                                          Registration.status.in_(REGISTRATIONS_IN_PROGRESS))):
        with setting_state():
            row.status = RegistrationStatus.withdrawn
    session.flush()


def submit_change(client, session, username="enterprise", **values) -> EnterpriseChange:
    org = enterprise_org(session, username)
    no_registrations_in_progress(session, org)
    resp = client.post(f"{INFO}change/", values, follow_redirects=True)
    assert "申请已提交" in flashes(resp), flashes(resp)
    return session.scalar(select(EnterpriseChange).where(EnterpriseChange.enterprise_id == org.id)
                          .order_by(EnterpriseChange.id.desc()))


def employee_certificate(session, org: Organization) -> Certificate:
    return session.scalar(select(Certificate).join(Person, Person.id == Certificate.person_id)
                          .where(Person.employer_id == org.id).order_by(Certificate.id))


def licence(session, org: Organization) -> Attachment:
    png = make_png(120, 80)
    row = Attachment(owner_type="organization", owner_id=org.id, kind=AttachmentKind.image, purpose="营业执照",
                     filename="营业执照.png", content_type="image/png", size=len(png), sha256="0" * 64, data=png)
    session.add(row)
    session.flush()
    return row


def new_staff(admin_client, **values) -> None:
    data = {"name": "李经办", "username": "li_jingban", "phone": "13912340001", "password": PASSWORD,
            "password2": PASSWORD}
    data.update(values)
    resp = admin_client.post(f"{STAFF}new/", data, follow_redirects=True)
    assert "已新增用户" in flashes(resp), flashes(resp)


# -- 企业信息 ------------------------------------------------------------------------------------------
def test_enterprise_sees_its_information_and_edits_the_address(login, session):
    org = enterprise_org(session)
    image = licence(session, org)
    client = login("enterprise")
    html = text(client.get(INFO))
    for value in ("山东鲁建建设集团有限公司", org.credit_code, "济南市", "济南市历城区工业南路1号", "赵经理",
                  "0531-88880001", "D237010001", "启用", "营业执照", "资质证书"):
        assert value in html, value
    preview = f"{INFO}file/{image.id}?inline=1"
    assert preview in html and 'data-target="#image-modal"' in html  # click to enlarge
    resp = client.get(preview)
    assert resp.status_code == 200 and resp.mimetype == "image/png" and resp.data == image.data

    html = text(client.get(f"{INFO}edit/"))
    assert 'id="needs-application"' in html and 'name="name"' not in html and 'name="region_code"' not in html
    resp = client.post(f"{INFO}edit/", {"address": "济南市历下区经十路88号", "postcode": "250014", "contact": "钱经理",
                                        "phone": "0531-88889999", "qualification_no": "D237010001"},
                       follow_redirects=True)
    assert "企业信息已保存：修改了通讯地址、邮政编码、联系人、联系电话" in flashes(resp)
    assert '<td id="info-address">济南市历下区经十路88号</td>' in text(resp)
    session.refresh(org)
    assert (org.address, org.postcode, org.contact) == ("济南市历下区经十路88号", "250014", "钱经理")


def test_edit_refusals_come_back_in_chinese_and_nothing_is_saved(login, session):
    org = enterprise_org(session)
    client = login("enterprise")
    resp = client.post(f"{INFO}edit/", {"address": "", "postcode": "2500", "contact": "钱经理", "phone": "0531-1"})
    assert resp.status_code == 200
    assert "请填写通讯地址" in text(resp) and "邮政编码应为6位数字" in text(resp)
    assert 'value="钱经理"' in text(resp)  # what was typed stays
    resp = client.post(f"{INFO}edit/", {"name": NEW_NAME, "address": "新地址1号", "contact": "赵经理",
                                        "phone": "0531-88880001"}, follow_redirects=True)
    assert "须提交变更申请" in flashes(resp)
    session.refresh(org)
    assert org.address == "济南市历城区工业南路1号" and org.contact == "赵经理" and org.name != NEW_NAME


def test_an_enterprise_without_certificates_gets_the_name_and_city_inputs(login, session):
    org = enterprise_org(session)
    for person in session.scalars(select(Person).where(Person.employer_id == org.id)):
        person.employer_id = None  # test setup: nobody of this enterprise holds a certificate any more
    client = login("enterprise")
    html = text(client.get(f"{INFO}edit/"))
    assert 'name="name"' in html and 'name="region_code"' in html and "needs-application" not in html
    resp = client.post(f"{INFO}edit/", {"name": NEW_NAME, "region_code": "370200", "address": org.address,
                                        "contact": org.contact, "phone": org.phone}, follow_redirects=True)
    assert "企业名称、所属地市" in flashes(resp)
    session.refresh(org)
    assert org.name == NEW_NAME and org.region_code == "370200"


# -- 变更申请 and 企业信息变更审核 ----------------------------------------------------------------------------
def test_name_change_journey_authority_then_province(login, session):
    org = enterprise_org(session)
    certificate = employee_certificate(session, org)
    client = login("enterprise")
    html = text(client.get(f"{INFO}change/"))
    assert "现在企业名称" in html and "想要变更的名称" in html and "现在所属地市" in html and "想要变更的地市" in html
    assert '<option value="">——</option>' in html and 'value="370100"' not in html  # not its own city
    change = submit_change(client, session, new_name=NEW_NAME, new_region_code="", explanation="工商登记已变更")
    assert change.status == S.pending_authority and change.explanation == "工商登记已变更"
    html = text(client.get(INFO))
    assert "信息审查中不允许再次提交" in html and NEW_NAME in html and "待审核(主管部门)" in html
    resp = client.post(f"{INFO}change/", {"new_region_code": "370200"})
    assert "信息审查中不允许再次提交" in flashes(resp)

    jinan = login("jinan")
    html = text(jinan.get(f"{REVIEW}?tab=pending"))
    assert NEW_NAME in html and "企业名称变更" in html
    # two bulk actions, as the manuals say — not one per transition of the table
    assert 'data-model-action="approve"' in html and 'data-model-action="reject"' in html
    assert 'data-model-action="wf_' not in html
    resp = bulk(jinan, "approve", change.id, follow_redirects=True)
    assert "审核通过：成功 1 条，失败 0 条" in flashes(resp), flashes(resp)
    session.refresh(change)
    assert change.status == S.pending_province
    assert NEW_NAME not in text(jinan.get(f"{REVIEW}?tab=pending"))
    assert NEW_NAME in text(jinan.get(f"{REVIEW}?tab=reviewed"))

    province = login("province")
    assert NEW_NAME in text(province.get(f"{REVIEW}?tab=pending"))
    resp = bulk(province, "approve", change.id, follow_redirects=True)
    assert "审核通过：成功 1 条，失败 0 条" in flashes(resp), flashes(resp)
    session.refresh(change)
    assert change.status == S.approved

    html = text(client.get(INFO))
    assert f'<td id="info-name">{NEW_NAME}</td>' in html and "审核通过" in html
    html = text(jinan.get(f"/admin/certificate/?search={certificate.number}"))
    assert NEW_NAME in html and "山东鲁建建设集团有限公司" not in html.split('id="status-tabs"')[-1]
    html = text(client.get(f"/admin/business_apply/?search={certificate.number}"))
    assert NEW_NAME in html
    details = text(province.get(f"{REVIEW}details/?id={change.id}"))
    assert 'id="review-log"' in details and details.count("审核通过") >= 2 and "济南市审核管理员" in details


def test_rejection_reason_is_shown_in_red(login, session):
    client = login("enterprise")
    change = submit_change(client, session, new_name=NEW_NAME)
    jinan = login("jinan")
    resp = bulk(jinan, "reject", change.id)
    assert resp.status_code == 302 and "/reason/" in resp.location
    resp = jinan.post(f"{REVIEW}reason/", {"id": str(change.id), "transition": "reject", "reason": "  "})
    assert "请填写审核不通过原因" in flashes(resp)
    session.refresh(change)
    assert change.status == S.pending_authority
    resp = jinan.post(f"{REVIEW}reason/", {"id": str(change.id), "transition": "reject", "reason": REASON},
                      follow_redirects=True)
    assert "审核不通过：成功 1 条，失败 0 条" in flashes(resp), flashes(resp)
    session.refresh(change)
    assert change.status == S.rejected and change.reject_reason == REASON
    html = text(client.get(INFO))
    assert f'<span class="reason-red">{REASON}</span>' in html and 'id="latest-rejection"' in html
    assert f'<span class="reason-red">{REASON}</span>' in text(jinan.get(f"{REVIEW}?tab=reviewed"))
    # rejected: the enterprise may apply again
    again = submit_change(client, session, new_name=NEW_NAME)
    assert again.id != change.id and again.status == S.pending_authority


def test_city_change_from_the_details_pages(login, session):
    org = enterprise_org(session)
    client = login("enterprise")
    change = submit_change(client, session, new_region_code="370200")
    assert change.status == S.pending_out
    qingdao = login("qingdao")
    assert "山东鲁建建设集团有限公司" not in text(qingdao.get(f"{REVIEW}?tab=pending"))  # not yet its turn
    jinan = login("jinan")
    html = text(jinan.get(f"{REVIEW}details/?id={change.id}"))
    assert "btn-out_approve" in html and "reason-authority_reject" in html
    resp = jinan.post(f"{REVIEW}transition/", {"id": str(change.id), "transition": "out_approve",
                                               "version": str(change.version)}, follow_redirects=True)
    assert "审核通过(调出)：操作成功" in flashes(resp), flashes(resp)
    assert "btn-in_approve" not in text(jinan.get(f"{REVIEW}details/?id={change.id}"))
    assert "山东鲁建建设集团有限公司" in text(qingdao.get(f"{REVIEW}?tab=pending"))
    resp = qingdao.post(f"{REVIEW}transition/", {"id": str(change.id), "transition": "in_approve"},
                        follow_redirects=True)
    assert "审核通过(调入)：操作成功" in flashes(resp), flashes(resp)
    session.refresh(org)
    assert org.region_code == "370200"
    assert '<td id="info-city">青岛市</td>' in text(client.get(INFO))


def test_jinan_cannot_approve_a_province_stage_row(login, session):
    client = login("enterprise")
    change = submit_change(client, session, new_name=NEW_NAME)
    jinan = login("jinan")
    bulk(jinan, "approve", change.id)
    resp = bulk(jinan, "approve", change.id, follow_redirects=True)
    assert "失败 1 条" in flashes(resp), flashes(resp)
    resp = jinan.post(f"{REVIEW}transition/", {"id": str(change.id), "transition": "province_approve"},
                      follow_redirects=True)
    assert "无权" in flashes(resp)
    resp = jinan.post(f"{REVIEW}reason/", {"id": str(change.id), "transition": "province_reject", "reason": REASON})
    assert resp.status_code == 404
    session.refresh(change)
    assert change.status == S.pending_province


def test_foreign_rows_and_forged_ids_are_not_found(login, session):
    org = enterprise_org(session)
    image = licence(session, org)
    client = login("enterprise")
    change = submit_change(client, session, new_name=NEW_NAME)
    qingdao = login("qingdao")
    assert qingdao.get(f"{REVIEW}details/?id={change.id}").status_code == 404
    assert qingdao.get(f"{REVIEW}details/?id=abc").status_code == 404
    resp = bulk(qingdao, "approve", change.id, follow_redirects=True)
    assert "失败 1 条" in flashes(resp) and "记录不存在" in flashes(resp)
    resp = qingdao.post(f"{REVIEW}reason/", {"id": str(change.id), "transition": "reject", "reason": REASON})
    assert resp.status_code == 404
    enterprise2 = login("enterprise2")
    assert NEW_NAME not in text(enterprise2.get(INFO))
    assert enterprise2.get(f"{INFO}file/{image.id}?inline=1").status_code == 404
    assert enterprise2.get(f"{REVIEW}details/?id={change.id}").status_code == 403  # not a reviewer at all
    session.refresh(change)
    assert change.status == S.pending_authority


def test_menus_follow_the_roles(login):
    html = text(login("enterprise").get("/admin/"))
    assert INFO in html and STAFF in html and REVIEW not in html
    assert html.count('href="/password"') == 2  # 修改密码 in the 企业信息 menu and in the user menu
    html = text(login("jinan").get("/admin/"))
    assert REVIEW in html and "企业信息变更审核" in html and INFO not in html and STAFF not in html
    assert html.count('href="/password"') == 1
    assert login("jinan").get(INFO).status_code == 403
    assert login("inst_jinan").get(REVIEW).status_code == 403


# -- 人员管理 ------------------------------------------------------------------------------------------
def test_staff_create_sign_in_reset_and_delete(login, session):
    admin = login("enterprise")
    html = text(admin.get(STAFF))
    assert "鲁建集团管理员" in html and "修改密码" in html
    new_staff(admin)
    staff = session.scalar(select(User).where(User.username == "li_jingban"))
    assert staff.organization_id == enterprise_org(session).id
    assert "li_jingban" in text(admin.get(STAFF))
    login("li_jingban", PASSWORD)  # password step and SMS step to the bound phone
    assert login("li_jingban", PASSWORD).get(STAFF).status_code == 403  # an operator has no 人员管理

    resp = admin.post(f"{STAFF}edit/?id={staff.id}", {"id": str(staff.id), "name": "李新名", "phone": "13912340009"},
                      follow_redirects=True)
    assert "信息已保存" in flashes(resp)
    session.refresh(staff)
    assert (staff.name, staff.phone) == ("李新名", "13912340009")

    resp = admin.post(f"{STAFF}reset/", {"id": str(staff.id)})
    one_time = re.search(r'id="one-time-password">([^<]+)<', text(resp)).group(1)
    assert resp.headers["Cache-Control"] == "no-store"
    assert one_time not in text(admin.get(STAFF))  # shown once
    session.refresh(staff)
    assert staff.must_change_password

    resp = admin.post(f"{STAFF}delete/", {"id": str(staff.id)}, follow_redirects=True)
    assert "已删除用户 li_jingban" in flashes(resp)
    session.refresh(staff)
    assert not staff.is_enabled and login_refusal(staff) == "账号已停用"
    assert 'data-username="li_jingban"' not in text(admin.get(STAFF))
    assert admin.get(f"{STAFF}edit/?id={staff.id}").status_code == 404


def test_reset_password_lets_the_user_in_with_the_one_time_password(login, session, browser):
    admin = login("enterprise")
    new_staff(admin, username="wang_jingban", phone="13912340002")
    staff = session.scalar(select(User).where(User.username == "wang_jingban"))
    one_time = re.search(r'id="one-time-password">([^<]+)<',
                         text(admin.post(f"{STAFF}reset/", {"id": str(staff.id)}))).group(1)
    resp = browser.post("/login", {"username": "wang_jingban", "password": PASSWORD}, token_from="/login")
    assert resp.status_code == 200  # the old password no longer works
    browser.token = None
    resp = browser.post("/login", {"username": "wang_jingban", "password": one_time}, token_from="/login")
    assert resp.status_code == 302, flashes(resp)
    resp = browser.post("/login/sms", {"code": browser.sms_code()}, token_from="/login/sms")
    assert resp.status_code == 302
    assert "/password" in browser.get("/admin/").location  # the one-time password must be changed first


def test_staff_refuses_foreign_forged_and_own_ids(login, session):
    admin = login("enterprise")
    own = user(session, "enterprise")
    foreign = user(session, "enterprise2")
    jinan = user(session, "jinan")
    for target in (foreign.id, jinan.id, "abc", 999999):
        assert admin.get(f"{STAFF}edit/?id={target}").status_code == 404
        assert admin.post(f"{STAFF}reset/", {"id": str(target)}).status_code == 404
        assert admin.post(f"{STAFF}delete/", {"id": str(target)}).status_code == 404
    session.refresh(foreign)
    assert foreign.is_enabled and not foreign.must_change_password
    resp = admin.post(f"{STAFF}delete/", {"id": str(own.id)}, follow_redirects=True)
    assert "不能在人员管理中修改或删除自己" in flashes(resp)
    session.refresh(own)
    assert own.is_enabled
    assert login("jinan").get(STAFF).status_code == 403


def test_staff_form_refusals(login, session):
    admin = login("enterprise")
    resp = admin.post(f"{STAFF}new/", {"name": "", "username": "enterprise2", "phone": "123", "password": "short",
                                       "password2": "other"})
    html = text(resp)
    for message in ("请填写姓名", "该登录用户名已被使用", "手机号格式不正确", "两次输入的密码不一致"):
        assert message in html, message
    assert session.scalar(select(User).where(User.phone == "123")) is None


@pytest.mark.parametrize(("url", "data"), [
    (f"{INFO}edit/", {"address": "无令牌地址", "contact": "赵经理", "phone": "0531-88880001"}),
    (f"{INFO}change/", {"new_name": NEW_NAME}),
    (f"{STAFF}new/", {"name": "无令牌", "username": "no_token", "phone": "13912340003", "password": PASSWORD,
                      "password2": PASSWORD}),
])
def test_posts_without_csrf_token_are_refused(login, session, url, data):
    client = login("enterprise")
    assert client.post(url, data, csrf=False).status_code == 400
    org = enterprise_org(session)
    session.refresh(org)
    assert org.address != "无令牌地址" and org.name != NEW_NAME
    assert session.scalar(select(User).where(User.username == "no_token")) is None
    assert session.scalar(select(EnterpriseChange).where(EnterpriseChange.enterprise_id == org.id)) is None


def test_review_post_without_csrf_token_is_refused(login, session):
    change = submit_change(login("enterprise"), session, new_name=NEW_NAME)
    jinan = login("jinan")
    assert bulk(jinan, "approve", change.id, csrf=False).status_code == 400
    session.refresh(change)
    assert change.status == S.pending_authority


def test_kept_menus_are_the_menus_drawn_afresh_and_follow_permissions_and_the_screen(app, login, session):
    """The navigation menus are kept per kind of user and screen (issue 16 "Served"): what is kept
    is what would be drawn, a withdrawn permission takes its entry away at the next page, and the
    active entry follows the screen."""
    def menu(client, url):
        html = client.get(url).get_data(as_text=True)
        return html[html.index('<ul class="nav navbar-nav mr-auto">'):html.index('id="user-menu"')]

    pages = [("enterprise", "/admin/"), ("jinan", "/admin/"), ("jinan", REVIEW), ("province", "/admin/")]
    kept = {(who, url): menu(login(who), url) for who, url in pages}
    assert kept[("jinan", "/admin/")] != kept[("jinan", REVIEW)]  # the active entry is the screen's
    assert kept[("enterprise", "/admin/")] != kept[("jinan", "/admin/")]
    app.extensions.pop("kept_menus", None)
    assert {(who, url): menu(login(who), url) for who, url in pages} == kept
    # 济南 loses 企业信息管理: the review entry leaves its menu at the next page
    jinan = user(session, "jinan")
    jinan.set_permissions([p for p in jinan.permissions if p != Permission.enterprise_manage])
    session.commit()
    assert "企业信息变更审核" in kept[("jinan", "/admin/")]
    assert "企业信息变更审核" not in menu(login("jinan"), "/admin/")
