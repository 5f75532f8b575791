"""Enterprise information (企业信息, SPEC §5.4): direct edits and the change applications.

- ``update_enterprise``: 企业信息's direct edits (``editable_fields``: an enterprise whose
  employees hold certificates changes its name and city only by application).
- ``start_change`` and ``ENTERPRISE_CHANGE``: 企业名称变更 (authority → province) and 所属地市变更
  (调出市 → 调入市).
- ``city_authorities``, ``authority_for_region``, ``move_city``, ``name_taken``: an enterprise's
  city and name, as 企业注册 (``workflows.accounts``) chooses them too.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from models import (
    Certificate,
    EnterpriseChange,
    EnterpriseChangeKind,
    EnterpriseChangeStatus,
    Organization,
    OrgKind,
    OrgStatus,
    Person,
    Registration,
    RegistrationStatus,
)
from models.base import utcnow
from models.user import Permission
from workflows import WorkflowError, insert_or_refuse, messages
from workflows.audit import Kind, log
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.organizations import province_id
from workflows.validators import FormFields

P = Permission
S = EnterpriseChangeStatus

# Registrations "in progress" (SPEC §5.4: no name or city change while any is)
REGISTRATIONS_IN_PROGRESS = (RegistrationStatus.province_unaccepted, RegistrationStatus.province_accepted,
                             RegistrationStatus.ministry_unaccepted, RegistrationStatus.ministry_accepted)


def city_authorities(session: Session) -> list[Organization]:
    """The 设区市 authorities a registration or a city change may choose, by region code."""
    return list(session.scalars(select(Organization).where(
        Organization.kind == OrgKind.authority, Organization.status == OrgStatus.active)
        .order_by(Organization.region_code)))


def authority_for_region(session: Session, region_code: str | None) -> Organization | None:
    if not region_code:
        return None
    return session.scalars(select(Organization).where(
        Organization.kind == OrgKind.authority, Organization.region_code == region_code,
        Organization.status == OrgStatus.active)).first()


def move_city(org: Organization, authority: Organization) -> None:
    org.parent = authority
    org.region_code = authority.region_code
    org.refresh_path()


def name_taken(session: Session, name: str, *, besides: Organization | None = None) -> bool:
    """Another enterprise or school has this name (one name, one enterprise: certificates show it)."""
    stmt = select(Organization.id).where(Organization.name == name,
                                         Organization.kind.in_((OrgKind.enterprise, OrgKind.school)))
    if besides is not None:
        stmt = stmt.where(Organization.id != besides.id)
    return session.scalar(stmt.limit(1)) is not None


# -- 企业信息 (SPEC §5.4) ----------------------------------------------------------------------
DIRECT_FIELDS = ("address", "postcode", "contact", "phone")  # always edited directly
FIELD_LABELS = {"name": "企业名称", "region_code": "所属地市", "address": "通讯地址", "postcode": "邮政编码",
                "contact": "联系人", "phone": "联系电话", "qualification_no": "资质证书编号"}


def has_certificates(session: Session, org: Organization) -> bool:
    """000 §二(一).2–3: an enterprise whose employees hold certificates changes its name and
    city only by application (the certificates show them)."""
    return bool(session.scalar(select(exists().where(
        Certificate.person_id == Person.id, Person.employer_id == org.id))))


def _is_enterprise_admin(user, org: Organization) -> bool:
    return (user.organization_id == org.id and org.kind == OrgKind.enterprise
            and user.has(P.enterprise_manage))


def editable_fields(session: Session, org: Organization) -> tuple[str, ...]:
    if has_certificates(session, org):
        return DIRECT_FIELDS + ("qualification_no",)
    return ("name", "region_code") + DIRECT_FIELDS + ("qualification_no",)


def update_enterprise(session: Session, user, org: Organization, values: dict, *, ip: str | None = None) -> list[str]:
    """Direct edits of 企业信息; returns the labels of what changed (for the flash and the log)."""
    if not _is_enterprise_admin(user, org):
        raise WorkflowError("无权修改企业信息")
    allowed = editable_fields(session, org)
    sent = {k for k in FIELD_LABELS if k in values}
    refused = sorted(sent - set(allowed))
    if refused and any((values.get(k) or "").strip() != (_current(org, k) or "") for k in refused):
        raise WorkflowError("企业已有证书信息，企业名称和所属地市须提交变更申请")
    form = FormFields(values)
    new = {
        "address": form.text("address", "通讯地址", 255),
        "postcode": form.postcode(),
        "contact": form.text("contact", "联系人", 50),
        "phone": form.text("phone", "联系电话", 30),
        "qualification_no": form.text("qualification_no", "资质证书编号", 50, required=False),
    }
    if "name" in allowed:
        new["name"] = form.text("name", "企业名称", 200)
        if new["name"] and new["name"] != org.name and name_taken(session, new["name"], besides=org):
            form.errors["name"] = "该企业名称已被其他企业使用"
        authority = authority_for_region(session, values.get("region_code"))
        if authority is None:
            form.errors["region_code"] = "请选择所属地市"
        else:
            new["region_code"] = authority.region_code
    form.raise_if_any()
    if any(k in new and (_current(org, k) or None) != (new[k] or None) for k in ("name", "region_code")):
        # the same rules as a 变更申请 (SPEC §5.4): not while one is under review or registrations run
        other = open_change_of(session, org)
        if other is not None:
            raise WorkflowError(f"已有{other.kind.label}申请正在审查（{other.status.label}），"
                                "信息审查中不允许修改企业名称或所属地市")
        busy = registrations_in_progress(session, org)
        if busy:
            raise WorkflowError(f"该单位名下有{busy}条正在办理的注册申报业务，待全部办结后再修改企业名称或所属地市")
    changed = {}
    for key, value in new.items():
        if (_current(org, key) or None) != (value or None):
            changed[key] = (_current(org, key), value)
            if key == "region_code":
                move_city(org, authority_for_region(session, value))
            else:
                setattr(org, key, value)
    if changed:
        log(session, user, Kind.EDIT, "修改企业信息：" + "、".join(FIELD_LABELS[k] for k in changed), obj=org,
            ip=ip, detail={k: {"before": b, "after": a} for k, (b, a) in changed.items()})
    session.flush()
    return [FIELD_LABELS[k] for k in changed]


def _current(org: Organization, key: str):
    return getattr(org, key)


def open_change_of(session: Session, org: Organization) -> EnterpriseChange | None:
    return session.scalars(select(EnterpriseChange).where(
        EnterpriseChange.enterprise_id == org.id,
        EnterpriseChange.status.notin_((S.approved, S.rejected)))).first()


def registrations_in_progress(session: Session, org: Organization) -> int:
    return session.scalar(select(func.count()).select_from(Registration).where(
        Registration.enterprise_id == org.id, Registration.status.in_(REGISTRATIONS_IN_PROGRESS))) or 0


def start_change(session: Session, user, org: Organization, values: dict) -> EnterpriseChange:
    """变更申请: 想要变更的名称 or 想要变更的地市 — exactly one (000 §二(一).3)."""
    if not _is_enterprise_admin(user, org):
        raise WorkflowError("无权提交企业信息变更申请")
    new_name = (values.get("new_name") or "").strip()
    new_region = (values.get("new_region_code") or "").strip()
    if new_name and new_region:
        raise WorkflowError("每次只能变更企业名称或所属地市中的一项，另一项请留空")
    if not new_name and not new_region:
        raise WorkflowError("请填写想要变更的名称，或选择想要变更的地市")
    other = open_change_of(session, org)
    if other is not None:
        raise WorkflowError(f"已有{other.kind.label}申请正在审查（{other.status.label}），信息审查中不允许再次提交")
    busy = registrations_in_progress(session, org)
    if busy:
        raise WorkflowError(f"该单位名下有{busy}条正在办理的注册申报业务，待全部办结后再申请变更")
    current = org.parent if org.parent is not None and org.parent.kind == OrgKind.authority else \
        authority_for_region(session, org.region_code)
    if new_name:
        if len(new_name) > 200:
            raise WorkflowError("企业名称不能超过200个字符")
        if new_name == org.name:
            raise WorkflowError("想要变更的名称与现在企业名称相同")
        if name_taken(session, new_name, besides=org):
            raise WorkflowError("该企业名称已被其他企业使用")
        # 企业名称变更 starts at the enterprise's authority
        what = dict(kind=EnterpriseChangeKind.name, new_name=new_name, status=S.pending_authority)
    else:
        target = authority_for_region(session, new_region)
        if target is None:
            raise WorkflowError("请选择想要变更的地市")
        if target.region_code == org.region_code:
            raise WorkflowError("想要变更的地市与现在所属地市相同")
        # 所属地市变更 starts at the city it leaves (调出市)
        what = dict(kind=EnterpriseChangeKind.city, to_authority_id=target.id, new_region_code=target.region_code,
                    status=S.pending_out)
    change = EnterpriseChange(enterprise_id=org.id, old_name=org.name, old_region_code=org.region_code,
                              from_authority_id=current.id, applicant_user_id=user.id,
                              explanation=(values.get("explanation") or "").strip()[:500] or None, **what)
    with insert_or_refuse(session, WorkflowError("已有变更申请正在审查，信息审查中不允许再次提交")):
        session.add(change)
        session.flush()
    log(session, user, Kind.EDIT, f"提交{change.kind.label}申请：{change.content}", obj=change)
    messages.send(session, title=f"{change}：待审核", body=change.content, obj=change,
                  object_type=ENTERPRISE_CHANGE.object_type, org_ids=[change.from_authority_id])
    return change


def _authority_of(attr: str):
    def relation(user, change: EnterpriseChange) -> bool:
        return getattr(change, attr) == user.organization_id

    return relation


def _no_registrations_in_progress(ctx: Context):
    busy = registrations_in_progress(ctx.session, ctx.obj.enterprise)
    return f"该单位名下有{busy}条正在办理的注册申报业务，不能变更" if busy else True


def _name_still_free(ctx: Context):
    """A name change approved weeks later must not give two enterprises one name."""
    change = ctx.obj
    if change.kind != EnterpriseChangeKind.name:
        return True
    return "该企业名称已被其他企业使用" if name_taken(ctx.session, change.new_name, besides=change.enterprise) else True


def _apply_change(ctx: Context) -> None:
    change, org = ctx.obj, ctx.obj.enterprise
    change.reviewed_at = utcnow()
    if change.kind == EnterpriseChangeKind.name:
        org.name = change.new_name  # persons show employer.name: every certificate shows it at once
    else:
        move_city(org, change.to_authority)


def _record_rejection(ctx: Context) -> None:
    ctx.obj.reviewed_at = utcnow()
    ctx.obj.reject_reason = ctx.reason


def _notify_enterprise(ctx: Context) -> Iterable[int]:
    return [ctx.obj.enterprise_id]


def _notify_next(ctx: Context) -> Iterable[int]:
    change = ctx.obj
    if change.status == S.pending_province:
        return [province_id(ctx.session), change.enterprise_id]
    if change.status == S.pending_in:
        return [change.to_authority_id, change.enterprise_id]
    return [change.enterprise_id]


_FROM = actor(OrgKind.authority, relation=_authority_of("from_authority_id"))
_TO = actor(OrgKind.authority, relation=_authority_of("to_authority_id"))
_PROVINCE = actor(OrgKind.province)
_GUARDS = (Guard(_no_registrations_in_progress), Guard(_name_still_free))

ENTERPRISE_CHANGE = Workflow(
    EnterpriseChange,
    "status",
    [
        Transition("authority_approve", "审核通过", (S.pending_authority,), S.pending_province, who=_FROM,
                   permission=P.enterprise_manage, guards=_GUARDS, notify=_notify_next),
        Transition("province_approve", "审核通过", (S.pending_province,), S.approved, who=_PROVINCE,
                   permission=P.org_manage, guards=_GUARDS, effects=(_apply_change,), notify=_notify_enterprise),
        Transition("out_approve", "审核通过(调出)", (S.pending_out,), S.pending_in, who=_FROM,
                   permission=P.enterprise_manage, guards=_GUARDS, notify=_notify_next),
        Transition("in_approve", "审核通过(调入)", (S.pending_in,), S.approved, who=_TO,
                   permission=P.enterprise_manage, guards=_GUARDS, effects=(_apply_change,),
                   notify=_notify_enterprise),
        Transition("authority_reject", "审核不通过", (S.pending_authority, S.pending_out), S.rejected, who=_FROM,
                   permission=P.enterprise_manage, needs_reason=True, reason_label="审核不通过原因", danger=True,
                   effects=(_record_rejection,), notify=_notify_enterprise),
        Transition("in_reject", "审核不通过(调入)", (S.pending_in,), S.rejected, who=_TO,
                   permission=P.enterprise_manage, needs_reason=True, reason_label="审核不通过原因", danger=True,
                   effects=(_record_rejection,), notify=_notify_enterprise),
        Transition("province_reject", "审核不通过", (S.pending_province,), S.rejected, who=_PROVINCE,
                   permission=P.org_manage, needs_reason=True, reason_label="审核不通过原因", danger=True,
                   effects=(_record_rejection,), notify=_notify_enterprise),
    ],
    object_type="enterprise_change",
    title=str,
)

