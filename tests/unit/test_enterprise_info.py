"""企业信息 rules (SPEC §5.4; 000 §二(一); 002 §3.1.5; 004 §3.7): direct edits, 变更申请 and the
ENTERPRISE_CHANGE table (企业名称变更: 主管部门 → 省厅; 所属地市变更: 调出市 → 调入市), and
人员管理 (the enterprise administrator's second-level users).
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from models import (
    AuditLog,
    Certificate,
    EnterpriseChange,
    EnterpriseChangeStatus,
    Message,
    Organization,
    Person,
    Registration,
    RegistrationStatus,
    TransitionLog,
    User,
)
from models.org import OrgKind
from models.user import Role, role_preset
from tests.factories import user
from workflows import FormErrors, WorkflowError
from workflows.auth import login_refusal, password_matches
from workflows.engine import setting_state
from workflows.enterprise import (
    ENTERPRISE_CHANGE,
    REGISTRATIONS_IN_PROGRESS,
    editable_fields,
    has_certificates,
    open_change_of,
    start_change,
    update_enterprise,
)
from workflows.staff import create_user, remove_user, reset_user_password, update_user
from workflows.visibility import clause

S = EnterpriseChangeStatus
REASON = "营业执照复印件不清晰，请重新提交"
PASSWORD = "Staff2026ok"
_seq = itertools.count(1)


# -- helpers -------------------------------------------------------------------------------------------
def direct_values(org: Organization, **changes) -> dict:
    """What 修改企业信息 posts: the current direct fields, with ``changes``."""
    values = {"address": org.address or "济南市历下区经十路1号", "postcode": org.postcode or "",
              "contact": org.contact or "联系人", "phone": org.phone or "0531-80000000",
              "qualification_no": org.qualification_no or ""}
    values.update(changes)
    return values


def new_enterprise(session, region="370100") -> tuple[Organization, User]:
    """An active enterprise of the city ``region`` with no certificates, and its administrator."""
    n = next(_seq)
    authority = session.scalar(select(Organization).where(Organization.kind == OrgKind.authority,
                                                          Organization.region_code == region))
    org = Organization(code=f"QYT{n:05d}", name=f"测试无证企业{n}有限公司", kind=OrgKind.enterprise,
                       parent=authority, region_code=region, contact="吴经理", phone="0531-81234567",
                       address="济南市市中区测试路1号")
    session.add(org)
    session.flush()
    org.refresh_path()
    admin = User(username=f"ent_test_{n}", password_hash="x", name="测试管理员", phone=f"1389900{n:04d}",
                 organization=org, role=Role.admin)
    admin.set_permissions(role_preset(OrgKind.enterprise, Role.admin))
    session.add(admin)
    session.flush()
    return org, admin


def employee_certificate(session, org: Organization) -> Certificate:
    return session.scalar(select(Certificate).join(Person, Person.id == Certificate.person_id)
                          .where(Person.employer_id == org.id).order_by(Certificate.id))


def registration_in_progress(session, org: Organization, declarer: User) -> Registration:
    """A 注册申报 of one of the enterprise's employees, reported and waiting at the province."""
    person = session.scalar(select(Person).where(Person.employer_id == org.id).order_by(Person.id))
    row = Registration(kind="initial", status=RegistrationStatus.province_unaccepted, person_id=person.id,
                       enterprise_id=org.id, declared_by_id=declarer.id, specialty="01")
    session.add(row)
    session.flush()
    return row


def sees(session, who: User, org: Organization) -> bool:
    return session.scalar(select(Organization.id).where(Organization.id == org.id, clause(who, Organization))) \
        is not None


def staff_values(**changes) -> dict:
    n = next(_seq)
    values = {"name": f"经办人{n}", "username": f"staff_{n}", "phone": f"1391234{n:04d}", "password": PASSWORD,
              "password2": PASSWORD}
    values.update(changes)
    return values


@pytest.fixture
def s(rolled_session):
    return rolled_session


@pytest.fixture
def ent(s):
    """The demo's 山东鲁建建设集团有限公司 (济南), whose employees hold certificates, and its admin."""
    admin = user(s, "enterprise")
    # the demo keeps this enterprise free of registrations in progress; make sure of it here
    for row in s.scalars(select(Registration).where(Registration.enterprise_id == admin.organization_id,
                                                    Registration.status.in_(REGISTRATIONS_IN_PROGRESS))):
        with setting_state():
            row.status = RegistrationStatus.withdrawn
    return admin.organization, admin


# -- 修改企业信息 -----------------------------------------------------------------------------------------
def test_direct_fields_are_saved_and_logged(s, ent):
    org, admin = ent
    changed = update_enterprise(s, admin, org, direct_values(org, address="济南市历下区经十路88号", postcode="250014",
                                                              contact="钱经理", phone="0531-88889999"))
    assert changed == ["通讯地址", "邮政编码", "联系人", "联系电话"]
    assert (org.address, org.postcode, org.contact, org.phone) == ("济南市历下区经十路88号", "250014", "钱经理",
                                                                   "0531-88889999")
    entry = s.scalar(select(AuditLog).where(AuditLog.object_type == "organization", AuditLog.object_id == org.id)
                     .order_by(AuditLog.id.desc()))
    assert entry.summary.startswith("修改企业信息") and entry.detail["address"]["after"] == "济南市历下区经十路88号"
    assert update_enterprise(s, admin, org, direct_values(org)) == []  # nothing changed, nothing logged


def test_name_and_city_need_an_application_once_certificates_exist(s, ent):
    org, admin = ent
    assert has_certificates(s, org)
    assert "name" not in editable_fields(s, org) and "region_code" not in editable_fields(s, org)
    old = org.name
    for extra in ({"name": "山东鲁建新名称有限公司"}, {"region_code": "370200"}):
        with pytest.raises(WorkflowError, match="须提交变更申请"):
            update_enterprise(s, admin, org, direct_values(org, address="新地址1号", **extra))
    assert org.name == old and org.region_code == "370100" and org.address != "新地址1号"
    # the current values sent back unchanged are no change at all
    assert update_enterprise(s, admin, org, direct_values(org, name=old, region_code="370100",
                                                          address="新地址2号")) == ["通讯地址"]


def test_an_enterprise_without_certificates_edits_every_field(s):
    org, admin = new_enterprise(s)
    assert not has_certificates(s, org)
    assert editable_fields(s, org)[:2] == ("name", "region_code")
    qingdao = user(s, "qingdao").organization
    changed = update_enterprise(s, admin, org, direct_values(org, name=org.name + "（新）", region_code="370200"))
    assert set(changed) == {"企业名称", "所属地市"}
    assert org.name.endswith("（新）") and org.region_code == "370200" and org.parent_id == qingdao.id
    assert org.path == f"{qingdao.path}{org.id}/"


def test_direct_name_change_follows_the_application_rules(s):
    org, admin = new_enterprise(s)
    taken = user(s, "enterprise2").organization.name
    with pytest.raises(FormErrors) as info:
        update_enterprise(s, admin, org, direct_values(org, name=taken, region_code="370100"))
    assert info.value.errors == {"name": "该企业名称已被其他企业使用"}
    start_change(s, admin, org, {"new_region_code": "370300"})
    with pytest.raises(WorkflowError, match="信息审查中不允许"):
        update_enterprise(s, admin, org, direct_values(org, name=org.name + "2", region_code="370100"))


def test_validation_returns_every_error_and_changes_nothing(s, ent):
    org, admin = ent
    before = (org.address, org.postcode, org.contact)
    with pytest.raises(FormErrors) as info:
        update_enterprise(s, admin, org, direct_values(org, address=" ", postcode="25001", contact="", phone=""))
    assert info.value.errors == {"address": "请填写通讯地址", "postcode": "邮政编码应为6位数字",
                                 "contact": "请填写联系人", "phone": "请填写联系电话"}
    assert (org.address, org.postcode, org.contact) == before
    new_org, new_admin = new_enterprise(s)
    with pytest.raises(FormErrors) as info:
        update_enterprise(s, new_admin, new_org, direct_values(new_org, name="", region_code="999999"))
    assert info.value.errors == {"name": "请填写企业名称", "region_code": "请选择所属地市"}


def test_only_the_enterprise_itself_edits_it(s, ent):
    org, _ = ent
    for other in ("enterprise2", "jinan", "province"):
        with pytest.raises(WorkflowError, match="无权修改企业信息"):
            update_enterprise(s, user(s, other), org, direct_values(org, address="别人改的地址"))


# -- 变更申请 ------------------------------------------------------------------------------------------
def test_exactly_one_of_name_and_city(s, ent):
    org, admin = ent
    with pytest.raises(WorkflowError, match="每次只能变更企业名称或所属地市中的一项"):
        start_change(s, admin, org, {"new_name": "山东鲁建新名称有限公司", "new_region_code": "370200"})
    with pytest.raises(WorkflowError, match="请填写想要变更的名称，或选择想要变更的地市"):
        start_change(s, admin, org, {"new_name": "  ", "new_region_code": ""})
    assert open_change_of(s, org) is None


def test_one_open_application_at_a_time(s, ent):
    org, admin = ent
    first = start_change(s, admin, org, {"new_name": "山东鲁建新名称有限公司", "explanation": "工商已变更"})
    assert (first.status, first.old_name, first.from_authority.code) == (S.pending_authority, org.name, "SD370100")
    assert s.scalar(select(func.count()).select_from(Message).where(
        Message.object_type == "enterprise_change", Message.object_id == first.id,
        Message.user_id == user(s, "jinan").id)) == 1  # the city authority is told
    with pytest.raises(WorkflowError, match="信息审查中不允许再次提交"):
        start_change(s, admin, org, {"new_region_code": "370200"})
    ENTERPRISE_CHANGE.fire(s, user(s, "jinan"), first, "authority_reject", REASON)
    second = start_change(s, admin, org, {"new_region_code": "370200"})  # after the rejection: again
    assert second.status == S.pending_out and second.to_authority.code == "SD370200"


def test_refused_while_registrations_are_in_progress(s, ent):
    org, admin = ent
    registration_in_progress(s, org, admin)
    for values in ({"new_name": "山东鲁建新名称有限公司"}, {"new_region_code": "370200"}):
        with pytest.raises(WorkflowError, match="1条正在办理的注册申报业务"):
            start_change(s, admin, org, values)
    assert open_change_of(s, org) is None


def test_same_or_taken_name_and_same_city_are_refused(s, ent):
    org, admin = ent
    with pytest.raises(WorkflowError, match="与现在企业名称相同"):
        start_change(s, admin, org, {"new_name": org.name})
    with pytest.raises(WorkflowError, match="已被其他企业使用"):
        start_change(s, admin, org, {"new_name": user(s, "enterprise2").organization.name})
    with pytest.raises(WorkflowError, match="与现在所属地市相同"):
        start_change(s, admin, org, {"new_region_code": "370100"})
    with pytest.raises(WorkflowError, match="请选择想要变更的地市"):
        start_change(s, admin, org, {"new_region_code": "123456"})
    with pytest.raises(WorkflowError, match="无权提交"):
        start_change(s, user(s, "enterprise2"), org, {"new_name": "别人的申请有限公司"})
    assert open_change_of(s, org) is None


# -- ENTERPRISE_CHANGE --------------------------------------------------------------------------------------
def test_name_change_full_path_renames_every_certificate_at_once(s, ent):
    org, admin = ent
    certificate = employee_certificate(s, org)
    assert certificate.person.employer_display == "山东鲁建建设集团有限公司"
    change = start_change(s, admin, org, {"new_name": "山东鲁建控股集团有限公司"})
    province = user(s, "province")
    with pytest.raises(WorkflowError, match="当前状态"):
        ENTERPRISE_CHANGE.fire(s, province, change, "province_approve")  # the city comes first
    ENTERPRISE_CHANGE.fire(s, user(s, "jinan"), change, "authority_approve")
    assert change.status == S.pending_province and org.name == "山东鲁建建设集团有限公司"
    with pytest.raises(WorkflowError):
        ENTERPRISE_CHANGE.fire(s, user(s, "jinan"), change, "province_approve")
    ENTERPRISE_CHANGE.fire(s, province, change, "province_approve")
    assert change.status == S.approved and change.reviewed_at is not None
    assert org.name == "山东鲁建控股集团有限公司"
    assert certificate.person.employer_display == "山东鲁建控股集团有限公司"
    steps = s.scalars(select(TransitionLog.transition).where(
        TransitionLog.object_type == "enterprise_change", TransitionLog.object_id == change.id)
        .order_by(TransitionLog.id)).all()
    assert steps == ["authority_approve", "province_approve"]
    told = set(s.scalars(select(Message.user_id).where(Message.object_type == "enterprise_change",
                                                       Message.object_id == change.id)))
    assert admin.id in told and province.id in told


def test_city_change_full_path_moves_the_enterprise(s, ent):
    org, admin = ent
    jinan, qingdao = user(s, "jinan"), user(s, "qingdao")
    assert sees(s, jinan, org) and not sees(s, qingdao, org)
    change = start_change(s, admin, org, {"new_region_code": "370200"})
    assert change.status == S.pending_out
    with pytest.raises(WorkflowError, match="无权"):
        ENTERPRISE_CHANGE.fire(s, qingdao, change, "out_approve")  # 调入市 is second
    ENTERPRISE_CHANGE.fire(s, jinan, change, "out_approve")
    assert change.status == S.pending_in and org.region_code == "370100"
    with pytest.raises(WorkflowError, match="无权"):
        ENTERPRISE_CHANGE.fire(s, jinan, change, "in_approve")
    with pytest.raises(WorkflowError, match="无权"):
        ENTERPRISE_CHANGE.fire(s, user(s, "province"), change, "in_approve")
    ENTERPRISE_CHANGE.fire(s, qingdao, change, "in_approve")
    assert change.status == S.approved
    assert org.region_code == "370200" and org.parent_id == qingdao.organization_id
    assert org.path == f"{qingdao.organization.path}{org.id}/"
    assert not sees(s, jinan, org) and sees(s, qingdao, org)
    assert org.name == "山东鲁建建设集团有限公司"  # a city change keeps the name


def test_wrong_authority_is_refused(s, ent):
    org, admin = ent
    change = start_change(s, admin, org, {"new_name": "山东鲁建控股集团有限公司"})
    for username, name in (("qingdao", "authority_approve"), ("qingdao", "authority_reject"),
                           ("province", "authority_approve"), ("enterprise", "authority_approve"),
                           ("inst_jinan", "authority_approve"), ("jinan_reviewer", "authority_approve")):
        with pytest.raises(WorkflowError, match="无权"):
            ENTERPRISE_CHANGE.fire(s, user(s, username), change, name, REASON)
    assert change.status == S.pending_authority


def test_rejection_needs_a_reason_and_keeps_it(s, ent):
    org, admin = ent
    change = start_change(s, admin, org, {"new_name": "山东鲁建控股集团有限公司"})
    jinan = user(s, "jinan")
    with pytest.raises(WorkflowError, match="请填写审核不通过原因"):
        ENTERPRISE_CHANGE.fire(s, jinan, change, "authority_reject", "  ")
    assert change.status == S.pending_authority and change.reject_reason is None
    ENTERPRISE_CHANGE.fire(s, jinan, change, "authority_approve")
    ENTERPRISE_CHANGE.fire(s, user(s, "province"), change, "province_reject", REASON)
    assert change.status == S.rejected and change.reject_reason == REASON and change.reviewed_at is not None
    assert org.name == "山东鲁建建设集团有限公司"


def test_city_change_rejected_by_the_receiving_city(s, ent):
    org, admin = ent
    change = start_change(s, admin, org, {"new_region_code": "370200"})
    ENTERPRISE_CHANGE.fire(s, user(s, "jinan"), change, "out_approve")
    ENTERPRISE_CHANGE.fire(s, user(s, "qingdao"), change, "in_reject", REASON)
    assert change.status == S.rejected and change.reject_reason == REASON and org.region_code == "370100"


def test_approval_refused_when_registrations_started_or_the_name_was_taken_meanwhile(s, ent):
    org, admin = ent
    change = start_change(s, admin, org, {"new_name": "山东鲁建控股集团有限公司"})
    registration = registration_in_progress(s, org, admin)
    with pytest.raises(WorkflowError, match="正在办理的注册申报业务"):
        ENTERPRISE_CHANGE.fire(s, user(s, "jinan"), change, "authority_approve")
    with setting_state():
        registration.status = RegistrationStatus.approved
    ENTERPRISE_CHANGE.fire(s, user(s, "jinan"), change, "authority_approve")
    other, other_admin = new_enterprise(s)
    update_enterprise(s, other_admin, other, direct_values(other, name="山东鲁建控股集团有限公司", region_code="370100"))
    with pytest.raises(WorkflowError, match="已被其他企业使用"):
        ENTERPRISE_CHANGE.fire(s, user(s, "province"), change, "province_approve")
    assert change.status == S.pending_province and org.name == "山东鲁建建设集团有限公司"


def test_visibility_of_changes(s, ent):
    org, admin = ent
    change = start_change(s, admin, org, {"new_region_code": "370200"})

    def visible_to(username):
        return s.scalar(select(EnterpriseChange.id).where(EnterpriseChange.id == change.id,
                                                          clause(user(s, username), EnterpriseChange))) is not None

    assert visible_to("enterprise") and visible_to("jinan") and visible_to("qingdao") and visible_to("province")
    assert not visible_to("enterprise2") and not visible_to("inst_jinan") and not visible_to("person")


# -- 人员管理 ------------------------------------------------------------------------------------------
def test_the_admin_creates_a_second_level_user(s, ent):
    org, admin = ent
    staff = create_user(s, admin, staff_values(name="李经办", username="lijingban"))
    assert staff.organization_id == org.id and staff.role == Role.operator and staff.is_enabled
    assert password_matches(staff, PASSWORD) and login_refusal(staff) is None
    assert staff.permissions == role_preset(OrgKind.enterprise, Role.operator)
    with pytest.raises(FormErrors) as info:
        create_user(s, admin, staff_values(username="LiJingBan", password2="Other2026ok", phone="123"))
    assert set(info.value.errors) == {"username", "password2", "phone"}


def test_only_the_administrator_manages_users(s, ent):
    org, admin = ent
    staff = create_user(s, admin, staff_values())
    with pytest.raises(WorkflowError, match="只有企业注册时指定的管理员"):
        create_user(s, staff, staff_values())  # an operator, even of the same enterprise
    other = create_user(s, admin, staff_values())
    for fn in (lambda: update_user(s, staff, other, {"name": "改名", "phone": "13900000000"}),
               lambda: reset_user_password(s, staff, other), lambda: remove_user(s, staff, other)):
        with pytest.raises(WorkflowError, match="只有企业注册时指定的管理员"):
            fn()


def test_not_across_organizations_and_not_oneself(s, ent):
    org, admin = ent
    staff = create_user(s, admin, staff_values())
    foreign = user(s, "enterprise2")
    for fn in (lambda: update_user(s, foreign, staff, {"name": "改名", "phone": "13900000000"}),
               lambda: reset_user_password(s, foreign, staff), lambda: remove_user(s, foreign, staff)):
        with pytest.raises(WorkflowError, match="用户不存在"):
            fn()
    for fn in (lambda: update_user(s, admin, admin, {"name": "改名", "phone": "13900000000"}),
               lambda: reset_user_password(s, admin, admin), lambda: remove_user(s, admin, admin)):
        with pytest.raises(WorkflowError, match="不能在人员管理中修改或删除自己"):
            fn()
    assert staff.is_enabled and admin.is_enabled


def test_edit_reset_and_remove(s, ent):
    org, admin = ent
    staff = create_user(s, admin, staff_values())
    update_user(s, admin, staff, {"name": "王新名", "phone": "139 0000 1111"})
    assert (staff.name, staff.phone) == ("王新名", "13900001111")
    with pytest.raises(FormErrors):
        update_user(s, admin, staff, {"name": "", "phone": "1"})
    password = reset_user_password(s, admin, staff)
    assert password_matches(staff, password) and not password_matches(staff, PASSWORD)
    assert staff.must_change_password
    remove_user(s, admin, staff)
    assert not staff.is_enabled and login_refusal(staff) == "账号已停用" and not staff.permissions
    with pytest.raises(WorkflowError, match="用户不存在"):  # a removed user is gone for 人员管理
        reset_user_password(s, admin, staff)
