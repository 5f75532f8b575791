"""用户管理 and 用户权限管理 (SPEC §1, §7; 003 §六.4, §七.4, §八.6): whose users a manager reaches, and
新增 / 修改 / 停用 / 重置密码 / 取消绑定手机号 / 权限 — never on oneself, never beyond the kind."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AuditLog, User
from models.base import utcnow
from models.org import OrgKind
from models.user import KIND_PERMISSIONS, Permission, Role, role_preset
from tests.conftest import DEMO_PASSWORD
from tests.factories import make_user, org, user
from workflows import FormErrors, WorkflowError
from workflows.auth import authenticate, login_refusal, password_matches
from workflows.users import (
    allowed_permissions,
    create_user,
    manages_users_of,
    reset_password,
    role_choices,
    set_enabled,
    set_permissions,
    unbind_phone,
    update_user,
    users_clause,
)
from workflows.validators import check_password_policy

P = Permission


def new_user(**changes) -> dict:
    """What 新增用户 posts, with ``changes``."""
    out = {"name": "新同事", "username": "new_colleague", "phone": "13912340000", "role": "operator"}
    out.update(changes)
    return out


def user_count(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def last_log(session, target: User) -> AuditLog:
    return session.scalars(select(AuditLog).where(AuditLog.object_type == "user_account",
                                                  AuditLog.object_id == target.id)
                           .order_by(AuditLog.id.desc())).first()


# -- reach ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("username", "code", "expected"), [
    # its own organization, with 用户管理
    ("inst_jinan", "JG370101", True),
    ("jinan", "SD370100", True),
    ("province", "SD370000", True),
    ("enterprise", "QY370101", True),
    ("enterprise_op", "QY370101", False),      # no 用户管理
    ("jinan_reviewer", "SD370100", False),
    ("province_reviewer", "SD370000", False),
    ("ministry", "MOHURD", False),
    # the province: what it manages, and enterprises and schools
    ("province", "SD370100", True),
    ("province", "JG370101", True),
    ("province", "JG370201", True),
    ("province", "SZ370001", True),
    ("province", "QY370101", True),
    ("province", "XX370101", True),
    ("province", "MOHURD", False),
    ("province_reviewer", "JG370101", False),
    # an authority: its own institutions only
    ("jinan", "JG370101", True),
    ("jinan", "JG370102", True),
    ("jinan", "JG370201", False),
    ("jinan", "SD370200", False),
    ("jinan", "SD370000", False),
    ("jinan", "QY370101", False),
    ("jinan", "XX370101", False),
    ("jinan", "SZ370001", False),
    # an institution: only its own
    ("inst_jinan", "JG370102", False),
    ("inst_jinan", "JG370201", False),
    ("inst_jinan", "SD370100", False),
    ("direct_inst", "JG370101", False),
])
def test_whose_users_a_manager_reaches(rolled_session, username, code, expected):
    assert manages_users_of(user(rolled_session, username), org(rolled_session, code)) is expected


@pytest.mark.parametrize("username", ["province", "jinan", "qingdao", "inst_jinan", "enterprise", "province_reviewer"])
def test_the_user_list_matches_the_reach(rolled_session, username):
    manager = user(rolled_session, username)
    listed = set(rolled_session.scalars(select(User.id).where(users_clause(manager))))
    reached = {u.id for u in rolled_session.scalars(select(User).where(User.organization_id.is_not(None)))
               if manages_users_of(manager, u.organization)}
    assert listed == reached


def test_a_disabled_manager_reaches_nobody(session):
    jinan = user(session, "jinan")
    jinan.is_enabled = False
    assert not manages_users_of(jinan, org(session, "JG370101"))
    assert not manages_users_of(jinan, org(session, "SD370100"))


def test_roles_and_permissions_follow_the_kind(rolled_session):
    assert role_choices(OrgKind.ministry) == [Role.admin, Role.reviewer]
    assert role_choices(OrgKind.institution) == [Role.admin, Role.reviewer, Role.operator]
    assert all(role_preset(kind, role) for kind in OrgKind for role in role_choices(kind))
    assert Role.individual not in role_choices(OrgKind.enterprise)
    allowed = allowed_permissions(org(rolled_session, "JG370101"))
    assert set(allowed) == KIND_PERMISSIONS[OrgKind.institution] and P.segment_manage not in allowed
    assert allowed == [p for p in Permission if p in allowed]


# -- create_user -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("manager", "code", "role"), [
    ("inst_jinan", "JG370101", Role.operator),
    ("jinan", "JG370102", Role.admin),
    ("jinan", "SD370100", Role.reviewer),
    ("province", "SZ370001", Role.admin),
    ("province", "QY370101", Role.operator),
    ("province", "SD370200", Role.reviewer),
])
def test_a_new_user_gets_a_one_time_password_and_the_roles_preset(session, manager, code, role):
    target_org = org(session, code)
    created, password = create_user(session, user(session, manager), target_org,
                                     new_user(role=role.value, phone="139 1234 0000"), ip="10.0.0.5")
    session.commit()
    session.expire_all()
    created = session.get(User, created.id)
    check_password_policy(password)
    assert password_matches(created, password) and not password_matches(created, DEMO_PASSWORD)
    assert created.must_change_password is True and created.is_enabled
    assert created.organization_id == target_org.id and created.role == role
    assert created.phone == "13912340000"
    assert created.permissions == role_preset(target_org.kind, role) and created.permissions
    row = last_log(session, created)
    assert row.user_id == user(session, manager).id and row.ip == "10.0.0.5" and "new_colleague" in row.summary
    assert password not in json.dumps(row.detail, ensure_ascii=False) + row.summary


def test_two_new_users_get_different_passwords(session):
    jinan = user(session, "jinan")
    _, first = create_user(session, jinan, org(session, "JG370101"), new_user(username="first_one"))
    _, second = create_user(session, jinan, org(session, "JG370101"), new_user(username="second_one",
                                                                                phone="13912340001"))
    assert first != second


def test_a_typed_password_is_not_temporary(session):
    created, one_time = create_user(session, user(session, "inst_jinan"), org(session, "JG370101"),
                                    new_user(password="Typed2026ok", password2="Typed2026ok"), password_typed=True)
    assert one_time is None and created.must_change_password is False
    assert password_matches(created, "Typed2026ok")


@pytest.mark.parametrize(("typed", "again", "field"), [("Typed2026ok", "Typed2026no", "password2"),
                                                       ("short1", "short1", "password"),
                                                       ("lettersonly", "lettersonly", "password")])
def test_a_typed_password_is_checked(session, typed, again, field):
    before = user_count(session)
    with pytest.raises(FormErrors) as caught:
        create_user(session, user(session, "inst_jinan"), org(session, "JG370101"),
                    new_user(password=typed, password2=again), password_typed=True)
    assert field in caught.value.errors
    assert user_count(session) == before


def test_a_role_the_kind_does_not_have_is_refused_by_name(session):
    ministry = org(session, "MOHURD")
    admin = make_user(session, ministry, "ministry_admin", Role.admin)
    before = user_count(session)
    with pytest.raises(FormErrors) as caught:
        create_user(session, admin, ministry, new_user(role="operator"))
    assert caught.value.errors["role"] == "部级注册中心不能设置「经办人」角色"
    assert user_count(session) == before
    created, _ = create_user(session, admin, ministry, new_user(role="reviewer"))
    assert created.permissions == role_preset(OrgKind.ministry, Role.reviewer)


@pytest.mark.parametrize(("role", "message"), [("individual", "培训机构不能设置「个人」角色"),
                                               ("superuser", "请选择角色"), ("", "请选择角色")])
def test_roles_outside_the_choices_are_refused(session, role, message):
    with pytest.raises(FormErrors) as caught:
        create_user(session, user(session, "jinan"), org(session, "JG370101"), new_user(role=role))
    assert caught.value.errors["role"] == message


@pytest.mark.parametrize("taken", ["jinan", "JINAN", "Inst_Jinan", " province "])
def test_a_taken_username_is_refused_whatever_its_case(session, taken):
    before = user_count(session)
    with pytest.raises(FormErrors) as caught:
        create_user(session, user(session, "jinan"), org(session, "JG370101"), new_user(username=taken))
    assert caught.value.errors["username"] == "该登录用户名已被使用，请换一个"
    assert user_count(session) == before


@pytest.mark.parametrize("bad", ["abc", "张三丰001", "has space", "x" * 65])
def test_a_malformed_username_is_refused(session, bad):
    with pytest.raises(FormErrors) as caught:
        create_user(session, user(session, "jinan"), org(session, "JG370101"), new_user(username=bad))
    assert "username" in caught.value.errors


@pytest.mark.parametrize(("phone", "message"), [("12345", "手机号格式不正确"), ("12800000000", "手机号格式不正确"),
                                                ("1380000000a", "手机号格式不正确"),
                                                ("", "请填写手机号（登录时接收短信验证码）")])
def test_a_bad_phone_is_refused(session, phone, message):
    before = user_count(session)
    with pytest.raises(FormErrors) as caught:
        create_user(session, user(session, "jinan"), org(session, "JG370101"), new_user(phone=phone))
    assert caught.value.errors["phone"] == message
    assert user_count(session) == before


def test_all_field_errors_are_reported_at_once(session):
    with pytest.raises(FormErrors) as caught:
        create_user(session, user(session, "jinan"), org(session, "JG370101"),
                    {"name": "", "username": "ab", "phone": "1", "role": "x"})
    assert set(caught.value.errors) == {"name", "username", "phone", "role"}


@pytest.mark.parametrize(("manager", "code"), [("jinan", "JG370201"), ("jinan", "QY370101"),
                                               ("inst_jinan", "JG370102"), ("province_reviewer", "SD370000"),
                                               ("enterprise_op", "QY370101"), ("province", "MOHURD")])
def test_creating_a_user_outside_ones_reach_is_refused(session, manager, code):
    before = user_count(session)
    with pytest.raises(WorkflowError, match="无权在该机构新增用户"):
        create_user(session, user(session, manager), org(session, code), new_user())
    assert user_count(session) == before
    assert session.scalar(select(User).where(User.username == "new_colleague")) is None


# -- set_permissions ---------------------------------------------------------------------------------------
def test_a_permission_beyond_the_kind_is_refused_by_name(session):
    target = user(session, "inst_jinan")
    before = target.permissions
    wanted = [p.value for p in before] + [P.segment_manage.value]
    with pytest.raises(WorkflowError) as caught:
        set_permissions(session, user(session, "jinan"), target, wanted)
    assert "证书号段维护" in caught.value.message and "培训机构" in caught.value.message
    session.expire_all()
    assert user(session, "inst_jinan").permissions == before


def test_an_unknown_permission_is_refused(session):
    target = user(session, "inst_jinan")
    before = target.permissions
    with pytest.raises(WorkflowError, match="权限不存在：superpower"):
        set_permissions(session, user(session, "jinan"), target, [P.batch_manage.value, "superpower"])
    assert target.permissions == before


def test_single_permissions_are_granted_and_withdrawn_and_logged(session):
    staff = make_user(session, org(session, "JG370101"), "inst_jinan_op", Role.operator)
    before = staff.permissions
    assert P.user_manage not in before and P.certificate_print in before
    wanted = (before - {P.certificate_print}) | {P.user_manage}
    result = set_permissions(session, user(session, "inst_jinan"), staff, [p.value for p in wanted], ip="10.0.0.6")
    assert result == {"granted": ["用户管理"], "withdrawn": ["证书打印"]}
    session.commit()
    session.expire_all()
    staff = user(session, "inst_jinan_op")
    assert staff.permissions == wanted
    assert staff.has(P.user_manage) and not staff.has(P.certificate_print)
    row = last_log(session, staff)
    assert "授予 用户管理" in row.summary and "撤销 证书打印" in row.summary and row.ip == "10.0.0.6"
    change = row.detail["权限"]
    assert "证书打印" in change["before"] and "证书打印" not in change["after"]
    assert "用户管理" in change["after"] and "用户管理" not in change["before"]
    assert isinstance(change["before"], list) and isinstance(change["after"], list)


def test_withdrawing_everything_leaves_no_permission(session):
    staff = make_user(session, org(session, "JG370101"), "inst_jinan_op2", Role.operator)
    result = set_permissions(session, user(session, "jinan"), staff, [])
    assert staff.permissions == frozenset() and result["granted"] == []
    assert set(result["withdrawn"]) == {p.label for p in role_preset(OrgKind.institution, Role.operator)}


def test_the_same_permissions_change_and_log_nothing(session):
    target = user(session, "inst_jinan")
    logs = session.scalar(select(func.count()).select_from(AuditLog))
    assert set_permissions(session, user(session, "jinan"), target, list(target.permissions)) == {
        "granted": [], "withdrawn": []}
    assert session.scalar(select(func.count()).select_from(AuditLog)) == logs


def test_changing_ones_own_permissions_is_refused(session):
    jinan = user(session, "jinan")
    before = jinan.permissions
    with pytest.raises(WorkflowError, match="不能修改自己的权限"):
        set_permissions(session, jinan, jinan, [P.user_manage.value])
    assert jinan.permissions == before


def test_permissions_of_users_out_of_reach_are_refused(session):
    target = user(session, "inst_qingdao")
    with pytest.raises(WorkflowError, match="用户不存在"):
        set_permissions(session, user(session, "jinan"), target, [])
    assert target.permissions == role_preset(OrgKind.institution, Role.admin)


def test_a_disabled_users_permissions_are_not_changed(session):
    target = user(session, "inst_jinan")
    set_enabled(session, user(session, "jinan"), target, False)
    with pytest.raises(WorkflowError, match="该用户已停用，请先启用"):
        set_permissions(session, user(session, "jinan"), target, [])
    assert target.permissions


# -- set_enabled ---------------------------------------------------------------------------------------------
def test_a_disabled_user_cannot_sign_in_until_enabled(session):
    target, jinan = user(session, "inst_jinan"), user(session, "jinan")
    set_enabled(session, jinan, target, False, ip="10.0.0.7")
    assert target.is_enabled is False and login_refusal(target) == "账号已停用"
    row = last_log(session, target)
    assert row.detail == {"状态": {"before": "启用", "after": "停用"}} and row.ip == "10.0.0.7"
    with pytest.raises(WorkflowError, match="该用户已停用"):
        set_enabled(session, jinan, target, False)
    with pytest.raises(WorkflowError, match="账号已停用"):
        authenticate(session, "inst_jinan", DEMO_PASSWORD, now=utcnow())
    set_enabled(session, jinan, target, True)
    assert target.is_enabled and login_refusal(target) is None
    with pytest.raises(WorkflowError, match="该用户已启用"):
        set_enabled(session, jinan, target, True)


def test_disabling_oneself_is_refused(session):
    jinan = user(session, "jinan")
    with pytest.raises(WorkflowError, match="不能停用自己的账号"):
        set_enabled(session, jinan, jinan, False)
    assert jinan.is_enabled


@pytest.mark.parametrize(("manager", "target"), [("jinan", "inst_qingdao"), ("jinan", "enterprise"),
                                                 ("inst_jinan", "jinan"), ("jinan", "province"),
                                                 ("province", "ministry"), ("province_reviewer", "jinan")])
def test_disabling_a_user_out_of_reach_is_refused(session, manager, target):
    victim = user(session, target)
    with pytest.raises(WorkflowError, match="用户不存在"):
        set_enabled(session, user(session, manager), victim, False)
    assert victim.is_enabled


# -- reset_password ----------------------------------------------------------------------------------------
def test_a_reset_gives_a_new_one_time_password_and_unlocks(session):
    target = user(session, "inst_jinan")
    target.failed_logins, target.locked_until = 3, utcnow() + timedelta(minutes=15)
    session.flush()
    password = reset_password(session, user(session, "jinan"), target)
    session.commit()
    session.expire_all()
    target = user(session, "inst_jinan")
    check_password_policy(password)
    assert password_matches(target, password) and not password_matches(target, DEMO_PASSWORD)
    assert target.must_change_password is True
    assert target.failed_logins == 0 and target.locked_until is None
    assert authenticate(session, "inst_jinan", password, now=utcnow()) is target
    row = last_log(session, target)
    assert row.kind == "password" and password not in row.summary


def test_resetting_ones_own_password_is_refused(session):
    jinan = user(session, "jinan")
    with pytest.raises(WorkflowError, match="不能重置自己的密码"):
        reset_password(session, jinan, jinan)
    assert password_matches(jinan, DEMO_PASSWORD) and not jinan.must_change_password


@pytest.mark.parametrize(("manager", "target"), [("jinan", "inst_qingdao"), ("inst_jinan", "jinan")])
def test_resetting_a_password_out_of_reach_is_refused(session, manager, target):
    victim = user(session, target)
    with pytest.raises(WorkflowError, match="用户不存在"):
        reset_password(session, user(session, manager), victim)
    assert password_matches(victim, DEMO_PASSWORD)


def test_a_disabled_users_password_is_not_reset(session):
    target = user(session, "inst_jinan")
    set_enabled(session, user(session, "jinan"), target, False)
    with pytest.raises(WorkflowError, match="该用户已停用，请先启用"):
        reset_password(session, user(session, "jinan"), target)
    assert password_matches(target, DEMO_PASSWORD)


# -- unbind_phone --------------------------------------------------------------------------------------------
def test_an_unbound_phone_is_logged_masked_and_stops_signing_in(session):
    target = user(session, "inst_jinan")
    phone = target.phone
    assert phone == "13800000005"
    unbind_phone(session, user(session, "jinan"), target, ip="10.0.0.8")
    session.commit()
    session.expire_all()
    target = user(session, "inst_jinan")
    assert target.phone is None
    row = last_log(session, target)
    text = row.summary + json.dumps(row.detail, ensure_ascii=False)
    assert "138****0005" in row.summary and phone not in text
    assert row.detail["手机号"] == {"before": "138****0005", "after": None}
    with pytest.raises(WorkflowError, match="^未绑定手机号，请联系管理员$"):
        authenticate(session, "inst_jinan", DEMO_PASSWORD, now=utcnow())
    with pytest.raises(WorkflowError, match="该用户未绑定手机号"):
        unbind_phone(session, user(session, "jinan"), target)
    # a new number bound by 修改 opens the account again
    update_user(session, user(session, "jinan"), target, {"name": target.name, "phone": "13912345670"})
    assert authenticate(session, "inst_jinan", DEMO_PASSWORD, now=utcnow()) is target


def test_unbinding_ones_own_phone_is_refused(session):
    jinan = user(session, "jinan")
    phone = jinan.phone
    with pytest.raises(WorkflowError, match="不能取消绑定自己的手机号"):
        unbind_phone(session, jinan, jinan)
    assert jinan.phone == phone


def test_unbinding_a_phone_out_of_reach_is_refused(session):
    victim = user(session, "inst_qingdao")
    with pytest.raises(WorkflowError, match="用户不存在"):
        unbind_phone(session, user(session, "jinan"), victim)
    assert victim.phone


# -- update_user ---------------------------------------------------------------------------------------------
def test_a_new_role_starts_from_its_preset(session):
    target = user(session, "jinan_reviewer")
    set_permissions(session, user(session, "jinan"), target, [P.statistics.value])
    assert target.permissions == {P.statistics}
    changed = update_user(session, user(session, "jinan"), target,
                          {"name": target.name, "phone": target.phone, "role": "admin"})
    assert "角色" in changed and "权限" in changed
    assert target.role == Role.admin
    assert target.permissions == role_preset(OrgKind.authority, Role.admin)
    row = last_log(session, target)
    assert row.detail["角色"] == {"before": "审核员", "after": "机构管理员"}
    assert row.detail["权限"]["before"] == ["统计分析"]
    assert set(row.detail["权限"]["after"]) == {p.label for p in role_preset(OrgKind.authority, Role.admin)}


def test_keeping_the_role_keeps_granted_permissions(session):
    target = user(session, "jinan_reviewer")
    set_permissions(session, user(session, "jinan"), target, [P.statistics.value, P.audit_view.value])
    changed = update_user(session, user(session, "jinan"), target, {"name": "济南市审核员（改名）",
                                                                    "phone": "13912345671"})
    assert changed == ["姓名", "手机号"]
    assert target.name == "济南市审核员（改名）" and target.phone == "13912345671"
    assert target.permissions == {P.statistics, P.audit_view}
    assert target.role == Role.reviewer


def test_an_edit_that_changes_nothing_logs_nothing(session):
    target = user(session, "jinan_reviewer")
    logs = session.scalar(select(func.count()).select_from(AuditLog))
    assert update_user(session, user(session, "jinan"), target,
                       {"name": target.name, "phone": target.phone, "role": "reviewer"}) == []
    assert session.scalar(select(func.count()).select_from(AuditLog)) == logs


def test_editing_oneself_is_refused(session):
    jinan = user(session, "jinan")
    with pytest.raises(WorkflowError, match="请在「个人资料」"):
        update_user(session, jinan, jinan, {"name": "改自己", "phone": jinan.phone, "role": "reviewer"})
    assert jinan.name == "济南市审核管理员" and jinan.role == Role.admin


def test_an_edit_with_a_role_the_kind_lacks_is_refused(session):
    target = user(session, "ministry")
    admin = make_user(session, org(session, "MOHURD"), "ministry_admin", Role.admin)
    before = target.permissions
    with pytest.raises(FormErrors) as caught:
        update_user(session, admin, target, {"name": target.name, "phone": target.phone, "role": "operator"})
    assert caught.value.errors["role"] == "部级注册中心不能设置「经办人」角色"
    assert target.role == Role.reviewer and target.permissions == before


def test_editing_a_user_out_of_reach_is_refused(session):
    victim = user(session, "inst_qingdao")
    name = victim.name
    with pytest.raises(WorkflowError, match="用户不存在"):
        update_user(session, user(session, "jinan"), victim, {"name": "被改名", "phone": victim.phone})
    assert victim.name == name


def test_a_disabled_users_role_is_not_changed(session):
    target = user(session, "jinan_reviewer")
    set_enabled(session, user(session, "jinan"), target, False)
    with pytest.raises(WorkflowError, match="该用户已停用，请先启用"):
        update_user(session, user(session, "jinan"), target, {"name": target.name, "phone": target.phone,
                                                              "role": "admin"})
    assert target.role == Role.reviewer
