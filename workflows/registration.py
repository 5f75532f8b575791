"""Practice registration declarations (注册申报, SPEC §5.5; 002 §3.1.4, 004 §3.2) and 申辩管理.

``REGISTRATION`` is SPEC §5.5's table. The individual declares (``declare``); the enterprise
reports (上报, behind the 企业承诺书 read for at least ``COMMITMENT_SECONDS``, measured by the
server: see ``Commitment``) or returns (退回); the province and then the ministry accept (受理)
and decide. 增项 skips the enterprise. A declaration reported while the enterprise had no
qualification number is a 预注册 that waits for 补正资质 before the province may accept it.

``APPEAL`` is 申辩管理: an anomaly flagged against an enterprise (``scan_anomalies``), the
enterprise's answer with attachments, the province's decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import (
    Anomaly,
    AnomalyKind,
    AnomalyStatus,
    Attachment,
    AttachmentKind,
    Organization,
    OrgKind,
    OrgStatus,
    Person,
    Registration,
    RegistrationKind,
    RegistrationStatus,
    User,
)
from models.base import local_today, utcnow
from models.user import Permission
from workflows import WorkflowError, insert_or_refuse
from workflows.audit import Kind, log
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.organizations import ministry_id, province_id

P = Permission
R = RegistrationStatus
RK = RegistrationKind

# 一级建造师 专业 (002): code → name
SPECIALTIES = {
    "01": "建筑工程", "02": "公路工程", "03": "铁路工程", "04": "民航机场工程", "05": "港口与航道工程",
    "06": "水利水电工程", "07": "矿业工程", "08": "市政公用工程", "09": "通信与广电工程", "10": "机电工程",
}
REGISTRATION_PREFIX = "鲁"
VALID_YEARS = 3  # a registration is valid three years from approval
COMMITMENT_SECONDS = 60
COMMITMENT_TEXT = (
    "本企业郑重承诺：所上报人员与本企业依法订立劳动合同，本企业为其缴纳社会保险；所上报人员的申报材料"
    "真实、准确、完整，不存在伪造、变造、隐瞒等情形；所上报人员未同时在两个及以上单位注册执业。"
    "如有不实，本企业愿意承担相应的法律责任，并接受住房和城乡建设主管部门依法作出的处理。"
)
COMMITMENT_TICK = "本公司作出上述承诺"
OPEN_STATES = (R.unreported, R.province_unaccepted, R.province_accepted, R.ministry_unaccepted,
               R.ministry_accepted)
REPORTED_STATES = (R.province_unaccepted, R.province_accepted, R.ministry_unaccepted, R.ministry_accepted,
                   R.approved, R.rejected, R.withdrawn)
WITHDRAWABLE = (R.province_unaccepted, R.ministry_unaccepted)
RETIREMENT_AGE = 65  # 超龄: a registered person of this age or older is flagged


@dataclass(frozen=True)
class Commitment:
    """When the server showed the 企业承诺书, and whether the box was ticked.

    Built by the report view from the time it stored in the session when it rendered the
    commitment; a form field can never become one, so the generic transition endpoints
    cannot report."""

    shown_at: datetime
    ticked: bool

    def seconds_read(self, now: datetime | None = None) -> float:
        return ((now or utcnow()) - self.shown_at).total_seconds()


# -- who -------------------------------------------------------------------------------------
def _the_enterprise(user, reg: Registration) -> bool:
    return reg.enterprise_id == user.organization_id


def is_declarant(user, reg: Registration) -> bool:
    return user.organization_id is None and user.person_id is not None and user.person_id == reg.person_id


# an individual has no organization: ``kind`` None
_INDIVIDUAL = actor(None, relation=is_declarant)
_ENTERPRISE = actor(OrgKind.enterprise, relation=_the_enterprise)
_PROVINCE = actor(OrgKind.province)
_MINISTRY = actor(OrgKind.ministry)


# -- guards ----------------------------------------------------------------------------------
def _commitment_read(ctx: Context):
    commitment = ctx.data.get("commitment")
    if not isinstance(commitment, Commitment):
        return "请先阅读企业承诺书"
    if commitment.seconds_read() < COMMITMENT_SECONDS:
        return f"请仔细阅读企业承诺书，{COMMITMENT_SECONDS}秒后方可确认上报"
    if not commitment.ticked:
        return f"请勾选「{COMMITMENT_TICK}」"
    return True


def _qualification_present(ctx: Context):
    reg = ctx.obj
    if reg.pre_registration and not reg.qualification_no:
        return "预注册申报，待企业补正资质后方可受理"
    return True


def _withdraw_not_requested(ctx: Context):
    return "已申请撤回，等待企业同意" if ctx.obj.withdraw_requested_at else True


def _withdraw_requested(ctx: Context):
    return True if ctx.obj.withdraw_requested_at else "个人未申请撤回"


def _already_reported(state) -> str | None:
    return "该申报已上报，请勿重复上报" if state in REPORTED_STATES else None


# -- effects ---------------------------------------------------------------------------------
def _stamp_reported(ctx: Context) -> None:
    reg, org = ctx.obj, ctx.obj.enterprise
    reg.reported_at = utcnow()
    reg.pre_registration = not org.qualification_no
    reg.qualification_no = org.qualification_no or None


def _record_reason(ctx: Context) -> None:
    ctx.obj.reason = ctx.reason
    ctx.obj.decided_at = utcnow()


def _to_ministry(ctx: Context) -> None:
    ctx.obj.ministry_at = utcnow()


def _request_withdraw(ctx: Context) -> None:
    ctx.obj.withdraw_requested_at = utcnow()


def _approve(ctx: Context) -> None:
    """准予注册: the registered person with a number and an expiry date; the registration it
    renews or changes (same person, same specialty) is superseded."""
    reg = ctx.obj
    today = local_today()
    reg.decided_at = utcnow()
    reg.registration_number = f"{REGISTRATION_PREFIX}{reg.specialty}{today.year}{reg.id:06d}"
    reg.valid_until = _years_later(today, VALID_YEARS)
    if reg.kind in (RK.renewal, RK.change):
        for earlier in ctx.session.scalars(select(Registration).where(
                Registration.person_id == reg.person_id, Registration.status == R.approved,
                Registration.superseded_by_id.is_(None), Registration.id != reg.id)):
            if earlier.specialty == reg.specialty:
                earlier.superseded_by_id = reg.id
            elif reg.kind == RK.change and earlier.enterprise_id != reg.enterprise_id:
                # 变更注册 moves the person: their other specialties go with them, so nobody is
                # left registered at two enterprises (what 申辩管理 would flag)
                earlier.enterprise_id = reg.enterprise_id


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# -- notifications ---------------------------------------------------------------------------
def _declarant(ctx: Context) -> Iterable[int]:
    return [ctx.obj.declared_by_id]


def _enterprise(ctx: Context) -> Iterable[int]:
    return [ctx.obj.enterprise_id]


def _enterprise_and_province(ctx: Context) -> Iterable[int]:
    return [ctx.obj.enterprise_id, province_id(ctx.session)]


def _enterprise_and_ministry(ctx: Context) -> Iterable[int]:
    return [ctx.obj.enterprise_id, ministry_id(ctx.session)]


REGISTRATION = Workflow(
    Registration,
    "status",
    [
        Transition("report", "上报", (R.unreported,), R.province_unaccepted, who=_ENTERPRISE,
                   permission=P.registration_manage, guards=(Guard(_commitment_read),),
                   effects=(_stamp_reported,), notify=lambda ctx: [province_id(ctx.session)],
                   notify_users=_declarant, state_message=_already_reported),
        Transition("return", "退回", (R.unreported,), R.returned, who=_ENTERPRISE,
                   permission=P.registration_manage, needs_reason=True, reason_label="退回理由", danger=True,
                   effects=(_record_reason,), notify_users=_declarant),
        Transition("province_accept", "受理", (R.province_unaccepted,), R.province_accepted, who=_PROVINCE,
                   permission=P.registration_review, guards=(Guard(_qualification_present),),
                   notify=_enterprise, notify_users=_declarant),
        Transition("province_forward", "审查通过", (R.province_accepted,), R.ministry_unaccepted, who=_PROVINCE,
                   permission=P.registration_review, effects=(_to_ministry,), notify=_enterprise_and_ministry,
                   notify_users=_declarant),
        Transition("province_reject", "不予注册", (R.province_accepted,), R.rejected, who=_PROVINCE,
                   permission=P.registration_review, needs_reason=True, reason_label="不予注册理由", danger=True,
                   effects=(_record_reason,), notify=_enterprise, notify_users=_declarant),
        Transition("ministry_accept", "受理", (R.ministry_unaccepted,), R.ministry_accepted, who=_MINISTRY,
                   permission=P.registration_review, notify=_enterprise_and_province, notify_users=_declarant),
        Transition("ministry_approve", "准予注册", (R.ministry_accepted,), R.approved, who=_MINISTRY,
                   permission=P.registration_review, effects=(_approve,), notify=_enterprise_and_province,
                   notify_users=_declarant),
        Transition("ministry_reject", "不予注册", (R.ministry_accepted,), R.rejected, who=_MINISTRY,
                   permission=P.registration_review, needs_reason=True, reason_label="不予注册理由", danger=True,
                   effects=(_record_reason,), notify=_enterprise_and_province, notify_users=_declarant),
        Transition("request_withdraw", "申请撤回", WITHDRAWABLE, lambda reg: reg.status, who=_INDIVIDUAL,
                   guards=(Guard(_withdraw_not_requested, offer=True),), effects=(_request_withdraw,), notify=_enterprise,
                   bulk=False, confirm="确定申请撤回该注册申报吗？撤回须企业同意。"),
        Transition("consent_withdraw", "同意撤回", WITHDRAWABLE, R.withdrawn, who=_ENTERPRISE,
                   permission=P.registration_manage, guards=(Guard(_withdraw_requested, offer=True),),
                   notify=lambda ctx: [province_id(ctx.session)] if ctx.from_state == R.province_unaccepted
                   else [ministry_id(ctx.session)], notify_users=_declarant),
    ],
    object_type="registration",
    title=str,
)


def awaiting_review(user) -> set:
    """States in which declarations wait for this reviewer (首页 counts, 待受理 tabs)."""
    return REGISTRATION.awaiting(user, "province_accept", "province_forward", "ministry_accept", "ministry_approve")


# -- the individual's side ---------------------------------------------------------------------
def current_registrations(session: Session, person_id: int):
    """A person's registrations in force: approved and not superseded."""
    return list(session.scalars(select(Registration).where(
        Registration.person_id == person_id, Registration.status == R.approved,
        Registration.superseded_by_id.is_(None))))


def find_enterprise(session: Session, term: str) -> Organization | None:
    """The employing enterprise by its 统一社会信用代码 or its exact name (active enterprises)."""
    term = (term or "").strip().upper() if len((term or "").strip()) == 18 else (term or "").strip()
    if not term:
        return None
    return session.scalars(select(Organization).where(
        Organization.kind == OrgKind.enterprise, Organization.status == OrgStatus.active,
        or_(Organization.credit_code == term, Organization.name == term))).first()


def declare(session: Session, user, values: dict) -> Registration:
    """个人申报: kind, specialty, the employing enterprise (credit code or exact name), 申报说明."""
    if user.organization_id is not None or user.person_id is None:
        raise WorkflowError("只有个人用户可以申报注册")
    try:
        kind = RegistrationKind(values.get("kind") or "")
    except ValueError:
        raise WorkflowError("请选择申报类型") from None
    specialty = values.get("specialty") or ""
    if specialty not in SPECIALTIES:
        raise WorkflowError("请选择注册专业")
    enterprise = find_enterprise(session, values.get("enterprise") or "")
    if enterprise is None:
        raise WorkflowError("聘用企业不存在或未通过审核，请输入企业全称或统一社会信用代码")
    explanation = (values.get("explanation") or "").strip()
    if len(explanation) > 500:
        raise WorkflowError("申报说明不能超过500个字符")
    person_id = user.person_id
    open_one = session.scalars(select(Registration).where(
        Registration.person_id == person_id, Registration.specialty == specialty,
        Registration.status.in_(OPEN_STATES))).first()
    if open_one is not None:
        raise WorkflowError(f"{SPECIALTIES[specialty]}专业已有办理中的{open_one.kind.label}（{open_one.status.label}）")
    elsewhere = session.scalars(select(Registration).where(
        Registration.person_id == person_id, Registration.enterprise_id != enterprise.id,
        Registration.status.in_(OPEN_STATES))).first()
    if elsewhere is not None:
        # two declarations in progress at two enterprises would end in two registrations
        raise WorkflowError(f"已有在{elsewhere.enterprise.name}办理中的{elsewhere.kind.label}（{elsewhere.status.label}），"
                            "注册人员只能在一家企业注册执业")
    current = current_registrations(session, person_id)
    same = [r for r in current if r.specialty == specialty]
    if kind == RK.initial and current:
        raise WorkflowError("已有注册证书，请申报延续、变更或增项注册")
    if kind == RK.renewal and not any(r.enterprise_id == enterprise.id for r in same):
        raise WorkflowError(f"在该企业没有{SPECIALTIES[specialty]}专业的注册，不能申报延续注册")
    if kind == RK.change and not any(r.enterprise_id != enterprise.id for r in same):
        raise WorkflowError(f"变更注册是{SPECIALTIES[specialty]}专业的注册变更到新聘用企业，请选择新的聘用企业")
    if kind == RK.additional:
        if same:
            raise WorkflowError(f"已注册{SPECIALTIES[specialty]}专业，不能增项")
        if not current:
            raise WorkflowError("增项注册须已有注册专业，请申报初始注册")
    if kind in (RK.initial, RK.additional) and any(r.enterprise_id != enterprise.id for r in current):
        raise WorkflowError("注册人员只能在一家企业注册执业，请先申报变更注册")
    reg = Registration(kind=kind, person_id=person_id, enterprise_id=enterprise.id, declared_by_id=user.id,
                       specialty=specialty, explanation=explanation or None)
    if kind == RK.additional:
        # 增项 skips the enterprise: straight to the province (002 §3.1.4)
        reg.status = R.province_unaccepted
        reg.reported_at = utcnow()
        reg.pre_registration = not enterprise.qualification_no
        reg.qualification_no = enterprise.qualification_no or None
    with insert_or_refuse(session, WorkflowError(f"{SPECIALTIES[specialty]}专业已有办理中的注册申报")):
        session.add(reg)
        session.flush()
    log(session, user, Kind.EDIT, f"注册申报：{reg}，聘用企业 {enterprise.name}", obj=reg)
    _message_org(session, enterprise.id if kind != RK.additional else province_id(session),
                 f"{reg}：{'待上报' if kind != RK.additional else '待受理'}", f"申报人：{user.name}", reg)
    return reg


def _message_org(session: Session, org_id: int | None, title: str, body: str, reg: Registration) -> None:
    from models import Message

    if org_id is None:
        return
    for user_id in session.scalars(select(User.id).where(User.organization_id == org_id, User.is_enabled.is_(True))):
        session.add(Message(user_id=user_id, title=title, body=body, object_type="registration", object_id=reg.id))


# -- the enterprise's side --------------------------------------------------------------------
def needs_correction(reg: Registration) -> bool:
    """补正资质 is offered on a reported 预注册 without a qualification number."""
    return reg.pre_registration and not reg.qualification_no and reg.status in (
        R.province_unaccepted, R.province_accepted, R.ministry_unaccepted, R.ministry_accepted)


def correct_qualification(session: Session, user, qualification_no: str, files=()) -> int:
    """补正资质 (004 §3.2.6): the number the enterprise now has completes every pending 预注册.

    When the number is the one on the enterprise's record (检测到企业资质证书号) nothing more is
    needed; otherwise the copy of the certificate (资质副本) must be uploaded and the number
    becomes the enterprise's."""
    from workflows.attachments import check_images

    org = user.organization
    if org is None or org.kind != OrgKind.enterprise or not user.has(P.registration_manage):
        raise WorkflowError("无权补正资质")
    number = (qualification_no or "").strip()
    if not number or len(number) > 50:
        raise WorkflowError("请填写企业资质证书号（不超过50个字符）")
    pending = [r for r in session.scalars(select(Registration).where(
        Registration.enterprise_id == org.id, Registration.pre_registration.is_(True),
        Registration.qualification_no.is_(None))) if needs_correction(r)]
    if not pending:
        raise WorkflowError("没有需要补正资质的预注册申报")
    files = [(n, d) for n, d in files if n or d]
    if number != (org.qualification_no or ""):
        if not files:
            raise WorkflowError("未检测到该企业资质证书号，请上传企业资质副本")
        checks = check_images(files, min_count=1, max_count=3)
        for (_, data), check in zip(files, checks, strict=True):
            session.add(Attachment(owner_type="organization", owner_id=org.id, kind=AttachmentKind.image,
                                   purpose="资质证书", filename=check.safe_filename, content_type=check.content_type,
                                   size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                                   uploaded_by_id=user.id))
        before = org.qualification_no
        org.qualification_no = number
        log(session, user, Kind.EDIT, f"补正资质：企业资质证书号 {before or '（无）'} → {number}", obj=org,
            detail={"qualification_no": {"before": before, "after": number}})
    for reg in pending:
        reg.qualification_no = number
    log(session, user, Kind.EDIT, f"补正资质：{len(pending)} 条预注册申报", object_type="registration")
    session.flush()
    return len(pending)


def registered_clause(today: date | None = None):
    """注册人员: approved registrations in force (not superseded)."""
    return and_(Registration.status == R.approved, Registration.superseded_by_id.is_(None))


def expiring_clause(days: int, today: date | None = None):
    """人员到期预警: in force and expiring within ``days`` (or already expired)."""
    today = today or local_today()
    return and_(registered_clause(), Registration.valid_until <= today + timedelta(days=days))


# -- 申辩管理 ------------------------------------------------------------------------------------
A = AnomalyStatus
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
    from workflows.attachments import _check_one

    files = [(n, d) for n, d in files if n or d]
    if len(files) > 5:
        raise WorkflowError("申辩材料最多上传5个文件")
    checks = [_check_one(n, d, allowed=APPEAL_FORMATS, formats_label="jpg、png、pdf、doc、docx", what="图片或文档",
                         max_bytes=10 * 1024 * 1024) for n, d in files]
    APPEAL.fire(session, user, anomaly, "appeal", answer=answer)
    for (_, data), check in zip(files, checks, strict=True):
        session.add(Attachment(owner_type="anomaly", owner_id=anomaly.id, kind=check.kind, purpose="申辩材料",
                               filename=check.safe_filename, content_type=check.content_type, size=len(data),
                               sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by_id=user.id))
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
    cutoff = _years_later(today, -RETIREMENT_AGE)
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
        _message_enterprise_users(session, enterprise_id, anomaly)
        created += 1
    log(session, user, Kind.EDIT, f"异常筛查：新增 {created} 条异常信息", object_type="anomaly")
    session.flush()
    return created


def _message_enterprise_users(session: Session, enterprise_id: int, anomaly: Anomaly) -> None:
    from models import Message

    for user_id in session.scalars(select(User.id).where(User.organization_id == enterprise_id,
                                                         User.is_enabled.is_(True))):
        session.add(Message(user_id=user_id, title=f"{anomaly}：待申辩", body=anomaly.description,
                            object_type="anomaly", object_id=anomaly.id))
