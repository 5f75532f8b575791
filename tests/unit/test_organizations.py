"""系统管理 of organizations (SPEC §7; 003 §七.4, §八.6): who manages whom, 新建 / 修改 / 删除, and
下线 / 上线 through the ORGANIZATION workflow."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import AuditLog, Organization, ScopeItem, TransitionLog
from models.org import OrgKind, OrgStatus
from tests.factories import org, user
from workflows import FormErrors, WorkflowError
from workflows.auth import login_refusal
from workflows.engine import setting_state
from workflows.organizations import (
    ORGANIZATION,
    create_organization,
    delete_organization,
    dependents,
    free_cities,
    manages,
    parent_choices,
    update_organization,
)
from workflows.scope import scope_pairs, set_scope

HEZE = "371700"  # 菏泽市: deliberately without an authority in the demo


def values(**changes) -> dict:
    """What 新建 / 修改 posts: every field filled in, with ``changes``."""
    out = {"name": "测试机构", "contact": "测试联系人", "phone": "0531-86000000", "address": "济南市历下区测试路1号",
           "postcode": "250000"}
    out.update(changes)
    return out


def last_edit(session, obj) -> AuditLog:
    return session.scalars(select(AuditLog).where(AuditLog.kind == "edit", AuditLog.object_type == "organization",
                                                  AuditLog.object_id == obj.id).order_by(AuditLog.id.desc())).first()


# -- manages -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "expected"), [
    ("SD370100", True),   # an authority
    ("SD370200", True),
    ("SZ370001", True),   # the direct institution
    ("JG370101", True),   # an institution (of 济南)
    ("JG370201", True),   # an institution (of 青岛)
    ("QY370101", False),  # an enterprise
    ("XX370101", False),  # a school
    ("SD370000", False),  # itself
    ("MOHURD", False),    # the ministry
])
def test_the_province_manages_authorities_and_issuers_only(rolled_session, code, expected):
    assert manages(user(rolled_session, "province"), org(rolled_session, code)) is expected


@pytest.mark.parametrize(("code", "expected"), [
    ("JG370101", True),   # its own institutions
    ("JG370102", True),
    ("JG370201", False),  # another city's institution
    ("QY370101", False),  # its own city's enterprise
    ("SD370100", False),  # itself
    ("SD370200", False),  # another authority
    ("SZ370001", False),  # the direct institution
])
def test_an_authority_manages_only_its_own_institutions(rolled_session, code, expected):
    assert manages(user(rolled_session, "jinan"), org(rolled_session, code)) is expected


@pytest.mark.parametrize("code", ["SD370100", "SZ370001", "JG370101"])
def test_without_org_manage_nothing_is_managed(rolled_session, code):
    reviewer = user(rolled_session, "province_reviewer")
    assert manages(reviewer, org(rolled_session, code)) is False
    assert parent_choices(rolled_session, reviewer, OrgKind.institution) == []


@pytest.mark.parametrize("username", ["inst_jinan", "enterprise", "ministry"])
def test_issuers_enterprises_and_the_ministry_manage_nothing(rolled_session, username):
    someone = user(rolled_session, username)
    assert not any(manages(someone, o) for o in rolled_session.scalars(select(Organization)))


def test_a_disabled_manager_manages_nothing(session):
    jinan = user(session, "jinan")
    jinan.is_enabled = False
    assert manages(jinan, org(session, "JG370101")) is False


def test_parent_choices_are_the_users_own_authority_or_every_active_authority(session):
    jinan_org = org(session, "SD370100")
    assert parent_choices(session, user(session, "jinan"), OrgKind.institution) == [jinan_org]
    with setting_state():
        org(session, "SD370200").status = OrgStatus.offline
    session.flush()
    choices = parent_choices(session, user(session, "province"), OrgKind.institution)
    assert jinan_org in choices and org(session, "SD370200") not in choices
    assert {o.kind for o in choices} == {OrgKind.authority}
    assert parent_choices(session, user(session, "province"), OrgKind.authority) == [org(session, "SD370000")]


def test_free_cities_are_those_without_an_authority(rolled_session):
    free = dict(free_cities(rolled_session))
    assert free == {HEZE: "菏泽市"}


# -- create_organization -----------------------------------------------------------------------------------
def test_the_province_creates_the_missing_authority_for_heze(session):
    province = user(session, "province")
    new = create_organization(session, province, OrgKind.authority,
                              values(name="菏泽市住房和城乡建设局", region_code=HEZE), ip="10.0.0.1")
    session.commit()
    session.expire_all()
    new = session.get(Organization, new.id)
    assert new.code == "SD371700" and new.region_code == HEZE and new.kind == OrgKind.authority
    assert new.parent_id == province.organization_id
    assert new.path == f"/{province.organization_id}/{new.id}/"
    assert new.status == OrgStatus.active
    assert (new.contact, new.phone, new.postcode) == ("测试联系人", "0531-86000000", "250000")
    assert scope_pairs(session, new) == set()  # the scope waits for the province
    assert free_cities(session) == []
    row = last_edit(session, new)
    assert row.user_id == province.id and row.ip == "10.0.0.1" and "SD371700" in row.summary
    assert row.detail["name"] == {"before": None, "after": "菏泽市住房和城乡建设局"}


def test_a_second_authority_for_a_city_is_refused_naming_the_existing_one(session):
    before = session.scalar(select(func.count()).select_from(Organization))
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "province"), OrgKind.authority,
                            values(name="济南市第二主管部门", region_code="370100"))
    message = caught.value.errors["region_code"]
    assert "济南市" in message and org(session, "SD370100").name in message
    assert session.scalar(select(func.count()).select_from(Organization)) == before


@pytest.mark.parametrize("region", ["", "999999", "370000"])
def test_an_authority_needs_a_city_of_the_province(session, region):
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "province"), OrgKind.authority,
                            values(name="无名主管部门", region_code=region))
    assert caught.value.errors["region_code"] == "请选择所属地市"


def test_an_authority_creates_an_institution_under_itself(session):
    jinan = user(session, "jinan")
    new = create_organization(session, jinan, OrgKind.institution, values(name="济南新建培训机构"))
    assert new.parent_id == jinan.organization_id and new.region_code == "370100"
    assert new.kind == OrgKind.institution and new.status == OrgStatus.active
    assert re.fullmatch(r"JG3701\d{2}", new.code) and new.code not in ("JG370101", "JG370102")
    assert new.path == f"{org(session, 'SD370100').path}{new.id}/"
    assert manages(jinan, new)
    second = create_organization(session, jinan, OrgKind.institution, values(name="济南又一培训机构"))
    assert re.fullmatch(r"JG3701\d{2}", second.code) and second.code not in ("JG370101", "JG370102", new.code)


def test_the_province_places_an_institution_under_the_chosen_authority(session):
    qingdao = org(session, "SD370200")
    new = create_organization(session, user(session, "province"), OrgKind.institution,
                              values(name="青岛新建培训机构", parent_id=str(qingdao.id)))
    assert new.parent_id == qingdao.id and new.region_code == "370200"
    assert re.fullmatch(r"JG3702\d{2}", new.code) and new.code != "JG370201"


def test_the_province_must_choose_the_authority_of_an_institution(session):
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "province"), OrgKind.institution, values(name="无主培训机构"))
    assert caught.value.errors["parent_id"] == "请选择所属主管部门"
    assert session.scalar(select(Organization).where(Organization.name == "无主培训机构")) is None


@pytest.mark.parametrize("forged", ["QY370101", "JG370101", "SD370000", "SZ370001"])
def test_a_forged_parent_is_refused(session, forged):
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "province"), OrgKind.institution,
                            values(name="伪造上级培训机构", parent_id=str(org(session, forged).id)))
    assert "parent_id" in caught.value.errors
    assert session.scalar(select(Organization).where(Organization.name == "伪造上级培训机构")) is None


def test_an_authority_cannot_place_an_institution_elsewhere(session):
    """jinan's form has one parent, its own: a posted parent_id of 青岛 is ignored, not obeyed."""
    new = create_organization(session, user(session, "jinan"), OrgKind.institution,
                              values(name="济南定向培训机构", parent_id=str(org(session, "SD370200").id)))
    assert new.parent_id == org(session, "SD370100").id and new.region_code == "370100"


def test_a_duplicate_name_of_the_same_kind_is_refused(session):
    taken = org(session, "JG370201").name
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "jinan"), OrgKind.institution, values(name=taken))
    assert caught.value.errors["name"] == "已存在同名的培训机构"
    assert session.scalar(select(func.count()).select_from(Organization).where(Organization.name == taken)) == 1


def test_the_same_name_is_allowed_for_another_kind(session):
    """Names are unique per kind: a direct institution may share an institution's name."""
    name = org(session, "JG370101").name
    new = create_organization(session, user(session, "province"), OrgKind.direct_institution, values(name=name))
    assert new.kind == OrgKind.direct_institution and new.code.startswith("SZ") and new.code != "SZ370001"


@pytest.mark.parametrize("field", ["name", "contact", "phone"])
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_required_fields_are_required(session, field, blank):
    before = session.scalar(select(func.count()).select_from(Organization))
    form = values(name="缺字段培训机构")
    form[field] = blank
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "jinan"), OrgKind.institution, form)
    assert caught.value.errors[field].startswith("请填写")
    assert session.scalar(select(func.count()).select_from(Organization)) == before


@pytest.mark.parametrize("postcode", ["25000", "2500001", "25000a", "250 00"])
def test_a_postcode_must_be_six_digits(session, postcode):
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "jinan"), OrgKind.institution,
                            values(name="邮编培训机构", postcode=postcode))
    assert caught.value.errors["postcode"] == "邮政编码应为6位数字"


def test_too_long_a_name_is_refused(session):
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "jinan"), OrgKind.institution, values(name="长" * 201))
    assert caught.value.errors["name"] == "机构名称不能超过200个字符"


def test_all_field_errors_are_reported_at_once(session):
    with pytest.raises(FormErrors) as caught:
        create_organization(session, user(session, "province"), OrgKind.institution,
                            values(name="", contact="", postcode="abc"))
    assert set(caught.value.errors) == {"name", "contact", "postcode", "parent_id"}


@pytest.mark.parametrize("kind", [OrgKind.authority, OrgKind.direct_institution, OrgKind.enterprise])
def test_an_authority_cannot_create_authorities_or_direct_institutions(session, kind):
    with pytest.raises(WorkflowError, match=f"无权新建{kind.label}"):
        create_organization(session, user(session, "jinan"), kind, values(name="越权机构", region_code=HEZE))
    assert session.scalar(select(Organization).where(Organization.name == "越权机构")) is None


@pytest.mark.parametrize(("username", "kind"), [("jinan_reviewer", OrgKind.institution),
                                                ("province_reviewer", OrgKind.authority),
                                                ("inst_jinan", OrgKind.institution)])
def test_users_without_org_manage_create_nothing(session, username, kind):
    with pytest.raises(WorkflowError, match="无权新建"):
        create_organization(session, user(session, username), kind, values(name="越权机构", region_code=HEZE))


# -- update_organization -------------------------------------------------------------------------------
def test_an_edit_changes_the_fields_and_logs_before_and_after(session):
    inst = org(session, "JG370101")
    old_name, old_contact = inst.name, inst.contact
    changed = update_organization(session, user(session, "jinan"), inst,
                                  {"name": "济南市建设职业技能培训中心（新址）", "contact": "刘老师",
                                   "phone": inst.phone or "0531-86001234", "address": inst.address,
                                   "postcode": inst.postcode}, ip="10.0.0.2")
    assert "机构名称" in changed and "联系人" in changed
    assert inst.name == "济南市建设职业技能培训中心（新址）" and inst.contact == "刘老师"
    row = last_edit(session, inst)
    assert row.kind == "edit" and row.user_id == user(session, "jinan").id and row.ip == "10.0.0.2"
    assert row.detail["name"] == {"before": old_name, "after": "济南市建设职业技能培训中心（新址）"}
    assert row.detail["contact"] == {"before": old_contact, "after": "刘老师"}
    assert "机构名称" in row.summary and "联系人" in row.summary


def test_an_edit_that_changes_nothing_logs_nothing(session):
    inst = org(session, "JG370101")
    inst.phone, inst.address, inst.postcode = "0531-86001234", "济南市", "250001"
    session.flush()
    count = session.scalar(select(func.count()).select_from(AuditLog))
    same = {key: getattr(inst, key) for key in ("name", "contact", "phone", "address", "postcode")}
    assert update_organization(session, user(session, "jinan"), inst, same) == []
    assert session.scalar(select(func.count()).select_from(AuditLog)) == count


def test_an_edit_may_not_take_another_organizations_name(session):
    inst = org(session, "JG370101")
    with pytest.raises(FormErrors) as caught:
        update_organization(session, user(session, "jinan"), inst,
                            values(name=org(session, "JG370102").name))
    assert caught.value.errors["name"] == "已存在同名的培训机构"
    session.refresh(inst)
    assert inst.name == "济南市建设职业技能培训中心"


@pytest.mark.parametrize(("username", "code"), [("jinan", "JG370201"), ("jinan", "SD370200"),
                                                ("jinan", "QY370101"), ("province_reviewer", "JG370101"),
                                                ("inst_jinan", "JG370101")])
def test_an_edit_outside_ones_reach_is_refused(session, username, code):
    target = org(session, code)
    before = target.name
    with pytest.raises(WorkflowError, match="无权修改该机构"):
        update_organization(session, user(session, username), target, values(name="被篡改的名称"))
    assert target.name == before


# -- delete_organization --------------------------------------------------------------------------------
def test_an_organization_with_data_cannot_be_deleted(session):
    inst = org(session, "JG370101")
    held = dict(dependents(session, inst))
    assert held["用户"] >= 1 and held["批次"] >= 1 and held["证书"] >= 1
    with pytest.raises(WorkflowError) as caught:
        delete_organization(session, user(session, "jinan"), inst)
    message = caught.value.message
    assert all(word in message for word in ("用户", "批次", "证书", "下线", "不能删除"))
    assert session.get(Organization, inst.id) is not None
    assert scope_pairs(session, inst)


def test_an_authority_with_institutions_cannot_be_deleted(session):
    with pytest.raises(WorkflowError, match="下级机构"):
        delete_organization(session, user(session, "province"), org(session, "SD370300"))


def test_an_empty_organization_is_deleted_with_its_scope(session):
    jinan = user(session, "jinan")
    new = create_organization(session, jinan, OrgKind.institution, values(name="待删除培训机构"))
    pairs = sorted(scope_pairs(session, org(session, "JG370101")))[:3]
    set_scope(session, jinan, new, set(pairs))
    assert scope_pairs(session, new) == set(pairs)
    new_id, code = new.id, new.code
    assert dependents(session, new) == []
    delete_organization(session, jinan, new, ip="10.0.0.3")
    session.commit()
    session.expire_all()
    assert session.get(Organization, new_id) is None
    assert session.scalar(select(func.count()).select_from(ScopeItem)
                          .where(ScopeItem.organization_id == new_id)) == 0
    row = session.scalars(select(AuditLog).where(AuditLog.object_type == "organization",
                                                 AuditLog.object_id == new_id)
                          .order_by(AuditLog.id.desc())).first()
    assert row.summary.startswith("删除培训机构") and code in row.summary and row.ip == "10.0.0.3"
    assert row.detail["code"] == {"before": code, "after": None}


def test_a_deleted_authority_frees_its_city(session):
    province = user(session, "province")
    new = create_organization(session, province, OrgKind.authority, values(name="菏泽市住建局（误建）", region_code=HEZE))
    ORGANIZATION.fire(session, province, new, "offline")  # its logs do not hold it
    assert free_cities(session) == []
    delete_organization(session, province, new)
    assert dict(free_cities(session)) == {HEZE: "菏泽市"}
    again = create_organization(session, province, OrgKind.authority, values(name="菏泽市住房和城乡建设局",
                                                                            region_code=HEZE))
    assert again.code == "SD371700"


def test_a_delete_outside_ones_reach_is_refused(session):
    new = create_organization(session, user(session, "qingdao"), OrgKind.institution, values(name="青岛空培训机构"))
    with pytest.raises(WorkflowError, match="无权删除该机构"):
        delete_organization(session, user(session, "jinan"), new)
    assert session.get(Organization, new.id) is not None


# -- 下线 / 上线 ------------------------------------------------------------------------------------------
def test_offline_stops_the_users_signing_in_and_online_restores_them(session):
    inst = org(session, "JG370101")
    staff = user(session, "inst_jinan")
    jinan = user(session, "jinan")
    assert login_refusal(staff) is None
    ORGANIZATION.fire(session, jinan, inst, "offline")
    assert inst.status == OrgStatus.offline
    assert login_refusal(staff) == "所属机构已下线，无法登录"
    ORGANIZATION.fire(session, jinan, inst, "online")
    assert inst.status == OrgStatus.active
    assert login_refusal(staff) is None
    logs = session.scalars(select(TransitionLog).where(TransitionLog.object_type == "organization",
                                                       TransitionLog.object_id == inst.id)
                           .order_by(TransitionLog.id)).all()
    assert [(t.transition, t.from_state, t.to_state, t.actor_id) for t in logs] == [
        ("offline", "active", "offline", jinan.id), ("online", "offline", "active", jinan.id)]


def test_the_province_takes_an_authority_offline(session):
    authority = org(session, "SD370200")
    ORGANIZATION.fire(session, user(session, "province"), authority, "offline")
    assert login_refusal(user(session, "qingdao")) == "所属机构已下线，无法登录"
    assert login_refusal(user(session, "jinan")) is None


@pytest.mark.parametrize(("username", "code"), [("jinan", "JG370201"), ("province_reviewer", "JG370101"),
                                                ("jinan", "QY370101"), ("province", "QY370101"),
                                                ("inst_jinan", "JG370101")])
def test_offline_outside_ones_reach_is_refused(session, username, code):
    target = org(session, code)
    with pytest.raises(WorkflowError, match="无权执行「下线」"):
        ORGANIZATION.fire(session, user(session, username), target, "offline")
    session.expire_all()
    assert org(session, code).status == OrgStatus.active
    assert session.scalar(select(func.count()).select_from(TransitionLog).where(
        TransitionLog.object_type == "organization", TransitionLog.object_id == target.id)) == 0


def test_offline_twice_and_online_of_an_active_organization_are_refused(session):
    inst = org(session, "JG370101")
    jinan = user(session, "jinan")
    with pytest.raises(WorkflowError, match="不能执行「上线」"):
        ORGANIZATION.fire(session, jinan, inst, "online")
    ORGANIZATION.fire(session, jinan, inst, "offline")
    with pytest.raises(WorkflowError, match="不能执行「下线」"):
        ORGANIZATION.fire(session, jinan, inst, "offline")
    assert inst.status == OrgStatus.offline
    assert session.scalar(select(func.count()).select_from(TransitionLog).where(
        TransitionLog.object_type == "organization", TransitionLog.object_id == inst.id)) == 1
