"""证书业务 (SPEC §5.2; 003 §六.3, §七.3, §八.3; 000 §二(二), §三; 001).

``BUSINESS`` is the review table of every application kind; the rest of the module is the
applicant's side (who may apply for which certificate, what a change may contain) and the
effects of province approval: a change applied to the person, a reissue's new numbers, a
cancellation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from models import (
    ApplicationItem,
    ApplicationKind,
    ApplicationStatus,
    Attachment,
    Certificate,
    CertificateApplication,
    ChangeField,
    Organization,
    Person,
    TransitionLog,
)
from models.base import local_today, utcnow
from models.certificate import CertificateStatus, PrintStatus
from models.org import OrgKind, OrgStatus
from models.user import Permission
from workflows import WorkflowError, ecert
from workflows.attachments import check_images, store
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.numbering import allocate_numbers, segment_key
from workflows.organizations import province_id
from workflows.printing import PRINT
from workflows.validators import parse_id_number
from workflows.visibility import CITY_ORG_KINDS, certificate_history_clause

A = ApplicationStatus
K = ApplicationKind
PENDING_STATES = (A.pending_authority, A.pending_province)
APPLICANT_KINDS = (OrgKind.institution, OrgKind.direct_institution, OrgKind.enterprise, OrgKind.school)
IMAGES_MIN, IMAGES_MAX = 1, 5
RECENT_EMPLOYER_CHANGE = timedelta(days=91)  # 000 §二(二).3: less than 3 months
SOCIAL_SECURITY = "已核验社保缴纳条件"


# -- who ------------------------------------------------------------------------------------
def is_applicant(user, app: CertificateApplication) -> bool:
    """The organization (with 证书业务申请) or the individual who filed the application."""
    if user.organization_id is None:
        return app.applicant_org_id is None and app.applicant_user_id == user.id
    return app.applicant_org_id == user.organization_id and user.has(Permission.business_apply)


def _reviewing_authority(user, app) -> bool:
    return app.reviewing_authority_id is not None and app.reviewing_authority_id == user.organization_id


def _applicant_who(user, app) -> bool:
    return is_applicant(user, app)


# -- guards ----------------------------------------------------------------------------------
def _has_items(ctx: Context):
    if not ctx.obj.items:
        return "请先选择遗失证书" if ctx.obj.kind == K.reissue else "申请中没有证书"
    return True


def _images(ctx: Context):
    count = image_count(ctx.session, ctx.obj)
    if count < IMAGES_MIN:
        return "请上传单位出具的纸质申请表（至少1张图片）"
    if count > IMAGES_MAX:
        return f"最多上传{IMAGES_MAX}张图片"
    return True


def _certificates_still_valid(ctx: Context):
    problems = certificate_problems(ctx.session, ctx.obj)
    return "；".join(problems) if problems else True


def _change_still_possible(ctx: Context):
    if ctx.obj.kind != K.change or ChangeField.id_number not in ctx.obj.fields:
        return True
    owner = ctx.session.scalar(select(Person.id).where(Person.id_number == ctx.obj.new_id_number,
                                                       Person.id != ctx.obj.person_id))
    return "新身份证号已属于其他人员" if owner is not None else True


def _social_security(ctx: Context):
    if ctx.obj.recent_employer_change and not (ctx.data.get("social_security_checked") or
                                               ctx.obj.social_security_checked):
        return f"该持证人距上次工作单位变更不足3个月，请勾选「{SOCIAL_SECURITY}」后再审核通过"
    return True


# -- effects ---------------------------------------------------------------------------------
def _stamp_submitted(ctx: Context) -> None:
    app = ctx.obj
    app.submitted_at = utcnow()
    app.reject_reason = None
    if app.kind == K.change and ChangeField.employer in app.fields:
        last = app.person.last_employer_change_at
        app.recent_employer_change = last is not None and utcnow() - last < RECENT_EMPLOYER_CHANGE


def _record_check(ctx: Context) -> None:
    if ctx.data.get("social_security_checked"):
        ctx.obj.social_security_checked = True


def _record_rejection(ctx: Context) -> None:
    ctx.obj.reviewed_at = utcnow()
    ctx.obj.reject_reason = ctx.reason


def _apply(ctx: Context) -> None:
    """Province approval (SPEC §5.2 effects)."""
    app = ctx.obj
    app.reviewed_at = utcnow()
    {K.change: _apply_change, K.reissue: _apply_reissue, K.cancel: _apply_cancel}[app.kind](ctx)


def _apply_change(ctx: Context) -> None:
    app, person = ctx.obj, ctx.obj.person
    fields = app.fields
    if ChangeField.name in fields:
        person.name = app.new_name
    if ChangeField.id_number in fields:
        info = parse_id_number(app.new_id_number)
        person.id_number, person.birth_date, person.gender = info.number, info.birth_date, info.gender
    if ChangeField.name in fields or ChangeField.id_number in fields:
        ctx.session.flush()
        # every valid certificate of the holder shows the new name: their 电子证书 are issued anew
        ecert.reissue_for_person(ctx.session, person.id)
    if ChangeField.employer in fields:
        person.employer = app.new_employer  # the relationship, not the id: person.employer stays current
        person.employer_name = app.new_employer_name if app.new_employer_id is None else None
        person.last_employer_change_at = utcnow()
    for certificate in app.certificates:
        certificate.endorsement_count = (certificate.endorsement_count or 0) + 1  # 签注 +1
        if ChangeField.name in fields:
            certificate.business_print_application = app  # 业务打印 lists it (003 §六.3)
            if certificate.print_status == PrintStatus.printed:
                # the paper shows the old name: back to 业务打印's 待打印 (SPEC §5.2)
                PRINT.fire(ctx.session, ctx.user, certificate, "needs_reprint", reason=f"姓名变更为{app.new_name}")


def _apply_reissue(ctx: Context) -> None:
    from workflows.certificate import CERTIFICATE

    today = local_today()
    for item in ctx.obj.items:
        old = item.certificate
        key = segment_key(old.issuer, old.occupation, old.level, today.year)
        [number] = allocate_numbers(ctx.session, key, 1)
        new = Certificate(number=number, person_id=old.person_id, occupation_id=old.occupation_id,
                          level_id=old.level_id, issuer_id=old.issuer_id, authority_id=old.authority_id,
                          batch_id=old.batch_id, issue_date=today, valid_until=old.valid_until,
                          status=CertificateStatus.valid, endorsement_count=0, replaces=old,  # new paper: 10 empty 签注 slots
                          business_print_application=ctx.obj)  # 业务打印 lists it (003 §六.3)
        ctx.session.add(new)
        ctx.session.flush()
        item.new_certificate_id = new.id
        CERTIFICATE.fire(ctx.session, ctx.user, old, "void_for_reissue", reason=f"补办，新证书编号 {number}")
        ecert.issue(ctx.session, [new])


def _apply_cancel(ctx: Context) -> None:
    from workflows.certificate import CERTIFICATE

    for certificate in ctx.obj.certificates:
        CERTIFICATE.fire(ctx.session, ctx.user, certificate, "cancel_by_application",
                         reason=ctx.obj.explanation or "注销申请审核通过")


# -- notifications ---------------------------------------------------------------------------
def _notify_next(ctx: Context) -> Iterable[int]:
    app = ctx.obj
    if app.status == A.pending_authority:
        return [app.reviewing_authority_id]
    return [province_id(ctx.session), app.applicant_org_id]


def _notify_applicant(ctx: Context) -> Iterable[int]:
    return [ctx.obj.applicant_org_id]


def _notify_individual(ctx: Context) -> Iterable[int]:
    """An individual applicant has no organization: the message goes to the user."""
    return [ctx.obj.applicant_user_id] if ctx.obj.applicant_org_id is None else []


def _submit_target(app: CertificateApplication) -> ApplicationStatus:
    return A.pending_authority if app.reviewing_authority_id is not None else A.pending_province


BUSINESS = Workflow(
    CertificateApplication,
    "status",
    [
        Transition(
            "submit", "提交申请", (A.draft,), _submit_target, who=_applicant_who,
            guards=(Guard(_has_items), Guard(_images), Guard(_certificates_still_valid),
                    Guard(_change_still_possible)),
            effects=(_stamp_submitted,), notify=_notify_next, bulk=False,
        ),
        Transition(
            "authority_approve", "审核通过", (A.pending_authority,), A.pending_province,
            who=actor(OrgKind.authority, relation=_reviewing_authority), permission=Permission.business_review,
            guards=(Guard(_social_security), Guard(_certificates_still_valid)),
            effects=(_record_check,), notify=_notify_next,
        ),
        Transition(
            "authority_reject", "审核不通过", (A.pending_authority,), A.rejected,
            who=actor(OrgKind.authority, relation=_reviewing_authority), permission=Permission.business_review,
            needs_reason=True, reason_label="审核不通过原因", danger=True,
            effects=(_record_rejection,), notify=_notify_applicant, notify_users=_notify_individual,
        ),
        Transition(
            "province_approve", "审核通过", (A.pending_province,), A.approved,
            who=actor(OrgKind.province), permission=Permission.business_review,
            guards=(Guard(_social_security), Guard(_certificates_still_valid), Guard(_change_still_possible)),
            effects=(_record_check, _apply), notify=_notify_applicant, notify_users=_notify_individual,
        ),
        Transition(
            "province_reject", "审核不通过", (A.pending_province,), A.rejected,
            who=actor(OrgKind.province), permission=Permission.business_review,
            needs_reason=True, reason_label="审核不通过原因", danger=True,
            effects=(_record_rejection,), notify=_notify_applicant, notify_users=_notify_individual,
        ),
    ],
    object_type="application",
    title=lambda a: f"{a.kind.label}申请#{a.id}",
)

REVIEWS = ("authority_approve", "province_approve")


def awaiting_review(user) -> set:
    return BUSINESS.awaiting(user, *REVIEWS)


# -- the applicant's side --------------------------------------------------------------------
def image_count(session: Session, app: CertificateApplication) -> int:
    return session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.owner_type == "application", Attachment.owner_id == app.id)) or 0


def open_application_of(session: Session, certificate: Certificate, *, besides: int | None = None):
    """The submitted, undecided application holding ``certificate`` (SPEC §5.2: one per
    certificate). Unsubmitted drafts do not block anyone; submitting re-checks."""
    stmt = (select(CertificateApplication)
            .join(ApplicationItem, ApplicationItem.application_id == CertificateApplication.id)
            .where(ApplicationItem.certificate_id == certificate.id,
                   CertificateApplication.status.in_(PENDING_STATES)))
    if besides is not None:
        stmt = stmt.where(CertificateApplication.id != besides)
    return session.scalars(stmt.limit(1)).first()


def certificate_problems(session: Session, app: CertificateApplication) -> list[str]:
    problems = []
    for certificate in app.certificates:
        if certificate.status != CertificateStatus.valid:
            problems.append(f"证书{certificate.number}状态为「{certificate.status.label}」，不能办理业务")
        other = open_application_of(session, certificate, besides=app.id)
        if other is not None:
            problems.append(f"证书{certificate.number}已有未办结的{other}（{other.status.label}）")
    return problems


def _holder_employer(certificate: Certificate) -> Organization | None:
    return certificate.person.employer


# -- a school's students (000 §二(二).4, 001 信息变更 4) ------------------------------------------------
def may_move(user, certificate: Certificate) -> bool:
    """A school's students' certificates are moved only by the school: ``user`` may start an
    application for ``certificate`` unless its holder studies at a school other than the user's."""
    employer = _holder_employer(certificate)
    return employer is None or employer.kind != OrgKind.school or employer.id == user.organization_id


def movable_by(user):
    """``may_move`` as a predicate on Certificate (the lists of certificates to apply for)."""
    other_schools = select(Organization.id).where(Organization.kind == OrgKind.school)
    if user.organization_id is not None:
        other_schools = other_schools.where(Organization.id != user.organization_id)
    return Certificate.person_id.notin_(select(Person.id).where(Person.employer_id.in_(other_schools)))


def offered_kinds(user) -> tuple[ApplicationKind, ...]:
    """The applications ``user`` may start: a school only moves a student to an enterprise (变更 of
    the employer, 000 §二(二).4); every other applicant 变更, 补办, 注销."""
    return (K.change,) if user.kind == OrgKind.school else (K.change, K.reissue, K.cancel)


def check_may_apply(user, certificate: Certificate, kind: ApplicationKind, fields=()) -> None:
    """Who may file which application for which certificate (SPEC §5.2, 000 §二(二).4, 001)."""
    org = user.organization
    employer = _holder_employer(certificate)
    if org is not None and not user.has(Permission.business_apply):
        raise WorkflowError("无权办理证书业务")
    if org is None:
        if certificate.person_id != user.person_id:
            raise WorkflowError("只能为本人的证书办理业务")
        if not may_move(user, certificate):
            raise WorkflowError("在校学生的证书由学校办理单位变更，不能由个人申请")
    elif org.is_issuer:
        if certificate.issuer_id != org.id:
            raise WorkflowError("只能为本机构发放的证书办理业务")
    elif org.kind == OrgKind.enterprise:
        if employer is None or employer.id != org.id:
            raise WorkflowError("只能为本企业人员的证书办理业务")
    elif org.kind == OrgKind.school:
        if employer is None or employer.id != org.id:
            raise WorkflowError("只能为本校学生的证书办理业务")
        if kind not in offered_kinds(user) or set(fields) != {ChangeField.employer}:
            raise WorkflowError("学校(虚拟企业)只能为学生办理工作单位变更（转至接收企业），不能办理其他业务")
    else:
        raise WorkflowError("无权办理证书业务")
    if not may_move(user, certificate):
        raise WorkflowError("在校学生的证书只能由学校办理工作单位变更")
    if certificate.status != CertificateStatus.valid:
        raise WorkflowError(f"证书{certificate.number}状态为「{certificate.status.label}」，不能办理业务")


def _reviewing_authority_for(user, certificate: Certificate, receiving: Organization | None) -> int | None:
    """Institutions: their authority (None for 省直所 → province). Enterprises, schools and
    individuals: the authority of the (receiving) enterprise's city (SPEC §5.2)."""
    org = user.organization
    if org is not None and org.is_issuer:
        return org.parent_id if org.kind == OrgKind.institution else None
    city_org = receiving or _holder_employer(certificate) or org
    if city_org is not None and city_org.kind in CITY_ORG_KINDS:
        return city_org.parent_id
    return certificate.authority_id


def _new_application(session, user, kind, certificate, explanation, receiving=None) -> CertificateApplication:
    app = CertificateApplication(
        kind=kind, status=A.draft, applicant_org_id=user.organization_id, applicant_user_id=user.id,
        explanation=(explanation or "").strip()[:1000] or None, created_at=utcnow(),
    )
    if certificate is not None:
        _bind_holder(app, user, certificate, receiving)
    elif user.organization is None:
        app.person_id = user.person_id  # an individual applies only for themself
    elif user.kind == OrgKind.institution:
        app.reviewing_authority_id = user.organization.parent_id  # an institution's reviewer is its own
    session.add(app)
    return app


def _bind_holder(app: CertificateApplication, user, certificate: Certificate, receiving=None) -> None:
    """The holder, their details as they were, and the reviewing authority, from the first certificate."""
    person = certificate.person
    app.person_id = certificate.person_id
    app.reviewing_authority_id = _reviewing_authority_for(user, certificate, receiving)
    app.old_name, app.old_id_number, app.old_employer_name = person.name, person.id_number, person.employer_display


def start_change(session: Session, user, certificate: Certificate, fields, values: dict, *,
                 one_field_only: bool) -> CertificateApplication:
    """变更 (003 §六.3 ➤ 变更): a draft to which images are attached, then 提交申请."""
    try:
        fields = sorted({ChangeField(f) for f in fields})
    except ValueError:
        raise WorkflowError("请选择变更信息") from None
    if not fields:
        raise WorkflowError("请选择变更信息")
    if {ChangeField.name, ChangeField.id_number} <= set(fields):
        raise WorkflowError("姓名和身份证号不能同时变更")
    if one_field_only and len(fields) != 1:
        raise WorkflowError("每次申请只能变更一项信息")
    check_may_apply(user, certificate, K.change, fields)
    _refuse_if_open(session, certificate)
    person = certificate.person
    receiving = None
    changes: dict = {}
    if ChangeField.name in fields:
        name = (values.get("new_name") or "").strip()
        if not name or len(name) > 50:
            raise WorkflowError("请填写新姓名（不超过50个字）")
        if name == person.name:
            raise WorkflowError("新姓名与原姓名相同")
        changes["new_name"] = name
    if ChangeField.id_number in fields:
        try:
            info = parse_id_number(values.get("new_id_number"))
        except ValueError as exc:
            raise WorkflowError(f"新身份证号：{exc}") from None
        if info.number == person.id_number:
            raise WorkflowError("新身份证号与原身份证号相同")
        if session.scalar(select(Person.id).where(Person.id_number == info.number)) is not None:
            raise WorkflowError("新身份证号已属于其他人员")
        changes["new_id_number"] = info.number
    if ChangeField.employer in fields:
        receiving, name = _receiving_employer(session, user, values)
        if receiving is not None and receiving.id == person.employer_id:
            raise WorkflowError("现工作单位与原工作单位相同")
        changes["new_employer_id"] = receiving.id if receiving else None
        changes["new_employer_name"] = name
    app = _new_application(session, user, K.change, certificate, values.get("explanation"), receiving)
    app.change_fields = ",".join(f.value for f in fields)
    for key, value in changes.items():
        setattr(app, key, value)
    app.items.append(ApplicationItem(certificate_id=certificate.id))
    session.flush()
    return app


def _receiving_employer(session, user, values) -> tuple[Organization | None, str]:
    """现工作单位: a registered enterprise (required for enterprises, schools and individuals,
    whose receiving enterprise's city reviews), or free text for an issuing institution."""
    raw_id = values.get("new_employer_id")
    if raw_id not in (None, ""):
        try:
            org = session.get(Organization, int(raw_id))
        except (TypeError, ValueError):
            org = None
        if org is None or not is_receiving_enterprise(org):
            raise WorkflowError("接收企业不存在或未通过审核")
        return org, org.name
    name = (values.get("new_employer_name") or "").strip()
    if not names_free_employer(user):
        raise WorkflowError("请选择接收企业")
    if not name or len(name) > 200:
        raise WorkflowError("请填写现工作单位")
    registered = session.scalars(select(Organization).where(
        Organization.name == name, Organization.kind == OrgKind.enterprise,
        Organization.status == OrgStatus.active)).first()
    return registered, name


def start_cancel(session: Session, user, certificate: Certificate, explanation: str | None) -> CertificateApplication:
    """注销 (003 §六.3 ➤ 注销)."""
    check_may_apply(user, certificate, K.cancel)
    _refuse_if_open(session, certificate)
    app = _new_application(session, user, K.cancel, certificate, explanation)
    app.items.append(ApplicationItem(certificate_id=certificate.id))
    session.flush()
    return app


def start_reissue(session: Session, user, explanation: str | None,
                  certificate: Certificate | None = None) -> CertificateApplication:
    """补办, 新建申请 → 申请说明 → 保存 (001 证书遗失补证申请): the draft, empty (选择遗失证书
    comes next) or with the certificate its 补办 button was pressed on."""
    if not (explanation or "").strip():
        raise WorkflowError("请填写申请说明")
    if user.organization is not None and not user.has(Permission.business_apply):
        raise WorkflowError("无权办理证书业务")
    if certificate is not None:
        check_may_apply(user, certificate, K.reissue)
        _refuse_if_open(session, certificate)
    elif K.reissue not in offered_kinds(user):
        raise WorkflowError("学校(虚拟企业)只能为学生办理工作单位变更（转至接收企业），不能办理其他业务")
    app = _new_application(session, user, K.reissue, certificate, explanation)
    if certificate is not None:
        app.items.append(ApplicationItem(certificate_id=certificate.id))
    session.flush()
    return app


def add_lost_certificate(session: Session, user, app: CertificateApplication, certificate: Certificate) -> None:
    """选择遗失证书: a certificate into a 补办 draft; all of one application are one holder's."""
    _ensure_draft(user, app)
    if app.kind != K.reissue:
        raise WorkflowError("只有补办申请可以选择多张证书")
    if app.items and certificate.person_id != app.person_id:
        raise WorkflowError("一个补办申请只能包含同一持证人的证书")
    if any(item.certificate_id == certificate.id for item in app.items):
        raise WorkflowError(f"证书{certificate.number}已在申请中")
    check_may_apply(user, certificate, K.reissue)
    _refuse_if_open(session, certificate)
    if not app.items:
        _bind_holder(app, user, certificate)
    app.items.append(ApplicationItem(certificate_id=certificate.id))
    session.flush()


def remove_lost_certificate(session: Session, user, app: CertificateApplication, item: ApplicationItem) -> None:
    _ensure_draft(user, app)
    if item.application_id != app.id:
        raise WorkflowError("证书不在该申请中")
    app.items.remove(item)
    session.flush()


def _ensure_draft(user, app: CertificateApplication) -> None:
    if not is_applicant(user, app):
        raise WorkflowError("无权修改该申请")
    if app.status != A.draft:
        raise WorkflowError(f"申请状态为「{app.status.label}」，不能修改")


def _refuse_if_open(session: Session, certificate: Certificate) -> None:
    other = open_application_of(session, certificate)
    if other is not None:
        raise WorkflowError(f"证书{certificate.number}已有未办结的{other}（{other.status.label}），不能再次申请")


def attach_images(session: Session, user, app: CertificateApplication, files) -> None:
    """单位出具的纸质申请表: 1–5 jpg/png images of at most 200 KB, judged by content."""

    _ensure_draft(user, app)
    have = image_count(session, app)
    files = [(n, d) for n, d in files if n or d]
    if have + len(files) > IMAGES_MAX:
        raise WorkflowError(f"最多上传{IMAGES_MAX}张图片")
    checks = check_images(files, min_count=1, max_count=IMAGES_MAX - have)
    store(session, files, checks, owner_type="application", owner_id=app.id, user_id=user.id)
    session.flush()


# -- a certificate's 业务日志 ------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryEntry:
    """One line of a certificate's 业务日志, as the transition-log table shows it."""

    created_at: datetime
    label: str
    transition: str
    from_state: str
    to_state: str
    actor: object
    organization: object
    reason: str | None


def describe(app: CertificateApplication) -> str:
    """What an application asks for, in a few words: 姓名变更：王旅一 → 王旅壹, or its 申请说明."""
    if app.kind == K.change:
        old_new = {ChangeField.name: (app.old_name, app.new_name),
                   ChangeField.id_number: (app.old_id_number, app.new_id_number),
                   ChangeField.employer: (app.old_employer_name, app.new_employer_name)}
        return "；".join(f"{f.label}：{old_new[f][0] or '-'} → {old_new[f][1] or '-'}" for f in app.fields)
    return app.explanation or ""


def held_applications(session: Session, certificate_id: int) -> list[int]:
    """The applications that held the certificate or issued it (a 补办's new one): two index lookups."""
    return list(session.scalars(select(ApplicationItem.application_id).distinct().where(
        or_(ApplicationItem.certificate_id == certificate_id, ApplicationItem.new_certificate_id == certificate_id))))


def certificate_history(session: Session, user, certificate: Certificate) -> list[HistoryEntry]:
    """业务日志 (issue 17): the certificate's own transitions and every review step of every
    application that held it (filed, reviewed, approved or rejected: who, when, why), oldest
    first — one query, whatever the number of applications."""
    held = held_applications(session, certificate.id)
    stmt = (select(TransitionLog, CertificateApplication)
            .outerjoin(CertificateApplication, and_(TransitionLog.object_type == BUSINESS.object_type,
                                                    CertificateApplication.id == TransitionLog.object_id))
            .options(joinedload(TransitionLog.actor), joinedload(TransitionLog.organization))
            .where(certificate_history_clause(user, certificate.id, held))
            .order_by(TransitionLog.id))
    entries = []
    for log, app in session.execute(stmt).all():
        label = log.label
        if app is not None:
            label = f"{app}：{log.label}"
            if log.transition == "submit" and describe(app):
                label += f"（{describe(app)}）"
        entries.append(HistoryEntry(log.created_at, label, log.transition, log.from_state, log.to_state,
                                    log.actor, log.organization, log.reason))
    return entries


# -- what the applicant's screens offer (the rules above, asked before a form is opened) -------
def names_free_employer(user) -> bool:
    """An issuing institution may type 现工作单位 as free text; everyone else picks a registered
    enterprise, whose city reviews the change."""
    org = user.organization
    return org is not None and org.is_issuer


def is_receiving_enterprise(org: Organization) -> bool:
    return org.kind == OrgKind.enterprise and org.status == OrgStatus.active


def receiving_enterprises(session: Session) -> list[Organization]:
    """接收企业's choices: the registered enterprises, by name."""
    return list(session.scalars(select(Organization).where(
        Organization.kind == OrgKind.enterprise, Organization.status == OrgStatus.active)
        .order_by(Organization.name)))


def draft_refusal(user, app: CertificateApplication) -> str | None:
    """Why ``user`` may not change ``app`` now (无权修改该申请, 申请状态为…), or None: the draft's
    pages offer their forms only when this is None."""
    try:
        _ensure_draft(user, app)
    except WorkflowError as exc:
        return exc.message
    return None


def submit_new(session: Session, user, app: CertificateApplication, files) -> None:
    """A new 变更 / 注销 with its 纸质申请表 images, 提交申请 at once (申请业务's forms)."""
    attach_images(session, user, app, files)
    BUSINESS.fire(session, user, app, "submit")
