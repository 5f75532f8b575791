"""Enterprise and individual accounts (SPEC §5.3) and enterprise information changes (§5.4).

- ``register_enterprise`` / ``register_individual``: the public 企业注册 / 个人注册 pages. Every
  field is checked and every error returned at once (``FormErrors``); nothing is stored
  unless all of it is right. The account waits in ``pending`` for the city authority.
- ``ACCOUNT``: the authority's 审核通过 / 审核不通过 of such an account.
- ``update_enterprise``: 企业信息's direct edits; ``start_change`` and ``ENTERPRISE_CHANGE``:
  企业名称变更 (authority → province) and 所属地市变更 (调出市 → 调入市).
- ``create_user`` / ``update_user`` / ``remove_user`` / reset: 人员管理, the enterprise
  administrator's second-level users (002 §3.1.5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from models import (
    AccountKind,
    AccountRequest,
    AccountStatus,
    Attachment,
    AttachmentKind,
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
    Role,
    User,
)
from models.base import utcnow
from models.user import Permission, role_preset
from workflows import FormErrors, WorkflowError, insert_or_refuse, sessions
from workflows.attachments import check_images
from workflows.audit import Kind, log
from workflows.auth import PHONE_TAKEN, binding_phone, phone_taken
from workflows.engine import Context, Guard, Transition, Workflow, actor
from workflows.organizations import province_id
from workflows.validators import (
    check_credit_code,
    check_password_policy,
    check_phone,
    check_postcode,
    parse_id_number,
)

P = Permission
S = EnterpriseChangeStatus
LICENCE = "营业执照"
QUALIFICATION = "资质证书"
LICENCE_MAX = 3          # 营业执照正本、副本 …
QUALIFICATION_MAX = 3
# Registrations "in progress" (SPEC §5.4: no name or city change while any is)
REGISTRATIONS_IN_PROGRESS = (RegistrationStatus.province_unaccepted, RegistrationStatus.province_accepted,
                             RegistrationStatus.ministry_unaccepted, RegistrationStatus.ministry_accepted)


@dataclass
class _Checker:
    errors: dict[str, str] = field(default_factory=dict)

    def required(self, values: dict, name: str, label: str, max_len: int) -> str:
        value = (values.get(name) or "").strip()
        if not value:
            self.errors[name] = f"请填写{label}"
        elif len(value) > max_len:
            self.errors[name] = f"{label}不能超过{max_len}个字符"
        return value

    def optional(self, values: dict, name: str, label: str, max_len: int) -> str | None:
        value = (values.get(name) or "").strip()
        if len(value) > max_len:
            self.errors[name] = f"{label}不能超过{max_len}个字符"
        return value or None

    def run(self, name: str, fn, *args):
        try:
            return fn(*args)
        except ValueError as exc:
            self.errors[name] = str(exc)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise FormErrors(self.errors)


def city_authorities(session: Session) -> list[Organization]:
    """The 设区市 authorities a registration or a city change may choose, by region code."""
    return list(session.scalars(select(Organization).where(
        Organization.kind == OrgKind.authority, Organization.status == OrgStatus.active)
        .order_by(Organization.region_code)))


def _authority_for_region(session: Session, region_code: str | None) -> Organization | None:
    if not region_code:
        return None
    return session.scalars(select(Organization).where(
        Organization.kind == OrgKind.authority, Organization.region_code == region_code,
        Organization.status == OrgStatus.active)).first()


def _check_username(session: Session, chk: _Checker, values: dict, *, besides: User | None = None) -> str:
    from workflows.users import check_username

    return check_username(session, chk.errors, values, besides=besides) or ""


def _check_password(chk: _Checker, values: dict) -> str:
    password = values.get("password") or ""
    if password != (values.get("password2") or ""):
        chk.errors["password2"] = "两次输入的密码不一致"
    chk.run("password", check_password_policy, password)
    return password


def _phone_race() -> FormErrors:
    """A concurrent registration bound the phone first (the unique index decided)."""
    return FormErrors({"phone": PHONE_TAKEN})


def _bound_phone(session: Session, chk: _Checker, values: dict, besides: User | None = None) -> str | None:
    """手机号绑定's phone: required (an empty one is not a badly formatted one), and bound to no other
    active account (issue 17; ``besides``: the rejected registration's own account, registering again)."""
    if not (values.get("phone") or "").strip():
        chk.errors["phone"] = "请填写手机号码"
        return None
    phone = chk.run("phone", check_phone, values.get("phone"))
    if phone and phone_taken(session, phone, besides=besides):
        chk.errors["phone"] = PHONE_TAKEN
    return phone


def _check_sms(session: Session, chk: _Checker, phone: str | None, code: str, now: datetime,
               max_attempts: int = 5) -> None:
    """手机号绑定: the code sent to the phone being bound (a code tied to no user)."""
    from workflows.auth import Purpose, verify_code

    if not phone or "phone" in chk.errors:
        return
    if not (code or "").strip():
        chk.errors["sms_code"] = "请填写短信验证码"
        return
    if chk.errors:
        return  # a typo elsewhere must not use up the code: it is checked last
    try:
        verify_code(session, None, Purpose.REGISTER, code, now=now, phone=phone, max_attempts=max_attempts)
    except WorkflowError as exc:
        chk.errors["sms_code"] = exc.message


def _store_images(session: Session, owner_type: str, owner_id: int, files, purpose: str, user_id: int | None,
                  checks) -> None:
    for (_, data), check in zip(files, checks, strict=True):
        session.add(Attachment(owner_type=owner_type, owner_id=owner_id, kind=AttachmentKind.image,
                               purpose=purpose, filename=check.safe_filename, content_type=check.content_type,
                               size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                               uploaded_by_id=user_id))


def _nonempty(files) -> list:
    return [(n, d) for n, d in (files or []) if n or d]


def _images_or_error(chk: _Checker, name: str, files, *, required: bool, max_count: int, label: str):
    files = _nonempty(files)
    if not files:
        if required:
            chk.errors[name] = f"请上传{label}"
        return files, []
    try:
        return files, check_images(files, min_count=1, max_count=max_count)
    except WorkflowError as exc:
        chk.errors[name] = f"{label}：{exc.message}"
        return files, []


# -- 企业注册 / 个人注册 -------------------------------------------------------------------------
def _rejected_request(session: Session, *, organization: Organization | None = None,
                      user: User | None = None) -> AccountRequest | None:
    """The latest request of a registration the authority rejected: submitting again reuses its
    organization and account (a rejected registration must not hold the credit code, the ID
    number or the login name for ever — 「…请重新上传后再注册」)."""
    stmt = select(AccountRequest).order_by(AccountRequest.id.desc()).limit(1)
    stmt = stmt.where(AccountRequest.organization_id == organization.id) if organization is not None else \
        stmt.where(AccountRequest.user_id == user.id)
    latest = session.scalars(stmt).first()
    return latest if latest is not None and latest.status == AccountStatus.rejected else None


def register_enterprise(session: Session, values: dict, licence_files, qualification_files, *,
                        now: datetime, ip: str | None = None, max_attempts: int = 5) -> AccountRequest:
    """企业注册 (002 §3.1.1: 基本信息 → 证明材料上传 → 设置企业管理员 → 手机号绑定).

    A credit code whose registration was rejected registers again: the same organization and
    administrator account, updated, with a new request for the authority."""
    from workflows.auth import hash_password

    chk = _Checker()
    # 1 基本信息
    name = chk.required(values, "name", "企业名称", 200)
    credit_code = chk.run("credit_code", check_credit_code, values.get("credit_code"))
    existing = session.scalars(select(Organization).where(Organization.credit_code == credit_code)).first() \
        if credit_code else None
    previous = _rejected_request(session, organization=existing) if existing is not None else None
    if existing is not None and previous is None:
        chk.errors["credit_code"] = "该统一社会信用代码已经注册，禁止重复注册，请使用已注册的用户名登录"
    same_name = select(Organization.id).where(Organization.name == name,
                                              Organization.kind.in_((OrgKind.enterprise, OrgKind.school)))
    if previous is not None:
        same_name = same_name.where(Organization.id != existing.id)
    if name and "name" not in chk.errors and session.scalar(same_name):
        chk.errors["name"] = "该企业名称已经注册，禁止重复注册"
    authority = _authority_for_region(session, values.get("region_code"))
    if authority is None:
        chk.errors["region_code"] = "请选择所属地市"
    address = chk.required(values, "address", "通讯地址", 255)
    postcode = chk.run("postcode", check_postcode, (values.get("postcode") or "").strip() or None)
    contact = chk.required(values, "contact", "联系人", 50)
    contact_phone = chk.required(values, "contact_phone", "联系电话", 30)
    qualification_no = chk.optional(values, "qualification_no", "资质证书编号", 50)
    # 2 证明材料上传
    licences, licence_checks = _images_or_error(chk, "licence", licence_files, required=True,
                                                max_count=LICENCE_MAX, label=LICENCE)
    qualifications, qualification_checks = _images_or_error(
        chk, "qualification", qualification_files, required=False, max_count=QUALIFICATION_MAX, label=QUALIFICATION)
    # 3 设置企业管理员
    admin_name = chk.required(values, "admin_name", "管理员姓名", 50)
    username = _check_username(session, chk, values, besides=previous.user if previous else None)
    password = _check_password(chk, values)
    # 4 手机号绑定
    phone = _bound_phone(session, chk, values, besides=previous.user if previous else None)
    _check_sms(session, chk, phone, values.get("sms_code"), now, max_attempts)
    chk.raise_if_any()

    if previous is not None:
        return _register_again(session, previous, authority, dict(
            name=name, contact=contact, phone=contact_phone, address=address, postcode=postcode,
            qualification_no=qualification_no), admin_name, username, hash_password(password), phone,
            [(licences, LICENCE, licence_checks), (qualifications, QUALIFICATION, qualification_checks)], ip)
    taken = FormErrors({"credit_code": "该统一社会信用代码或登录用户名已经注册，禁止重复注册"})
    with insert_or_refuse(session, taken):
        org = Organization(code=f"E{credit_code}", name=name, kind=OrgKind.enterprise, parent=authority,
                           region_code=authority.region_code, status=OrgStatus.pending, contact=contact,
                           phone=contact_phone, address=address, postcode=postcode, credit_code=credit_code,
                           qualification_no=qualification_no)
        session.add(org)
        session.flush()
        org.refresh_path()
        user = User(username=username, password_hash=hash_password(password), name=admin_name, phone=phone,
                    organization=org, role=Role.admin, account_status=AccountStatus.pending)
        user.set_permissions(role_preset(OrgKind.enterprise, Role.admin))
        with binding_phone(session, _phone_race()):
            session.add(user)
            session.flush()
    _store_images(session, "organization", org.id, licences, LICENCE, user.id, licence_checks)
    _store_images(session, "organization", org.id, qualifications, QUALIFICATION, user.id, qualification_checks)
    request = AccountRequest(kind=AccountKind.enterprise, organization=org, user=user, authority=authority)
    session.add(request)
    log(session, user, Kind.EDIT, f"企业注册：{name}（{credit_code}），待{authority.name}审核", obj=org, ip=ip)
    session.flush()
    return request


def _register_again(session: Session, previous: AccountRequest, authority: Organization, fields: dict,
                    admin_name: str, username: str, password_hash: str, phone: str, images, ip) -> AccountRequest:
    """A rejected enterprise registers again: its record and administrator updated, the rejected
    submission's certificates replaced by the new ones, a new request for the authority."""
    org, user = previous.organization, previous.user
    before = {k: getattr(org, k) for k in fields}
    for key, value in fields.items():
        setattr(org, key, value)
    if org.parent_id != authority.id:
        _move_city(org, authority)
    org.status = OrgStatus.pending
    with binding_phone(session, _phone_race()):  # the rejected account holds its phone again
        user.name, user.username, user.password_hash, user.phone = admin_name, username, password_hash, phone
        user.account_status = AccountStatus.pending
        session.flush()
    for old in session.scalars(select(Attachment).where(Attachment.owner_type == "organization",
                                                        Attachment.owner_id == org.id,
                                                        Attachment.purpose.in_((LICENCE, QUALIFICATION)))):
        session.delete(old)
    for files, purpose, checks in images:
        _store_images(session, "organization", org.id, files, purpose, user.id, checks)
    request = AccountRequest(kind=AccountKind.enterprise, organization=org, user=user, authority=authority)
    session.add(request)
    log(session, user, Kind.EDIT, f"企业重新注册：{org.name}（{org.credit_code}），待{authority.name}审核", obj=org,
        ip=ip, detail={"before": before, "rejected_request": previous.id})
    session.flush()
    return request


def register_individual(session: Session, values: dict, *, now: datetime, ip: str | None = None,
                        max_attempts: int = 5) -> AccountRequest:
    """个人注册 (001): 姓名, 身份证号, 所在地市, 登录用户名, 密码, 手机号 + 短信验证码.

    An ID number whose registration was rejected registers again on the same account."""
    from workflows.auth import hash_password

    chk = _Checker()
    name = chk.required(values, "name", "姓名", 50)
    info = chk.run("id_number", parse_id_number, values.get("id_number"))
    person = previous = None
    if info is not None:
        person = session.scalars(select(Person).where(Person.id_number == info.number)).first()
        account = session.scalars(select(User).where(User.person_id == person.id)).first() if person else None
        previous = _rejected_request(session, user=account) if account is not None else None
        if account is not None and previous is None:
            chk.errors["id_number"] = "该身份证号已经注册，禁止重复注册，请使用已注册的用户名登录"
        elif person is not None and name and person.name != name:
            chk.errors["name"] = "姓名与已登记的身份证号不一致，请核对或联系主管部门"
    authority = _authority_for_region(session, values.get("region_code"))
    if authority is None:
        chk.errors["region_code"] = "请选择所在地市"
    username = _check_username(session, chk, values, besides=previous.user if previous else None)
    password = _check_password(chk, values)
    phone = _bound_phone(session, chk, values, besides=previous.user if previous else None)
    _check_sms(session, chk, phone, values.get("sms_code"), now, max_attempts)
    chk.raise_if_any()

    if previous is not None:
        user = previous.user
        with binding_phone(session, _phone_race()):  # the rejected account holds its phone again
            user.username, user.password_hash, user.phone = username, hash_password(password), phone
            user.account_status = AccountStatus.pending
            session.flush()
        request = AccountRequest(kind=AccountKind.individual, user=user, person=person, authority=authority)
        session.add(request)
        log(session, user, Kind.EDIT, f"个人重新注册：{name}，待{authority.name}审核", obj=user, ip=ip,
            detail={"rejected_request": previous.id})
        session.flush()
        return request
    with insert_or_refuse(session, FormErrors({"id_number": "该身份证号或登录用户名已经注册，禁止重复注册"})):
        if person is None:
            person = Person(name=name, id_number=info.number, birth_date=info.birth_date, gender=info.gender,
                            phone=phone)
            session.add(person)
            session.flush()
        user = User(username=username, password_hash=hash_password(password), name=name, phone=phone,
                    person=person, role=Role.individual, account_status=AccountStatus.pending)
        with binding_phone(session, _phone_race()):
            session.add(user)
            session.flush()
    request = AccountRequest(kind=AccountKind.individual, user=user, person=person, authority=authority)
    session.add(request)
    log(session, user, Kind.EDIT, f"个人注册：{name}，待{authority.name}审核", obj=user, ip=ip)
    session.flush()
    return request


# -- 注册审核 (SPEC §5.3) ----------------------------------------------------------------------
def _reviewing_authority(user, request: AccountRequest) -> bool:
    return request.authority_id == user.organization_id


def _decide_account(ctx: Context) -> None:
    request, active = ctx.obj, ctx.obj.status == AccountStatus.active
    request.reviewed_at = utcnow()
    request.reject_reason = None if active else ctx.reason
    if request.organization is not None:
        request.organization.status = OrgStatus.active if active else OrgStatus.rejected
    # the account follows its registration, an enterprise's administrator too: a rejected one no longer
    # holds its phone (models.user.ACTIVE_PHONE_WHERE) until it registers again
    request.user.account_status = request.status


ACCOUNT = Workflow(
    AccountRequest,
    "status",
    [
        Transition("approve", "审核通过", (AccountStatus.pending,), AccountStatus.active,
                   who=actor(OrgKind.authority, relation=_reviewing_authority), permission=P.enterprise_manage,
                   effects=(_decide_account,), notify_users=lambda ctx: [ctx.obj.user_id]),
        Transition("reject", "审核不通过", (AccountStatus.pending,), AccountStatus.rejected,
                   who=actor(OrgKind.authority, relation=_reviewing_authority), permission=P.enterprise_manage,
                   needs_reason=True, reason_label="审核不通过原因", danger=True, effects=(_decide_account,),
                   notify_users=lambda ctx: [ctx.obj.user_id]),
    ],
    object_type="account",
    title=str,
)


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
    chk = _Checker()
    new = {
        "address": chk.required(values, "address", "通讯地址", 255),
        "postcode": chk.run("postcode", check_postcode, (values.get("postcode") or "").strip() or None),
        "contact": chk.required(values, "contact", "联系人", 50),
        "phone": chk.required(values, "phone", "联系电话", 30),
        "qualification_no": chk.optional(values, "qualification_no", "资质证书编号", 50),
    }
    if "name" in allowed:
        new["name"] = chk.required(values, "name", "企业名称", 200)
        if new["name"] and new["name"] != org.name and session.scalar(select(Organization.id).where(
                Organization.name == new["name"], Organization.id != org.id,
                Organization.kind.in_((OrgKind.enterprise, OrgKind.school)))):
            chk.errors["name"] = "该企业名称已被其他企业使用"
        authority = _authority_for_region(session, values.get("region_code"))
        if authority is None:
            chk.errors["region_code"] = "请选择所属地市"
        else:
            new["region_code"] = authority.region_code
    chk.raise_if_any()
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
                _move_city(org, _authority_for_region(session, value))
            else:
                setattr(org, key, value)
    if changed:
        log(session, user, Kind.EDIT, "修改企业信息：" + "、".join(FIELD_LABELS[k] for k in changed), obj=org,
            ip=ip, detail={k: {"before": b, "after": a} for k, (b, a) in changed.items()})
    session.flush()
    return [FIELD_LABELS[k] for k in changed]


def _current(org: Organization, key: str):
    return getattr(org, key)


def _move_city(org: Organization, authority: Organization) -> None:
    org.parent = authority
    org.region_code = authority.region_code
    org.refresh_path()


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
        _authority_for_region(session, org.region_code)
    change = EnterpriseChange(enterprise_id=org.id, old_name=org.name, old_region_code=org.region_code,
                              from_authority_id=current.id, applicant_user_id=user.id,
                              explanation=(values.get("explanation") or "").strip()[:500] or None)
    if new_name:
        if len(new_name) > 200:
            raise WorkflowError("企业名称不能超过200个字符")
        if new_name == org.name:
            raise WorkflowError("想要变更的名称与现在企业名称相同")
        if session.scalar(select(Organization.id).where(Organization.name == new_name, Organization.id != org.id,
                                                        Organization.kind.in_((OrgKind.enterprise, OrgKind.school)))):
            raise WorkflowError("该企业名称已被其他企业使用")
        change.kind, change.new_name, change.status = EnterpriseChangeKind.name, new_name, S.pending_authority
    else:
        target = _authority_for_region(session, new_region)
        if target is None:
            raise WorkflowError("请选择想要变更的地市")
        if target.region_code == org.region_code:
            raise WorkflowError("想要变更的地市与现在所属地市相同")
        change.kind, change.to_authority_id, change.new_region_code = EnterpriseChangeKind.city, target.id, \
            target.region_code
        change.status = S.pending_out
    with insert_or_refuse(session, WorkflowError("已有变更申请正在审查，信息审查中不允许再次提交")):
        session.add(change)
        session.flush()
    log(session, user, Kind.EDIT, f"提交{change.kind.label}申请：{change.content}", obj=change)
    _notify_reviewers(session, change)
    return change


def _notify_reviewers(session: Session, change: EnterpriseChange) -> None:
    from models import Message

    for user_id in session.scalars(select(User.id).where(User.organization_id == change.from_authority_id,
                                                         User.is_enabled.is_(True))):
        session.add(Message(user_id=user_id, title=f"{change}：待审核", body=change.content,
                            object_type="enterprise_change", object_id=change.id))


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
    taken = ctx.session.scalar(select(Organization.id).where(
        Organization.name == change.new_name, Organization.id != change.enterprise_id,
        Organization.kind.in_((OrgKind.enterprise, OrgKind.school))))
    return "该企业名称已被其他企业使用" if taken else True


def _apply_change(ctx: Context) -> None:
    change, org = ctx.obj, ctx.obj.enterprise
    change.reviewed_at = utcnow()
    if change.kind == EnterpriseChangeKind.name:
        org.name = change.new_name  # persons show employer.name: every certificate shows it at once
    else:
        _move_city(org, change.to_authority)


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


# -- 人员管理 (002 §3.1.5) ------------------------------------------------------------------------
def _check_manager(user, org: Organization | None) -> None:
    if org is None or user.organization_id != org.id or user.role != Role.admin or not user.has(P.user_manage):
        raise WorkflowError("只有企业注册时指定的管理员可以管理二级用户")


def create_user(session: Session, admin, values: dict, *, ip: str | None = None) -> User:
    """A second-level user (经办人) of the administrator's own organization, password typed (002)."""
    from workflows import users

    _check_manager(admin, admin.organization)
    return users.create_user(session, admin, admin.organization, values, password_typed=True, role=Role.operator,
                             ip=ip)[0]


def _check_target(admin, target: User) -> None:
    _check_manager(admin, admin.organization)
    if target.organization_id != admin.organization_id or not target.is_enabled:
        raise WorkflowError("用户不存在")  # another organization's user, or one already 删除
    if target.id == admin.id:
        raise WorkflowError("不能在人员管理中修改或删除自己，请使用「修改密码」")


def update_user(session: Session, admin, target: User, values: dict, *, ip: str | None = None) -> None:
    from workflows import users

    _check_target(admin, target)
    users.update_user(session, admin, target, values, with_role=False, ip=ip)


def reset_user_password(session: Session, admin, target: User, *, ip: str | None = None) -> str:
    """修改并重置密码: a one-time password, shown once; changed at the next sign-in."""
    from workflows import users

    _check_target(admin, target)
    return users.reset_password(session, admin, target, ip=ip)


def remove_user(session: Session, admin, target: User, *, ip: str | None = None) -> None:
    """删除: the account stops signing in at once; the row stays for the operation log."""
    _check_target(admin, target)
    target.is_enabled = False
    target.permission_rows.clear()
    sessions.end_all(session, sessions.Reason.DISABLED, user_ids=[target.id])
    log(session, admin, Kind.EDIT, f"删除用户 {target.username}（{target.name}）", obj=target, ip=ip)
    session.flush()
