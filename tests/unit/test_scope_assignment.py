"""职业(工种)范围 assignment (SPEC §2; 003 §七.4, §八.6): always within the parent's scope, an
organization only narrows its own, the province's is whole, and a removal reaches every descendant."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import AuditLog, Batch, Level, Occupation, ScopeItem
from models.org import OrgKind
from tests.factories import make_batch, org, user
from workflows import WorkflowError
from workflows.batch import batch_problems
from workflows.organizations import create_organization
from workflows.scope import (
    assignable_pairs,
    every_pair,
    may_set_scope,
    pair_names,
    parse_pairs,
    scope_name_pairs,
    scope_pairs,
    set_scope,
)

WELDER_TOP = ("焊工", "高级技师(一级)")
ELECTRICIAN_TECH = ("电工", "技师(二级)")
MASON_ENTRY = ("砌筑工", "初级工(五级)")
CARPENTER_ENTRY = ("木工", "初级工(五级)")
SITE_OFFICER = ("施工员", None)


def pair(session, occupation: str, level: str | None) -> tuple[int, int | None]:
    occ = session.scalar(select(Occupation).where(Occupation.name == occupation))
    lv = session.scalar(select(Level).where(Level.name == level)) if level else None
    return occ.id, lv.id if lv is not None else None


def pairs(session, *named) -> set[tuple[int, int | None]]:
    return {pair(session, *p) for p in named}


def scope_count(session) -> int:
    return session.scalar(select(func.count()).select_from(ScopeItem))


def narrow(session, by: str, code: str, *named) -> dict:
    """``by`` removes ``named`` pairs from the scope of the organization ``code``."""
    target = org(session, code)
    return set_scope(session, user(session, by), target, scope_pairs(session, target) - pairs(session, *named))


# -- the demo's starting point ------------------------------------------------------------------------
def test_the_demo_scopes_nest(rolled_session):
    s = rolled_session
    everything = {(o.id, lv.id if lv else None) for o, lv in every_pair(s)}
    assert scope_pairs(s, org(s, "SD370000")) == everything
    assert scope_pairs(s, org(s, "SD370100")) == everything
    assert pairs(s, MASON_ENTRY, SITE_OFFICER) <= scope_pairs(s, org(s, "JG370101"))
    assert not pairs(s, WELDER_TOP, ELECTRICIAN_TECH, CARPENTER_ENTRY) & scope_pairs(s, org(s, "JG370101"))
    assert assignable_pairs(s, org(s, "JG370101")) == scope_pairs(s, org(s, "SD370100"))
    assert assignable_pairs(s, org(s, "SD370000")) == everything


def test_pair_names_read_as_people_say_them(rolled_session):
    s = rolled_session
    assert pair_names(s, pairs(s, WELDER_TOP, SITE_OFFICER, MASON_ENTRY)) == [
        "砌筑工 初级工(五级)", "焊工 高级技师(一级)", "施工员"]
    assert pair_names(s, {(999999, None)}) == ["#999999/None"]


# -- within the parent's scope -----------------------------------------------------------------------------
def test_a_scope_wider_than_the_parents_is_refused_naming_the_pairs(session):
    narrow(session, "province", "SD370100", WELDER_TOP, ELECTRICIAN_TECH)
    inst = org(session, "JG370101")
    before, rows, logs = scope_pairs(session, inst), scope_count(session), session.scalar(
        select(func.count()).select_from(AuditLog))
    wanted = before | pairs(session, WELDER_TOP, ELECTRICIAN_TECH, CARPENTER_ENTRY)
    with pytest.raises(WorkflowError) as caught:
        set_scope(session, user(session, "jinan"), inst, wanted)
    message = caught.value.message
    assert "焊工 高级技师(一级)" in message and "电工 技师(二级)" in message
    assert "木工" not in message  # within 济南's scope: not an offender
    assert org(session, "SD370100").name in message
    assert scope_pairs(session, inst) == before
    assert scope_count(session) == rows
    assert session.scalar(select(func.count()).select_from(AuditLog)) == logs


def test_the_province_too_is_held_to_the_authoritys_scope(session):
    narrow(session, "province", "SD370100", WELDER_TOP)
    inst = org(session, "JG370102")
    before = scope_pairs(session, inst)
    with pytest.raises(WorkflowError, match=r"焊工 高级技师\(一级\)"):
        set_scope(session, user(session, "province"), inst, before | pairs(session, WELDER_TOP))
    assert scope_pairs(session, inst) == before


def test_a_manager_adds_within_its_own_scope(session):
    inst = org(session, "JG370101")
    before = scope_pairs(session, inst)
    result = set_scope(session, user(session, "jinan"), inst, before | pairs(session, CARPENTER_ENTRY), ip="10.0.0.9")
    assert result == {"added": ["木工 初级工(五级)"], "removed": [], "descendants": {}}
    assert scope_pairs(session, inst) == before | pairs(session, CARPENTER_ENTRY)
    assert ("木工", "初级工(五级)") in scope_name_pairs(session, inst)
    row = session.scalars(select(AuditLog).where(AuditLog.object_type == "organization", AuditLog.object_id == inst.id)
                          .order_by(AuditLog.id.desc())).first()
    assert "新增 木工 初级工(五级)" in row.summary and row.ip == "10.0.0.9"


def test_setting_the_same_scope_changes_and_logs_nothing(session):
    inst = org(session, "JG370101")
    logs = session.scalar(select(func.count()).select_from(AuditLog))
    result = set_scope(session, user(session, "jinan"), inst, scope_pairs(session, inst))
    assert result == {"added": [], "removed": [], "descendants": {}}
    assert session.scalar(select(func.count()).select_from(AuditLog)) == logs


# -- an organization and its own scope ---------------------------------------------------------------------
def test_an_organization_narrows_its_own_scope(session):
    inst = org(session, "JG370101")
    result = narrow(session, "inst_jinan", "JG370101", SITE_OFFICER)
    assert result["removed"] == ["施工员"] and result["added"] == [] and result["descendants"] == {}
    assert pair(session, *SITE_OFFICER) not in scope_pairs(session, inst)
    assert pair(session, *MASON_ENTRY) in scope_pairs(session, inst)


def test_an_organization_cannot_add_to_its_own_scope(session):
    inst = org(session, "JG370101")
    before = scope_pairs(session, inst)
    with pytest.raises(WorkflowError) as caught:
        set_scope(session, user(session, "inst_jinan"), inst, before | pairs(session, CARPENTER_ENTRY, WELDER_TOP))
    message = caught.value.message
    assert "只能缩小" in message and "木工 初级工(五级)" in message and "焊工 高级技师(一级)" in message
    assert scope_pairs(session, inst) == before


def test_an_authority_cannot_win_back_what_it_gave_up(session):
    narrow(session, "jinan", "SD370100", WELDER_TOP)
    authority = org(session, "SD370100")
    with pytest.raises(WorkflowError, match=r"只能缩小.*焊工 高级技师\(一级\)"):
        set_scope(session, user(session, "jinan"), authority, scope_pairs(session, authority) | pairs(session, WELDER_TOP))
    assert pair(session, *WELDER_TOP) not in scope_pairs(session, authority)
    # the province, its parent, gives it back
    set_scope(session, user(session, "province"), authority, scope_pairs(session, authority) | pairs(session, WELDER_TOP))
    assert pair(session, *WELDER_TOP) in scope_pairs(session, authority)


@pytest.mark.parametrize("named", [(WELDER_TOP,), (SITE_OFFICER, MASON_ENTRY)])
def test_the_provinces_scope_cannot_be_reduced(session, named):
    province = org(session, "SD370000")
    rows = scope_count(session)
    with pytest.raises(WorkflowError) as caught:
        set_scope(session, user(session, "province"), province, scope_pairs(session, province) - pairs(session, *named))
    message = caught.value.message
    assert "不可删除" in message
    assert all(((o + " " + lv) if lv else o) in message for o, lv in named)
    assert scope_count(session) == rows


# -- removals reach every descendant -------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["jinan", "province"])
def test_a_pair_removed_from_an_authority_leaves_its_institutions(session, by):
    inst, inst2, qingdao_inst = org(session, "JG370101"), org(session, "JG370102"), org(session, "JG370201")
    mason = pair(session, *MASON_ENTRY)
    assert mason in scope_pairs(session, inst) and mason in scope_pairs(session, inst2)
    result = narrow(session, by, "SD370100", MASON_ENTRY)
    assert result["removed"] == ["砌筑工 初级工(五级)"]
    assert result["descendants"] == {inst.name: ["砌筑工 初级工(五级)"], inst2.name: ["砌筑工 初级工(五级)"]}
    assert mason not in scope_pairs(session, org(session, "SD370100"))
    assert mason not in scope_pairs(session, inst) and mason not in scope_pairs(session, inst2)
    assert pair(session, *SITE_OFFICER) in scope_pairs(session, inst)  # the rest stays
    assert mason in scope_pairs(session, qingdao_inst)  # another city is untouched
    assert ("砌筑工", "初级工(五级)") not in scope_name_pairs(session, inst)
    row = session.scalars(select(AuditLog).where(AuditLog.object_type == "organization",
                                                 AuditLog.object_id == org(session, "SD370100").id)
                          .order_by(AuditLog.id.desc())).first()
    assert "下级机构同时删除" in row.summary and inst.name in row.summary


def test_a_removal_reaches_an_institution_created_later(session):
    """The cascade follows Organization.path, which create_organization must have set."""
    jinan = user(session, "jinan")
    new = create_organization(session, jinan, OrgKind.institution,
                              {"name": "济南新开培训机构", "contact": "钱老师", "phone": "0531-86000001"})
    set_scope(session, jinan, new, pairs(session, MASON_ENTRY, CARPENTER_ENTRY))
    result = narrow(session, "province", "SD370100", CARPENTER_ENTRY)
    assert result["descendants"] == {new.name: ["木工 初级工(五级)"]}
    assert scope_pairs(session, new) == pairs(session, MASON_ENTRY)


def test_a_pair_an_institution_does_not_hold_names_no_descendant(session):
    result = narrow(session, "province", "SD370100", WELDER_TOP)
    assert result["removed"] == ["焊工 高级技师(一级)"] and result["descendants"] == {}


def test_a_narrowed_scope_is_what_batches_and_templates_follow(session):
    inst = org(session, "JG370101")
    draft = session.scalar(select(Batch).where(Batch.name == "2026年第四期施工员培训"))
    assert draft.institution_id == inst.id and batch_problems(session, draft) == []
    assert ("施工员", None) in scope_name_pairs(session, inst)
    narrow(session, "jinan", "SD370100", SITE_OFFICER)
    assert ("施工员", None) not in scope_name_pairs(session, inst)
    assert ("安全员", None) in scope_name_pairs(session, inst)
    problems = batch_problems(session, draft)
    assert problems and all("不在本机构职业(工种)范围内" in p for p in problems)


def test_a_new_batch_with_a_removed_pair_has_a_problem(session):
    batch = make_batch(session, "inst_jinan", candidates=1, pairs=[MASON_ENTRY])
    assert batch_problems(session, batch) == []
    narrow(session, "inst_jinan", "JG370101", MASON_ENTRY)
    assert any("不在本机构职业(工种)范围内" in p for p in batch_problems(session, batch))


# -- what may be asked ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [["abc"], ["1:x"], [""], ["x:1"], ["1:2:3"], ["1", "1:y"]])
def test_parse_pairs_rejects_junk(raw):
    with pytest.raises(WorkflowError, match=r"职业\(工种\)或等级不存在"):
        parse_pairs(raw)


def test_parse_pairs_reads_occupation_and_level():
    assert parse_pairs(["12:3", "13:", "14", 15]) == {(12, 3), (13, None), (14, None), (15, None)}
    assert parse_pairs([]) == set()


def test_unknown_pairs_are_refused(session):
    inst = org(session, "JG370101")
    before = scope_pairs(session, inst)
    mason_no_level = (pair(session, *MASON_ENTRY)[0], None)  # an occupation with levels needs one
    site_with_level = (pair(session, *SITE_OFFICER)[0], pair(session, *MASON_ENTRY)[1])  # a post has none
    for bad in [(999999, None), mason_no_level, site_with_level]:
        with pytest.raises(WorkflowError, match=r"^职业\(工种\)或等级不存在$"):
            set_scope(session, user(session, "jinan"), inst, before | {bad})
    assert scope_pairs(session, inst) == before


@pytest.mark.parametrize(("username", "code", "expected"), [
    ("inst_jinan", "JG370101", True),    # its own
    ("inst_jinan", "JG370201", False),   # another institution
    ("inst_jinan", "JG370102", False),   # a sibling
    ("inst_jinan", "SD370100", False),   # its parent
    ("jinan", "JG370101", True),         # its institution
    ("jinan", "SD370100", True),         # its own
    ("jinan", "JG370201", False),        # another city's institution
    ("jinan", "QY370101", False),        # an enterprise holds no scope
    ("province", "SD370000", True),
    ("province", "SD370200", True),
    ("province", "SZ370001", True),
    ("province", "QY370101", False),
    ("province_reviewer", "SD370000", False),  # no 职业(工种)范围 permission
    ("province_reviewer", "JG370101", False),
    ("jinan_reviewer", "JG370101", False),
    ("enterprise", "QY370101", False),
])
def test_who_may_set_a_scope(rolled_session, username, code, expected):
    assert may_set_scope(user(rolled_session, username), org(rolled_session, code)) is expected


def test_setting_anothers_scope_is_refused(session):
    target = org(session, "JG370201")
    before = scope_pairs(session, target)
    for username in ("inst_jinan", "jinan", "province_reviewer"):
        with pytest.raises(WorkflowError, match="无权配置该机构的职业"):
            set_scope(session, user(session, username), target, set())
    assert scope_pairs(session, target) == before


def test_an_organization_without_a_scope_cannot_be_given_one(session):
    enterprise = org(session, "QY370101")
    with pytest.raises(WorkflowError, match="无权配置"):
        set_scope(session, user(session, "province"), enterprise, pairs(session, MASON_ENTRY))
    assert scope_pairs(session, enterprise) == set()
