"""Enterprise and individual accounts (SPEC §5.3): 企业注册 / 个人注册 and 注册审核.

- ``register_enterprise`` / ``register_individual``: the public 企业注册 / 个人注册 pages. Every
  field is checked and every error returned at once (``FormErrors``); nothing is stored
  unless all of it is right. The account waits in ``pending`` for the city authority; a
  registration the authority rejected registers again on the same organization and account.
- ``ACCOUNT``: the authority's 审核通过 / 审核不通过 of such an account; an enterprise's own
  state follows it (``workflows.organizations.ORGANIZATION``'s 注册审核 transitions).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    AccountKind,
    AccountRequest,
    AccountStatus,
    Attachment,
    Organization,
    OrgKind,
    OrgStatus,
    Person,
    Role,
    User,
)
from models.base import utcnow
from models.user import Permission, role_preset
from workflows import FormErrors, WorkflowError, insert_or_refuse
from workflows.attachments import check_images, store
from workflows.audit import Kind, log
from workflows.auth import Purpose, binding_phone, hash_password, verify_code
from workflows.engine import Context, Transition, Workflow, actor
from workflows.enterprise import authority_for_region, move_city, name_taken
from workflows.organizations import ORGANIZATION
from workflows.validators import FormFields, check_credit_code, parse_id_number, phone_race

P = Permission
LICENCE = "营业执照"
QUALIFICATION = "资质证书"
LICENCE_MAX = 3          # 营业执照正本、副本 …
QUALIFICATION_MAX = 3
PHONE_MISSING = "请填写手机号码"


def _check_sms(session: Session, form: FormFields, phone: str | None, now: datetime, max_attempts: int = 5) -> None:
    """手机号绑定: the code sent to the phone being bound (a code tied to no user)."""
    code = form.values.get("sms_code")
    if not phone or "phone" in form.errors:
        return
    if not (code or "").strip():
        form.errors["sms_code"] = "请填写短信验证码"
        return
    if form.errors:
        return  # a typo elsewhere must not use up the code: it is checked last
    try:
        verify_code(session, None, Purpose.REGISTER, code, now=now, phone=phone, max_attempts=max_attempts)
    except WorkflowError as exc:
        form.errors["sms_code"] = exc.message


def _store_images(session: Session, owner_type: str, owner_id: int, files, purpose: str, user_id: int | None,
                  checks) -> None:
    store(session, files, checks, owner_type=owner_type, owner_id=owner_id, user_id=user_id, purpose=purpose)


def _nonempty(files) -> list:
    return [(n, d) for n, d in (files or []) if n or d]


def _images_or_error(form: FormFields, name: str, files, *, required: bool, max_count: int, label: str):
    files = _nonempty(files)
    if not files:
        if required:
            form.errors[name] = f"请上传{label}"
        return files, []
    try:
        return files, check_images(files, min_count=1, max_count=max_count)
    except WorkflowError as exc:
        form.errors[name] = f"{label}：{exc.message}"
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


def _account_fields(session: Session, form: FormFields, previous: AccountRequest | None, now: datetime,
                    max_attempts: int) -> tuple[str, str, str]:
    """Both registrations' last steps — 登录用户名, 密码, then 手机号绑定 with its 短信验证码 (a rejected
    registration's account may keep its own) — and every error of the form raised at once."""
    besides = previous.user if previous else None
    username = form.username(session, besides=besides)
    password = form.password()
    phone = form.phone(session, missing=PHONE_MISSING, besides=besides)
    _check_sms(session, form, phone, now, max_attempts)
    form.raise_if_any()
    return username, password, phone


def register_enterprise(session: Session, values: dict, licence_files, qualification_files, *,
                        now: datetime, ip: str | None = None, max_attempts: int = 5) -> AccountRequest:
    """企业注册 (002 §3.1.1: 基本信息 → 证明材料上传 → 设置企业管理员 → 手机号绑定).

    A credit code whose registration was rejected registers again: the same organization and
    administrator account, updated, with a new request for the authority."""
    form = FormFields(values)
    # 1 基本信息
    name = form.text("name", "企业名称", 200)
    credit_code = form.check("credit_code", check_credit_code, values.get("credit_code"))
    existing = session.scalars(select(Organization).where(Organization.credit_code == credit_code)).first() \
        if credit_code else None
    previous = _rejected_request(session, organization=existing) if existing is not None else None
    if existing is not None and previous is None:
        form.errors["credit_code"] = "该统一社会信用代码已经注册，禁止重复注册，请使用已注册的用户名登录"
    if name and "name" not in form.errors and name_taken(session, name, besides=existing if previous else None):
        form.errors["name"] = "该企业名称已经注册，禁止重复注册"
    authority = authority_for_region(session, values.get("region_code"))
    if authority is None:
        form.errors["region_code"] = "请选择所属地市"
    address = form.text("address", "通讯地址", 255)
    postcode = form.postcode()
    contact = form.text("contact", "联系人", 50)
    contact_phone = form.text("contact_phone", "联系电话", 30)
    qualification_no = form.text("qualification_no", "资质证书编号", 50, required=False)
    # 2 证明材料上传
    licences, licence_checks = _images_or_error(form, "licence", licence_files, required=True,
                                                max_count=LICENCE_MAX, label=LICENCE)
    qualifications, qualification_checks = _images_or_error(
        form, "qualification", qualification_files, required=False, max_count=QUALIFICATION_MAX, label=QUALIFICATION)
    # 3 设置企业管理员
    admin_name = form.text("admin_name", "管理员姓名", 50)
    username, password, phone = _account_fields(session, form, previous, now, max_attempts)

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
        with binding_phone(session, phone_race()):
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
        move_city(org, authority)
    ORGANIZATION.fire(session, user, org, "register_again")
    with binding_phone(session, phone_race()):  # the rejected account holds its phone again
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
    form = FormFields(values)
    name = form.text("name", "姓名", 50)
    info = form.check("id_number", parse_id_number, values.get("id_number"))
    person = previous = None
    if info is not None:
        person = session.scalars(select(Person).where(Person.id_number == info.number)).first()
        account = session.scalars(select(User).where(User.person_id == person.id)).first() if person else None
        previous = _rejected_request(session, user=account) if account is not None else None
        if account is not None and previous is None:
            form.errors["id_number"] = "该身份证号已经注册，禁止重复注册，请使用已注册的用户名登录"
        elif person is not None and name and person.name != name:
            form.errors["name"] = "姓名与已登记的身份证号不一致，请核对或联系主管部门"
    authority = authority_for_region(session, values.get("region_code"))
    if authority is None:
        form.errors["region_code"] = "请选择所在地市"
    username, password, phone = _account_fields(session, form, previous, now, max_attempts)

    if previous is not None:
        user = previous.user
        with binding_phone(session, phone_race()):  # the rejected account holds its phone again
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
        with binding_phone(session, phone_race()):
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
        ORGANIZATION.fire(ctx.session, ctx.user, request.organization,
                          "register_approve" if active else "register_reject", reason=ctx.reason)
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


