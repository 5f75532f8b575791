"""申辩管理 (004): anomalies flagged against an enterprise and the enterprise's 申辩.

``scan_anomalies`` (异常筛查, the province) flags a person registered at two or more enterprises
and a registered person of ``RETIREMENT_AGE`` or older; the enterprise answers with text and
attachments (``submit_appeal``, ``APPEAL``'s 申辩); the province decides (申辩通过 / 申辩不通过).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Anomaly, AnomalyKind, AnomalyStatus, OrgKind, Person, Registration
from models.base import local_today, utcnow
from models.user import Permission
from workflows import WorkflowError, messages
from workflows.attachments import _check_one, store
from workflows.audit import Kind, log
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.organizations import province_id
from workflows.registration import registered_clause, years_later

P = Permission
A = AnomalyStatus
RETIREMENT_AGE = 65  # 超龄: a registered person of this age or older is flagged
APPEAL_FORMATS = frozenset({"jpg", "png", "pdf", "doc", "docx"})  # 申辩材料: images or documents


def _enterprise_of_anomaly(user, anomaly: Anomaly) -> bool:
    return anomaly.enterprise_id == user.organization_id


def _answer_given(ctx: Context):
    answer = (ctx.data.get("answer") or "").strip()
    if not answer:
        return "请填写申辩说明"
    if len(answer) > 2000:
        return "申辩说明不能超过2000个字符"
    return True


def _record_answer(ctx: Context) -> None:
    ctx.obj.answer = ctx.data["answer"].strip()
    ctx.obj.answered_at = utcnow()


def _record_decision(ctx: Context) -> None:
    ctx.obj.decision = ctx.reason
    ctx.obj.decided_at = utcnow()


APPEAL = Workflow(
    Anomaly,
    "status",
    [
        Transition("appeal", "申辩", (A.open,), A.appealed,
                   who=actor(OrgKind.enterprise, relation=_enterprise_of_anomaly), permission=P.registration_manage,
                   guards=(Guard(_answer_given),), effects=(_record_answer,),
                   notify=lambda ctx: [province_id(ctx.session)], bulk=False, manual=False),
        Transition("accept", "申辩通过", (A.appealed,), A.accepted, who=actor(OrgKind.province),
                   permission=P.registration_review, effects=(_record_decision,),
                   notify=lambda ctx: [ctx.obj.enterprise_id]),
        Transition("reject", "申辩不通过", (A.appealed,), A.rejected, who=actor(OrgKind.province),
                   permission=P.registration_review, needs_reason=True, reason_label="不通过理由", danger=True,
                   effects=(_record_decision,), notify=lambda ctx: [ctx.obj.enterprise_id]),
    ],
    object_type="anomaly",
    title=str,
)


def submit_appeal(session: Session, user, anomaly: Anomaly, answer: str, files=()) -> None:
    """The enterprise's 申辩: text and up to 5 images or documents (pdf, doc, docx) — not the
    spreadsheets a batch accepts; checked by content before anything is stored."""
    files = [(n, d) for n, d in files if n or d]
    if len(files) > 5:
        raise WorkflowError("申辩材料最多上传5个文件")
    checks = [_check_one(n, d, allowed=APPEAL_FORMATS, formats_label="jpg、png、pdf、doc、docx", what="图片或文档",
                         max_bytes=10 * 1024 * 1024) for n, d in files]
    APPEAL.fire(session, user, anomaly, "appeal", answer=answer)
    store(session, files, checks, owner_type="anomaly", owner_id=anomaly.id, user_id=user.id, purpose="申辩材料")
    session.flush()


def scan_anomalies(session: Session, user, today: date | None = None) -> int:
    """异常筛查 (province): a person in force at two or more enterprises; a registered person of
    ``RETIREMENT_AGE`` or older. One anomaly per (enterprise, person, kind) that is open, appealed or
    accepted: a 申辩通过 settles it, while a 申辩不通过 one is flagged again while the cause lasts."""
    if user.kind != OrgKind.province or not user.has(P.registration_review):
        raise WorkflowError("无权进行异常筛查")
    today = today or local_today()
    found: list[tuple[int, int, int, AnomalyKind, str]] = []
    multi = select(Registration.person_id).where(registered_clause()).group_by(Registration.person_id).having(
        func.count(func.distinct(Registration.enterprise_id)) > 1)
    for reg in session.scalars(select(Registration).where(registered_clause(), Registration.person_id.in_(multi))):
        found.append((reg.enterprise_id, reg.person_id, reg.id, AnomalyKind.two_enterprises,
                      f"{reg.person.name}（注册编号 {reg.registration_number}）同时在两家及以上企业注册执业"))
    cutoff = years_later(today, -RETIREMENT_AGE)
    for reg in session.scalars(select(Registration).join(Person, Person.id == Registration.person_id).where(
            registered_clause(), Person.birth_date <= cutoff)):
        found.append((reg.enterprise_id, reg.person_id, reg.id, AnomalyKind.over_age,
                      f"{reg.person.name}已满{RETIREMENT_AGE}周岁，仍在注册执业（注册编号 {reg.registration_number}）"))
    created = 0
    for enterprise_id, person_id, reg_id, kind, text in found:
        exists_open = session.scalar(select(Anomaly.id).where(
            Anomaly.enterprise_id == enterprise_id, Anomaly.person_id == person_id, Anomaly.kind == kind,
            Anomaly.status.in_((A.open, A.appealed, A.accepted))))
        if exists_open:
            continue
        anomaly = Anomaly(enterprise_id=enterprise_id, person_id=person_id, registration_id=reg_id, kind=kind,
                          description=text)
        session.add(anomaly)
        session.flush()
        messages.send(session, title=f"{anomaly}：待申辩", body=anomaly.description, obj=anomaly,
                      object_type=APPEAL.object_type, org_ids=[enterprise_id])
        created += 1
    log(session, user, Kind.EDIT, f"异常筛查：新增 {created} 条异常信息", object_type="anomaly")
    session.flush()
    return created


# 申辩通过 / 申辩不通过: the province's decision on an answered anomaly; REFUSAL's reason shows red
DECISIONS = ("accept", "reject")
REFUSAL = "reject"


def may_appeal(user, anomaly: Anomaly) -> bool:
    """申辩 is offered on ``anomaly``: what ``submit_appeal`` would let ``user`` do to it now."""
    return APPEAL.allows(user, anomaly, "appeal")


def awaiting_appeal(user) -> set:
    """States in which anomalies wait for this enterprise's 申辩."""
    return APPEAL.awaiting(user, "appeal")


def awaiting_decision(user) -> set:
    """States in which 申辩 wait for the province's decision."""
    return APPEAL.awaiting(user, *DECISIONS)
