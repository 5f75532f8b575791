"""Practice registration declarations (注册申报, SPEC §5.5; 002 §3.1.4, 004 §3.2).

``REGISTRATION`` is SPEC §5.5's table. The individual declares (``declare``); the enterprise
reports (上报, behind the 企业承诺书 read for at least ``COMMITMENT_SECONDS``, measured by the
server: see ``Commitment``) or returns (退回); the province and then the ministry accept (受理)
and decide. 增项 skips the enterprise. A declaration reported while the enterprise had no
qualification number is a 预注册 that waits for 补正资质 before the province may accept it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from models import (
    Organization,
    OrgKind,
    OrgStatus,
    Registration,
    RegistrationKind,
    RegistrationStatus,
)
from models.base import local_today, utcnow
from models.registration import SPECIALTIES
from models.user import Permission
from workflows import WorkflowError, insert_or_refuse, messages
from workflows.accounts import QUALIFICATION, QUALIFICATION_MAX
from workflows.attachments import check_images, store
from workflows.audit import Kind, log
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.organizations import ministry_id, province_id

P = Permission
R = RegistrationStatus
RK = RegistrationKind

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
    _reported(ctx.obj, ctx.obj.enterprise)


def _reported(reg: Registration, org: Organization) -> None:
    """上报's stamp: when, and the enterprise's qualification number then (none: a 预注册)."""
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
    reg.valid_until = years_later(today, VALID_YEARS)
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


def years_later(day: date, years: int) -> date:
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
    # 增项 skips the enterprise: it starts reported, at the province (002 §3.1.4)
    additional = kind == RK.additional
    reg = Registration(kind=kind, person_id=person_id, enterprise_id=enterprise.id, declared_by_id=user.id,
                       specialty=specialty, explanation=explanation or None,
                       status=R.province_unaccepted if additional else R.unreported)
    if additional:
        _reported(reg, enterprise)
    with insert_or_refuse(session, WorkflowError(f"{SPECIALTIES[specialty]}专业已有办理中的注册申报")):
        session.add(reg)
        session.flush()
    log(session, user, Kind.EDIT, f"注册申报：{reg}，聘用企业 {enterprise.name}", obj=reg)
    messages.send(session, title=f"{reg}：{'待受理' if additional else '待上报'}", body=f"申报人：{user.name}",
                  obj=reg, object_type=REGISTRATION.object_type,
                  org_ids=[province_id(session) if additional else enterprise.id])
    return reg


# -- the enterprise's side --------------------------------------------------------------------
def needs_correction(reg: Registration) -> bool:
    """补正资质 is offered on a reported 预注册 without a qualification number."""
    return reg.pre_registration and not reg.qualification_no and reg.status in CORRECTABLE


def correct_qualification(session: Session, user, qualification_no: str, files=()) -> int:
    """补正资质 (004 §3.2.6): the number the enterprise now has completes every pending 预注册.

    When the number is the one on the enterprise's record (检测到企业资质证书号) nothing more is
    needed; otherwise the copy of the certificate (资质副本) must be uploaded and the number
    becomes the enterprise's."""
    org = user.organization
    if not corrects_qualification(user):
        raise WorkflowError("无权补正资质")
    number = (qualification_no or "").strip()
    if not number or len(number) > 50:
        raise WorkflowError("请填写企业资质证书号（不超过50个字符）")
    pending = list(session.scalars(select(Registration).where(Registration.enterprise_id == org.id,
                                                              correction_clause())))
    if not pending:
        raise WorkflowError("没有需要补正资质的预注册申报")
    files = [(n, d) for n, d in files if n or d]
    if number != (org.qualification_no or ""):
        if not files:
            raise WorkflowError("未检测到该企业资质证书号，请上传企业资质副本")
        checks = check_images(files, min_count=1, max_count=QUALIFICATION_MAX)
        store(session, files, checks, owner_type="organization", owner_id=org.id, user_id=user.id,
              purpose=QUALIFICATION)
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


# -- what the registration screens ask (the rules above, one place) ----------------------------
REPORT = "report"  # 上报: fired only behind the 企业承诺书 page
ACCEPTANCES = ("province_accept", "ministry_accept")  # 受理
DECISIONS = ("province_forward", "province_reject", "ministry_approve", "ministry_reject")  # 审查
CORRECTABLE = (R.province_unaccepted, R.province_accepted, R.ministry_unaccepted, R.ministry_accepted)


def may_report(user, reg: Registration) -> bool:
    """上报 is offered on ``reg`` (the commitment is checked when it fires)."""
    return REGISTRATION.allows(user, reg, REPORT)


def corrects_qualification(user) -> bool:
    """补正资质 is the enterprise's, by a user with 注册申报管理."""
    return user.kind == OrgKind.enterprise and user.has(P.registration_manage)


def may_correct(user, reg: Registration) -> bool:
    """补正资质 is offered on ``reg``: a pending 预注册 of this user's enterprise."""
    return needs_correction(reg) and corrects_qualification(user) and _the_enterprise(user, reg)


def correction_clause():
    """``needs_correction`` as SQL: the 预注册 that 补正资质 completes."""
    return and_(Registration.pre_registration.is_(True),
                or_(Registration.qualification_no.is_(None), Registration.qualification_no == ""),
                Registration.status.in_(CORRECTABLE))


def awaiting_acceptance(user) -> set:
    """States in which declarations wait for this reviewer's 受理 (待受理)."""
    return REGISTRATION.awaiting(user, *ACCEPTANCES)


def awaiting_decision(user) -> set:
    """States in which declarations wait for this reviewer's 审查 (待审查)."""
    return REGISTRATION.awaiting(user, *DECISIONS)
