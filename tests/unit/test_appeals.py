"""申辩管理 (SPEC §5.5; 004 §3.5): 异常筛查 flags, the enterprise's 申辩 with files, the province's
申辩通过 / 申辩不通过 — and the demo (SPEC §12) that lets every registration journey start at once.

Each test flags its own holders (an over-age person registered through the real workflow), so the
demo's anomalies never stand in the way.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from models import (
    Anomaly,
    AnomalyKind,
    AnomalyStatus,
    Attachment,
    AuditLog,
    Message,
    Person,
    Registration,
    RegistrationKind,
    RegistrationStatus,
    TransitionLog,
    User,
)
from models.base import utcnow
from models.user import Permission, Role
from tests.factories import make_user, user
from tests.samples import make_docx, make_jpeg, make_pdf, make_png, make_xlsx
from workflows import WorkflowError
from workflows.appeals import APPEAL, scan_anomalies, submit_appeal
from workflows.enterprise import open_change_of, registrations_in_progress
from workflows.registration import REGISTRATION, Commitment, declare, needs_correction
from workflows.validators import make_id_number

A = AnomalyStatus
R = RegistrationStatus
ANSWER = "该人员为退休返聘技术顾问，已办理注销注册手续。"
_seq = itertools.count(401, 2)  # odd sequence codes: men


# -- helpers ---------------------------------------------------------------------------------------
def holder(session, birth: date, employer: User, name: str = "测试持证人") -> User:
    """An individual account and its person, employed by ``employer``'s enterprise."""
    person = Person(name=name, id_number=make_id_number("370181", birth, next(_seq), "男"), birth_date=birth,
                    gender="男", employer_id=employer.organization_id, created_at=utcnow())
    session.add(person)
    session.flush()
    return make_user(session, None, role=Role.individual, person=person)


def registered(session, individual: User, enterprise: User, specialty: str = "01") -> Registration:
    """A registration in force: declared, reported, accepted and approved through REGISTRATION."""
    reg = declare(session, individual, {"kind": "initial", "specialty": specialty,
                                        "enterprise": enterprise.organization.name})
    REGISTRATION.fire(session, enterprise, reg, "report",
                      commitment=Commitment(shown_at=utcnow() - timedelta(seconds=61), ticked=True))
    province, ministry = user(session, "province_reviewer"), user(session, "ministry")
    for step in ("province_accept", "province_forward"):
        REGISTRATION.fire(session, province, reg, step)
    for step in ("ministry_accept", "ministry_approve"):
        REGISTRATION.fire(session, ministry, reg, step)
    assert reg.status == R.approved
    return reg


def over_age_anomaly(session, enterprise: str = "enterprise") -> Anomaly:
    """A holder of 70 registered at ``enterprise``, flagged by the province's 异常筛查."""
    ent = user(session, enterprise)
    person = holder(session, date(1950, 6, 1), ent, "超龄测试")
    registered(session, person, ent)
    assert scan_anomalies(session, user(session, "province")) >= 1
    return session.scalar(select(Anomaly).where(Anomaly.person_id == person.person_id))


def anomalies_of(session, person_id: int) -> list[Anomaly]:
    return session.scalars(select(Anomaly).where(Anomaly.person_id == person_id).order_by(Anomaly.id)).all()


def files_of(session, anomaly: Anomaly) -> list[Attachment]:
    return session.scalars(select(Attachment).where(Attachment.owner_type == "anomaly",
                                                    Attachment.owner_id == anomaly.id).order_by(Attachment.id)).all()


# -- 异常筛查 ----------------------------------------------------------------------------------------
def test_scan_flags_an_over_age_holder_once(rolled_session):
    s = rolled_session
    ent = user(s, "enterprise")
    old = holder(s, date(1955, 1, 1), ent, "钱老")
    young = holder(s, date(1990, 1, 1), ent, "钱小")
    reg = registered(s, old, ent)
    registered(s, young, ent)
    province = user(s, "province")

    assert scan_anomalies(s, province) >= 1
    [anomaly] = anomalies_of(s, old.person_id)
    assert (anomaly.kind, anomaly.status, anomaly.enterprise_id) == (AnomalyKind.over_age, A.open, ent.organization_id)
    assert anomaly.registration_id == reg.id and "已满65周岁" in anomaly.description
    assert anomalies_of(s, young.person_id) == []
    # the enterprise's users are told; the scan is in the operation log
    assert s.scalar(select(func.count()).select_from(Message).where(
        Message.user_id == ent.id, Message.object_type == "anomaly", Message.object_id == anomaly.id)) == 1
    assert s.scalar(select(AuditLog.summary).where(AuditLog.user_id == province.id).order_by(AuditLog.id.desc())
                    ).startswith("异常筛查：新增")
    # an open (and then an appealed) anomaly is not flagged twice
    assert scan_anomalies(s, province) == 0
    submit_appeal(s, ent, anomaly, ANSWER)
    assert scan_anomalies(s, province) == 0
    assert len(anomalies_of(s, old.person_id)) == 1


def test_scan_flags_a_person_registered_at_two_enterprises(rolled_session):
    s = rolled_session
    ent, ent2 = user(s, "enterprise"), user(s, "enterprise2")
    person = holder(s, date(1980, 3, 3), ent, "两地注册")
    first = registered(s, person, ent)
    # the second registration comes from outside (e.g. the national registry): it is in force at enterprise2
    s.add(Registration(kind=RegistrationKind.initial, status=R.approved, person_id=person.person_id,
                       enterprise_id=ent2.organization_id, declared_by_id=person.id, specialty="08",
                       registration_number=f"鲁08TEST{first.id:06d}", valid_until=first.valid_until))
    s.flush()

    assert scan_anomalies(s, user(s, "province")) >= 2
    flagged = anomalies_of(s, person.person_id)
    assert {(a.enterprise_id, a.kind) for a in flagged} == {(ent.organization_id, AnomalyKind.two_enterprises),
                                                            (ent2.organization_id, AnomalyKind.two_enterprises)}
    assert all("两家及以上企业" in a.description for a in flagged)


def test_an_accepted_appeal_settles_it_a_rejected_one_is_flagged_again(rolled_session):
    s = rolled_session
    province = user(s, "province")
    settled, refused = over_age_anomaly(s), over_age_anomaly(s)
    for anomaly in (settled, refused):
        submit_appeal(s, user(s, "enterprise"), anomaly, ANSWER)
    APPEAL.fire(s, province, settled, "accept")
    APPEAL.fire(s, province, refused, "reject", reason="超龄人员不得继续注册")

    assert scan_anomalies(s, province) == 1
    assert len(anomalies_of(s, settled.person_id)) == 1
    again = anomalies_of(s, refused.person_id)
    assert [a.status for a in again] == [A.rejected, A.open]


@pytest.mark.parametrize("username", ["enterprise", "jinan", "ministry", "person", "inst_jinan"])
def test_only_the_province_may_scan(rolled_session, username):
    with pytest.raises(WorkflowError, match="^无权进行异常筛查$"):
        scan_anomalies(rolled_session, user(rolled_session, username))


def test_a_province_user_without_registration_review_may_not_scan(rolled_session):
    s = rolled_session
    clerk = make_user(s, user(s, "province").organization, role=Role.operator)
    assert not clerk.has(Permission.registration_review)
    with pytest.raises(WorkflowError, match="^无权进行异常筛查$"):
        scan_anomalies(s, clerk)
    assert scan_anomalies(s, user(s, "province_reviewer")) >= 0  # the reviewer role may


# -- 申辩 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "message"),
    [("", "请填写申辩说明"), ("   \n ", "请填写申辩说明"), (None, "请填写申辩说明"), ("长" * 2001, "申辩说明不能超过2000个字符")],
)
def test_an_appeal_needs_an_answer(rolled_session, answer, message):
    s = rolled_session
    anomaly = over_age_anomaly(s)
    with pytest.raises(WorkflowError) as exc:
        submit_appeal(s, user(s, "enterprise"), anomaly, answer, [("说明.png", make_png(4, 4))])
    assert exc.value.message == message
    assert anomaly.status == A.open and anomaly.answer is None and files_of(s, anomaly) == []


@pytest.mark.parametrize("username", ["enterprise2", "province", "jinan", "person"])
def test_only_the_flagged_enterprise_may_appeal(rolled_session, username):
    s = rolled_session
    anomaly = over_age_anomaly(s)
    with pytest.raises(WorkflowError, match="^无权执行「申辩」$"):
        submit_appeal(s, user(s, username), anomaly, ANSWER, [("说明.png", make_png(4, 4))])
    assert anomaly.status == A.open and files_of(s, anomaly) == []


def test_an_appeal_stores_the_answer_and_files_typed_by_content(rolled_session):
    s = rolled_session
    anomaly = over_age_anomaly(s)
    ent = user(s, "enterprise")
    submit_appeal(s, ent, anomaly, f"  {ANSWER}  ", [
        ("返聘协议.png", make_png(8, 8)), ("现场照片.jpeg", make_jpeg()), ("情况说明.pdf", make_pdf()),
        ("注销申请.docx", make_docx()), ("", b"")])  # an empty file input is no file

    assert anomaly.status == A.appealed and anomaly.answer == ANSWER and anomaly.answered_at is not None
    stored = files_of(s, anomaly)
    assert [(f.filename, f.kind.value, f.content_type) for f in stored] == [
        ("返聘协议.png", "image", "image/png"), ("现场照片.jpg", "image", "image/jpeg"),
        ("情况说明.pdf", "document", "application/pdf"),
        ("注销申请.docx", "document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]
    assert all(f.purpose == "申辩材料" and f.uploaded_by_id == ent.id for f in stored)
    [log] = s.scalars(select(TransitionLog).where(TransitionLog.object_type == "anomaly",
                                                  TransitionLog.object_id == anomaly.id)).all()
    assert (log.transition, log.from_state, log.to_state, log.actor_id) == ("appeal", "open", "appealed", ent.id)
    province_users = s.scalars(select(User.id).where(User.organization_id == user(s, "province").organization_id))
    assert s.scalar(select(func.count()).select_from(Message).where(
        Message.object_type == "anomaly", Message.object_id == anomaly.id,
        Message.user_id.in_(list(province_users)))) >= 1
    # one answer per anomaly
    with pytest.raises(WorkflowError, match="当前状态为「已申辩」"):
        submit_appeal(s, ent, anomaly, ANSWER)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([("表格.xlsx", make_xlsx())], "文件「表格.xlsx」不是有效的图片或文档（仅支持 jpg、png、pdf、doc、docx）"),
        ([("照片.png", make_pdf())], "文件「照片.png」的内容与扩展名不符"),
        ([("脚本.pdf", b"#!/bin/sh\nrm -rf /\n")], "文件「脚本.pdf」不是有效的图片或文档（仅支持 jpg、png、pdf、doc、docx）"),
        ([("空.png", b"")], "文件「空.png」为空"),
        ([(f"{i}.png", make_png(2, 2)) for i in range(6)], "申辩材料最多上传5个文件"),
    ],
)
def test_bad_files_refuse_the_appeal_and_store_nothing(rolled_session, files, message):
    s = rolled_session
    anomaly = over_age_anomaly(s)
    with pytest.raises(WorkflowError) as exc:
        submit_appeal(s, user(s, "enterprise"), anomaly, ANSWER, files)
    assert exc.value.message == message
    assert anomaly.status == A.open and anomaly.answer is None and files_of(s, anomaly) == []


def test_appeal_is_not_a_manual_transition():
    """申辩 carries text and files: only submit_appeal fires it, never a generic button or action."""
    appeal = APPEAL.transition("appeal")
    assert not appeal.manual and not appeal.bulk


# -- the province's decision -------------------------------------------------------------------------
def test_the_province_accepts_or_rejects_with_a_reason(rolled_session):
    s = rolled_session
    ent, province = user(s, "enterprise"), user(s, "province_reviewer")
    accepted, rejected = over_age_anomaly(s), over_age_anomaly(s)
    with pytest.raises(WorkflowError, match="当前状态为「待申辩」，不能执行「申辩通过」"):
        APPEAL.fire(s, province, accepted, "accept")
    for anomaly in (accepted, rejected):
        submit_appeal(s, ent, anomaly, ANSWER)

    APPEAL.fire(s, province, accepted, "accept")
    assert accepted.status == A.accepted and accepted.decided_at is not None and accepted.decision is None

    for empty in (None, "", "   "):
        with pytest.raises(WorkflowError, match="^请填写不通过理由$"):
            APPEAL.fire(s, province, rejected, "reject", reason=empty)
    assert rejected.status == A.appealed and rejected.decision is None
    APPEAL.fire(s, province, rejected, "reject", reason="超龄人员不得继续注册执业")
    assert rejected.status == A.rejected and rejected.decision == "超龄人员不得继续注册执业"
    # the enterprise is told, with the reason
    assert s.scalar(select(Message.body).where(Message.user_id == ent.id, Message.object_type == "anomaly",
                                               Message.object_id == rejected.id, Message.title.contains("申辩不通过"))
                    ).endswith("原因：超龄人员不得继续注册执业")


@pytest.mark.parametrize("username", ["enterprise", "jinan", "ministry"])
@pytest.mark.parametrize("name", ["accept", "reject"])
def test_only_the_province_decides(rolled_session, username, name):
    s = rolled_session
    anomaly = over_age_anomaly(s)
    submit_appeal(s, user(s, "enterprise"), anomaly, ANSWER)
    with pytest.raises(WorkflowError, match="^无权执行"):
        APPEAL.fire(s, user(s, username), anomaly, name, reason="理由")
    assert anomaly.status == A.appealed


# -- the demo (SPEC §12) -------------------------------------------------------------------------------
def test_demo_holds_registrations_and_appeals_in_every_state(rolled_session):
    s = rolled_session
    registration_states = set(s.scalars(select(Registration.status).distinct()))
    assert registration_states == set(RegistrationStatus)
    anomaly_states = set(s.scalars(select(Anomaly.status).where(
        Anomaly.enterprise_id == user(s, "enterprise").organization_id).distinct()))
    assert anomaly_states == set(AnomalyStatus)
    assert set(s.scalars(select(Anomaly.status).where(
        Anomaly.enterprise_id == user(s, "enterprise2").organization_id).distinct())) == set(AnomalyStatus)


def test_demo_leaves_room_for_the_browser_journeys(rolled_session):
    s = rolled_session
    person, ent, ent2 = user(s, "person"), user(s, "enterprise"), user(s, "enterprise2")
    # 张建国 declares his first registration with `enterprise` in a browser journey
    assert s.scalar(select(func.count()).select_from(Registration).where(
        Registration.person_id == person.person_id)) == 0
    assert person.person.employer_id == ent.organization_id
    # `enterprise` has 未上报 rows to report, and may still apply for a name change (SPEC §5.4)
    assert s.scalar(select(func.count()).select_from(Registration).where(
        Registration.enterprise_id == ent.organization_id, Registration.status == R.unreported)) >= 1
    for org in (ent.organization, ent2.organization):
        assert registrations_in_progress(s, org) == 0 and open_change_of(s, org) is None
    # 人员到期预警 shows rows; a 预注册 waits for 补正资质
    soon = date.today() + timedelta(days=90)
    assert s.scalar(select(func.count()).select_from(Registration).where(
        Registration.enterprise_id == ent.organization_id, Registration.status == R.approved,
        Registration.valid_until <= soon)) >= 1
    assert any(needs_correction(r) for r in s.scalars(select(Registration).where(Registration.pre_registration)))
    # every demo declarant signs in with the demo password as an individual
    declarants = s.scalars(select(User).where(User.id.in_(select(Registration.declared_by_id)))).all()
    assert declarants and all(u.role == Role.individual and u.organization_id is None for u in declarants)
