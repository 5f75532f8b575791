"""设置 for everyone (SPEC §7, 003 §五): 个人资料, 更换绑定手机, 机构资料.

No Flask here: callers pass the session, the user and what was typed; functions add rows to
the session and never commit. A refusal raises ``WorkflowError`` (``FormErrors`` for fields)
before anything is changed — except a wrong SMS code, whose attempt is recorded first, so the
caller commits on that error path too (as with every code in ``workflows.auth``).
修改密码 is ``workflows.auth.change_password``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import Organization, User
from models.org import OrgKind
from models.user import Role
from workflows import FormErrors, WorkflowError
from workflows.audit import Kind, log
from workflows.auth import Purpose, binding_phone, issue_code, verify_code
from workflows.organizations import apply_fields, read_fields
from workflows.privacy import mask_phone
from workflows.validators import PHONE_TAKEN, check_phone, phone_taken

NAME_MAX = 50
# 机构资料 an organization administrator edits here: field → (label, max length, required)
ORG_FIELDS = {
    "contact": ("联系人", 50, True),
    "phone": ("联系电话", 30, True),
    "address": ("通讯地址", 255, False),
    "postcode": ("邮政编码", 6, False),
}


# --- 个人资料 -------------------------------------------------------------------------------


def update_name(session: Session, user: User, name: str | None, *, ip: str | None = None) -> bool:
    """修改个人资料: 姓名 (required, at most 50 characters). Returns whether it changed."""
    value = (name or "").strip()
    if not value:
        raise FormErrors({"name": "请填写姓名"})
    if len(value) > NAME_MAX:
        raise FormErrors({"name": f"姓名不能超过{NAME_MAX}个字符"})
    if value == user.name:
        return False
    before = user.name
    user.name = value
    log(session, user, Kind.EDIT, "修改个人资料：姓名", obj=user, ip=ip,
        detail={"name": {"before": before, "after": value}})
    session.flush()
    return True


# --- 更换绑定手机 ---------------------------------------------------------------------------


def _new_phone(session: Session, user: User, raw: str | None) -> str:
    if not (raw or "").strip():
        raise WorkflowError("请输入新手机号")
    try:
        phone = check_phone(raw)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from exc
    if phone == user.phone:
        raise WorkflowError("新手机号与当前绑定的手机号相同")
    if phone_taken(session, phone, besides=user):  # issue 17: one phone, one active account
        raise WorkflowError(PHONE_TAKEN)
    return phone


def start_phone_change(session: Session, user: User, new_phone: str | None, sender, *, now: datetime,
                       ttl_minutes: int = 5, resend_seconds: int = 60, before_send=None) -> tuple[str, str]:
    """更换绑定手机, step one: a code to the NEW number (the old number gets nothing).

    Returns (the normalized number, the code). Raises ``SmsThrottled`` when a code went to that
    number less than ``resend_seconds`` ago (that code still works)."""
    phone = _new_phone(session, user, new_phone)
    return phone, issue_code(session, phone, Purpose.PHONE, sender, now=now, ttl_minutes=ttl_minutes,
                             resend_seconds=resend_seconds, before_send=before_send)


def change_phone(session: Session, user: User, new_phone: str | None, code: str | None, *, now: datetime,
                 max_attempts: int = 5, ip: str | None = None) -> str:
    """更换绑定手机, step two: the code sent to the new number binds it.

    A wrong code counts as an attempt (the ``max_attempts``-th closes the code) and the bound
    phone stays as it was. Returns the new number."""
    phone = _new_phone(session, user, new_phone)
    verify_code(session, None, Purpose.PHONE, code, now=now, max_attempts=max_attempts, phone=phone)
    before = user.phone
    with binding_phone(session):  # bound by another account since the check: refused, nothing changed
        user.phone = phone
        session.flush()
    log(session, user, Kind.EDIT, f"更换绑定手机：{mask_phone(before) or '未绑定'} → {mask_phone(phone)}",
        obj=user, ip=ip, detail={"phone": {"before": mask_phone(before), "after": mask_phone(phone)}})
    session.flush()
    return phone


# --- 机构资料 -------------------------------------------------------------------------------


def may_edit_org(user: User, org: Organization | None) -> bool:
    """An organization's own administrator edits its 机构资料 here; an enterprise uses 企业信息."""
    return (org is not None and user.organization_id == org.id and user.role == Role.admin
            and org.kind != OrgKind.enterprise)


def update_org_profile(session: Session, user: User, org: Organization, values, *,
                       ip: str | None = None) -> list[str]:
    """修改机构资料: 联系人, 联系电话, 通讯地址, 邮政编码. Returns the labels of what changed."""
    if not may_edit_org(user, org):
        if org is not None and org.kind == OrgKind.enterprise:
            raise WorkflowError("企业请在「企业信息」中修改企业资料")
        raise WorkflowError("只有本机构的管理员可以修改机构资料")
    new, errors = read_fields(values, ORG_FIELDS)
    if errors:
        raise FormErrors(errors)
    return apply_fields(session, user, org, new, ORG_FIELDS, "修改机构资料", ip=ip)
