"""人员管理 (002 §3.1.5): the enterprise administrator's second-level users (经办人).

The enterprise's registered administrator creates, edits, resets and deletes the users of their
own enterprise. Creating, editing and resetting are 用户管理's own operations
(``workflows.users``), under this page's stricter rule: only the administrator named at 企业注册,
never on themselves, never on another organization's or a deleted user.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import Organization, Role, User
from models.user import Permission
from workflows import WorkflowError, sessions, users
from workflows.audit import Kind, log

P = Permission


def _check_manager(user, org: Organization | None) -> None:
    if org is None or user.organization_id != org.id or user.role != Role.admin or not user.has(P.user_manage):
        raise WorkflowError("只有企业注册时指定的管理员可以管理二级用户")


def create_user(session: Session, admin, values: dict, *, ip: str | None = None) -> User:
    """A second-level user (经办人) of the administrator's own organization, password typed (002)."""
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
    _check_target(admin, target)
    users.update_user(session, admin, target, values, with_role=False, ip=ip)


def reset_user_password(session: Session, admin, target: User, *, ip: str | None = None) -> str:
    """修改并重置密码: a one-time password, shown once; changed at the next sign-in."""
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
