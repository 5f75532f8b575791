"""系统管理 through the real sign-in, CSRF on (SPEC §7; 003 §七.4, §八.6): 主管部门管理 / 省直所管理 /
单位管理 (新建, 删除, 下线/上线, 职业(工种)范围), the organization's own 职业(工种)范围, 用户管理 (one-time
passwords, 停用, 取消绑定手机号, 重置密码) and 用户权限管理 — who may open them, forged ids of other
organizations (404, nothing moves), the refusals in Chinese, and the logs each change writes."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from models import AuditLog, Level, Occupation, Organization, ScopeItem, TransitionLog, User
from models.org import OrgKind, OrgStatus
from models.user import Permission
from tests.conftest import DEMO_PASSWORD, Browser
from tests.factories import org, user
from tests.integration.test_operation_log import flashes

CSRF_MESSAGE = "页面已过期或缺少安全令牌"
HEZE_NAME = "菏泽市住房和城乡建设局"
HEZE = {"region_code": "371700", "name": HEZE_NAME, "contact": "菏泽证书窗口", "phone": "0530-5310000",
        "address": "菏泽市牡丹区中华路1号", "postcode": "274000"}
JINAN_INST, JINAN_INST2, QINGDAO_INST = "JG370101", "JG370102", "JG370201"
JINAN_INST_NAME, QINGDAO_INST_NAME = "济南市建设职业技能培训中心", "青岛市建筑业职业培训学校"
ORG_VIEWS = ("/admin/authority_manage/", "/admin/direct_institution_manage/", "/admin/institution_manage/")
USER_VIEWS = ("/admin/user_manage/", "/admin/permission_manage/")


# -- helpers -------------------------------------------------------------------------------------------
def text(resp) -> str:
    return resp.get_data(as_text=True)


def field_errors(resp) -> list[str]:
    return re.findall(r'class="invalid-feedback">(.*?)</div>', text(resp), re.S)


def menu(resp) -> dict[str, str]:
    """href → label of the /admin/ page's links (tags and whitespace stripped)."""
    links = re.findall(r'<a\b[^>]*href="(/admin/[^"]*)"[^>]*>(.*?)</a>', text(resp), re.S)
    return {href: re.sub(r"<[^>]+>|\s+", "", label) for href, label in links}


def one_time_password(resp) -> str:
    match = re.search(r'id="one-time-password">([^<]+)</strong>', text(resp))
    assert match, text(resp)[:2000]
    return match.group(1)


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def pair(session, occupation: str, level: str | None = None) -> tuple[int, int | None]:
    occupation_id = session.scalar(select(Occupation.id).where(Occupation.name == occupation))
    level_id = session.scalar(select(Level.id).where(Level.name == level)) if level else None
    return occupation_id, level_id


def form_value(p) -> str:
    return f"{p[0]}:{p[1] if p[1] is not None else ''}"


def scope(session, organization: Organization) -> set[tuple[int, int | None]]:
    session.expire_all()
    return set(session.execute(select(ScopeItem.occupation_id, ScopeItem.level_id)
                               .where(ScopeItem.organization_id == organization.id)).all())


def org_state(session, code: str) -> tuple:
    session.expire_all()
    row = org(session, code)
    return row.name, row.contact, row.status, row.version, frozenset(scope(session, row))


def user_state(session, username: str) -> tuple:
    session.expire_all()
    row = user(session, username)
    return (row.name, row.phone, row.role, row.is_enabled, row.password_hash, row.must_change_password,
            row.permissions)


def create_heze(browser) -> int:
    """新建主管部门 for 菏泽市 (the demo's city without one); the new organization's id."""
    resp = browser.post("/admin/authority_manage/new/", HEZE)
    assert resp.status_code == 302, flashes(resp)
    match = re.search(r"/admin/authority_manage/details/\?id=(\d+)", resp.headers["Location"])
    assert match, resp.headers["Location"]
    return int(match.group(1))


def sign_in_steps(browser: Browser, username: str, password: str):
    """The real two-step sign-in without Browser.login's check of /admin/ (a forced password change)."""
    browser.token = None
    resp = browser.post("/login", {"username": username, "password": password}, token_from="/login")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/sms"), flashes(resp)
    resp = browser.post("/login/sms", {"code": browser.sms_code()}, token_from="/login/sms")
    browser.token = None
    return resp


def login_refused(app, username: str, password: str = DEMO_PASSWORD) -> str:
    """The first step of signing in, refused: its message (no SMS step is reached)."""
    browser = Browser(app.test_client(), app)
    resp = browser.post("/login", {"username": username, "password": password}, token_from="/login")
    assert resp.status_code == 200, resp.headers.get("Location")
    return flashes(resp)


# -- 1. 新建主管部门 -----------------------------------------------------------------------------------------
def test_province_creates_the_heze_authority_once(login, session):
    province = login("province")
    form = text(province.get("/admin/authority_manage/new/"))
    assert re.findall(r'<option value="(\d+)">', form) == ["371700"] and "菏泽市" in form  # the only free city
    authorities = count(session, Organization, Organization.kind == OrgKind.authority)

    resp = province.post("/admin/authority_manage/new/", HEZE)
    assert resp.status_code == 302 and "/admin/authority_manage/details/?id=" in resp.headers["Location"]
    page = province.get(resp.headers["Location"])
    assert page.status_code == 200
    assert "已新建主管部门" in flashes(page) and "SD371700" in flashes(page)
    heze = org(session, "SD371700")
    assert (heze.name, heze.kind, heze.region_code, heze.status) == (HEZE_NAME, OrgKind.authority, "371700",
                                                                      OrgStatus.active)
    assert heze.parent.code == "SD370000" and heze.path == f"{heze.parent.path}{heze.id}/"
    listing = text(province.get("/admin/authority_manage/"))
    assert HEZE_NAME in listing and "SD371700" in listing

    again = province.post("/admin/authority_manage/new/", {**HEZE, "name": "菏泽市第二个主管部门"})
    assert again.status_code == 200
    assert any("已有主管部门" in e for e in field_errors(again)), field_errors(again)
    assert "每个设区市都已有主管部门" in text(again)
    assert count(session, Organization, Organization.kind == OrgKind.authority) == authorities + 1
    assert count(session, Organization, Organization.name == "菏泽市第二个主管部门") == 0


# -- 2. menus and access --------------------------------------------------------------------------------------
def test_menus_and_who_may_open_the_screens(login):
    province = login("province")
    links = menu(province.get("/admin/"))
    for href, label in (("/admin/authority_manage/", "主管部门管理"), ("/admin/direct_institution_manage/", "省直所管理"),
                        ("/admin/institution_manage/", "单位管理"), ("/admin/user_manage/", "用户管理"),
                        ("/admin/permission_manage/", "用户权限管理")):
        assert links.get(href) == label, (href, links)
        assert province.get(href).status_code == 200, href

    jinan = login("jinan")
    links = menu(jinan.get("/admin/"))
    assert links.get("/admin/institution_manage/") == "单位管理"
    assert "/admin/authority_manage/" not in links and "/admin/direct_institution_manage/" not in links
    assert jinan.get("/admin/institution_manage/").status_code == 200
    for url in ORG_VIEWS[:2] + ("/admin/authority_manage/new/", "/admin/direct_institution_manage/new/"):
        assert jinan.get(url).status_code == 403, url

    inst = login("inst_jinan")
    assert not set(ORG_VIEWS) & set(menu(inst.get("/admin/")))
    for url in ORG_VIEWS + ("/admin/institution_manage/new/",):
        assert inst.get(url).status_code == 403, url
    for url in USER_VIEWS:
        assert inst.get(url).status_code == 200, url

    reviewer = login("province_reviewer")
    for url in ORG_VIEWS + USER_VIEWS:
        assert reviewer.get(url).status_code == 403, url
    person = login("person")
    for url in ORG_VIEWS + USER_VIEWS + ("/admin/own_scope/",):
        assert person.get(url).status_code == 403, url
    enterprise = login("enterprise")
    for url in ORG_VIEWS + ("/admin/user_manage/", "/admin/own_scope/"):
        assert enterprise.get(url).status_code == 403, url
    assert enterprise.get("/admin/permission_manage/").status_code == 200
    assert "/admin/permission_manage/" in menu(enterprise.get("/admin/"))


# -- 3. an authority's 单位管理: its own institutions only ------------------------------------------------------
def test_authority_lists_and_reaches_only_its_own_institutions(login, session):
    jinan = login("jinan")
    listing = text(jinan.get("/admin/institution_manage/"))
    assert JINAN_INST_NAME in listing and "济南建筑技工学校培训部" in listing
    assert QINGDAO_INST_NAME not in listing and QINGDAO_INST not in listing
    own = org(session, JINAN_INST)
    assert jinan.get(f"/admin/institution_manage/details/?id={own.id}").status_code == 200

    foreign = org(session, QINGDAO_INST)
    before = org_state(session, QINGDAO_INST)
    for url in (f"/admin/institution_manage/details/?id={foreign.id}", f"/admin/institution_manage/edit/?id={foreign.id}",
                f"/admin/institution_manage/scope/?id={foreign.id}"):
        assert jinan.get(url).status_code == 404, url
    posts = [
        (f"/admin/institution_manage/edit/?id={foreign.id}", {"id": foreign.id, "name": "被改名", "contact": "x",
                                                              "phone": "1"}),
        (f"/admin/institution_manage/scope/?id={foreign.id}", {"id": foreign.id, "pair": []}),
        ("/admin/institution_manage/delete/", {"id": foreign.id}),
        ("/admin/institution_manage/transition/", {"id": foreign.id, "transition": "offline",
                                                   "version": foreign.version}),
    ]
    for url, data in posts:
        assert jinan.post(url, data).status_code == 404, url
    resp = jinan.post("/admin/institution_manage/action/", {"action": "wf_offline", "rowid": str(foreign.id)},
                      follow_redirects=True)
    assert "成功 0 条，失败 1 条" in flashes(resp), flashes(resp)
    assert org_state(session, QINGDAO_INST) == before
    assert before[2] == OrgStatus.active and before[4]  # it had a status and a scope to lose

    # the province's 下级机构 link narrows 单位管理 to one authority's institutions
    province = login("province")
    narrowed = text(province.get(f"/admin/institution_manage/?parent={org(session, 'SD370100').id}"))
    assert 'id="parent-filter"' in narrowed and JINAN_INST_NAME in narrowed and QINGDAO_INST_NAME not in narrowed
    assert QINGDAO_INST_NAME in text(province.get("/admin/institution_manage/"))


# -- 4. 删除 -----------------------------------------------------------------------------------------------------
def test_delete_refuses_an_organization_with_data_and_removes_an_empty_one(login, session):
    province = login("province")
    full = org(session, JINAN_INST)
    resp = province.post("/admin/institution_manage/delete/", {"id": full.id}, follow_redirects=True)
    message = flashes(resp)
    assert JINAN_INST_NAME in message and "不能删除" in message
    assert "用户1条" in message and "批次" in message and "证书" in message and "如需停用请下线" in message
    assert org(session, JINAN_INST) is not None
    # Flask-Admin's own bulk 删除 would skip that check: it is not offered, and refused when posted
    assert 'data-model-action="delete"' not in text(province.get("/admin/institution_manage/"))
    resp = province.post("/admin/institution_manage/action/", {"action": "delete", "rowid": str(full.id)},
                         follow_redirects=True)
    assert "无权执行该操作" in flashes(resp) and "成功删除" not in flashes(resp)
    assert org(session, JINAN_INST) is not None

    jinan = login("jinan")
    resp = jinan.post("/admin/institution_manage/new/", {"name": "济南临时培训点", "contact": "王", "phone": "0531-1"})
    assert resp.status_code == 302, flashes(resp)
    empty = session.scalar(select(Organization).where(Organization.name == "济南临时培训点"))
    assert empty.parent.code == "SD370100" and empty.code.startswith("JG3701")
    resp = jinan.post("/admin/institution_manage/delete/", {"id": empty.id}, follow_redirects=True)
    assert "已删除培训机构：济南临时培训点" in flashes(resp)
    assert count(session, Organization, Organization.name == "济南临时培训点") == 0
    assert count(session, AuditLog, AuditLog.summary.startswith("删除培训机构 济南临时培训点")) == 1


# -- 5. 下线 / 上线 ----------------------------------------------------------------------------------------------
def test_offline_institution_signs_its_users_out_and_online_lets_them_back(app, login, session):
    signed_in = login("inst_jinan")
    assert signed_in.get("/admin/batch/").status_code == 200
    province = login("province")
    inst = org(session, JINAN_INST)
    resp = province.post("/admin/institution_manage/transition/",
                         {"id": inst.id, "transition": "offline", "version": inst.version}, follow_redirects=True)
    assert "下线：操作成功" in flashes(resp)
    assert org(session, JINAN_INST).status == OrgStatus.offline

    resp = signed_in.get("/admin/batch/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert "所属机构已下线" in flashes(signed_in.get(resp.headers["Location"]))
    assert signed_in.get("/admin/").status_code == 302  # the session is gone, not only the one request
    assert "所属机构已下线" in login_refused(app, "inst_jinan")

    inst = org(session, JINAN_INST)
    resp = province.post("/admin/institution_manage/transition/",
                         {"id": inst.id, "transition": "online", "version": inst.version}, follow_redirects=True)
    assert "上线：操作成功" in flashes(resp)
    assert org(session, JINAN_INST).status == OrgStatus.active
    assert login("inst_jinan").get("/admin/batch/").status_code == 200


# -- 6. 职业(工种)范围 ---------------------------------------------------------------------------------------------
def test_province_assigns_the_new_authority_its_scope(login, session):
    province = login("province")
    heze_id = create_heze(province)
    heze = session.get(Organization, heze_id)
    assert scope(session, heze) == set()
    page = text(province.get(f"/admin/authority_manage/scope/?id={heze_id}"))
    assert 'id="scope-save"' in page and "当前 0 项" in page
    wanted = {pair(session, "砌筑工", "初级工(五级)"), pair(session, "电工", "高级工(三级)"), pair(session, "施工员")}
    url = f"/admin/authority_manage/scope/?id={heze_id}"
    resp = province.post(url, {"pair": [form_value(p) for p in wanted]}, follow_redirects=True)
    assert f"{HEZE_NAME}的职业(工种)范围已保存：新增 3 项" in flashes(resp)
    assert scope(session, heze) == wanted


def test_narrowing_a_parent_cascades_and_children_never_exceed_it(login, session):
    jinan_org, inst, inst2 = org(session, "SD370100"), org(session, JINAN_INST), org(session, JINAN_INST2)
    builder, mason = pair(session, "施工员"), pair(session, "砌筑工", "中级工(四级)")
    assert {builder, mason} <= scope(session, inst) and mason in scope(session, inst2)
    assert builder not in scope(session, inst2)

    province = login("province")
    keep = scope(session, jinan_org) - {builder, mason}
    resp = province.post(f"/admin/authority_manage/scope/?id={jinan_org.id}", {"pair": [form_value(p) for p in keep]},
                         follow_redirects=True)
    message = flashes(resp)
    assert "删除 2 项" in message and "下级机构同时删除" in message
    assert f"{JINAN_INST_NAME}（砌筑工 中级工(四级)、施工员）" in message and "济南建筑技工学校培训部" in message
    assert scope(session, jinan_org) == keep
    assert not {builder, mason} & scope(session, inst)  # at once, in the child's own rows
    assert mason not in scope(session, inst2)

    # 施工员 is no longer 济南's: neither 济南 nor the province may give it to 济南's institution
    before = scope(session, inst2)
    asked = [form_value(p) for p in before | {builder}]
    for who in ("jinan", "province"):
        resp = login(who).post(f"/admin/institution_manage/scope/?id={inst2.id}", {"pair": asked},
                               follow_redirects=True)
        message = flashes(resp)
        assert "不在济南市住房和城乡建设局的职业(工种)范围内" in message and "施工员" in message, (who, message)
        assert scope(session, inst2) == before, who


def test_own_scope_may_only_be_narrowed(login, session):
    inst = org(session, JINAN_INST)
    held = scope(session, inst)
    browser = login("inst_jinan")
    page = text(browser.get("/admin/own_scope/"))
    assert 'id="scope-save"' in page and "本机构可取消勾选以缩小职业(工种)范围" in page
    safety = pair(session, "安全员")
    assert safety in held
    resp = browser.post("/admin/own_scope/", {"pair": [form_value(p) for p in held - {safety}]},
                        follow_redirects=True)
    assert "删除 1 项" in flashes(resp)
    assert scope(session, inst) == held - {safety}

    carpenter = pair(session, "木工", "初级工(五级)")
    narrowed = held - {safety}
    resp = browser.post("/admin/own_scope/", {"pair": [form_value(p) for p in narrowed | {carpenter, safety}]},
                        follow_redirects=True)
    message = flashes(resp)
    assert "本机构只能缩小自己的职业(工种)范围" in message and "木工 初级工(五级)" in message and "安全员" in message
    assert scope(session, inst) == narrowed

    # always its own organization: the id of another one (a sibling it does not manage) is a forged one
    other = org(session, JINAN_INST2)
    other_scope = scope(session, other)
    resp = browser.post(f"/admin/own_scope/?id={other.id}", {"id": str(other.id), "pair": []})
    assert resp.status_code == 404
    assert scope(session, inst) == narrowed and scope(session, other) == other_scope


def test_province_own_scope_is_read_only(login, session):
    province_org = org(session, "SD370000")
    held = scope(session, province_org)
    browser = login("province")
    page = text(browser.get("/admin/own_scope/"))
    assert 'id="scope-form"' in page and 'id="scope-save"' not in page
    assert "省厅包含所有的职业(工种)、等级，不可删除" in page
    boxes = re.findall(r'<input type="checkbox" name="pair"[^>]*>', page)
    assert len(boxes) == len(held) and all("disabled" in box for box in boxes)
    dropped = sorted(held)[:2]
    resp = browser.post("/admin/own_scope/", {"pair": [form_value(p) for p in held - set(dropped)]},
                        follow_redirects=True)
    assert "不可删除" in flashes(resp)
    assert scope(session, province_org) == held


# -- 7. 用户管理 / 用户权限管理 -------------------------------------------------------------------------------------
def test_new_user_gets_a_one_time_password_and_must_change_it(app, login, session):
    province = login("province")
    heze_id = create_heze(province)
    resp = province.post("/admin/user_manage/new/", {"organization_id": str(heze_id), "name": "菏泽管理员",
                                                     "username": "heze_admin", "phone": "13912349999",
                                                     "role": "admin"})
    assert resp.status_code == 200 and resp.headers.get("Cache-Control") == "no-store"
    assert "已新增用户 heze_admin" in flashes(resp)
    password = one_time_password(resp)
    made = user(session, "heze_admin")
    assert made.organization_id == heze_id and made.must_change_password is True
    assert password not in made.password_hash
    assert Permission.org_manage in made.permissions  # the admin preset of an authority

    browser = Browser(app.test_client(), app)
    resp = sign_in_steps(browser, "heze_admin", password)
    assert resp.status_code == 302
    for url in ("/admin/", "/admin/institution_manage/"):
        resp = browser.get(url)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/password"), url
    resp = browser.post("/password", {"old_password": password, "new_password": "Heze2026abc",
                                      "confirm_password": "Heze2026abc"}, token_from="/password")
    assert resp.status_code == 302, flashes(resp)
    assert browser.get("/admin/").status_code == 200
    assert browser.get("/admin/institution_manage/").status_code == 200
    assert user(session, "heze_admin").must_change_password is False


def test_authority_cannot_touch_another_citys_users(login, session):
    jinan = login("jinan")
    listing = text(jinan.get("/admin/user_manage/"))
    assert "inst_jinan" in listing and "inst_qingdao" not in listing
    foreign_org = org(session, QINGDAO_INST)
    assert "inst_qingdao" not in text(jinan.get(f"/admin/user_manage/?org={foreign_org.id}"))

    users_before = count(session, User)
    resp = jinan.post("/admin/user_manage/new/", {"organization_id": str(foreign_org.id), "name": "冒名用户",
                                                  "username": "forged_user", "phone": "13912348888",
                                                  "role": "operator"})
    assert resp.status_code == 200 and "请选择所属机构" in field_errors(resp)
    assert count(session, User) == users_before
    assert count(session, User, User.username == "forged_user") == 0

    target = user(session, "inst_qingdao")
    before = user_state(session, "inst_qingdao")
    for url in (f"/admin/user_manage/details/?id={target.id}", f"/admin/user_manage/edit/?id={target.id}",
                f"/admin/permission_manage/permissions/?id={target.id}"):
        assert jinan.get(url).status_code == 404, url
    edit = {"id": target.id, "name": "被改名", "phone": "13912340001", "role": "operator"}
    assert jinan.post(f"/admin/user_manage/edit/?id={target.id}", edit).status_code == 404
    for action in ("reset", "disable", "unbind", "enable"):
        assert jinan.post(f"/admin/user_manage/{action}/", {"id": target.id}).status_code == 404, action
    assert jinan.post(f"/admin/permission_manage/permissions/?id={target.id}",
                      {"permission": ["batch_manage"]}).status_code == 404
    assert user_state(session, "inst_qingdao") == before


def test_permissions_are_granted_and_withdrawn_within_the_kind(login, session):
    target = user(session, "inst_jinan")
    before = target.permissions
    assert Permission.audit_view in before and Permission.segment_manage not in before
    province = login("province")
    url = f"/admin/permission_manage/permissions/?id={target.id}"
    page = text(province.get(url))
    assert 'id="perm-batch_manage"' in page and 'id="perm-segment_manage"' not in page  # only the kind's
    resp = province.post(url, {"permission": [p.value for p in before | {Permission.segment_manage}]},
                         follow_redirects=True)
    assert "证书号段维护" in flashes(resp) and "不是培训机构可以拥有的" in flashes(resp)
    assert user(session, "inst_jinan").permissions == before

    resp = province.post(url, {"permission": [p.value for p in before - {Permission.audit_view}]},
                         follow_redirects=True)
    assert "用户 inst_jinan 的权限已保存：撤销 操作日志" in flashes(resp)
    assert user(session, "inst_jinan").permissions == before - {Permission.audit_view}
    resp = province.post(url, {"permission": [p.value for p in before]}, follow_redirects=True)
    assert "授予 操作日志" in flashes(resp)
    assert user(session, "inst_jinan").permissions == before

    me = user(session, "province")
    mine = me.permissions
    page = text(province.get(f"/admin/permission_manage/permissions/?id={me.id}"))
    assert "不能修改自己的权限" in page and 'id="permission-save"' not in page
    resp = province.post(f"/admin/permission_manage/permissions/?id={me.id}", {"permission": ["statistics"]},
                         follow_redirects=True)
    assert "不能修改自己的权限" in flashes(resp)
    assert user(session, "province").permissions == mine


def test_disable_enable_unbind_and_reset(app, login, session):
    province = login("province")
    me = user(session, "province")
    resp = province.post("/admin/user_manage/disable/", {"id": me.id}, follow_redirects=True)
    assert "不能停用自己的账号" in flashes(resp)
    assert user(session, "province").is_enabled is True

    qingdao_inst = user(session, "inst_qingdao")
    resp = province.post("/admin/user_manage/disable/", {"id": qingdao_inst.id}, follow_redirects=True)
    assert "已停用用户 inst_qingdao" in flashes(resp)
    assert user(session, "inst_qingdao").is_enabled is False
    assert "账号已停用" in login_refused(app, "inst_qingdao")
    assert "inst_qingdao" in text(province.get("/admin/user_manage/?tab=disabled"))
    resp = province.post("/admin/user_manage/enable/", {"id": qingdao_inst.id}, follow_redirects=True)
    assert "已启用用户 inst_qingdao" in flashes(resp)
    assert login("inst_qingdao").get("/admin/").status_code == 200

    jinan_inst = user(session, "inst_jinan")
    resp = province.post("/admin/user_manage/unbind/", {"id": jinan_inst.id}, follow_redirects=True)
    assert "已取消绑定用户 inst_jinan 的手机号" in flashes(resp)
    assert user(session, "inst_jinan").phone is None
    assert "未绑定手机号" in login_refused(app, "inst_jinan")

    reviewer = user(session, "jinan_reviewer")
    old_hash = reviewer.password_hash
    resp = province.post("/admin/user_manage/reset/", {"id": reviewer.id})
    assert resp.status_code == 200 and resp.headers.get("Cache-Control") == "no-store"
    assert "密码已重置" in text(resp)
    password = one_time_password(resp)
    reviewer = user(session, "jinan_reviewer")
    assert reviewer.must_change_password is True and reviewer.password_hash != old_hash
    reset_log = session.scalars(select(AuditLog).where(AuditLog.kind == "password", AuditLog.object_id == reviewer.id)
                                .order_by(AuditLog.id.desc())).first()
    assert reset_log.username == "province" and reset_log.ip  # who reset it, from where
    assert "用户名或密码错误" in login_refused(app, "jinan_reviewer")  # the old password is gone
    browser = Browser(app.test_client(), app)
    sign_in_steps(browser, "jinan_reviewer", password)
    resp = browser.get("/admin/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/password")


# -- 8. CSRF: forms that would succeed, without their token ------------------------------------------------------
def test_posts_without_a_token_change_nothing(login, session):
    """test_csrf.py posts every route with a generic form; here each form would succeed with its token."""
    province = login("province")
    authorities = count(session, Organization, Organization.kind == OrgKind.authority)
    resp = province.post("/admin/authority_manage/new/", HEZE, csrf=False)
    assert resp.status_code == 400 and CSRF_MESSAGE in text(resp)
    assert count(session, Organization, Organization.kind == OrgKind.authority) == authorities

    target = user(session, "inst_qingdao")
    resp = province.post("/admin/user_manage/disable/", {"id": target.id}, csrf=False)
    assert resp.status_code == 400 and CSRF_MESSAGE in text(resp)
    assert user(session, "inst_qingdao").is_enabled is True

    before = target.permissions
    url = f"/admin/permission_manage/permissions/?id={target.id}"
    resp = province.post(url, {"permission": ["batch_manage"]}, csrf=False)
    assert resp.status_code == 400 and CSRF_MESSAGE in text(resp)
    assert user(session, "inst_qingdao").permissions == before

    # control: the same forms with the token go through
    create_heze(province)
    assert count(session, Organization, Organization.kind == OrgKind.authority) == authorities + 1
    assert province.post("/admin/user_manage/disable/", {"id": target.id}).status_code == 302
    assert user(session, "inst_qingdao").is_enabled is False
    province.post("/admin/user_manage/enable/", {"id": target.id})
    assert province.post(url, {"permission": ["batch_manage"]}).status_code == 302
    assert user(session, "inst_qingdao").permissions == {Permission.batch_manage}


# -- 9. 操作日志 and 审核日志 ----------------------------------------------------------------------------------------
def test_changes_are_logged_by_the_acting_user(login, session):
    me = user(session, "province")

    def edits(prefix, object_type, object_id):
        session.expire_all()
        return list(session.scalars(select(AuditLog).where(
            AuditLog.kind == "edit", AuditLog.summary.startswith(prefix), AuditLog.user_id == me.id,
            AuditLog.object_type == object_type, AuditLog.object_id == object_id)))

    province = login("province")
    heze_id = create_heze(province)
    [created] = edits("新建主管部门", "organization", heze_id)
    assert created.username == "province" and created.organization_id == me.organization_id
    assert created.detail["name"] == {"before": None, "after": HEZE_NAME}

    mason = pair(session, "砌筑工", "初级工(五级)")
    province.post(f"/admin/authority_manage/scope/?id={heze_id}", {"pair": [form_value(mason)]})
    [scoped] = edits("配置职业(工种)范围", "organization", heze_id)
    assert "砌筑工 初级工(五级)" in scoped.summary

    resp = province.post("/admin/user_manage/new/", {"organization_id": str(heze_id), "name": "菏泽审核员",
                                                     "username": "heze_reviewer", "phone": "13912349998",
                                                     "role": "reviewer"})
    assert resp.status_code == 200
    made = user(session, "heze_reviewer")
    [added] = edits("新增用户 heze_reviewer", "user_account", made.id)
    assert HEZE_NAME in added.summary

    province.post(f"/admin/permission_manage/permissions/?id={made.id}",
                  {"permission": [p.value for p in made.permissions | {Permission.audit_view}]})
    [granted] = edits("设置用户 heze_reviewer 的权限", "user_account", made.id)
    assert "授予 操作日志" in granted.summary

    heze = session.get(Organization, heze_id)
    province.post("/admin/authority_manage/transition/", {"id": heze_id, "transition": "offline",
                                                          "version": heze.version})
    session.expire_all()
    [row] = session.scalars(select(TransitionLog).where(TransitionLog.object_type == "organization",
                                                        TransitionLog.object_id == heze_id))
    assert (row.transition, row.from_state, row.to_state, row.actor_id) == ("offline", "active", "offline", me.id)
    page = text(province.get(f"/admin/authority_manage/details/?id={heze_id}"))
    log_table = page[page.index('id="status-log"'):]
    log_table = log_table[:log_table.index("</table>")]
    assert "<td>下线</td>" in log_table and "<td>省厅管理员</td>" in log_table


def test_a_deleted_organizations_log_never_shows_on_a_new_one(login, session):
    """SQLite gives a deleted row's id out again: the new 省直所 must not show the old one's 下线."""
    province = login("province")
    form = {"name": "临时省直所", "contact": "张", "phone": "0531-1"}
    province.post("/admin/direct_institution_manage/new/", form, token_from="/admin/direct_institution_manage/new/")
    old = session.scalars(select(Organization).where(Organization.name == "临时省直所")).one()
    province.post("/admin/direct_institution_manage/transition/",
                  {"id": old.id, "transition": "offline", "version": old.version})
    resp = province.post("/admin/direct_institution_manage/delete/", {"id": old.id}, follow_redirects=True)
    assert "已删除省直所：临时省直所" in text(resp)
    province.post("/admin/direct_institution_manage/new/", {**form, "name": "新省直所"})
    new = session.scalars(select(Organization).where(Organization.name == "新省直所")).one()
    page = text(province.get(f"/admin/direct_institution_manage/details/?id={new.id}"))
    assert "暂无上线/下线记录" in page
    # the old one's 下线 (the seeded enterprise's 注册审核不通过 is an organization transition too)
    assert count(session, TransitionLog, TransitionLog.object_type == "organization",
                 TransitionLog.transition == "offline") == 1


def test_new_user_with_a_number_another_account_holds_is_refused_next_to_the_field(login, session):
    """Issue 17: 新增用户 and 修改 bind a phone too — refused in Chinese beside 手机号, nothing written."""
    jinan = login("jinan")
    taken, users_before = user(session, "qingdao").phone, session.scalar(select(func.count()).select_from(User))
    own = org(session, "SD370100")
    resp = jinan.post("/admin/user_manage/new/", {"organization_id": str(own.id), "name": "重号用户",
                                                  "username": "dup_phone_user", "phone": taken, "role": "reviewer"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "该手机号已绑定其他账号（一个手机号只能绑定一个账号），请更换手机号" in page
    assert session.scalar(select(func.count()).select_from(User)) == users_before
