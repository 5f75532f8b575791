"""数据维护 rules (SPEC §7, issue 5 item 5): named fields only, a reason always, before/after logged,
states and numbers never, all or nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from models import AuditLog, Candidate, Certificate, Organization, Person
from tests.factories import user
from workflows import WorkflowError
from workflows.datafix import fix
from workflows.validators import make_id_number


@pytest.fixture
def s(rolled_session):
    return rolled_session


def holder(s) -> Person:
    return user(s, "person").person


def last_fix(s) -> AuditLog:
    return s.scalars(select(AuditLog).where(AuditLog.kind == "data_fix").order_by(AuditLog.id.desc())).first()


def test_a_fix_changes_the_fields_and_logs_before_and_after(s):
    person = holder(s)
    old_name = person.name
    labels = fix(s, user(s, "province"), "person", person, {"name": "张建业", "phone": "13900000000"},
                 "身份证姓名录入错误")
    assert labels == ["姓名", "手机号"] and person.name == "张建业"
    row = last_fix(s)
    assert row.detail["name"] == {"before": old_name, "after": "张建业"}
    assert row.detail["reason"] == "身份证姓名录入错误" and "原因：身份证姓名录入错误" in row.summary
    assert row.object_type == "person" and row.object_id == person.id


def test_an_id_number_fix_rederives_birth_date_and_gender(s):
    person = holder(s)
    new = make_id_number("370102", date(1991, 2, 3), 7, "女")
    fix(s, user(s, "province"), "person", person, {"id_number": new}, "身份证号录入错误")
    assert (person.id_number, person.birth_date, person.gender) == (new, date(1991, 2, 3), "女")


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_fix_without_a_reason_is_refused(s, reason):
    person = holder(s)
    with pytest.raises(WorkflowError, match="请填写修改原因"):
        fix(s, user(s, "province"), "person", person, {"name": "王五"}, reason)
    assert person.name != "王五"


@pytest.mark.parametrize(("kind", "field"), [("certificate", "status"), ("certificate", "print_status"),
                                              ("certificate", "number"), ("organization", "status"),
                                              ("organization", "credit_code")])
def test_states_and_numbers_cannot_be_fixed(s, kind, field):
    obj = s.scalars(select(Certificate if kind == "certificate" else Organization)).first()
    before = getattr(obj, field)
    with pytest.raises(WorkflowError, match="状态、编号等字段不能通过数据维护修改"):
        fix(s, user(s, "province"), kind, obj, {field: "x"}, "想改状态")
    assert getattr(obj, field) == before


def test_unknown_fields_and_bad_values_refuse_the_whole_save(s):
    person = holder(s)
    name = person.name
    with pytest.raises(WorkflowError, match="不能修改的字段：employer_id"):
        fix(s, user(s, "province"), "person", person, {"employer_id": "1"}, "原因")
    with pytest.raises(WorkflowError, match="身份证号："):
        fix(s, user(s, "province"), "person", person, {"name": "新名字", "id_number": "123"}, "原因")
    assert person.name == name  # the good field was not applied either
    with pytest.raises(WorkflowError, match="姓名：不能为空"):
        fix(s, user(s, "province"), "person", person, {"name": "  "}, "原因")


def test_a_fix_may_not_take_anothers_id_number(s):
    person = holder(s)
    other = s.scalars(select(Person).where(Person.id != person.id)).first()
    with pytest.raises(WorkflowError, match="该身份证号已属于其他人员"):
        fix(s, user(s, "province"), "person", person, {"id_number": other.id_number}, "原因")


def test_certificate_dates_and_endorsements(s):
    cert = s.scalars(select(Certificate)).first()
    fix(s, user(s, "province"), "certificate", cert, {"issue_date": "2024-01-02", "endorsement_count": "3"},
        "发证日期录入错误")
    assert cert.issue_date == date(2024, 1, 2) and cert.endorsement_count == 3
    with pytest.raises(WorkflowError, match="发证日期格式应为 YYYY-MM-DD"):
        fix(s, user(s, "province"), "certificate", cert, {"issue_date": "2024/13/40"}, "原因")
    with pytest.raises(WorkflowError, match="有效期至：不能早于发证日期"):
        fix(s, user(s, "province"), "certificate", cert, {"issue_date": "2024-01-02", "valid_until": "2023-01-01"},
            "原因")
    with pytest.raises(WorkflowError, match="签注次数应为0–10的整数"):
        fix(s, user(s, "province"), "certificate", cert, {"endorsement_count": "11"}, "原因")


def test_nothing_changed_is_said(s):
    person = holder(s)
    with pytest.raises(WorkflowError, match="没有修改任何字段"):
        fix(s, user(s, "province"), "person", person, {"name": person.name}, "原因")


@pytest.mark.parametrize("who", ["province_reviewer", "jinan", "inst_jinan", "enterprise", "person"])
def test_only_the_provinces_administrator_may_fix(s, who):
    with pytest.raises(WorkflowError, match="无权进行数据维护"):
        fix(s, user(s, who), "candidate", s.scalars(select(Candidate)).first(), {"name": "改名"}, "原因")


def test_corrections_are_the_records_history_for_whoever_may_see_it(s):
    from workflows.datafix import corrections

    person = holder(s)
    old_name, province = person.name, user(s, "province")
    fix(s, province, "person", person, {"name": "张建业", "phone": "13900000001"}, "姓名录入错误")
    fix(s, province, "person", person, {"name": "张建国"}, "再次更正")
    found = corrections(s, province, person)
    assert [(c.field, c.before, c.after, c.reason) for c in found] == [
        ("姓名", "张建业", "张建国", "再次更正"),  # newest first
        ("姓名", old_name, "张建业", "姓名录入错误"), ("手机号", found[2].before, "13900000001", "姓名录入错误")]
    assert {c.actor for c in found} == {province.name}
    assert corrections(s, user(s, "person"), person)  # the holder sees their own record's history
    assert corrections(s, user(s, "qingdao"), person) == []  # one who may not see the person: nothing
    other = s.scalars(select(Person).where(Person.id != person.id)).first()
    assert corrections(s, province, other) == []  # another record's history is not this one's
